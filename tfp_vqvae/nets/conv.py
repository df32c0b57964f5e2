"""Encoder and decoder networks of the VQ-VAE (van den Oord et al. 2017, sec. 4.1).

Built from the layers of nets/layers.py; every variable is tracked by `tf.Module` and
created from a stateless seed, so the same `seed` always gives the same weights.

Shapes for the default KMNIST model (`num_downsamples=2`, `num_hiddens=128`,
`embedding_dim=64`):

    images [B, 28, 28, 1] -> Encoder -> z_e [B, 7, 7, 64]
    z_q [B, 7, 7, 64] -> Decoder -> logits [B, 28, 28, 1]
"""

import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.nets import layers


class ResidualStack(tf.Module):
  """`num_blocks` x (relu -> 3x3 conv -> relu -> 1x1 conv, added to the input), relu."""

  def __init__(self, num_hiddens, num_residual_hiddens, num_blocks, seeds=None,
               name=None):
    super().__init__(name=name)
    if int(num_blocks) != num_blocks or num_blocks < 0:
      raise ValueError(f"num_residual_layers must be >= 0, got {num_blocks!r}.")
    seeds = seeds or seeds_lib.SeedSequence(0)
    with self.name_scope:
      self.blocks = [
          (layers.Conv2D(num_hiddens, num_residual_hiddens, 3, seeds=seeds,
                  name=f"res3x3_{i}"),
           layers.Conv2D(num_residual_hiddens, num_hiddens, 1, seeds=seeds,
                  name=f"res1x1_{i}"))
          for i in range(num_blocks)]

  def __call__(self, x):
    for conv3, conv1 in self.blocks:
      x = x + conv1(tf.nn.relu(conv3(tf.nn.relu(x))))
    return tf.nn.relu(x)


def _halved_channels(num_hiddens, num_strided, last):
  """Output channels of the strided convs: num_hiddens // 2 each, `last` for the last."""
  return [max(num_hiddens // 2, 1)] * (num_strided - 1) + [last]


def _strided_convs(conv_class, in_channels, out_channels, seeds, prefix):
  """4x4 stride-2 `conv_class` layers from in_channels through each of out_channels."""
  convs = []
  for i, out in enumerate(out_channels):
    convs.append(conv_class(in_channels, out, 4, stride=2, seeds=seeds,
                            name=f"{prefix}_{i}"))
    in_channels = out
  return convs


def _conv3x3_and_residual_stack(in_channels, num_hiddens, num_residual_hiddens,
                                num_residual_layers, seeds):
  """The 3x3 conv to num_hiddens channels and the residual stack after it."""
  conv = layers.Conv2D(in_channels, num_hiddens, 3, seeds=seeds, name="conv3x3")
  return conv, ResidualStack(num_hiddens, num_residual_hiddens, num_residual_layers,
                             seeds=seeds, name="residual")


class Encoder(tf.Module):
  """The paper's encoder: strided 4x4 convs, a 3x3 conv, a residual stack, a 1x1 conv.

  Each of the `num_downsamples` strided convs halves the spatial size (28 -> 14 -> 7
  by default); the last one and the rest of the network use `num_hiddens` channels,
  the earlier ones `num_hiddens // 2`. The final 1x1 conv projects to
  `embedding_dim`, the size of a codebook vector.
  """

  def __init__(self, in_channels=1, num_hiddens=128, num_residual_hiddens=32,
               num_residual_layers=2, embedding_dim=64, num_downsamples=2, seed=0,
               dtype=tf.float32, name="encoder"):
    super().__init__(name=name)
    layers.check_positive(in_channels=in_channels, num_hiddens=num_hiddens,
                          num_residual_hiddens=num_residual_hiddens,
                          embedding_dim=embedding_dim, num_downsamples=num_downsamples)
    seeds = seeds_lib.SeedSequence(seed)
    with self.name_scope:
      self.downsample = _strided_convs(
          layers.Conv2D, in_channels,
          _halved_channels(num_hiddens, num_downsamples, last=num_hiddens), seeds, "down")
      self.conv, self.residual = _conv3x3_and_residual_stack(
          num_hiddens, num_hiddens, num_residual_hiddens, num_residual_layers, seeds)
      self.pre_quantizer = layers.Conv2D(num_hiddens, embedding_dim, 1, seeds=seeds,
                                  name="pre_quantizer")
    self.dtype = tf.as_dtype(dtype)

  @tf.Module.with_name_scope
  def __call__(self, images):
    """Maps images [B, H, W, C] to latents [B, H / 2^n, W / 2^n, embedding_dim]."""
    x = tf.cast(images, self.dtype)
    x = layers.activated(self.downsample, x, tf.nn.relu)
    x = self.residual(self.conv(x))
    return self.pre_quantizer(x)


class Decoder(tf.Module):
  """The paper's decoder: a 3x3 conv, a residual stack, strided 4x4 transposed convs.

  Mirrors `Encoder`; the last transposed conv outputs `out_channels` logits per pixel.
  """

  def __init__(self, out_channels=1, num_hiddens=128, num_residual_hiddens=32,
               num_residual_layers=2, embedding_dim=64, num_downsamples=2, seed=1,
               dtype=tf.float32, name="decoder"):
    super().__init__(name=name)
    layers.check_positive(out_channels=out_channels, num_hiddens=num_hiddens,
                          num_residual_hiddens=num_residual_hiddens,
                          embedding_dim=embedding_dim, num_downsamples=num_downsamples)
    seeds = seeds_lib.SeedSequence(seed)
    with self.name_scope:
      self.conv, self.residual = _conv3x3_and_residual_stack(
          embedding_dim, num_hiddens, num_residual_hiddens, num_residual_layers, seeds)
      self.upsample = _strided_convs(
          layers.Conv2DTranspose, num_hiddens,
          _halved_channels(num_hiddens, num_downsamples, last=out_channels), seeds, "up")
    self.dtype = tf.as_dtype(dtype)

  @tf.Module.with_name_scope
  def __call__(self, latents):
    """Maps latents [B, h, w, embedding_dim] to logits [B, h * 2^n, w * 2^n, C]."""
    x = self.residual(self.conv(tf.cast(latents, self.dtype)))
    x = layers.activated(self.upsample[:-1], x, tf.nn.relu)
    return self.upsample[-1](x)


class Upsampler(tf.Module):
  """`num_upsamples` strided 4x4 transposed convs, relu between: doubles h and w each.

  VQ-VAE-2's path from the quantized top codes to the decoder (hierarchical.py).
  """

  def __init__(self, channels, num_upsamples=1, seed=0, dtype=tf.float32,
               name="upsampler"):
    super().__init__(name=name)
    layers.check_positive(channels=channels, num_upsamples=num_upsamples)
    seeds = seeds_lib.SeedSequence(seed)
    with self.name_scope:
      self.upsample = [layers.Conv2DTranspose(channels, channels, 4, stride=2,
                                              seeds=seeds, name=f"up_{i}")
                       for i in range(num_upsamples)]
    self.dtype = tf.as_dtype(dtype)

  @tf.Module.with_name_scope
  def __call__(self, latents):
    """Maps [B, h, w, channels] to [B, h * 2^n, w * 2^n, channels]."""
    x = tf.cast(latents, self.dtype)
    for i, conv in enumerate(self.upsample):
      x = conv(tf.nn.relu(x) if i else x)
    return x
