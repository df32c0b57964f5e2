"""Pre-norm Transformer blocks over a sequence, with a one-position step for decoding.

The sequence priors (priors/transformer.py, priors/maskgit.py) are stacks of the
block of GPT-2 (Radford et al. 2019):

    x += attention(layer_norm(x))      multi-head self-attention under a mask
    x += mlp(layer_norm(x))            Linear(D, 4D) -> GELU -> Linear(4D, D)

Normalising the input of each branch rather than the sum keeps the residual
stream an identity path, which lets deep stacks train stably without a long
learning-rate warm-up (Xiong et al. 2020). The mask says which positions each position reads: causal for an
autoregressive prior, all of them for MaskGIT's bidirectional one.

Positions: the blocks see none themselves (the priors add learned position
embeddings to their inputs), unless built with a `rotary_grid` (h, w): then every
attention rotates its queries and keys by their position on that grid, 2-D rotary
embeddings (RoPE, Su et al. 2021, with half of each head's channel pairs turned
by the row and half by the column, as in Heo et al. 2024), so that a query scores
a key by their row and column offsets, the same anywhere on the grid.

`TransformerStack` is `num_layers` blocks and a final norm. Its `step` (and
`TransformerBlock.step`) runs one position of a causal stack: it computes that
position's key and value, writes them into a fixed-shape cache [B, heads, N, d]
(one row per position, rows after the current one still zero) and attends over
the cache with the later rows masked. A step costs O(N), not the O(N^2) of
running the whole prefix again, and every shape is static, so a decoding loop of
steps compiles with XLA. `nets/attention.py`'s block serves the PixelCNN instead:
it adds its own position embedding and unscaled normalisation inside, and has no
cache.

Built from nets/layers.py (seeded `tf.Variable`s, tracked by `tf.Module`).
"""

from typing import Optional

import numpy as np
import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.nets import layers

_MASKED_SCORE = -1e9
# The rotary frequencies of pair j of a grid axis: ROTARY_BASE ** (-j / pairs),
# from one turn per radian down to ~1/100 (a grid of up to ~300 positions a side
# keeps distinct angles; the 10,000 of text would waste most pairs on near-zero
# frequencies over a 7-wide grid).
ROTARY_BASE = 100.0


def rotary_tables(grid, head_dim):
  """(cos, sin), each float32 [h * w, d / 2]: the rotation angles of the positions of
  `grid` (h, w) in raster order, for heads of `head_dim` d (a multiple of 4).

  Pair j < d / 4 turns by row * f_j, pair d / 4 + j by column * f_j, with
  f_j = ROTARY_BASE ** (-j / (d / 4)).
  """
  height, width = (int(size) for size in grid)
  quarter = head_dim // 4
  frequencies = ROTARY_BASE ** (-np.arange(quarter) / quarter)
  rows, columns = np.divmod(np.arange(height * width), width)
  angles = np.concatenate([np.outer(rows, frequencies), np.outer(columns, frequencies)],
                          axis=1)
  return (tf.constant(np.cos(angles), tf.float32),
          tf.constant(np.sin(angles), tf.float32))


def rotate(x, cos, sin):
  """x [..., T, d] with channel pairs (i, i + d / 2) turned by the angles of cos and
  sin [T, d / 2]: a query and a key so turned have a dot product that depends on
  the difference of their angles only."""
  first, second = tf.split(x, 2, axis=-1)
  return tf.concat([first * cos - second * sin, first * sin + second * cos], axis=-1)


class LayerNorm(tf.Module):
  """Normalises the last axis to mean 0 and variance 1, then a learned scale and offset."""

  def __init__(self, dim: int, name: Optional[str] = None):
    super().__init__(name=name)
    layers.check_positive(dim=dim)
    with self.name_scope:
      self.scale = tf.Variable(tf.ones([dim]), name="scale")
      self.offset = tf.Variable(tf.zeros([dim]), name="offset")

  def __call__(self, x):
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return ((x - mean) * tf.math.rsqrt(variance + 1e-5) * tf.cast(self.scale, x.dtype)
            + tf.cast(self.offset, x.dtype))


