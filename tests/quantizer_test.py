"""Tests of the EMA vector quantizer against NumPy references."""

from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfp_vqvae.quantizers import base as quantizer_lib
from tfp_vqvae.quantizers import ema as ema_lib


def _numpy_nearest(vectors, codebook):
  distances = ((vectors[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
  return distances.argmin(1)


def _set_state(quantizer, codebook, ema_count):
  quantizer.codebook.assign(codebook)
  quantizer.ema_count.assign(ema_count)
  quantizer.ema_sum.assign(codebook * ema_count[:, None])
  quantizer.initialized.assign(True)


def _maybe_function(fn, use_function):
  """`fn` itself, as a tf.function, or as an XLA-compiled one for "xla"."""
  if use_function == "xla":
    return tf.function(fn, jit_compile=True)
  return tf.function(fn) if use_function else fn


class NearestCodesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((50, 7, 3), (300, 64, 16), (1000, 512, 8))
  def test_matches_brute_force(self, n, k, d):
    rng = np.random.default_rng(n)
    vectors = rng.normal(size=(n, d)).astype(np.float32)
    codebook = rng.normal(size=(k, d)).astype(np.float32)
    codes = quantizer_lib.nearest_codes(vectors, codebook).numpy()
    expected = _numpy_nearest(vectors, codebook)
    # Ties within float32 rounding may pick either code: compare distances.
    picked = ((vectors - codebook[codes]) ** 2).sum(-1)
    best = ((vectors - codebook[expected]) ** 2).sum(-1)
    self.assertAllClose(picked, best, rtol=1e-5, atol=1e-5)
    self.assertGreater(np.mean(codes == expected), 0.99)
    self.assertEqual(codes.dtype, np.int32)

  def test_perplexity_and_usage(self):
    counts = np.array([3.0, 0.0, 1.0, 4.0], np.float32)
    probs = counts / counts.sum()
    nonzero = probs[probs > 0]
    perplexity, usage = quantizer_lib.perplexity_and_usage(counts)
    self.assertAllClose(perplexity, np.exp(-(nonzero * np.log(nonzero)).sum()))
    self.assertAllClose(usage, 0.75)

  @parameterized.parameters(False, True, "xla")
  def test_blocks_of_rows_match_brute_force(self, use_function):
    # 16 codes and 64-element score blocks: 4 rows per block, and N = 103 leaves a
    # partial last block. The tf.function sees an unknown N.
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(103, 3)).astype(np.float32)
    codebook = rng.normal(size=(16, 3)).astype(np.float32)
    nearest = quantizer_lib.nearest_codes
    if use_function is True:
      nearest = tf.function(nearest, input_signature=[tf.TensorSpec([None, 3]),
                                                      tf.TensorSpec([16, 3])])
    else:
      nearest = _maybe_function(nearest, use_function)
    with mock.patch.object(quantizer_lib, "_BLOCK_ELEMENTS", 64):
      codes = nearest(vectors, codebook)
    self.assertAllEqual(codes, _numpy_nearest(vectors, codebook))


class VectorQuantizerEMATest(tf.test.TestCase, parameterized.TestCase):

  def test_commitment_loss_and_counts_match_numpy(self):
    # Shapes, dtypes, codes, tf.function and XLA: quantizer_contract_test.py.
    rng = np.random.default_rng(0)
    codebook = rng.normal(size=(10, 4)).astype(np.float32)
    inputs = rng.normal(size=(3, 5, 5, 4)).astype(np.float32)
    quantizer = ema_lib.VectorQuantizerEMA(10, 4, commitment_cost=0.3)
    _set_state(quantizer, codebook, np.ones(10, np.float32))
    out = quantizer(inputs, training=False)
    flat = inputs.reshape(-1, 4)
    codes = _numpy_nearest(flat, codebook)
    per_example = ((flat - codebook[codes]) ** 2).reshape(3, -1).sum(1)
    self.assertAllClose(out.commitment_loss, 0.3 * per_example, rtol=1e-5)
    counts = np.bincount(codes, minlength=10)
    self.assertAllEqual(out.code_counts, counts)
    self.assertAllClose(out.usage, np.mean(counts > 0))

  def test_segment_sums_equal_one_hot_reference(self):
    rng = np.random.default_rng(1)
    k, d = 16, 3
    codebook = rng.normal(size=(k, d)).astype(np.float32)
    inputs = rng.normal(size=(200, d)).astype(np.float32)
    quantizer = ema_lib.VectorQuantizerEMA(k, d, decay=0.0, epsilon=1e-12,
                                                 dead_code_threshold=0.0)
    _set_state(quantizer, codebook, np.ones(k, np.float32))
    out = quantizer(inputs, training=True, seed=[0, 0])
    one_hot = np.eye(k, dtype=np.float32)[_numpy_nearest(inputs, codebook)]
    # decay=0: the EMA state becomes exactly this batch's counts and sums.
    self.assertAllClose(out.code_counts, one_hot.sum(0))
    self.assertAllClose(quantizer.ema_count, one_hot.sum(0))
    self.assertAllClose(quantizer.ema_sum, one_hot.T @ inputs, rtol=1e-5, atol=1e-5)

  def test_grouped_segment_sums_add_the_slices_sums_in_order(self):
    rng = np.random.default_rng(2)
    k, d, groups = 5, 3, 3
    vectors = tf.constant(rng.normal(size=(12, d)).astype(np.float32))
    codes = tf.constant(rng.integers(0, k, size=12).astype(np.int32))
    got = quantizer_lib.grouped_segment_sum(vectors, codes, k, groups)
    # Bit for bit what replicas holding one slice each compute, then add in order.
    per_slice = [tf.math.unsorted_segment_sum(v, c, k)
                 for v, c in zip(tf.split(vectors, groups), tf.split(codes, groups))]
    self.assertAllEqual(got, (per_slice[0] + per_slice[1]) + per_slice[2])
    one_hot = np.eye(k, dtype=np.float32)[codes.numpy()]
    self.assertAllClose(got, one_hot.T @ vectors.numpy(), rtol=1e-6, atol=1e-6)
    self.assertAllEqual(quantizer_lib.grouped_segment_sum(vectors, codes, k, 1),
                        tf.math.unsorted_segment_sum(vectors, codes, k))

  def test_commitment_gradient(self):
    rng = np.random.default_rng(3)
    codebook = rng.normal(size=(5, 2)).astype(np.float32)
    quantizer = ema_lib.VectorQuantizerEMA(5, 2, commitment_cost=0.25)
    _set_state(quantizer, codebook, np.ones(5))
    inputs = tf.constant(rng.normal(size=(4, 3, 2)).astype(np.float32))
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      loss = tf.reduce_sum(quantizer(inputs).commitment_loss)
    nearest = codebook[_numpy_nearest(inputs.numpy().reshape(-1, 2), codebook)]
    expected = 0.25 * 2 * (inputs.numpy() - nearest.reshape(4, 3, 2))
    self.assertAllClose(tape.gradient(loss, inputs), expected, rtol=1e-5)

  @parameterized.named_parameters(("warmup", True), ("no_warmup", False))
  def test_ema_and_laplace_smoothing_match_numpy_over_steps(self, warmup):
    rng = np.random.default_rng(4)
    k, d, decay, eps = 6, 3, 0.9, 1e-3
    codebook = rng.normal(size=(k, d)).astype(np.float32)
    count = rng.uniform(0.5, 2.0, size=k).astype(np.float32)
    ema_sum = codebook * count[:, None]
    quantizer = ema_lib.VectorQuantizerEMA(k, d, decay=decay, epsilon=eps,
                                                 dead_code_threshold=0.0,
                                                 decay_warmup=warmup)
    _set_state(quantizer, codebook, count)
    # Updates 77..81: the warmed-up decay (1 + t) / (10 + t) reaches 0.9 at t = 80.
    first_update = 77
    quantizer.num_updates.assign(first_update)
    for step in range(5):
      inputs = rng.normal(size=(40, d)).astype(np.float32)
      out = quantizer(inputs, training=True, seed=tf.constant([0, step]))
      codes = _numpy_nearest(inputs, codebook)
      self.assertAllEqual(out.codes, codes)
      counts = np.bincount(codes, minlength=k).astype(np.float32)
      sums = np.zeros((k, d), np.float32)
      np.add.at(sums, codes, inputs)
      t = first_update + step
      decay_t = min(decay, (1 + t) / (10 + t)) if warmup else decay
      count = decay_t * count + (1 - decay_t) * counts
      ema_sum = decay_t * ema_sum + (1 - decay_t) * sums
      total = count.sum()
      smoothed = (count + eps) / (total + k * eps) * total
      codebook = ema_sum / smoothed[:, None]
      self.assertAllClose(quantizer.ema_count, count, rtol=1e-5)
      self.assertAllClose(quantizer.ema_sum, ema_sum, rtol=1e-5, atol=1e-6)
      self.assertAllClose(quantizer.codebook, codebook, rtol=1e-5, atol=1e-6)
    self.assertEqual(quantizer.num_updates.numpy(), first_update + 5)

  def test_first_training_batch_initialises_codebook(self):
    rng = np.random.default_rng(5)
    k, d, decay = 8, 2, 0.5
    inputs = rng.normal(size=(30, d)).astype(np.float32)
    quantizer = ema_lib.VectorQuantizerEMA(k, d, decay=decay, epsilon=1e-12,
                                                 dead_code_threshold=0.0)
    self.assertFalse(quantizer.initialized.numpy())
    seed = tf.constant([3, 4])
    out = quantizer(inputs, training=True, seed=seed)
    # The documented rule: K rows of the (global) batch drawn with the seed.
    rows = tf.random.stateless_uniform([k], seed=seed, maxval=30, dtype=tf.int32)
    candidates = inputs[rows.numpy()]
    codes = _numpy_nearest(inputs, candidates)
    self.assertAllClose(out.quantized, candidates[codes])
    counts = np.bincount(codes, minlength=k).astype(np.float32)
    sums = np.zeros((k, d), np.float32)
    np.add.at(sums, codes, inputs)
    decay = min(decay, 1 / 10)  # The first update's warmed-up decay.
    count = decay * 1.0 + (1 - decay) * counts
    self.assertAllClose(quantizer.ema_count, count)
    self.assertAllClose(quantizer.codebook,
                        (decay * candidates + (1 - decay) * sums) / count[:, None],
                        rtol=1e-5, atol=1e-5)
    self.assertTrue(quantizer.initialized.numpy())
    # Evaluation never initialises or updates.
    fresh = ema_lib.VectorQuantizerEMA(k, d)
    fresh(inputs, training=False)
    self.assertFalse(fresh.initialized.numpy())
    self.assertAllEqual(fresh.ema_count, np.zeros(k))

  def test_dead_codes_are_reseeded_from_batch(self):
    k, d = 4, 2
    codebook = np.array([[0, 0], [1, 1], [-1, 1], [100, 100]], np.float32)
    ema_count = np.array([5.0, 5.0, 5.0, 0.011], np.float32)
    quantizer = ema_lib.VectorQuantizerEMA(k, d, decay=0.9,
                                                 dead_code_threshold=0.01,
                                                 decay_warmup=False)
    _set_state(quantizer, codebook, ema_count)
    inputs = np.random.default_rng(6).normal(scale=0.1, size=(50, d)).astype(np.float32)
    seed = tf.constant([7, 8])
    out = quantizer(inputs, training=True, seed=seed)
    self.assertNotIn(3, out.codes.numpy())  # code 3 is far away: unused, now dead.
    candidates = inputs[tf.random.stateless_uniform([k], seed=seed, maxval=50,
                                                    dtype=tf.int32).numpy()]
    self.assertAllClose(quantizer.ema_count[3], 1.0)
    self.assertAllClose(quantizer.ema_sum[3], candidates[3])
    # Live codes keep their EMA statistics.
    self.assertAllGreater(quantizer.ema_count[:3], 4.0)
    self.assertLess(np.abs(quantizer.codebook.numpy()[3]).max(), 1.0)

  @parameterized.named_parameters(
      ("zero_codes", dict(num_embeddings=0, embedding_dim=2), "num_embeddings"),
      ("zero_dim", dict(num_embeddings=2, embedding_dim=0), "embedding_dim"),
      ("decay_one", dict(num_embeddings=2, embedding_dim=2, decay=1.0), "decay"),
      ("negative_beta", dict(num_embeddings=2, embedding_dim=2, commitment_cost=-1),
       "commitment_cost"),
      ("zero_epsilon", dict(num_embeddings=2, embedding_dim=2, epsilon=0.0), "epsilon"),
      ("threshold", dict(num_embeddings=2, embedding_dim=2, dead_code_threshold=1.0),
       "dead_code_threshold"))
  def test_bad_arguments_raise(self, kwargs, name):
    with self.assertRaisesRegex(ValueError, name):
      ema_lib.VectorQuantizerEMA(**kwargs)

  def test_batch_not_in_reduction_groups_raises(self):
    grouped = ema_lib.VectorQuantizerEMA(4, 3, reduction_group_size=4)
    with self.assertRaisesRegex(ValueError, "batch of 6 cannot be cut into groups"):
      grouped(tf.zeros([6, 3]), training=True)

  def test_training_calls_draw_their_own_seeds(self):
    # No seed argument: call t uses training_seed(seed, t), so a quantizer trained
    # without seeds equals one given those seeds explicitly.
    inputs = tf.random.stateless_normal([16, 3], [0, 1])
    implicit = ema_lib.VectorQuantizerEMA(4, 3, seed=7)
    explicit = ema_lib.VectorQuantizerEMA(4, 3, seed=7)
    for t in range(3):
      implicit(inputs * (t + 1), training=True)
      explicit(inputs * (t + 1), training=True,
               seed=quantizer_lib.training_seed(7, tf.constant(t, tf.int64)))
    self.assertEqual(int(implicit.num_updates.numpy()), 3)
    self.assertAllEqual(implicit.codebook, explicit.codebook)
    other = ema_lib.VectorQuantizerEMA(4, 3, seed=8)
    other(inputs, training=True)
    first = ema_lib.VectorQuantizerEMA(4, 3, seed=7)
    first(inputs, training=True)
    self.assertNotAllClose(first.codebook, other.codebook)


if __name__ == "__main__":
  tf.test.main()
