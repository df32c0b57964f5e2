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

Built from the layers of nets/layers.py, with weights drawn from stateless seeds.
"""

import math

import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.nets import layers


def _hidden_layers(in_features, num_hiddens, seeds):
  """The MLP's two hidden layers of `num_hiddens` units."""
  return [layers.Linear(in_features, num_hiddens, seeds, name="hidden_0"),
          layers.Linear(num_hiddens, num_hiddens, seeds, name="hidden_1")]


def _leaky_relu_mlp(inputs, hidden, out, dtype):
  """inputs [B, ...] flattened, through `hidden` with leaky ReLUs, then `out`: [B, F]."""
  x = tf.reshape(tf.cast(inputs, dtype), [tf.shape(inputs)[0], -1])
  return out(layers.activated(hidden, x, tf.nn.leaky_relu))


class MLPEncoder(tf.Module):
  """images [B, H, W, C] -> latents [B, 1, L, D] through two hidden layers."""

  def __init__(self, image_shape, num_hiddens, num_latents, embedding_dim, seed=0,
               dtype=tf.float32, name="encoder"):
    super().__init__(name=name)
    seeds = seeds_lib.SeedSequence(seed)
    self.num_latents, self.embedding_dim = num_latents, embedding_dim
    with self.name_scope:
      self.hidden = _hidden_layers(math.prod(image_shape), num_hiddens, seeds)
      self.out = layers.Linear(num_hiddens, num_latents * embedding_dim, seeds, name="out")
    self.dtype = tf.as_dtype(dtype)

  @tf.Module.with_name_scope
  def __call__(self, images):
    outputs = _leaky_relu_mlp(images, self.hidden, self.out, self.dtype)
    return tf.reshape(outputs, [-1, 1, self.num_latents, self.embedding_dim])


class MLPDecoder(tf.Module):
  """latents [B, 1, L, D] -> outputs [B, H, W, out_channels]: the encoder mirrored."""

  def __init__(self, image_shape, out_channels, num_hiddens, num_latents, embedding_dim,
               seed=1, dtype=tf.float32, name="decoder"):
    super().__init__(name=name)
    seeds = seeds_lib.SeedSequence(seed)
    self.output_shape = tuple(image_shape[:2]) + (out_channels,)
    with self.name_scope:
      self.hidden = _hidden_layers(num_latents * embedding_dim, num_hiddens, seeds)
      self.out = layers.Linear(num_hiddens, math.prod(self.output_shape), seeds, name="out")
    self.dtype = tf.as_dtype(dtype)

  @tf.Module.with_name_scope
  def __call__(self, latents):
    outputs = _leaky_relu_mlp(latents, self.hidden, self.out, self.dtype)
    return tf.reshape(outputs, (-1,) + self.output_shape)


class GlobalEncoder(tf.Module):
  """The TFP blog's encoder: images [B, H, W, C] -> latents [B, 1, L, D]."""

  def __init__(self, image_shape, num_hiddens, num_latents, embedding_dim, seed=0,
               dtype=tf.float32, name="encoder"):
    super().__init__(name=name)
    seeds = seeds_lib.SeedSequence(seed)
    height, width, channels = image_shape
    depth = num_hiddens
    self.num_latents, self.embedding_dim = num_latents, embedding_dim
    with self.name_scope:
      self.convs = [
          layers.Conv2D(channels, depth, 5, seeds=seeds, name="conv_0"),
          layers.Conv2D(depth, depth, 5, stride=2, seeds=seeds, name="conv_1"),
          layers.Conv2D(depth, 2 * depth, 5, seeds=seeds, name="conv_2"),
          layers.Conv2D(2 * depth, 2 * depth, 5, stride=2, seeds=seeds, name="conv_3")]
      features = (height // 4) * (width // 4) * 2 * depth
      self.summary = layers.Linear(features, 4 * num_latents, seeds, name="summary")
      self.out = layers.Linear(4 * num_latents, num_latents * embedding_dim, seeds, name="out")
    self.dtype = tf.as_dtype(dtype)

  @tf.Module.with_name_scope
  def __call__(self, images):
    x = tf.cast(images, self.dtype)
    x = layers.activated(self.convs, x, tf.nn.elu)
    x = tf.nn.elu(self.summary(tf.reshape(x, [tf.shape(x)[0], -1])))
    return tf.reshape(self.out(x), [-1, 1, self.num_latents, self.embedding_dim])


class GlobalDecoder(tf.Module):
  """The TFP blog's decoder: latents [B, 1, L, D] -> outputs [B, H, W, out_channels]."""

  def __init__(self, image_shape, out_channels, num_hiddens, num_latents, embedding_dim,
               seed=1, dtype=tf.float32, name="decoder"):
    super().__init__(name=name)
    seeds = seeds_lib.SeedSequence(seed)
    height, width, _ = image_shape
    depth = num_hiddens
    self.grid = (height // 4, width // 4, 2 * depth)
    with self.name_scope:
      self.expand = layers.Linear(num_latents * embedding_dim, math.prod(self.grid), seeds,
                          name="expand")
      self.convs = [
          layers.Conv2D(2 * depth, 2 * depth, 5, seeds=seeds, name="conv_0"),
          layers.Conv2DTranspose(2 * depth, 2 * depth, 5, 2, seeds=seeds, name="up_0"),
          layers.Conv2D(2 * depth, depth, 5, seeds=seeds, name="conv_1"),
          layers.Conv2DTranspose(depth, depth, 5, 2, seeds=seeds, name="up_1"),
          layers.Conv2D(depth, depth, 5, seeds=seeds, name="conv_2")]
      self.out = layers.Conv2D(depth, out_channels, 5, seeds=seeds, name="out")
    self.dtype = tf.as_dtype(dtype)

  @tf.Module.with_name_scope
  def __call__(self, latents):
    x = tf.reshape(tf.cast(latents, self.dtype), [tf.shape(latents)[0], -1])
    x = tf.reshape(tf.nn.elu(self.expand(x)), (-1,) + self.grid)
    x = layers.activated(self.convs, x, tf.nn.elu)
    return self.out(x)
