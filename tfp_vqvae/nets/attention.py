"""Causal multi-head self-attention over the raster positions of a grid.

The PixelCNN's convolutions reach a bounded neighbourhood per layer; attention lets
every position read every earlier one in a single step, which is what PixelSNAIL
(Chen et al. 2018) adds to the gated PixelCNN and what VQ-VAE-2 (Razavi et al.
2019) uses for its top prior. Position p = i * w + j attends to the positions
q <= p: its own features included, which keeps causality in the prior as long as
the features at q depend on codes before q only (the prior's horizontal stack).

Each block normalises the features of each position (mean 0, variance 1 over the
channels, no learned scale: per position, so causal), adds a learned embedding of
the position (attention by itself does not know where a key is), projects to
queries, keys and values, and returns the heads' outputs projected back to the
input's channels, for the caller to add to its features (a residual update).
"""

from typing import Optional

import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.nets import layers


def causal_mask(num_positions: int) -> tf.Tensor:
  """bool [n, n]: entry [p, q] is True iff position p may attend to q (q <= p)."""
  return tf.linalg.band_part(tf.ones([num_positions, num_positions], tf.bool), -1, 0)


class CausalSelfAttention(tf.Module):
  """Multi-head self-attention in which position p of a grid sees positions <= p.

  Example (a block over 4x4 grids of 32 channels):
    block = CausalSelfAttention(32, num_heads=4, grid_shape=(4, 4), seeds=seeds)
    features += block(features)      # [B, 4, 4, 32]
  """

  def __init__(self, channels: int, num_heads: int, grid_shape: tuple[int, int],
               seeds: Optional[seeds_lib.SeedSequence] = None,
               name: Optional[str] = None):
    """Builds the position embedding and the projections.

    Args:
      channels: channels of the features, divisible by num_heads.
      num_heads: attention heads, each over channels / num_heads dimensions.
      grid_shape: (h, w) of the grids it attends over.
      seeds: stateless seeds of the initial weights.
      name: module name.

    Raises:
      ValueError: if channels is not a positive multiple of num_heads.
    """
    super().__init__(name=name)
    layers.check_heads("channels", channels, num_heads)
    seeds = seeds or seeds_lib.SeedSequence(0)
    self.num_heads = int(num_heads)
    self.grid_shape = tuple(int(s) for s in grid_shape)
    num_positions = self.grid_shape[0] * self.grid_shape[1]
    with self.name_scope:
      # Small, as in transformers, so that at first the features dominate.
      self.position_embedding = tf.Variable(
          0.02 * tf.random.stateless_normal([num_positions, channels], seeds.next()),
          name="position_embedding")
      self.query_key_value = layers.Linear(channels, 3 * channels, seeds=seeds,
                                           name="query_key_value")
      self.output = layers.Linear(channels, channels, seeds=seeds, name="output")
    self._mask = causal_mask(num_positions)

  @tf.Module.with_name_scope
  def __call__(self, features: tf.Tensor) -> tf.Tensor:
    """The attention update [B, h, w, C] of features [B, h, w, C].

    Its value at position p depends on features at positions <= p only.
    """
    height, width = self.grid_shape
    channels = features.shape[-1]
    num_positions = height * width
    x = tf.reshape(features, [-1, num_positions, channels])
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    x = (x - mean) * tf.math.rsqrt(variance + 1e-6) + self.position_embedding
    qkv = tf.reshape(self.query_key_value(tf.reshape(x, [-1, channels])),
                     [-1, num_positions, 3, self.num_heads, channels // self.num_heads])
    # [3, B, heads, positions, channels per head]
    query, key, value = tf.unstack(tf.transpose(qkv, [2, 0, 3, 1, 4]))
    scores = tf.matmul(query, key, transpose_b=True) * (channels // self.num_heads) ** -0.5
    scores = tf.where(self._mask, scores, tf.constant(-1e9, scores.dtype))
    attended = tf.matmul(tf.nn.softmax(scores, axis=-1), value)
    attended = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [-1, channels])
    return tf.reshape(self.output(attended), [-1, height, width, channels])
