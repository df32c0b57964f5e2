"""Tests of causal self-attention: causality by perturbation and a NumPy reference."""

import numpy as np
import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.nets import attention


def _block(channels=8, num_heads=2, grid_shape=(3, 4)):
  block = attention.CausalSelfAttention(channels, num_heads, grid_shape,
                                        seeds=seeds_lib.SeedSequence(4))
  rng = np.random.default_rng(1)
  for variable in block.variables:
    if "bias" in variable.name:  # Zero at first: random, so they matter here.
      variable.assign(rng.normal(size=variable.shape))
  return block


def _np_attention(block, features):
  """The block on one grid [h, w, C], with explicit loops over heads and positions."""
  height, width, channels = features.shape
  heads = block.num_heads
  size = channels // heads
  x = features.reshape(height * width, channels).astype(np.float64)
  x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)
  x += block.position_embedding.numpy()
  qkv = x @ block.query_key_value.kernel.numpy() + block.query_key_value.bias.numpy()
  query, key, value = np.split(qkv, 3, axis=-1)
  out = np.zeros_like(x)
  for head in range(heads):
    part = slice(head * size, (head + 1) * size)
    for p in range(height * width):
      scores = key[:p + 1, part] @ query[p, part] / np.sqrt(size)
      weights = np.exp(scores - scores.max())
      out[p, part] = weights / weights.sum() @ value[:p + 1, part]
  out = out @ block.output.kernel.numpy() + block.output.bias.numpy()
  return out.reshape(height, width, channels)


class CausalSelfAttentionTest(tf.test.TestCase):

  def test_matches_numpy_reference(self):
    block = _block()
    features = np.random.default_rng(2).normal(size=(2, 3, 4, 8)).astype(np.float32)
    got = block(features).numpy()
    for grid, out in zip(features, got):
      self.assertAllClose(out, _np_attention(block, grid), atol=1e-4)

  def test_position_p_sees_exactly_positions_up_to_p(self):
    block = _block(grid_shape=(2, 3))
    base = np.random.default_rng(3).normal(size=(1, 2, 3, 8)).astype(np.float32)
    reference = block(base).numpy().reshape(6, 8)
    for q in range(6):
      changed_features = base.copy().reshape(6, 8)
      # Not a constant: the normalisation would take it out.
      changed_features[q] += np.linspace(-1.0, 1.0, 8, dtype=np.float32)
      out = block(changed_features.reshape(1, 2, 3, 8)).numpy().reshape(6, 8)
      changed = np.abs(out - reference).max(-1) > 0
      self.assertFalse(changed[:q].any(), f"position {q} leaks into positions < {q}")
      self.assertTrue(changed[q:].all(), f"a position >= {q} ignores position {q}")

  def test_heads_must_divide_the_channels(self):
    with self.assertRaisesRegex(ValueError, "num_heads=3 must divide channels=8"):
      attention.CausalSelfAttention(8, 3, (2, 2))

  def test_causal_mask(self):
    self.assertAllEqual(attention.causal_mask(3),
                        [[True, False, False], [True, True, False], [True, True, True]])


if __name__ == "__main__":
  tf.test.main()
