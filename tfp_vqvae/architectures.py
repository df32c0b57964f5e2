"""Encoder/decoder pairs besides the paper's conv nets: an MLP and a global-latent conv net.

Both code an image as a small number L of latent vectors rather than a grid; their
latents have shape [B, 1, L, D], a 1 x L grid, so the quantizers, the uniform prior,
code maps and exports treat them like any other grid.

  mlp     the slides' exercise: flatten -> 300 -> 300 -> L * D with leaky ReLUs,
          and back (sizes from `num_hiddens`).
  global  the TFP blog's Kuzushiji-MNIST model: ELU 5x5 convs of base depth
          `num_hiddens` (32), two of them strided, a dense layer standing in for the
          blog's 7x7 VALID conv (the same map on a 7x7 input), then L * D; the
          decoder mirrors it with a dense layer for the 7x7 VALID transposed conv,
          ELU 5x5 (transposed) convs and a linear 5x5 conv.

Built from `tf.Variable`s like networks.py (Keras 3 layers are not tracked inside a
`tf.Module`), with weights drawn from stateless seeds.
"""

import math

import tensorflow as tf

from tfp_vqvae import networks

ARCHITECTURES = ("conv", "mlp", "global")


class Dense(tf.Module):
  """x @ W + b, weights ~ TruncNormal(0, 1/fan_in); runs in the dtype of its input."""

  def __init__(self, in_features, out_features, seeds, name=None):
    super().__init__(name=name)
    stddev = 1.0 / math.sqrt(in_features)
    with self.name_scope:
      self.kernel = tf.Variable(
          tf.random.stateless_truncated_normal([in_features, out_features], seeds.next(),
                                               stddev=stddev),
          name="kernel")
      self.bias = tf.Variable(tf.zeros([out_features]), name="bias")

  def __call__(self, x):
    return tf.nn.bias_add(tf.matmul(x, tf.cast(self.kernel, x.dtype)),
                          tf.cast(self.bias, x.dtype))


class MLPEncoder(tf.Module):
  """images [B, H, W, C] -> latents [B, 1, L, D] through two hidden layers."""

  def __init__(self, image_shape, num_hiddens, num_latents, embedding_dim, seed=0,
               dtype=tf.float32, name="encoder"):
    super().__init__(name=name)
    seeds = networks.SeedSequence(seed)
    self.num_latents, self.embedding_dim = num_latents, embedding_dim
    with self.name_scope:
      self.hidden = [Dense(math.prod(image_shape), num_hiddens, seeds, name="hidden_0"),
                     Dense(num_hiddens, num_hiddens, seeds, name="hidden_1")]
      self.out = Dense(num_hiddens, num_latents * embedding_dim, seeds, name="out")
    self.dtype = tf.as_dtype(dtype)

  @tf.Module.with_name_scope
  def __call__(self, images):
    x = tf.reshape(tf.cast(images, self.dtype), [tf.shape(images)[0], -1])
    for layer in self.hidden:
      x = tf.nn.leaky_relu(layer(x))
    return tf.reshape(self.out(x), [-1, 1, self.num_latents, self.embedding_dim])


class MLPDecoder(tf.Module):
  """latents [B, 1, L, D] -> outputs [B, H, W, out_channels]: the encoder mirrored."""

  def __init__(self, image_shape, out_channels, num_hiddens, num_latents, embedding_dim,
               seed=1, dtype=tf.float32, name="decoder"):
    super().__init__(name=name)
    seeds = networks.SeedSequence(seed)
    self.output_shape = tuple(image_shape[:2]) + (out_channels,)
    with self.name_scope:
      self.hidden = [Dense(num_latents * embedding_dim, num_hiddens, seeds,
                           name="hidden_0"),
                     Dense(num_hiddens, num_hiddens, seeds, name="hidden_1")]
      self.out = Dense(num_hiddens, math.prod(self.output_shape), seeds, name="out")
    self.dtype = tf.as_dtype(dtype)

  @tf.Module.with_name_scope
  def __call__(self, latents):
    x = tf.reshape(tf.cast(latents, self.dtype), [tf.shape(latents)[0], -1])
    for layer in self.hidden:
      x = tf.nn.leaky_relu(layer(x))
    return tf.reshape(self.out(x), (-1,) + self.output_shape)


