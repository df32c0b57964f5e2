"""Tests of the VQ-VAE-2 prior p(top) p(bottom | top) on tiny grids of random codes."""

import itertools
import types

import numpy as np
import tensorflow as tf

from tfp_vqvae.priors import pixelcnn as prior_lib


def _config(top=(1, 1), bottom=(2, 2), num_embeddings=2, num_classes=0):
  common = dict(num_embeddings=num_embeddings, num_channels=8, num_layers=max(bottom) - 1,
                num_classes=num_classes)
  return prior_lib.HierarchicalPriorConfig(
      top=prior_lib.PriorConfig(latent_shape=top, num_attention_blocks=1, num_heads=2,
                                **common),
      bottom=prior_lib.PriorConfig(latent_shape=bottom, condition_shape=top, seed=1,
                                   **common))


def _prior(**kwargs):
  """A small hierarchical prior whose biases are random too (they start at 0)."""
  prior = prior_lib.build_prior(_config(**kwargs))
  rng = np.random.default_rng(len(prior.variables))
  for variable in prior.variables:
    if "bias" in variable.name:
      variable.assign(rng.normal(size=variable.shape))
  return prior


def _all_codes(num_embeddings, top=(1, 1), bottom=(2, 2)):
  """Every {"top", "bottom"} pair of grids, as a batch."""
  size = np.prod(top) + np.prod(bottom)
  flat = np.array(list(itertools.product(range(num_embeddings), repeat=size)), np.int32)
  return {"top": flat[:, :np.prod(top)].reshape(-1, *top),
          "bottom": flat[:, np.prod(top):].reshape(-1, *bottom)}


