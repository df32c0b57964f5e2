"""The Transformer and MaskGIT priors as --prior choices: trained (and resumed) by
train_prior, loaded from their record, sampled, exported."""

import dataclasses
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae.configs import priors as prior_configs
from tfp_vqvae.priors import maskgit
from tfp_vqvae.priors import pixelcnn as prior_lib
from tfp_vqvae.priors import sampling as sample_lib
from tfp_vqvae.priors import transformer
from tfp_vqvae.serving import export as export_lib
from tfp_vqvae.training import checkpoints
from tfp_vqvae.training import prior_trainer as train_prior
import test_util

_TINY = dict(model_dim=16, num_blocks=1, num_heads=2, dropout_rate=0.1, batch_size=16,
             learning_rate=3e-3, num_steps=4, log_every=2, eval_every=2,
             checkpoint_every=2, eval_batch_size=64)


def _weights(model_dir):
  """{name: value} of the prior's and optimizer's variables in model_dir's latest
  checkpoint (not the timers, nor the best eval NLL, checkpointed before evaluation)."""
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
          if name.startswith(("prior/", "optimizer/"))}


class RecordTest(tf.test.TestCase):

  def test_every_registered_prior_has_a_recorded_config_class(self):
    self.assertEqual(tuple(prior_lib.CONFIG_CLASSES), prior_configs.PRIORS.names())

  def test_positions_reach_both_levels_and_records_without_them_read_as_learned(self):
    options = prior_configs.TrainPriorConfig.from_fields(
        prior="transformer", positions="learned_and_rotary", model_dim=16,
        num_heads=2).prior
    config = options.architecture(8, {"top": (2, 2), "bottom": (4, 4)}, 0, 0)
    self.assertEqual((config.top.positions, config.bottom.positions),
                     ("learned_and_rotary", "learned_and_rotary"))
    prior_dir = self.get_temp_dir()
    prior_lib.write_config(prior_dir, config, {})
    path = os.path.join(prior_dir, prior_lib.PRIOR_CONFIG_FILE)
    with open(path) as f:
      record = json.load(f)
    for level in ("top", "bottom"):
      del record[level]["positions"]
    with open(path, "w") as f:
      json.dump(record, f)
    old, _ = prior_lib.read_config(prior_dir)
    self.assertEqual(old.bottom, dataclasses.replace(config.bottom, positions="learned"))
    with self.assertRaisesRegex(ValueError, "positions='rotary': needs heads of a width "
                                "model_dim / num_heads = 24 / 4 that is a multiple of 4"):
      prior_configs.TrainPriorConfig.from_fields(prior="maskgit", positions="rotary",
                                                 model_dim=24, num_heads=4)


