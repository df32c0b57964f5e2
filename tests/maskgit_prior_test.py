"""Tests of the MaskGIT prior: the cosine schedule, masking, parallel decoding."""

import math

import numpy as np
from scipy import special
import tensorflow as tf

from tfp_vqvae.priors import hierarchical
from tfp_vqvae.priors import maskgit


def _prior(num_embeddings=5, latent_shape=(4, 4), **kwargs):
  """A tiny prior whose biases and norms are random too (they start tied)."""
  sizes = dict(model_dim=16, num_layers=2, num_heads=2)
  sizes.update(kwargs)
  prior = maskgit.MaskGITPrior(
      maskgit.MaskGITPriorConfig(num_embeddings, latent_shape, **sizes))
  rng = np.random.default_rng(len(prior.variables))
  for variable in prior.variables:
    if any(name in variable.name for name in ("bias", "offset")):
      variable.assign(rng.normal(size=variable.shape))
  return prior


class MaskGITPriorTest(tf.test.TestCase):

  def test_cosine_schedule_matches_numpy(self):
    progress = np.linspace(0.0, 1.0, 11)
    self.assertAllClose(maskgit.mask_ratio(progress), np.cos(np.pi / 2 * progress))
    for num_positions, num_steps in ((64, 8), (49, 8), (1024, 12), (16, 1)):
      expected = np.floor(num_positions * np.cos(
          np.pi / 2 * np.arange(1, num_steps + 1) / num_steps)).astype(int)
      expected[-1] = 0
      self.assertAllEqual(maskgit.decoding_schedule(num_positions, num_steps), expected)
    # More steps than positions: one position per step until none is left.
    self.assertEqual(maskgit.decoding_schedule(3, 6), [2, 1, 0, 0, 0, 0])
    with self.assertRaisesRegex(ValueError, "num_steps must be an integer >= 1"):
      maskgit.decoding_schedule(16, 0)

  def test_decoding_fills_every_position_with_codes_in_range(self):
    seeds = tf.constant([4, 5, 6], tf.int64)
    for prior, kwargs in (
        (_prior(), {}),
        (_prior(6, (2, 4), num_stages=3), dict(num_steps=3, top_k=4)),
        (_prior(num_classes=2, condition_shape=(2, 2)),
         dict(labels=tf.constant([0, 1, 1]), top_p=0.9, temperature=0.7,
              condition=tf.constant(np.random.default_rng(1).integers(0, 5, (3, 2, 2))))),
    ):
      codes = prior.sample(seeds, **kwargs)
      self.assertEqual(codes.dtype, tf.int32)
      self.assertEqual(codes.shape, (3,) + prior.code_shape)
      # Positions never drawn would still hold -1.
      self.assertAllInRange(codes, 0, prior.num_embeddings - 1)

  def test_one_greedy_step_draws_every_argmax_at_once(self):
    prior = _prior()
    codes = prior.sample(tf.constant([1], tf.int64), num_steps=1, top_k=1)
    all_masked = tf.ones([1, 4, 4], tf.bool)
    self.assertAllEqual(codes, tf.argmax(prior.logits(codes, all_masked), -1,
                                         output_type=tf.int32))

  def test_deterministic_for_a_seed_and_independent_of_the_batch(self):
    prior = _prior(8)
    seeds = tf.constant([10, 11, 12], tf.int64)
    codes = prior.sample(seeds)
    self.assertAllEqual(prior.sample(seeds), codes)
    self.assertAllEqual(prior.sample(seeds[1:2])[0], codes[1])
    self.assertNotAllEqual(codes[0], codes[2])
    self.assertNotAllEqual(prior.sample(seeds, choice_temperature=0.0), codes)

  def test_bidirectional_and_blind_to_masked_codes(self):
    prior = _prior(5, (3, 3))
    codes = np.random.default_rng(0).integers(0, 5, (1, 3, 3))
    masked = np.zeros([1, 3, 3], bool)
    masked[0, 2, 2] = True
    base = prior.logits(codes, masked).numpy()
    # A visible code reaches every position, earlier ones included.
    changed = codes.copy()
    changed[0, 1, 1] = (codes[0, 1, 1] + 1) % 5
    self.assertTrue((np.abs(prior.logits(changed, masked).numpy() - base).max(-1)
                     > 0).all())
    # The code behind the mask is not read.
    hidden = codes.copy()
    hidden[0, 2, 2] = (codes[0, 2, 2] + 1) % 5
    self.assertAllEqual(prior.logits(hidden, masked), base)

  def test_masked_nll_is_a_seeded_loss_with_gradients(self):
    prior = _prior(5, (4, 4), num_stages=2, dropout_rate=0.1)
    codes = np.random.default_rng(3).integers(0, 5, (6, 4, 4, 2))
    seed = tf.constant([7, 0], tf.int64)
    with tf.GradientTape() as tape:
      loss = prior.masked_nll(codes, seed, training=True)
      total = tf.reduce_sum(loss)
    self.assertEqual(loss.shape, (6,))
    self.assertAllGreater(loss, 0.0)
    self.assertAllEqual(prior.masked_nll(codes, seed, training=True), loss)
    self.assertNotAllClose(prior.masked_nll(codes, tf.constant([8, 0])), loss)
    gradients = tape.gradient(total, prior.trainable_variables)
    self.assertTrue(all(g is not None for g in gradients))
    # At most N positions of S codes, each at most -log of its smallest probability.
    self.assertAllLess(prior.masked_nll(codes, seed), 16 * 2 * 50.0)
    # It is a training loss only: the prior offers no log-likelihood.
    self.assertFalse(hasattr(prior, "log_prob"))

  def test_masking_follows_the_cosine_schedule_in_expectation(self):
    # With a uniform network (zero output kernels) every masked code costs log K,
    # so masked_nll / log K counts the masked codes: E = N * E[cos(pi r / 2)]
    # = N * 2 / pi, rounded up per example.
    prior = _prior(5, (8, 8))
    for _, output in prior.tokens.heads:
      output.kernel.assign(tf.zeros_like(output.kernel))
      output.bias.assign(tf.zeros_like(output.bias))
    counts = prior.masked_nll(np.zeros([2000, 8, 8], np.int32),
                              tf.constant([1, 2])) / math.log(5)
    self.assertAllClose(counts, np.round(counts), atol=1e-3)
    self.assertAllInRange(np.round(counts), 1, 64)
    self.assertNear(float(tf.reduce_mean(counts)), 64 * 2 / math.pi + 0.5, 1.0)

  def test_any_order_nll_reveals_one_position_at_a_time_in_the_seeds_orders(self):
    prior = _prior(5, (2, 3), num_stages=2)
    codes = np.random.default_rng(4).integers(0, 5, (4, 2, 3, 2))
    seed = tf.constant([3, 9], tf.int64)
    got = prior.any_order_nll(codes, seed).numpy()
    # The reference: example b's positions in the order sorting its row of the
    # seed's uniforms, each scored by `logits` with itself and the later ones masked.
    orders = np.argsort(tf.random.stateless_uniform([4, 6], seed).numpy(), axis=-1,
                        kind="stable")
    want = np.zeros(4)
    for b in range(4):
      masked = np.ones(6, bool)
      for position in orders[b]:
        logits = prior.logits(codes[b:b + 1], masked.reshape(1, 2, 3)).numpy()
        row, column = divmod(position, 3)
        log_probs = logits[0, row, column] - special.logsumexp(
            logits[0, row, column], axis=-1, keepdims=True)
        want[b] -= sum(log_probs[stage, codes[b, row, column, stage]]
                       for stage in range(2))
        masked[position] = False
    self.assertAllClose(got, want, rtol=1e-5)
    self.assertNotAllClose(prior.any_order_nll(codes, tf.constant([4, 9])), got)

  def test_any_order_nll_of_one_order_is_a_normalised_distribution(self):
    # A batch of one draws the same order for every code: q_sigma sums to 1.
    prior = _prior(3, (1, 3))
    every_code = np.stack(np.meshgrid(*[range(3)] * 3, indexing="ij"), -1)
    nll = [float(prior.any_order_nll(code.reshape(1, 1, 3), tf.constant([5, 1]))[0])
           for code in every_code.reshape(-1, 3)]
    self.assertNear(float(np.sum(np.exp(-np.array(nll)))), 1.0, 1e-5)

  def test_composes_into_a_hierarchical_prior(self):
    top = _prior(4, (1, 2))
    bottom = _prior(4, (2, 2), condition_shape=(1, 2))
    prior = hierarchical.HierarchicalPrior(top, bottom)
    codes = prior.sample(tf.constant([1, 2, 3], tf.int64))
    seed = tf.constant([6, 2], tf.int64)
    bottom_seed = tf.random.experimental.stateless_fold_in(seed, 1)
    for method in ("masked_nll", "any_order_nll"):
      self.assertAllClose(
          getattr(prior, method)(codes, seed),
          getattr(top, method)(codes["top"], seed)
          + getattr(bottom, method)(codes["bottom"], bottom_seed,
                                    condition=codes["top"]), msg=method)

  def test_arguments_are_validated_naming_them(self):
    prior = _prior()
    seeds = tf.constant([1], tf.int64)
    for kwargs, message in ((dict(num_steps=0), "num_steps"),
                            (dict(choice_temperature=-1.0), "choice_temperature"),
                            (dict(temperature=0.0), "temperature"),
                            (dict(top_k=6), "top_k"), (dict(top_p=0.0), "top_p")):
      with self.assertRaisesRegex(ValueError, message):
        prior.sample(seeds, **kwargs)
    with self.assertRaisesRegex(ValueError, "pass condition codes exactly when"):
      prior.masked_nll(np.zeros([1, 4, 4]), tf.constant([1, 2]),
                       condition=np.zeros([1, 2, 2]))


if __name__ == "__main__":
  tf.test.main()
