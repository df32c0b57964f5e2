"""train_prior and sampling for the code layouts beyond one grid: residual, VQ-VAE-2."""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae.configs import priors as prior_configs
from tfp_vqvae.priors import pixelcnn as prior_lib
from tfp_vqvae.priors import sampling as sample_lib
from tfp_vqvae.training import checkpoints
from tfp_vqvae.training import figures
from tfp_vqvae.training import prior_trainer as train_prior
import test_util

_TINY_PRIOR = prior_configs.TrainPriorConfig.from_fields(
    num_channels=8, num_layers=6, batch_size=8, learning_rate=3e-3, num_steps=3,
    log_every=3, eval_every=3, checkpoint_every=3, eval_batch_size=16)


class ResidualPriorTest(tf.test.TestCase):
  """A tiny VQ-VAE with 2 residual stages -> its prior -> samples."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.temp_dir = tempfile.mkdtemp(prefix="residual_prior_test_")
    cls.vqvae_dir = os.path.join(cls.temp_dir, "vqvae")
    test_util.train_tiny_model(cls.vqvae_dir, num_quantizers=2)
    cls.prior_dir = os.path.join(cls.temp_dir, "prior")
    # The mock images the VQ-VAE was evaluated on (train_tiny_model).
    with tfds.testing.mock_data(num_examples=32):
      cls.metrics = train_prior.train_prior(_TINY_PRIOR, cls.vqvae_dir, cls.prior_dir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.temp_dir)
    super().tearDownClass()

  def test_metrics_report_each_stage_and_the_bounds(self):
    metrics = self.metrics
    with open(os.path.join(self.prior_dir, train_prior.METRICS_FILE)) as f:
      self.assertEqual(json.load(f), metrics)
    self.assertEqual(metrics["latents_per_image"], 98)
    self.assertAllClose(metrics["stage_0_prior_nll_nats_per_image"]
                        + metrics["stage_1_prior_nll_nats_per_image"],
                        metrics["prior_nll_nats_per_image"])
    self.assertAllClose(metrics["prior_bits_per_latent"],
                        metrics["prior_nll_nats_per_image"] / (98 * math.log(2)))
    self.assertAllClose(metrics["stage_1_prior_bits_per_latent"],
                        metrics["stage_1_prior_nll_nats_per_image"] / (49 * math.log(2)))
    # The uniform bound is the VQ-VAE's own -ELBO: KL = 7 * 7 * 2 * log 16.
    with open(os.path.join(self.vqvae_dir, "metrics.json")) as f:
      self.assertAllClose(metrics["neg_elbo_uniform_prior_nats"],
                          json.load(f)["neg_elbo_nats"], rtol=1e-5)
    self.assertAllClose(metrics["neg_elbo_learned_prior_nats"],
                        metrics["recon_nll_nats"] + metrics["prior_nll_nats_per_image"])

  def test_samples_are_residual_codes_deterministic_for_a_seed(self):
    vqvae, _, _ = checkpoints.load_vqvae(self.vqvae_dir)
    prior, _ = prior_lib.load_prior(self.prior_dir, vqvae)
    self.assertEqual(prior.code_shape, (7, 7, 2))
    codes, probs = sample_lib.sample_images(vqvae, prior, 5, temperature=0.5, seed=2,
                                            batch_size=3)
    self.assertEqual(codes.shape, (5, 7, 7, 2))
    self.assertAllInRange(codes, 0, 15)
    self.assertEqual(probs.shape, (5, 28, 28, 1))
    again, _ = sample_lib.sample_images(vqvae, prior, 5, temperature=0.5, seed=2)
    self.assertAllEqual(again, codes)


class HierarchicalPipelineTest(tf.test.TestCase):
  """A tiny VQ-VAE-2 (4x4 top, 8x8 bottom codes) -> its prior (resumed) -> samples."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.temp_dir = tempfile.mkdtemp(prefix="hierarchical_prior_test_")
    cls.vqvae_dir = os.path.join(cls.temp_dir, "vqvae")
    test_util.train_tiny_model(cls.vqvae_dir, top_downsamples=1, pad_to=32)
    cls.prior_dir = os.path.join(cls.temp_dir, "prior")
    config = _TINY_PRIOR.override(num_layers=3, num_attention_blocks=1,
                                 num_heads=2, bottom_num_layers=4, bottom_kernel_size=5)
    with tfds.testing.mock_data(num_examples=32):
      cls.first = train_prior.train_prior(config.override(num_steps=2),
                                          cls.vqvae_dir, cls.prior_dir)
      cls.metrics = train_prior.train_prior(config, cls.vqvae_dir, cls.prior_dir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.temp_dir)
    super().tearDownClass()

  def test_resumes_and_reports_each_level_and_the_bounds(self):
    self.assertEqual((self.first["step"], self.metrics["step"]), (2, 3))
    metrics = self.metrics
    self.assertEqual(metrics["latents_per_image"], 16 + 64)
    self.assertAllClose(metrics["top_prior_nll_nats_per_image"]
                        + metrics["bottom_prior_nll_nats_per_image"],
                        metrics["prior_nll_nats_per_image"])
    self.assertAllClose(metrics["bottom_prior_bits_per_latent"],
                        metrics["bottom_prior_nll_nats_per_image"] / (64 * math.log(2)))
    self.assertAllClose(metrics["neg_elbo_learned_prior_nats"],
                        metrics["recon_nll_nats"] + metrics["prior_nll_nats_per_image"])
    # The uniform bound is the VQ-VAE-2's own -ELBO: KL = (4 * 4 + 8 * 8) log 16.
    with open(os.path.join(self.vqvae_dir, "metrics.json")) as f:
      self.assertAllClose(metrics["neg_elbo_uniform_prior_nats"],
                          json.load(f)["neg_elbo_nats"], rtol=1e-5)
    config, _ = prior_lib.read_config(self.prior_dir)
    self.assertIsInstance(config, prior_lib.HierarchicalPriorConfig)
    self.assertEqual(config.bottom.condition_shape, (4, 4))

  def test_sample_cli_draws_top_then_bottom_deterministically_with_the_knobs(self):
    out = os.path.join(self.get_temp_dir(), "samples.png")
    result = subprocess.run(
        [sys.executable, "-m", "tfp_vqvae.sample", "--vqvae_dir", self.vqvae_dir,
         "--prior_dir", self.prior_dir, "--num", "4", "--columns", "2", "--seed", "3",
         "--batch_size", "2", "--temperature", "0.7", "--top_k", "3", "--top_p", "0.95",
         "--out", out],
        cwd=test_util.ROOT, capture_output=True, text=True, timeout=300)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    image = tf.io.decode_png(tf.io.read_file(out)).numpy()
    vqvae, _, _ = checkpoints.load_vqvae(self.vqvae_dir)
    prior, _ = prior_lib.load_prior(self.prior_dir, vqvae)
    codes, probs = sample_lib.sample_images(vqvae, prior, 4, temperature=0.7, seed=3,
                                            top_k=3, top_p=0.95)
    self.assertEqual({level: c.shape for level, c in codes.items()},
                     {"top": (4, 4, 4), "bottom": (4, 8, 8)})
    untruncated, _ = sample_lib.sample_images(vqvae, prior, 4, temperature=0.7, seed=3)
    self.assertNotAllEqual(codes["bottom"], untruncated["bottom"])
    # In-process, one batch of 4 instead of 2 + 2: the same figure, titled.
    title = (f"4 samples of the prior {self.prior_dir}, temperature 0.7, top_k 3, "
             "top_p 0.95, seed 3")
    self.assertAllClose(image, figures.samples_figure(probs, 2, title), atol=2)