class HierarchicalPriorTest(tf.test.TestCase):

  def test_log_prob_is_top_plus_bottom_given_top(self):
    prior = _prior(top=(2, 2), bottom=(4, 4), num_embeddings=5)
    rng = np.random.default_rng(0)
    codes = {"top": rng.integers(0, 5, (3, 2, 2)), "bottom": rng.integers(0, 5, (3, 4, 4))}
    levels = prior.level_log_probs(codes)
    self.assertAllClose(levels["top"], prior.top.log_prob(codes["top"]))
    self.assertAllClose(levels["bottom"],
                        prior.bottom.log_prob(codes["bottom"], condition=codes["top"]))
    self.assertAllClose(prior.log_prob(codes), levels["top"] + levels["bottom"])
    self.assertEqual(prior.level_sizes, {"top": 4, "bottom": 16})
    self.assertEqual(prior.code_shape, {"top": (2, 2), "bottom": (4, 4)})
    # The bottom level depends on the top codes.
    other = dict(codes, top=(codes["top"] + 1) % 5)
    self.assertNotAllClose(prior.level_log_probs(other)["bottom"], levels["bottom"])

  def test_probabilities_of_all_code_pairs_sum_to_one(self):
    prior = _prior(num_embeddings=3, num_classes=2)
    codes = _all_codes(3)
    for label in range(2):
      log_probs = prior.log_prob(codes, np.full([len(codes["top"])], label))
      self.assertAllClose(tf.reduce_logsumexp(log_probs), 0.0, atol=1e-5)

  def test_ancestral_samples_are_seeded_per_example_and_match_the_distribution(self):
    prior = _prior()
    seeds = tf.range(4000, dtype=tf.int64)
    samples = prior.sample(seeds)
    self.assertEqual(samples["top"].shape, (4000, 1, 1))
    self.assertEqual(samples["bottom"].shape, (4000, 2, 2))
    self.assertAllEqual(samples["bottom"], prior.sample(seeds)["bottom"])
    alone = prior.sample(seeds[7:9])
    for level in ("top", "bottom"):
      self.assertEqual(samples[level].dtype, np.int32)
      self.assertAllEqual(samples[level][7:9], alone[level])
    codes = _all_codes(2)
    expected = np.exp(prior.log_prob(codes).numpy())
    observed = [np.mean((samples["top"][:, 0, 0] == top[0, 0])
                        & np.all(samples["bottom"] == bottom, axis=(1, 2)))
                for top, bottom in zip(codes["top"], codes["bottom"])]
    # 4000 draws: each frequency is within ~4 standard errors of its probability.
    self.assertAllClose(observed, expected, atol=4 * np.sqrt(expected.max() / 4000))

  def test_class_conditional_sampling_and_low_temperature(self):
    prior = _prior(top=(2, 2), bottom=(4, 4), num_embeddings=4, num_classes=3)
    seeds = tf.constant([3, 4], tf.int64)
    samples = prior.sample(seeds, 1e-4, labels=[2, 0])
    # Near zero temperature each level is the greedy decode given the one above.
    top = np.zeros([2, 2, 2], np.int32)
    for row, column in itertools.product(range(2), range(2)):
      top[:, row, column] = np.argmax(prior.top.logits(top, [2, 0])[:, row, column], -1)
    self.assertAllEqual(samples["top"], top)
    bottom = np.zeros([2, 4, 4], np.int32)
    for row, column in itertools.product(range(4), range(4)):
      bottom[:, row, column] = np.argmax(
          prior.bottom.logits(bottom, [2, 0], condition=top)[:, row, column], -1)
    self.assertAllEqual(samples["bottom"], bottom)
    # top_k 1 (or a tiny nucleus) is that greedy decode at temperature 1: both
    # levels take the knobs.
    for knobs in (dict(top_k=1), dict(top_p=1e-6)):
      greedy = prior.sample(seeds, 1.0, labels=[2, 0], **knobs)
      self.assertAllEqual(greedy["top"], top)
      self.assertAllEqual(greedy["bottom"], bottom)

  def test_mismatched_levels_are_refused(self):
    config = _config(top=(2, 2), bottom=(4, 4))
    unconditioned = prior_lib.PriorConfig(num_embeddings=2, latent_shape=(4, 4),
                                          num_channels=8, num_layers=3)
    with self.assertRaisesRegex(ValueError, "must be conditioned on the top grid"):
      prior_lib.build_prior(prior_lib.HierarchicalPriorConfig(config.top, unconditioned))
    other_k = prior_lib.PriorConfig(num_embeddings=3, latent_shape=(4, 4), num_channels=8,
                                    num_layers=3, condition_shape=(2, 2))
    with self.assertRaisesRegex(ValueError, "must share K and the classes"):
      prior_lib.build_prior(prior_lib.HierarchicalPriorConfig(config.top, other_k))

  def test_config_round_trip_and_loading_checks_the_vqvae(self):
    prior_dir = self.get_temp_dir()
    config = _config(top=(2, 2), bottom=(4, 4))
    prior_lib.write_config(prior_dir, config, {"codes_key": "k"})
    self.assertEqual(prior_lib.read_config(prior_dir), (config, {"codes_key": "k"}))
    prior = prior_lib.build_prior(config)
    tf.train.Checkpoint(prior=prior).write(f"{prior_dir}/{prior_lib.BEST_DIR}/ckpt-1")
    tf.io.gfile.GFile(f"{prior_dir}/{prior_lib.BEST_DIR}/checkpoint", "w").write(
        'model_checkpoint_path: "ckpt-1"\n')
    vqvae = types.SimpleNamespace(num_embeddings=2,
                                  code_shape={"top": [2, 2], "bottom": [4, 4]})
    loaded, _ = prior_lib.load_prior(prior_dir, vqvae)
    self.assertAllEqual(loaded.bottom.embedding, prior.bottom.embedding)
    vqvae.code_shape = {"top": (2, 2), "bottom": (8, 8)}
    with self.assertRaisesRegex(ValueError, "holds a prior over codes of shape"):
      prior_lib.load_prior(prior_dir, vqvae)


if __name__ == "__main__":
  tf.test.main()
