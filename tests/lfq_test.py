"""LookupFreeQuantizer against NumPy: codes, corners, the entropy penalty computed
over all K codes as a softmax of distances (not factorised), the commitment term,
the straight-through gradient, half precision, argument checks.

The contract every quantizer meets (shapes, tf.function, XLA, checkpoints, two
replicas with the global batch's entropy) is tested in quantizer_contract_test.py,
which has an LFQ member.
"""

import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfp_vqvae.quantizers import lfq
import quantizer_family as family

_D = 6


def _inputs(shape, seed=0, scale=1.0):
  return (scale * np.random.default_rng(seed).normal(size=shape)).astype(np.float32)


def _corners(code_dim):
  """[2^d, d] corners in {-1, 1}^d of codes 0, 1, ...: bit j of code k is channel j."""
  codes = np.arange(2**code_dim)
  return 2.0 * (codes[:, None] >> np.arange(code_dim) & 1) - 1.0


def _numpy_loss(quantizer, inputs):
  """Per-example loss [B] of `inputs` [B, ..., D], from the definitions in float64:
  q_i = softmax_k(-||h_i - c_k||^2 / temperature) over the K corners c_k."""
  batch = inputs.shape[0]
  projected = family.numpy_linear(quantizer.project_in,
                                  inputs.reshape(-1, _D).astype(np.float64))
  corners = _corners(quantizer.code_dim)
  logits = -((projected[:, None, :] - corners[None]) ** 2).sum(-1)
  logits /= quantizer.entropy_temperature
  logits -= logits.max(axis=1, keepdims=True)
  q = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
  xlogx = lambda p: np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
  sample_entropy = -xlogx(q).sum(axis=1).reshape(batch, -1).sum(axis=1)
  mean_q = q.mean(axis=0)
  divergence = math.log(quantizer.num_embeddings) + xlogx(mean_q).sum()
  positions = projected.shape[0] // batch
  signs = np.where(projected > 0, 1.0, -1.0)
  commitment = ((projected - signs) ** 2).reshape(batch, -1).sum(axis=1)
  return (quantizer.entropy_weight * (sample_entropy + positions * divergence)
          + quantizer.commitment_cost * commitment)


class LookupFreeQuantizerTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(1, 4, 9)
  def test_codes_and_quantized_match_numpy(self, code_dim):
    quantizer = lfq.LookupFreeQuantizer(_D, code_dim=code_dim, seed=1)
    self.assertEqual(quantizer.num_embeddings, 2**code_dim)
    inputs = _inputs((5, 4, 4, _D))
    out = quantizer(inputs)
    codes, corners = family.numpy_lfq(quantizer, inputs.reshape(-1, _D))
    self.assertAllEqual(tf.reshape(out.codes, [-1]), codes)
    self.assertAllClose(tf.reshape(out.quantized, [-1, _D]),
                        family.numpy_linear(quantizer.project_out, corners),
                        rtol=1e-5, atol=1e-5)
    self.assertAllInRange(out.codes, 0, quantizer.num_embeddings - 1)
    self.assertAllClose(quantizer.lookup(out.codes), out.quantized, rtol=1e-6, atol=1e-6)
    self.assertAllEqual(out.code_counts,
                        np.bincount(codes, minlength=quantizer.num_embeddings))

  def test_bits_channel_0_least_significant(self):
    quantizer = lfq.LookupFreeQuantizer(3, code_dim=3)
    quantizer.project_in.kernel.assign(tf.eye(3))
    signs = np.array([[-1, -1, -1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, 1],
                      [0, 0, 1]], np.float32)  # 0 counts as -1.
    self.assertAllEqual(quantizer(signs).codes, [0, 1, 2, 4, 7, 4])
    self.assertAllClose(quantizer.codebooks[0],
                        family.numpy_linear(quantizer.project_out, _corners(3)))

  @parameterized.parameters((1.0, 0.1, 0.25), (0.01, 0.1, 0.25), (0.3, 1.0, 0.0))
  def test_loss_matches_the_entropy_penalty_over_all_codes(self, temperature,
                                                           entropy_weight,
                                                           commitment_cost):
    quantizer = lfq.LookupFreeQuantizer(
        _D, code_dim=5, entropy_weight=entropy_weight, commitment_cost=commitment_cost,
        entropy_temperature=temperature, seed=2)
    inputs = _inputs((4, 3, 3, _D), seed=3, scale=0.3)
    for training in (False, True):
      loss = quantizer(inputs, training=training).commitment_loss
      self.assertAllClose(loss, _numpy_loss(quantizer, inputs), rtol=1e-4, atol=1e-4)

  def test_penalty_is_zero_for_confident_uniform_codes_and_log_k_for_one_code(self):
    quantizer = lfq.LookupFreeQuantizer(3, code_dim=3, entropy_weight=1.0,
                                        commitment_cost=0.0)
    quantizer.project_in.kernel.assign(tf.eye(3))
    # Every corner once, far from the sign boundaries: each q_i is one-hot.
    corners = _corners(3).astype(np.float32)
    self.assertAllClose(quantizer(5.0 * corners[None]).commitment_loss, [0.0], atol=1e-6)
    # Eight times the same corner: KL(mean q || uniform) = log 8 at each position.
    same = np.repeat(5.0 * corners[:1], 8, axis=0)[None]
    self.assertAllClose(quantizer(same).commitment_loss, [8 * math.log(8.0)], rtol=1e-6)

  def test_straight_through_gradient_is_that_of_the_projections(self):
    quantizer = lfq.LookupFreeQuantizer(_D, code_dim=4, seed=4)
    inputs = tf.constant(_inputs((7, _D), seed=5))
    upstream = _inputs((7, _D), seed=6)
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      total = tf.reduce_sum(quantizer(inputs, training=True).quantized * upstream)
    w_in = quantizer.project_in.kernel.numpy()
    w_out = quantizer.project_out.kernel.numpy()
    self.assertAllClose(tape.gradient(total, inputs), upstream @ (w_in @ w_out).T,
                        rtol=1e-5, atol=1e-5)

  def test_entropy_gradient_finite_when_codes_underflow(self):
    # At temperature 0.01, q_i(k) of a code far from every input is exp(-hundreds):
    # 0 in float32, whose log would make a NaN gradient.
    quantizer = lfq.LookupFreeQuantizer(_D, code_dim=9, seed=7)
    inputs = tf.constant(_inputs((2, 2, 2, _D), seed=8, scale=3.0))
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      loss = tf.reduce_sum(quantizer(inputs, training=True).commitment_loss)
    gradients = tape.gradient(loss, [inputs] + list(quantizer.project_in.variables))
    for gradient in gradients:
      self.assertAllEqual(tf.math.is_finite(gradient), tf.ones_like(gradient, tf.bool))
    self.assertTrue(np.any(gradients[0].numpy()))

  @parameterized.parameters(tf.float16, tf.bfloat16)
  def test_entropy_term_finite_in_half_precision(self, dtype):
    # Projections of about +-60: logits 4 h / 0.01 of 24000, beyond where exp
    # overflows float16 (11) and bfloat16 (88).
    quantizer = lfq.LookupFreeQuantizer(_D, code_dim=9, commitment_cost=0.0, seed=9)
    inputs = tf.constant(_inputs((4, 2, 2, _D), seed=10, scale=40.0), dtype)
    out = quantizer(inputs, training=True)
    self.assertEqual(out.commitment_loss.dtype, dtype)
    self.assertAllEqual(tf.math.is_finite(out.commitment_loss), [True] * 4)
    want = quantizer(tf.cast(inputs, tf.float32), training=True).commitment_loss
    self.assertAllClose(tf.cast(out.commitment_loss, tf.float32), want, rtol=1e-2,
                        atol=1e-2)

  def test_bfloat16_inputs_give_the_codes_of_the_same_float32_values(self):
    quantizer = lfq.LookupFreeQuantizer(_D, code_dim=9, seed=11)
    bfloat16 = tf.constant(_inputs((8, 8, 8, _D), seed=12), tf.bfloat16)
    float32 = tf.cast(bfloat16, tf.float32)
    out_bf16, out_f32 = quantizer(bfloat16), quantizer(float32)
    self.assertAllEqual(out_bf16.codes, out_f32.codes)
    self.assertAllEqual(out_bf16.quantized, tf.cast(out_f32.quantized, tf.bfloat16))

  @parameterized.parameters(
      (dict(code_dim=0), "code_dim must"), (dict(code_dim=17), "code_dim must"),
      (dict(code_dim=2.5), "code_dim must"), (dict(entropy_weight=-1.0), "entropy_weight"),
      (dict(commitment_cost=-0.1), "commitment_cost"),
      (dict(entropy_temperature=0.0), "entropy_temperature"),
      (dict(embedding_dim=0), "embedding_dim must"))
  def test_bad_arguments_raise(self, overrides, message):
    arguments = dict(embedding_dim=_D) | overrides
    with self.assertRaisesRegex(ValueError, message):
      lfq.LookupFreeQuantizer(**arguments)


if __name__ == "__main__":
  tf.test.main()
