"""Tests of the causal Transformer prior: exact likelihood, causality, cached sampling."""

import itertools

import numpy as np
import tensorflow as tf

from tfp_vqvae.nets import transformer as transformer_lib
from tfp_vqvae.priors import categorical_sampling
from tfp_vqvae.priors import hierarchical
from tfp_vqvae.priors import tokens as tokens_lib
from tfp_vqvae.priors import transformer as transformer_prior


def _prior(num_embeddings=3, latent_shape=(2, 2), **kwargs):
  """A tiny prior whose biases and norms are random too (they start tied)."""
  sizes = dict(model_dim=16, num_layers=2, num_heads=2)
  sizes.update(kwargs)
  prior = transformer_prior.CausalTransformerPrior(
      transformer_prior.TransformerPriorConfig(num_embeddings, latent_shape, **sizes))
  rng = np.random.default_rng(len(prior.variables))
  for variable in prior.variables:
    if any(name in variable.name for name in ("bias", "offset")):
      variable.assign(rng.normal(size=variable.shape))
  return prior


def _every_code_map(prior):
  """int32 [K ** codes, *code_shape]: every possible codes of one example."""
  count = int(np.prod(prior.code_shape))
  maps = itertools.product(range(prior.num_embeddings), repeat=count)
  return np.array(list(maps), np.int32).reshape(-1, *prior.code_shape)