class TokenPriorTrainingTest(tf.test.TestCase):
  """A tiny VQ-VAE; each prior trained 2 + 2 steps (resumed) and 4 at once."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.temp_dir = tempfile.mkdtemp(prefix="token_prior_test_")
    cls.vqvae_dir = os.path.join(cls.temp_dir, "vqvae")
    test_util.train_tiny_model(cls.vqvae_dir)
    cls.metrics, cls.rerun_metrics, cls.prior_dirs = {}, {}, {}
    for name, extra in (("transformer", {}), ("maskgit", dict(any_order_eval=True))):
      config = prior_configs.TrainPriorConfig.from_fields(prior=name, **_TINY, **extra)
      resumed, straight = (os.path.join(cls.temp_dir, f"{name}_{run}")
                           for run in ("resumed", "straight"))
      with tfds.testing.mock_data(num_examples=32):
        train_prior.train_prior(config.override(num_steps=2), cls.vqvae_dir, resumed)
        cls.metrics[name] = train_prior.train_prior(config, cls.vqvae_dir, resumed)
        train_prior.train_prior(config, cls.vqvae_dir, straight)
        # Run again when done: nothing to train, the same best and report.
        cls.rerun_metrics[name] = train_prior.train_prior(config, cls.vqvae_dir, resumed)
      cls.prior_dirs[name] = (resumed, straight)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.temp_dir)
    super().tearDownClass()

  def test_a_resumed_run_ends_bit_identical_to_an_uninterrupted_one(self):
    for name, (resumed, straight) in self.prior_dirs.items():
      got, want = _weights(resumed), _weights(straight)
      self.assertCountEqual(got, want, name)
      for key, value in want.items():
        self.assertAllEqual(got[key], value, f"{name}: {key}")

  def test_a_finished_run_run_again_reports_the_same_best(self):
    for name, metrics in self.metrics.items():
      # The last step's checkpoint predates its evaluation, which found the best.
      self.assertEqual(metrics["best_step"], 4, name)
      again = dict(self.rerun_metrics[name], train_seconds=metrics["train_seconds"])
      self.assertEqual(again, metrics, name)

  def test_loaded_from_the_record_by_kind(self):
    vqvae, _, _ = checkpoints.load_vqvae(self.vqvae_dir)
    for name, cls in (("transformer", transformer.CausalTransformerPrior),
                      ("maskgit", maskgit.MaskGITPrior)):
      prior, _ = prior_lib.load_prior(self.prior_dirs[name][0], vqvae)
      self.assertIsInstance(prior, cls)
      self.assertEqual(prior.code_shape, (7, 7))
      self.assertEqual(prior.config.num_layers, 1)
      codes, probs = sample_lib.sample_images(vqvae, prior, 3, seed=2, batch_size=2)
      self.assertAllInRange(codes, 0, vqvae.num_embeddings - 1)
      self.assertEqual(probs.shape, (3, 28, 28, 1))
      # The same seed, the same samples, whatever the batch size.
      again, _ = sample_lib.sample_images(vqvae, prior, 3, seed=2, batch_size=3)
      self.assertAllEqual(codes, again)

  def test_transformer_reports_a_bound_and_maskgit_only_its_masked_nll(self):
    exact = self.metrics["transformer"]
    self.assertEqual(exact["prior"], "transformer")
    self.assertAllClose(exact["neg_elbo_learned_prior_nats"],
                        exact["recon_nll_nats"] + exact["prior_nll_nats_per_image"])
    # Four steps from random weights: near the uniform prior's 49 log K.
    self.assertLess(exact["prior_nll_nats_per_image"], 1.5 * 49 * np.log(16))
    masked = self.metrics["maskgit"]
    self.assertEqual(masked["prior"], "maskgit")
    self.assertGreater(masked["masked_nll_nats_per_image"], 0)
    # --any_order_eval: its any-order NLL, near 49 log K too, and the bound with it.
    self.assertBetween(masked["any_order_nll_nats_per_image"], 0.5 * 49 * np.log(16),
                       1.5 * 49 * np.log(16))
    self.assertAllClose(masked["neg_elbo_any_order_prior_nats"],
                        masked["recon_nll_nats"] + masked["any_order_nll_nats_per_image"])
    for key in ("prior_nll_nats_per_image", "prior_bits_per_latent",
                "neg_elbo_learned_prior_nats"):
      self.assertIn(key, exact)
      self.assertNotIn(key, masked)
    with open(os.path.join(self.prior_dirs["maskgit"][0],
                           train_prior.METRICS_FILE)) as f:
      self.assertEqual(json.load(f), masked)

  def test_export_samples_from_both_and_scores_with_the_transformer_only(self):
    vqvae, _, _ = checkpoints.load_vqvae(self.vqvae_dir)
    seeds = np.array([5, 6], np.int64)
    for name, scores in (("transformer", True), ("maskgit", False)):
      prior_dir = self.prior_dirs[name][0]
      export_dir = export_lib.export_saved_model(
          self.vqvae_dir, os.path.join(self.temp_dir, f"export_{name}"),
          warmup_batch_sizes=(1,), prior_dir=prior_dir)
      loaded = tf.saved_model.load(export_dir)
      self.assertIn("sample", loaded.signatures)
      self.assertEqual("log_prob_codes" in loaded.signatures, scores, name)
      prior, _ = prior_lib.load_prior(prior_dir, vqvae)
      knobs = dict(temperature=tf.constant([1.0, 0.5]), top_k=tf.constant([3, 0]),
                   top_p=tf.constant([1.0, 0.8]))
      got = loaded.signatures["sample"](seeds=tf.constant(seeds), **knobs)
      # Each row with its own knobs, as the prior draws it alone.
      for row, (temperature, top_k, top_p) in enumerate(((1.0, 3, 1.0), (0.5, 0, 0.8))):
        self.assertAllEqual(got["codes"][row], prior.sample(
            seeds[row:row + 1], temperature, top_k=top_k, top_p=top_p)[0], name)
      self.assertNotAllEqual(got["codes"], prior.sample(seeds))
      for knob, values, message in (("temperature", [1.0, 0.0], "finite and > 0"),
                                    ("top_k", [0, 17], r"an integer in \[0, K=16\]"),
                                    ("top_p", [1.0, 0.0], r"in \(0, 1\]")):
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                    f"sample: {knob} must have the batch size of seeds "
                                    f"and be {message}"):
          loaded.signatures["sample"](seeds=tf.constant(seeds), **dict(
              knobs, **{knob: tf.constant(values, knobs[knob].dtype)}))
      if scores:
        self.assertAllClose(
            loaded.signatures["log_prob_codes"](codes=got["codes"])["log_prob"],
            prior.log_prob(got["codes"]), atol=1e-4)


if __name__ == "__main__":
  tf.test.main()
