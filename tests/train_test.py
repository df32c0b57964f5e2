"""End-to-end tests of training: tiny models, few steps, real files written."""

import json
import os
import subprocess
import sys
import time

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
import tf_keras

from tfp_vqvae.models import builder
from tfp_vqvae.training import checkpoints
from tfp_vqvae.training import vqvae_trainer as train_lib
import image_files
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
    last = train_lib.train_and_evaluate(config.override(num_steps=60),
                                        model_dir)
    self.assertLess(last["recon_nll_nats"], first["recon_nll_nats"] - 20)
    self.assertEqual(last["eval_examples"], 128)

  def test_resumed_run_equals_uninterrupted_run(self):
    config = test_util.smoke_config(binarize="dynamic", num_steps=12, checkpoint_every=3)
    straight, resumed = (os.path.join(self.get_temp_dir(), d) for d in ("a", "b"))
    with tfds.testing.mock_data(num_examples=40):
      train_lib.train_and_evaluate(config, straight)
      train_lib.train_and_evaluate(config.override(num_steps=6), resumed)
      train_lib.train_and_evaluate(config, resumed)
    model_a, _, path_a = checkpoints.load_vqvae(straight)
    model_b, _, path_b = checkpoints.load_vqvae(resumed)
    self.assertEndsWith(path_a, "ckpt-12")
    self.assertEndsWith(path_b, "ckpt-12")
    self.assertTrue(model_a.quantizer.initialized.numpy())
    for a, b in zip(model_a.variables, model_b.variables):
      self.assertAllClose(a, b, atol=1e-6, rtol=1e-6, msg=a.name)

  def test_float16_scales_the_loss_learns_and_stays_finite(self):
    model_dir = self.get_temp_dir()
    config = test_util.smoke_config(dtype="float16", num_steps=1)
    with tfds.testing.mock_data(num_examples=64):
      first = train_lib.train_and_evaluate(config, model_dir)
      last = train_lib.train_and_evaluate(config.override(num_steps=40),
                                          model_dir)
    self.assertLess(last["recon_nll_nats"], first["recon_nll_nats"])
    trainer = train_lib.Trainer(config, (28, 28, 1))
    self.assertIsInstance(trainer.optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
    reader = tf.train.load_checkpoint(model_dir)
    for name, _ in tf.train.list_variables(model_dir):
      value = reader.get_tensor(name)
      if np.issubdtype(np.asarray(value).dtype, np.floating):
        self.assertTrue(np.all(np.isfinite(value)), name)

  def test_refuses_to_resume_another_architecture(self):
    model_dir = self.get_temp_dir()
    with tfds.testing.mock_data(num_examples=16):
      train_lib.train_and_evaluate(test_util.smoke_config(num_steps=1), model_dir)
      with self.assertRaisesRegex(ValueError, "num_embeddings=16 \\(now 32\\)"):
        train_lib.train_and_evaluate(test_util.smoke_config(num_embeddings=32), model_dir)

  def test_resume_refuses_other_data_and_records_each_run(self):
    model_dir = self.get_temp_dir()
    config = test_util.smoke_config(num_steps=1)
    with tfds.testing.mock_data(num_examples=16):
      train_lib.train_and_evaluate(config, model_dir)
      for changes, said in ((dict(binarize="none"), r"binarize=\w+ \(now none\)"),
                            (dict(train_split="test"), r"train_split=\S+ \(now test\)")):
        with self.assertRaisesRegex(ValueError, f"holds a model trained with .*{said}"):
          train_lib.train_and_evaluate(config.override(**changes), model_dir)
      train_lib.train_and_evaluate(config.override(num_steps=2), model_dir)
    with open(os.path.join(model_dir, "config.json")) as f:
      record = json.load(f)
    self.assertEqual([run["resumed_from"] for run in record["runs"]], [None, "ckpt-1"])
    self.assertEqual(record["runs"][1]["changed"], ["num_steps=1 (now 2)"])
    self.assertEqual(record["config"]["num_steps"], 2)

  def test_load_model_errors(self):
    with self.assertRaisesRegex(ValueError, "holds no checkpoint to load"):
      checkpoints.load_vqvae(self.get_temp_dir())

  def test_checkpoint_of_another_version_is_one_clear_error(self):
    # A checkpoint as an older version wrote it: without the training curve and
    # without the quantizer's seed counter.
    config = test_util.smoke_config(num_steps=2)
    model_dir = self.get_temp_dir()
    model = builder.build_vqvae(config, (28, 28, 1))
    old_quantizer = tf.Module()
    old_quantizer.codebook = model.quantizer.codebook
    old_model = tf.Module()
    old_model.encoder, old_model.decoder = model.encoder, model.decoder
    old_model.quantizer = old_quantizer
    tf.train.Checkpoint(step=tf.Variable(1, dtype=tf.int64), model=old_model).save(
        os.path.join(model_dir, "ckpt"))
    with self.assertRaisesRegex(ValueError, r"ckpt-1\) that this version of tfp_vqvae "
                                r"cannot restore: it lacks .* new --model_dir"):
      with tfds.testing.mock_data(num_examples=16):
        train_lib.train_and_evaluate(config, model_dir)
    with self.assertRaisesRegex(ValueError, "without a model record: it was written by "
                                "an older version"):
      checkpoints.load_vqvae(model_dir)


class TrainCliTest(parameterized.TestCase, tf.test.TestCase):

  def test_bad_flag_is_one_clear_error_before_training(self):
    model_dir = os.path.join(self.get_temp_dir(), "run")
    result = _run_cli("--flagfile", test_util.SMOKE_FLAGS, "--model_dir", model_dir,
                      "--num_embeddings=0")
    self.assertNotEqual(result.returncode, 0)
    self.assertRegex(result.stderr, r"--num_embeddings=0: must be an integer >= 1")
    self.assertFalse(os.path.exists(model_dir))

  def test_model_dir_that_is_a_file_is_one_clear_error_before_the_data(self):
    if not os.path.isdir(test_util.KMNIST_DIR):
      self.skipTest(f"{test_util.KMNIST_DIR} is absent")
    a_file = os.path.join(self.get_temp_dir(), "notes.txt")
    with open(a_file, "w") as f:
      f.write("not a directory")
    for model_dir, problem in ((a_file, "is a file, not a directory"),
                               (os.path.join(a_file, "run"), f"cannot be made: {a_file} is a file")):
      result = _run_cli("--flagfile", test_util.SMOKE_FLAGS, "--model_dir", model_dir,
                        "--dataset_dir", test_util.KMNIST_DIR)
      self.assertNotEqual(result.returncode, 0)
      self.assertEqual(result.stderr.strip().splitlines()[-1],
                       f"error: --model_dir={model_dir}: {problem}.")
      self.assertNotIn("Traceback", result.stderr)

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

  @parameterized.named_parameters(("idx_files", "idx"), ("folder", "folder"))
  def test_kill_9_then_resume_writes_the_uninterrupted_metrics(self, source):
    args = ["--flagfile", test_util.SMOKE_FLAGS, *self._data_args(source),
            "--num_steps=40", "--checkpoint_every=8", "--log_every=4",
            "--eval_every=20", "--binarize=dynamic"]
    straight, killed = (os.path.join(self.get_temp_dir(), d) for d in ("a", "b"))
    # Both runs at once (less waiting; the result must not depend on the load).
    straight_process, process = (
        subprocess.Popen([sys.executable, "-m", "tfp_vqvae.train", *args, "--model_dir",
                          model_dir], cwd=test_util.ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE if model_dir == straight
                         else subprocess.DEVNULL, text=True)
        for model_dir in (straight, killed))
    # Killed between checkpoints: the steps after ckpt-16 are replayed on resume.
    while (process.poll() is None
           and not tf.io.gfile.exists(os.path.join(killed, "ckpt-16.index"))):
      time.sleep(0.05)
    process.kill()
    process.wait()
    _, stderr = straight_process.communicate(timeout=600)
    self.assertEqual(straight_process.returncode, 0, stderr[-3000:])
    resumed = _run_cli(*args, "--model_dir", killed)
    self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
    self.assertRegex(resumed.stderr, r"Resumed from step (8|16|24|32)")
    metrics = []
    for model_dir in (straight, killed):
      with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics.append(json.load(f))
      metrics[-1].pop("train_seconds")
    self.assertLen(metrics[0]["history"]["step"], 40)
    self.assertEqual(metrics[0], metrics[1])

  def _data_args(self, source):
    """Flags reading 320 small grey images from the official KMNIST files ("idx";
    skipped without them) or from a generated folder of PNG files ("folder")."""
    if source == "idx":
      if not os.path.isdir(test_util.KMNIST_DIR):
        self.skipTest(f"{test_util.KMNIST_DIR} is absent")
      return ["--dataset_dir", test_util.KMNIST_DIR, "--train_split=test[:256]",
              "--eval_split=test[256:320]"]
    root = image_files.write_folder(os.path.join(self.get_temp_dir(), "images"),
                                    {"train": 256, "test": 64}, (16, 16, 1))
    return [f"--dataset=folder:{root}"]

if __name__ == "__main__":
  tf.test.main()