class GlobalEncoder(tf.Module):
  """The TFP blog's encoder: images [B, H, W, C] -> latents [B, 1, L, D]."""

  def __init__(self, image_shape, num_hiddens, num_latents, embedding_dim, seed=0,
               dtype=tf.float32, name="encoder"):
    super().__init__(name=name)
    seeds = networks.SeedSequence(seed)
    height, width, channels = image_shape
    depth = num_hiddens
    self.num_latents, self.embedding_dim = num_latents, embedding_dim
    with self.name_scope:
      self.convs = [
          networks.Conv2D(channels, depth, 5, seeds=seeds, name="conv_0"),
          networks.Conv2D(depth, depth, 5, stride=2, seeds=seeds, name="conv_1"),
          networks.Conv2D(depth, 2 * depth, 5, seeds=seeds, name="conv_2"),
          networks.Conv2D(2 * depth, 2 * depth, 5, stride=2, seeds=seeds, name="conv_3")]
      features = (height // 4) * (width // 4) * 2 * depth
      self.summary = Dense(features, 4 * num_latents, seeds, name="summary")
      self.out = Dense(4 * num_latents, num_latents * embedding_dim, seeds, name="out")
    self.dtype = tf.as_dtype(dtype)

  @tf.Module.with_name_scope
  def __call__(self, images):
    x = tf.cast(images, self.dtype)
    for conv in self.convs:
      x = tf.nn.elu(conv(x))
    x = tf.nn.elu(self.summary(tf.reshape(x, [tf.shape(x)[0], -1])))
    return tf.reshape(self.out(x), [-1, 1, self.num_latents, self.embedding_dim])


class GlobalDecoder(tf.Module):
  """The TFP blog's decoder: latents [B, 1, L, D] -> outputs [B, H, W, out_channels]."""

  def __init__(self, image_shape, out_channels, num_hiddens, num_latents, embedding_dim,
               seed=1, dtype=tf.float32, name="decoder"):
    super().__init__(name=name)
    seeds = networks.SeedSequence(seed)
    height, width, _ = image_shape
    depth = num_hiddens
    self.grid = (height // 4, width // 4, 2 * depth)
    with self.name_scope:
      self.expand = Dense(num_latents * embedding_dim, math.prod(self.grid), seeds,
                          name="expand")
      self.convs = [
          networks.Conv2D(2 * depth, 2 * depth, 5, seeds=seeds, name="conv_0"),
          networks.Conv2DTranspose(2 * depth, 2 * depth, 5, 2, seeds=seeds, name="up_0"),
          networks.Conv2D(2 * depth, depth, 5, seeds=seeds, name="conv_1"),
          networks.Conv2DTranspose(depth, depth, 5, 2, seeds=seeds, name="up_1"),
          networks.Conv2D(depth, depth, 5, seeds=seeds, name="conv_2")]
      self.out = networks.Conv2D(depth, out_channels, 5, seeds=seeds, name="out")
    self.dtype = tf.as_dtype(dtype)

  @tf.Module.with_name_scope
  def __call__(self, latents):
    x = tf.reshape(tf.cast(latents, self.dtype), [tf.shape(latents)[0], -1])
    x = tf.reshape(tf.nn.elu(self.expand(x)), (-1,) + self.grid)
    for conv in self.convs:
      x = tf.nn.elu(conv(x))
    return self.out(x)


def make_networks(architecture, image_shape, out_channels, num_hiddens,
                  num_residual_hiddens, num_residual_layers, embedding_dim,
                  num_downsamples, num_latents, seed, dtype):
  """(encoder, decoder, latent grid (h, w)) of `architecture` for `image_shape`.

  Args:
    architecture: one of `ARCHITECTURES`.
    image_shape: (H, W, C) the networks see (after any padding).
    out_channels: decoder output channels (C times the likelihood's parameters).
    num_downsamples, num_residual_hiddens, num_residual_layers: conv only.
    num_latents: L, mlp and global only.
    seed: the encoder uses 2 * seed, the decoder 2 * seed + 1.

  Raises:
    ValueError: for an unknown architecture or sizes that do not fit.
  """
  height, width, channels = image_shape
  if architecture == "conv":
    factor = 2 ** int(num_downsamples)
    if height % factor or width % factor:
      raise ValueError(f"image height and width {height}x{width} must be divisible by "
                       f"2**num_downsamples = {factor}.")
    sizes = dict(num_hiddens=num_hiddens, num_residual_hiddens=num_residual_hiddens,
                 num_residual_layers=num_residual_layers, embedding_dim=embedding_dim,
                 num_downsamples=num_downsamples, dtype=dtype)
    return (networks.Encoder(in_channels=channels, seed=2 * seed, **sizes),
            networks.Decoder(out_channels=out_channels, seed=2 * seed + 1, **sizes),
            (height // factor, width // factor))
  networks.check_positive(
      num_hiddens=num_hiddens, num_latents=num_latents, embedding_dim=embedding_dim)
  sizes = dict(num_hiddens=num_hiddens, num_latents=num_latents,
               embedding_dim=embedding_dim, dtype=dtype)
  if architecture == "mlp":
    encoder_cls, decoder_cls = MLPEncoder, MLPDecoder
  elif architecture == "global":
    if height % 4 or width % 4:
      raise ValueError(f"The global architecture halves {height}x{width} twice: height "
                       "and width must be divisible by 4.")
    encoder_cls, decoder_cls = GlobalEncoder, GlobalDecoder
  else:
    raise ValueError(f"Unknown architecture {architecture!r}; expected one of "
                     f"{', '.join(ARCHITECTURES)}.")
  return (encoder_cls(image_shape, seed=2 * seed, **sizes),
          decoder_cls(image_shape, out_channels, seed=2 * seed + 1, **sizes),
          (1, int(num_latents)))
