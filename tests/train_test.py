"""End-to-end tests of training: tiny models, few steps, real files written."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae import checkpoints
from tfp_vqvae import train_lib
import test_util

def _run_cli(*args):
  return subprocess.run([sys.executable, "-m", "tfp_vqvae.train", *args], cwd=test_util.ROOT,
                        capture_output=True, text=True, timeout=600)


class TrainTest(tf.test.TestCase):

  def test_trains_on_mock_tfds_writes_results_and_loss_falls(self):
    model_dir = self.get_temp_dir()
    with tfds.testing.mock_data(num_examples=64):
      first = train_lib.train_and_evaluate(test_util.smoke_config(num_steps=1), model_dir)
      last = train_lib.train_and_evaluate(test_util.smoke_config(num_steps=40), model_dir)
    self.assertEqual(first["step"], 1)
    self.assertEqual(last["step"], 40)
    self.assertLess(last["recon_nll_nats"], first["recon_nll_nats"])
    with open(os.path.join(model_dir, "metrics.json")) as f:
      written = json.load(f)
    for key in ("step", "recon_nll_nats", "kl_nats", "neg_elbo_nats", "bits_per_dim",
                "perplexity", "codebook_usage", "train_seconds"):
      self.assertIn(key, written)
    self.assertAllClose(written["kl_nats"], 49 * np.log(16), rtol=1e-5)
    self.assertAllClose(written["neg_elbo_nats"],
                        written["recon_nll_nats"] + written["kl_nats"], rtol=1e-5)
    self.assertAllClose(written["bits_per_dim"],
                        written["neg_elbo_nats"] / (784 * np.log(2)), rtol=1e-5)
    self.assertBetween(written["codebook_usage"], 1 / 16, 1.0)
    for name in ("reconstructions.png", "random_codes.png", "config.json"):
      self.assertTrue(os.path.exists(os.path.join(model_dir, name)), name)
    image = tf.io.decode_png(tf.io.read_file(os.path.join(model_dir,
                                                          "reconstructions.png")))
    self.assertGreater(image.shape[0], 2 * 28)
    self.assertNotEmpty(tf.io.gfile.glob(os.path.join(model_dir, "train", "events.*")))
    self.assertNotEmpty(tf.io.gfile.glob(os.path.join(model_dir, "ckpt-40*")))

  def test_trains_on_real_kmnist_files(self):
    if not os.path.isdir(test_util.KMNIST_DIR):
      self.skipTest(f"{test_util.KMNIST_DIR} is absent")
    model_dir = self.get_temp_dir()
    config = test_util.smoke_config(dataset_dir=test_util.KMNIST_DIR, train_split="test[:512]",
                           eval_split="test[512:640]", num_steps=1)
    first = train_lib.train_and_evaluate(config, model_dir)
    last = train_lib.train_and_evaluate(dataclasses.replace(config, num_steps=60),
                                        model_dir)
    self.assertLess(last["recon_nll_nats"], first["recon_nll_nats"] - 20)
    self.assertEqual(last["eval_examples"], 128)

  def test_resumed_run_equals_uninterrupted_run(self):
    config = test_util.smoke_config(binarize="dynamic", num_steps=12, checkpoint_every=3)
    straight, resumed = (os.path.join(self.get_temp_dir(), d) for d in ("a", "b"))
    with tfds.testing.mock_data(num_examples=40):
      train_lib.train_and_evaluate(config, straight)
      train_lib.train_and_evaluate(dataclasses.replace(config, num_steps=6), resumed)
      train_lib.train_and_evaluate(config, resumed)
    model_a, _, path_a = checkpoints.load_vqvae(straight)
    model_b, _, path_b = checkpoints.load_vqvae(resumed)
    self.assertEndsWith(path_a, "ckpt-12")
    self.assertEndsWith(path_b, "ckpt-12")
    self.assertTrue(model_a.quantizer.initialized.numpy())
    for a, b in zip(model_a.variables, model_b.variables):
      self.assertAllClose(a, b, atol=1e-6, rtol=1e-6, msg=a.name)

  def test_refuses_to_resume_another_architecture(self):
    model_dir = self.get_temp_dir()
    with tfds.testing.mock_data(num_examples=16):
      train_lib.train_and_evaluate(test_util.smoke_config(num_steps=1), model_dir)
      with self.assertRaisesRegex(ValueError, "num_embeddings=16 \\(now 32\\)"):
        train_lib.train_and_evaluate(test_util.smoke_config(num_embeddings=32), model_dir)

  def test_load_model_errors(self):
    with self.assertRaisesRegex(ValueError, "holds no checkpoint to load"):
      checkpoints.load_vqvae(self.get_temp_dir())


class TrainCliTest(tf.test.TestCase):

  def test_bad_flag_is_one_clear_error_before_training(self):
    model_dir = os.path.join(self.get_temp_dir(), "run")
    result = _run_cli("--flagfile", test_util.SMOKE_FLAGS, "--model_dir", model_dir,
                      "--num_embeddings=0")
    self.assertNotEqual(result.returncode, 0)
    self.assertRegex(result.stderr, r"--num_embeddings=0: must be an integer >= 1")
    self.assertFalse(os.path.exists(model_dir))

  def test_missing_dataset_dir_is_one_clear_error(self):
    model_dir = os.path.join(self.get_temp_dir(), "run")
    result = _run_cli("--flagfile", test_util.SMOKE_FLAGS, "--model_dir", model_dir,
                      "--dataset_dir", "/no/such/dir")
    self.assertNotEqual(result.returncode, 0)
    self.assertRegex(result.stderr, r"--dataset_dir=/no/such/dir: no such directory")
    self.assertFalse(os.path.exists(model_dir))

  def test_cli_trains_and_resumes_on_real_files(self):
    if not os.path.isdir(test_util.KMNIST_DIR):
      self.skipTest(f"{test_util.KMNIST_DIR} is absent")
    model_dir = os.path.join(self.get_temp_dir(), "run")
    args = ["--flagfile", test_util.SMOKE_FLAGS, "--model_dir", model_dir, "--dataset_dir",
            test_util.KMNIST_DIR, "--train_split=test[:256]", "--eval_split=test[256:320]"]
    first = _run_cli(*args, "--num_steps=10")
    self.assertEqual(first.returncode, 0, first.stderr[-3000:])
    self.assertIn("training from scratch", first.stderr)
    second = _run_cli(*args, "--num_steps=20")
    self.assertEqual(second.returncode, 0, second.stderr[-3000:])
    self.assertIn("Resumed from step 10", second.stderr)
    self.assertIn("step 20/20", second.stderr)
    with open(os.path.join(model_dir, "metrics.json")) as f:
      self.assertEqual(json.load(f)["step"], 20)
    # Asking for a split the directory does not hold fails before training.
    third = _run_cli(*args[:-2], "--train_split=train", "--num_steps=30")
    self.assertNotEqual(third.returncode, 0)
    self.assertIn("error:", third.stderr)
    self.assertNotIn("Traceback", third.stderr)


if __name__ == "__main__":
  tf.test.main()