class TransformerPriorTest(tf.test.TestCase):

  def _assert_normalised(self, prior, labels=None, condition=None):
    codes = _every_code_map(prior)
    batch = len(codes)
    labels = None if labels is None else np.full([batch], labels, np.int32)
    condition = None if condition is None else np.repeat(condition[None], batch, 0)
    log_probs = prior.log_prob(codes, labels, condition=condition).numpy()
    self.assertAllLessEqual(log_probs, 0.0)
    self.assertAllClose(np.exp(log_probs.astype(np.float64)).sum(), 1.0, atol=1e-5)
    levels = prior.level_log_probs(codes, labels, condition=condition)
    self.assertCountEqual(levels, prior.level_sizes)
    self.assertAllClose(sum(levels.values()), log_probs, atol=1e-5)

  def test_log_prob_sums_to_one_over_every_code_map(self):
    # 2x2 codes out of K=3: the 81 maps' probabilities sum to 1, whatever the
    # positions.
    for positions in tokens_lib.POSITIONS:
      self._assert_normalised(_prior(positions=positions))

  def test_residual_labels_and_condition_normalise(self):
    # A 1x2 grid of 2 stages (81 maps), with classes.
    stages = _prior(latent_shape=(1, 2), num_stages=2, num_classes=2)
    self.assertEqual(stages.code_shape, (1, 2, 2))
    self.assertEqual(stages.level_sizes, {"stage_0": 2, "stage_1": 2})
    for label in range(2):
      self._assert_normalised(stages, labels=label)
    # A bottom grid given a 1x2 top grid.
    bottom = _prior(condition_shape=(1, 2))
    for top in ([0, 2], [1, 1]):
      self._assert_normalised(bottom, condition=np.array([top], np.int32))
    # The class and the condition change the distribution.
    codes = _every_code_map(stages)[:5]
    self.assertNotAllClose(stages.log_prob(codes, np.zeros(5, np.int32)),
                           stages.log_prob(codes, np.ones(5, np.int32)))
    grid = _every_code_map(bottom)[:5]
    self.assertNotAllClose(bottom.log_prob(grid, condition=np.zeros([5, 1, 2])),
                           bottom.log_prob(grid, condition=np.ones([5, 1, 2])))

  def _assert_causal(self, prior, labels=None, condition=None):
    """Code q (raster order, then stages) moves exactly the logits of codes after q."""
    count = int(np.prod(prior.code_shape))
    base = np.random.default_rng(0).integers(0, prior.num_embeddings, prior.code_shape)
    grids = np.repeat(base[None], count + 1, axis=0)
    for q in range(count):
      grids[1 + q].flat[q] = (base.flat[q] + 1) % prior.num_embeddings
    labels = None if labels is None else np.full([1], labels, np.int32)
    # One grid per call, so every grid takes the same kernels (see prior_test).
    logits = np.concatenate([
        prior.logits(grid[None], labels, condition=condition).numpy()
        for grid in grids]).reshape(count + 1, count, -1)
    for q in range(count):
      changed = np.abs(logits[1 + q] - logits[0]).max(axis=-1) > 0
      self.assertFalse(changed[:q + 1].any(), f"code {q} leaks into codes <= {q}")
      self.assertTrue(changed[q + 1:].all(), f"a later code ignores code {q}")

  def test_causal_and_every_later_code_sees_every_earlier_one(self):
    self._assert_causal(_prior(5, (3, 4)))
    self._assert_causal(_prior(4, (2, 3), num_stages=3, num_classes=2), labels=1)
    self._assert_causal(_prior(4, (2, 2), condition_shape=(1, 1)),
                        condition=np.array([[[2]]]))
    self._assert_causal(_prior(5, (3, 4), positions="rotary"))

  def test_rotary_positions_score_by_row_and_column_offsets(self):
    cos, sin = transformer_lib.rotary_tables((3, 4), 8)
    rng = np.random.default_rng(0)
    query, key = rng.normal(size=(2, 12, 8)).astype(np.float32)
    turned_query = transformer_lib.rotate(query, cos, sin).numpy()
    turned_key = transformer_lib.rotate(key, cos, sin).numpy()
    # NumPy: pair (i, i + 4) is the complex number x_i + 1j x_{i+4}, turned by
    # exp(1j angle); angle = row f_i (i < 2) or column f_{i-2}, f = 100 ** (-j / 2).
    rows, columns = np.divmod(np.arange(12), 4)
    frequencies = 100.0 ** (-np.arange(2) / 2)
    angles = np.concatenate([np.outer(rows, frequencies), np.outer(columns, frequencies)],
                            axis=1)
    complex_query = (query[:, :4] + 1j * query[:, 4:]) * np.exp(1j * angles)
    self.assertAllClose(turned_query, np.concatenate(
        [complex_query.real, complex_query.imag], axis=1), atol=1e-5)
    # The same vectors at any two positions with the same row and column offsets
    # score the same; other offsets score otherwise.
    def score(p, q):
      return np.dot(transformer_lib.rotate(query[:1], cos[p:p + 1], sin[p:p + 1])[0],
                    transformer_lib.rotate(key[:1], cos[q:q + 1], sin[q:q + 1])[0])
    self.assertAllClose(score(5, 0), score(11, 6), atol=1e-5)    # offset (1, 1)
    self.assertAllClose(score(7, 4), score(3, 0), atol=1e-5)     # offset (0, 3)
    self.assertNotAllClose(score(5, 0), score(4, 0), atol=1e-3)  # (1, 1) vs (1, 0)
    self.assertEqual(turned_key.shape, (12, 8))

  def test_cached_sampling_draws_the_codes_of_uncached_sampling(self):
    seeds = tf.constant([3, 1, 4, 1, 5, 9], tf.int64)
    labels = tf.constant([0, 1, 2, 0, 1, 2])
    condition = tf.constant(np.random.default_rng(2).integers(0, 6, (6, 2, 1)))
    cases = [
        (_prior(6, (3, 3)), {}),
        (_prior(6, (2, 3), num_stages=2, num_classes=3),
         dict(labels=labels, temperature=tf.constant([[0.5], [1.0], [2.0]] * 2),
              top_k=tf.constant([0, 1, 2, 3, 6, 4]))),
        (_prior(6, (4, 2), condition_shape=(2, 1), num_layers=3),
         dict(condition=condition, top_p=tf.constant([1.0, 0.9, 0.5, 0.2, 0.7, 0.99]),
              top_k=4)),
        (_prior(6, (3, 3), positions="rotary"), {}),
        (_prior(6, (4, 2), condition_shape=(2, 1), num_stages=2,
                positions="learned_and_rotary"), dict(condition=condition)),
    ]
    for prior, knobs in cases:
      cached = prior.sample(seeds, **knobs)
      self.assertAllEqual(cached, prior.sample_uncached(seeds, **knobs))
      self.assertAllEqual(cached, prior.sample_xla(seeds, **knobs))
      self.assertEqual(cached.dtype, tf.int32)
      self.assertEqual(cached.shape, (6,) + prior.code_shape)
      self.assertAllInRange(cached, 0, prior.num_embeddings - 1)

  def test_a_sample_depends_on_its_seed_only(self):
    prior = _prior(8, (3, 3), num_stages=2)
    seeds = tf.constant([7, 8, 9], tf.int64)
    batch = prior.sample(seeds)
    for i in range(3):
      self.assertAllEqual(prior.sample(seeds[i:i + 1])[0], batch[i])
    self.assertNotAllEqual(batch[0], batch[1])
    self.assertAllEqual(prior.sample(seeds), batch)

  def test_top_k_one_is_the_argmax_path(self):
    for prior in (_prior(5, (3, 3)), _prior(5, (2, 2), num_stages=3)):
      codes = prior.sample(tf.constant([1, 2], tf.int64), top_k=1)
      self.assertAllEqual(codes[0], codes[1])
      # Each code is the most likely one given the codes before it.
      self.assertAllEqual(codes, tf.argmax(prior.logits(codes), -1, output_type=tf.int32))

  def test_truncation_keeps_the_top_k_and_the_nucleus(self):
    probs = np.array([0.05, 0.5, 0.15, 0.3])
    logits = tf.constant(np.log(np.tile(probs, [4, 1])), tf.float32)
    kept = categorical_sampling.truncate(
        logits, top_k=tf.constant([0, 1, 3, 0]), top_p=tf.constant([1.0, 1.0, 0.7, 0.85]))
    self.assertAllEqual(np.isfinite(kept), [[True, True, True, True],
                                            [False, True, False, False],
                                            [False, True, False, True],
                                            [False, True, True, True]])
    self.assertAllClose(kept[0], logits[0])
    # top_p 1 keeps every code, also when only known at run time and the float32
    # sum of the probabilities reaches 1 before the least likely codes.
    peaked = tf.constant([[40.0, 0.0, -1.0, -2.0]])
    for top_p in (1.0, tf.constant([1.0])):
      self.assertAllEqual(categorical_sampling.truncate(peaked, top_p=top_p), peaked)
    # The temperature divides the logits before the nucleus is taken.
    flat = categorical_sampling.truncate(logits, temperature=100.0, top_p=0.7)
    self.assertAllClose(flat[0, 1:], logits[0, 1:] / 100.0)

  def test_knobs_are_validated_naming_them(self):
    prior = _prior()
    seeds = tf.constant([1], tf.int64)
    for knobs, message in ((dict(temperature=0.0), "temperature must be finite and > 0"),
                           (dict(temperature=float("nan")), "temperature"),
                           (dict(temperature=float("inf")), "temperature"),
                           (dict(top_k=-1), r"top_k must be an integer in \[0, K=3\]"),
                           (dict(top_k=4), "top_k"), (dict(top_k=1.5), "top_k"),
                           (dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
                           (dict(top_p=1.5), "top_p")):
      with self.assertRaisesRegex(ValueError, message):
        prior.sample(seeds, **knobs)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "top_p must be in"):
      prior.sample(seeds, top_p=tf.constant([0.0]))
    conditional = _prior(num_classes=2)
    with self.assertRaisesRegex(ValueError, "pass labels exactly when"):
      conditional.sample(seeds)

  def test_config_errors_name_the_field(self):
    for fields, message in ((dict(num_heads=3), "num_heads=3 must divide model_dim=16"),
                            (dict(num_layers=0), "num_layers must be an integer >= 1"),
                            (dict(dropout_rate=1.0), "dropout_rate must be in"),
                            (dict(condition_shape=(3, 1)), "condition_shape="),
                            (dict(positions="absolute"),
                             "positions must be one of learned, rotary, learned_and_rotary"),
                            (dict(model_dim=12, num_heads=2, positions="rotary"),
                             "positions=rotary needs heads of a width model_dim / "
                             "num_heads = 12 / 2 that is a multiple of 4")):
      with self.assertRaisesRegex(ValueError, message):
        _prior(**fields)

  def test_dropout_needs_a_seed_and_is_deterministic_for_it(self):
    prior = _prior(dropout_rate=0.5)
    codes = _every_code_map(prior)[:4]
    with self.assertRaisesRegex(ValueError, "seed"):
      prior.log_prob(codes, training=True)
    seed = tf.constant([1, 2], tf.int64)
    dropped = prior.log_prob(codes, training=True, seed=seed)
    self.assertAllEqual(dropped, prior.log_prob(codes, training=True, seed=seed))
    self.assertNotAllClose(dropped, prior.log_prob(codes))

  def test_composes_into_a_hierarchical_prior(self):
    top = _prior(4, (1, 2), num_classes=2)
    bottom = transformer_prior.CausalTransformerPrior(
        transformer_prior.TransformerPriorConfig(
            4, (2, 2), model_dim=16, num_layers=1, num_heads=2, num_classes=2,
            condition_shape=(1, 2)), name="bottom_prior")
    prior = hierarchical.HierarchicalPrior(top, bottom)
    labels = tf.constant([0, 1, 1])
    codes = prior.sample(tf.constant([1, 2, 3], tf.int64), 0.8, labels)
    self.assertEqual(codes["top"].shape, (3, 1, 2))
    self.assertEqual(codes["bottom"].shape, (3, 2, 2))
    self.assertAllEqual(prior.log_prob(codes, labels),
                        top.log_prob(codes["top"], labels)
                        + bottom.log_prob(codes["bottom"], labels,
                                          condition=codes["top"]))


if __name__ == "__main__":
  tf.test.main()
