"""FiniteScalarQuantizer against the paper's formulas in NumPy: codes, grid points,
the straight-through gradient, float32 rounding under bfloat16, argument checks.

The contract every quantizer meets (shapes, tf.function, XLA, checkpoints, two
replicas) is tested in quantizer_contract_test.py, which has an FSQ member.
"""

import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfp_vqvae.quantizers import fsq
import quantizer_family as family

_D = 6


def _inputs(shape, seed=0, scale=2.0):
  return (scale * np.random.default_rng(seed).normal(size=shape)).astype(np.float32)


def _identity_projections(quantizer):
  """Makes project_in the identity D -> d (D == d) and project_out too, so the
  projected vectors are the inputs and the quantized vectors the grid points."""
  for layer in (quantizer.project_in, quantizer.project_out):
    layer.kernel.assign(tf.eye(quantizer.code_dim))
    layer.bias.assign(tf.zeros([quantizer.code_dim]))


class FiniteScalarQuantizerTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((8, 5, 5, 5), (2, 3, 4), (7,), (8, 8, 8, 6, 5))
  def test_codes_and_quantized_match_numpy(self, *levels):
    quantizer = fsq.FiniteScalarQuantizer(_D, levels=levels, seed=1)
    self.assertEqual(quantizer.num_embeddings, math.prod(levels))
    self.assertEqual(quantizer.code_dim, len(levels))
    inputs = _inputs((5, 4, 4, _D))
    out = quantizer(inputs)
    codes, grid_points = family.numpy_fsq(quantizer, inputs.reshape(-1, _D))
    self.assertAllEqual(tf.reshape(out.codes, [-1]), codes)
    self.assertAllClose(
        tf.reshape(out.quantized, [-1, _D]),
        family.numpy_linear(quantizer.project_out, grid_points), rtol=1e-5, atol=1e-5)
    self.assertAllInRange(out.codes, 0, quantizer.num_embeddings - 1)
    self.assertAllClose(quantizer.lookup(out.codes), out.quantized, rtol=1e-6, atol=1e-6)
    # No commitment term; the statistics are those of the code histogram.
    self.assertAllEqual(out.commitment_loss, np.zeros(5))
    histogram = np.bincount(codes, minlength=quantizer.num_embeddings)
    self.assertAllEqual(out.code_counts, histogram)
    self.assertAllClose(out.usage, np.mean(histogram > 0))

  def test_each_channel_takes_exactly_its_levels(self):
    levels = (2, 3, 4, 5, 8)
    quantizer = fsq.FiniteScalarQuantizer(len(levels), levels=levels)
    _identity_projections(quantizer)
    # A sweep far into both tails of the tanh, the same value in every channel.
    sweep = np.repeat(np.linspace(-20.0, 20.0, 4001, dtype=np.float32)[:, None],
                      len(levels), axis=1)
    grid_points = quantizer(sweep).quantized.numpy()
    for channel, level in enumerate(levels):
      half_width = level // 2
      # Odd L: -(L-1)/2 .. (L-1)/2; even L: -L/2 .. L/2 - 1 (the half-step offset).
      expected = np.arange(-half_width, level - half_width) / half_width
      self.assertAllClose(np.unique(grid_points[:, channel]), expected, msg=str(level))
    # bound(0) = 0: zero inputs are the centre digit of every channel.
    self.assertAllEqual(quantizer.bound(tf.zeros([1, len(levels)])),
                        np.zeros([1, len(levels)]))

  def test_digit_order_channel_0_least_significant(self):
    levels = (8, 5, 5, 5)
    quantizer = fsq.FiniteScalarQuantizer(4, levels=levels)
    _identity_projections(quantizer)
    low, high = -10.0, 10.0  # Saturate each channel to its first or last digit.
    cases = {(low, low, low, low): 0, (high, low, low, low): 7,
             (low, high, low, low): 8 * 4, (low, low, high, low): 40 * 4,
             (low, low, low, high): 200 * 4, (high, high, high, high): 999,
             (0.0, 0.0, 0.0, 0.0): 4 + 8 * 2 + 40 * 2 + 200 * 2}
    out = quantizer(np.array(list(cases), np.float32))
    self.assertAllEqual(out.codes, list(cases.values()))

  def test_codebook_is_every_grid_point_projected_back(self):
    quantizer = fsq.FiniteScalarQuantizer(_D, levels=(3, 4, 2), seed=2)
    (codebook,) = quantizer.codebooks
    self.assertEqual(codebook.shape, (24, _D))
    self.assertEqual(codebook.dtype, tf.float32)
    grid_points = np.array([[(code % 3) - 1, (code // 3 % 4 - 2) / 2, code // 12 - 1]
                            for code in range(24)], np.float64)
    self.assertAllClose(codebook, family.numpy_linear(quantizer.project_out, grid_points),
                        rtol=1e-6, atol=1e-6)
    self.assertLen(np.unique(codebook.numpy(), axis=0), 24)

  def test_straight_through_gradient_is_that_of_the_bound(self):
    levels = (8, 5, 5)
    quantizer = fsq.FiniteScalarQuantizer(_D, levels=levels, seed=3)
    inputs = tf.constant(_inputs((7, _D), seed=4))
    upstream = _inputs((7, _D), seed=5)
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      total = tf.reduce_sum(quantizer(inputs, training=True).quantized * upstream)
    # d quantized / d inputs = W_in diag(bound'(h) / (L // 2)) W_out, by hand.
    w_in, b_in = quantizer.project_in.kernel.numpy(), quantizer.project_in.bias.numpy()
    w_out = quantizer.project_out.kernel.numpy().astype(np.float64)
    levels = np.array(levels)
    half_range = (levels - 1) * (1 + 1e-3) / 2
    shift = np.arctanh(np.where(levels % 2 == 0, 0.5, 0.0) / half_range)
    projected = inputs.numpy().astype(np.float64) @ w_in + b_in
    bound_slope = half_range * (1 - np.tanh(projected + shift) ** 2)
    expected = ((upstream @ w_out.T) * bound_slope / (levels // 2)) @ w_in.T
    self.assertAllClose(tape.gradient(total, inputs), expected, rtol=1e-4, atol=1e-5)

  def test_bfloat16_inputs_give_the_codes_of_the_same_float32_values(self):
    quantizer = fsq.FiniteScalarQuantizer(_D, levels=(8, 5, 5, 5), seed=6)
    bfloat16 = tf.constant(_inputs((16, 8, 8, _D), seed=7), tf.bfloat16)
    float32 = tf.cast(bfloat16, tf.float32)  # The same values.
    out_bf16, out_f32 = quantizer(bfloat16), quantizer(float32)
    self.assertAllEqual(out_bf16.codes, out_f32.codes)
    self.assertEqual(out_bf16.quantized.dtype, tf.bfloat16)
    self.assertAllEqual(out_bf16.quantized, tf.cast(out_f32.quantized, tf.bfloat16))
    self.assertAllEqual(out_bf16.code_counts, out_f32.code_counts)

  def test_same_seed_same_quantizer(self):
    one, two, other = (fsq.FiniteScalarQuantizer(_D, seed=seed) for seed in (4, 4, 5))
    inputs = _inputs((3, _D))
    self.assertAllEqual(one(inputs).codes, two(inputs).codes)
    self.assertNotAllEqual(one.project_in.kernel, other.project_in.kernel)

  @parameterized.parameters(((),), ((8, 1),), ("8555",), (8,), ((8.0, 5),),
                            ((2**16, 2**16),))
  def test_bad_levels_raise(self, levels):
    with self.assertRaisesRegex(ValueError, "levels must"):
      fsq.FiniteScalarQuantizer(_D, levels=levels)

  def test_bad_embedding_dim_raises(self):
    with self.assertRaisesRegex(ValueError, "embedding_dim must"):
      fsq.FiniteScalarQuantizer(0)


if __name__ == "__main__":
  tf.test.main()