class SelfAttention(tf.Module):
  """Multi-head self-attention of a sequence [B, T, D] under a boolean mask."""

  def __init__(self, dim: int, num_heads: int,
               seeds: Optional[seeds_lib.SeedSequence] = None,
               name: Optional[str] = None, rotary_grid=None):
    """Builds the query/key/value and output projections.

    Args:
      dim, num_heads: the width D and the number of heads (dividing D).
      seeds: of the initial weights.
      name: of the module.
      rotary_grid: (h, w) to turn queries and keys by their position on that
        grid (module docstring); the sequence is then at most h * w long.

    Raises:
      ValueError: if dim is not a positive multiple of num_heads, or, with a
        rotary_grid, a head's width dim / num_heads is not a multiple of 4.
    """
    super().__init__(name=name)
    self.head_dim = layers.check_heads("dim", dim, num_heads)
    self.num_heads = int(num_heads)
    self._rotary = None
    if rotary_grid is not None:
      if self.head_dim % 4:
        raise ValueError(f"Rotary positions turn pairs of channels by row and by column: "
                         f"dim / num_heads = {dim} / {num_heads} must be a multiple of 4.")
      self._rotary = rotary_tables(rotary_grid, self.head_dim)
    with self.name_scope:
      self.query_key_value = layers.Linear(dim, 3 * dim, seeds=seeds,
                                           name="query_key_value")
      self.output = layers.Linear(dim, dim, seeds=seeds, name="output")

  def _project(self, x):
    """(query, key, value), each [B, heads, T, d], of x [B, T, D]."""
    qkv = self.query_key_value(x)
    qkv = tf.reshape(qkv, tf.concat([tf.shape(x)[:2], [3, self.num_heads,
                                                        self.head_dim]], 0))
    return tf.unstack(tf.transpose(qkv, [2, 0, 3, 1, 4]))

  def _attend(self, query, key, value, mask):
    """Heads' outputs merged and projected: [B, T, D] for query [B, heads, T, d]."""
    scores = tf.matmul(query, key, transpose_b=True) * self.head_dim ** -0.5
    if mask is not None:
      scores = tf.where(mask, scores, tf.constant(_MASKED_SCORE, scores.dtype))
    attended = tf.matmul(tf.nn.softmax(scores, axis=-1), value)
    attended = tf.transpose(attended, [0, 2, 1, 3])
    return self.output(tf.reshape(
        attended, tf.concat([tf.shape(attended)[:2], [-1]], 0)))

  def _turned(self, query, key, positions):
    """query and key [B, heads, T, d] turned by the angles of `positions` int32 [T].

    A gather: slicing the tables at the decoding loop's position drew other codes
    under XLA than without it here.
    """
    if self._rotary is None:
      return query, key
    cos, sin = (tf.gather(table, positions) for table in self._rotary)
    return rotate(query, cos, sin), rotate(key, cos, sin)

  def __call__(self, x, mask=None):
    """The attention output [B, T, D]; mask bool [T, T], [p, q] True iff p reads q."""
    query, key, value = self._project(x)
    query, key = self._turned(query, key, tf.range(tf.shape(x)[1]))
    return self._attend(query, key, value, mask)

  def step(self, x, keys, values, position):
    """One position of causal attention over a cache.

    Args:
      x: [B, 1, D], the input at `position`.
      keys, values: [B, heads, N, d] caches holding rows < `position`.
      position: int32 scalar.

    Returns:
      (output [B, 1, D], keys and values with row `position` written).
    """
    query, key, value = self._project(x)
    query, key = self._turned(query, key, tf.reshape(position, [1]))
    num_positions = keys.shape[2]
    row = tf.range(num_positions)[:, None] == position        # [N, 1]
    keys = tf.where(row, key, keys)
    values = tf.where(row, value, values)
    readable = tf.range(num_positions) <= position            # [N]
    return self._attend(query, keys, values, readable), keys, values