class HierarchicalTrainerTest(tf.test.TestCase):
  """The prior trainer on VQ-VAE-2 codes {"top", "bottom"} (random, not a model's)."""

  def test_learns_codes_whose_bottom_copies_the_top(self):
    rng = np.random.default_rng(0)
    top = rng.integers(0, 4, (300, 2, 2)).astype(np.int32)
    # Each top code fills its 2x2 block of the bottom grid.
    bottom = np.repeat(np.repeat(top, 2, axis=1), 2, axis=2)
    codes = {"top": top, "bottom": bottom}
    train, evaluation = test_util.write_code_shards(
        self.get_temp_dir(), {"train": {k: v[:250] for k, v in codes.items()},
                              "eval": {k: v[250:] for k, v in codes.items()}},
        rows_per_shard=64)
    config = _TINY_PRIOR.override(num_layers=2, bottom_num_layers=3,
                                 num_attention_blocks=1, num_heads=2,
                                 learning_rate=2e-2, batch_size=16, num_steps=20)
    prior_config = config.prior.architecture(4, {"top": (2, 2), "bottom": (4, 4)}, 0, config.seed)
    self.assertEqual(prior_config.bottom.condition_shape, (2, 2))
    self.assertEqual(prior_config.bottom.num_layers, 3)
    self.assertEqual(prior_config.top.num_attention_blocks, 1)
    step = tf.Variable(0, dtype=tf.int64)
    trainer = train_prior.PriorTrainer(prior_config, config, train, step)
    _, before_levels, _ = train_prior.evaluate_prior(trainer.prior, evaluation, 50)
    for _ in range(20):
      trainer.train_step()
      step.assign_add(1)
    after, levels, recon = train_prior.evaluate_prior(trainer.prior, evaluation, 50)
    self.assertAllClose(levels["top"] + levels["bottom"], after)
    self.assertAllClose(recon, np.mean(np.arange(50) / 2))
    log_k = np.log(4)
    self.assertGreater(before_levels["bottom"], 16 * log_k - 3)
    # The bottom is a function of the top: its NLL falls far below uniform's
    # 16 log 4, where the top's cannot fall below its entropy, 4 log 4.
    self.assertLess(levels["bottom"], 8 * log_k)
    self.assertGreater(levels["top"], 4 * log_k - 1)

  def test_bottom_options_must_cover_the_bottom_grid(self):
    config = _TINY_PRIOR.override(num_layers=2, bottom_num_layers=2)
    with self.assertRaisesRegex(
        ValueError, r"^bottom_num_layers=2 of bottom_kernel_size=3 leave a blind spot "
        r"on the 8x8 bottom grid"):
      config.prior.architecture(4, {"top": (4, 4), "bottom": (8, 8)}, 0, config.seed)


if __name__ == "__main__":
  tf.test.main()