class TransformerBlock(tf.Module):
  """x + attention(norm(x)), then + mlp(norm(x)); dropout on both branches."""

  def __init__(self, dim: int, num_heads: int, dropout_rate: float = 0.0,
               seeds: Optional[seeds_lib.SeedSequence] = None,
               name: Optional[str] = None, rotary_grid=None):
    """Builds the two norms, the attention and the MLP of hidden size 4 * dim.

    Raises:
      ValueError: as `SelfAttention` (whose rotary_grid this is), or if
        dropout_rate is outside [0, 1).
    """
    super().__init__(name=name)
    if not 0.0 <= dropout_rate < 1.0:
      raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}.")
    seeds = seeds or seeds_lib.SeedSequence(0)
    self.dropout_rate = float(dropout_rate)
    with self.name_scope:
      self.attention_norm = LayerNorm(dim, name="attention_norm")
      self.attention = SelfAttention(dim, num_heads, seeds=seeds, name="attention",
                                     rotary_grid=rotary_grid)
      self.mlp_norm = LayerNorm(dim, name="mlp_norm")
      self.mlp_hidden = layers.Linear(dim, 4 * dim, seeds=seeds, name="mlp_hidden")
      self.mlp_output = layers.Linear(4 * dim, dim, seeds=seeds, name="mlp_output")

  def _mlp(self, x):
    return self.mlp_output(tf.nn.gelu(self.mlp_hidden(self.mlp_norm(x))))

  def __call__(self, x, mask=None, training=False, seed=None):
    """The block's output [B, T, D] of x [B, T, D].

    Args:
      x: float [B, T, D].
      mask: bool [T, T] (see `SelfAttention`), or None to read every position.
      training: applies dropout to both branches if True.
      seed: int64 [2] stateless dropout seed, required when training with dropout.

    Raises:
      ValueError: if training with dropout without a seed.
    """
    rate = self.dropout_rate if training else 0.0
    if rate and seed is None:
      raise ValueError("A stateless `seed` is required for dropout when training=True.")

    def dropout(branch, index):
      if not rate:
        return branch
      return tf.nn.experimental.stateless_dropout(
          branch, rate, seed=tf.random.experimental.stateless_fold_in(seed, index))

    x += dropout(self.attention(self.attention_norm(x), mask), 0)
    return x + dropout(self._mlp(x), 1)

  def step(self, x, keys, values, position):
    """One position of a causal stack: (output [B, 1, D], updated keys, values).

    Equals row `position` of `__call__` on the whole sequence with a causal mask
    (up to rounding), given caches filled by the steps of the positions before.
    """
    attended, keys, values = self.attention.step(self.attention_norm(x), keys, values,
                                                 position)
    x += attended
    return x + self._mlp(x), keys, values


class TransformerStack(tf.Module):
  """`num_layers` blocks and a final norm: features [B, T, D] of inputs [B, T, D]."""

  def __init__(self, dim: int, num_layers: int, num_heads: int,
               dropout_rate: float = 0.0,
               seeds: Optional[seeds_lib.SeedSequence] = None,
               name: Optional[str] = None, rotary_grid=None):
    """Builds the blocks (see `TransformerBlock`, with the `rotary_grid`) and the final norm.

    Raises:
      ValueError: as `TransformerBlock`, or if num_layers is not positive.
    """
    super().__init__(name=name)
    layers.check_positive(num_layers=num_layers)
    seeds = seeds or seeds_lib.SeedSequence(0)
    self.num_heads = int(num_heads)
    self.head_dim = dim // num_heads
    with self.name_scope:
      self.blocks = [TransformerBlock(dim, num_heads, dropout_rate, seeds=seeds,
                                      name=f"block_{i}", rotary_grid=rotary_grid)
                     for i in range(num_layers)]
      self.final_norm = LayerNorm(dim, name="final_norm")

  def __call__(self, x, mask=None, training=False, seed=None):
    """The normalised output [B, T, D]; block i's dropout seed is `seed` folded with i."""
    for i, block in enumerate(self.blocks):
      block_seed = None
      if training and seed is not None:
        block_seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), i)
      x = block(x, mask, training=training, seed=block_seed)
    return self.final_norm(x)

  def empty_cache(self, batch_size, num_positions):
    """(keys, values): per block a zero cache [B, heads, N, d], for `step`."""
    cache = tf.zeros(tf.stack([batch_size, self.num_heads, num_positions,
                               self.head_dim]))
    return (cache,) * len(self.blocks), (cache,) * len(self.blocks)

  def step(self, x, keys, values, position):
    """One position of the causal stack: (output [B, 1, D], keys, values).

    Args:
      x: [B, 1, D], the input at `position`.
      keys, values: tuples of one cache per block (`empty_cache`), holding the
        rows of the positions before `position`.
      position: int32 scalar.
    """
    keys, values = list(keys), list(values)
    for i, block in enumerate(self.blocks):
      x, keys[i], values[i] = block.step(x, keys[i], values[i], position)
    return self.final_norm(x), tuple(keys), tuple(values)
