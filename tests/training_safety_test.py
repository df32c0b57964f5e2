"""Nothing silently wrong or lost: a non-finite loss stops training before it is
checkpointed, and SIGTERM saves, says how to resume, and resumes bit-identically."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae.serving import export as export_lib
from tfp_vqvae.training import checkpoints
from tfp_vqvae.training import loop as loop_lib
from tfp_vqvae.training import vqvae_trainer as train_lib
import image_files
import test_util


def _float_tensors(path):
  """{name: array} of the floating tensors of the checkpoint `path`."""
  reader = tf.train.load_checkpoint(path)
  tensors = {}
  for name, _ in tf.train.list_variables(path):
    value = reader.get_tensor(name)
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
      tensors[name] = value
  return tensors


class NonFiniteTest(tf.test.TestCase):

  def test_huge_learning_rate_stops_with_one_error_and_no_nan_checkpoint(self):
    model_dir = self.get_temp_dir()
    config = test_util.smoke_config(num_steps=60, learning_rate=1e6, log_every=2,
                                    checkpoint_every=2, eval_every=60)
    with tfds.testing.mock_data(num_examples=64):
      with self.assertRaisesRegex(loop_lib.NonFiniteError,
                                  r"^step \d+: .* is not finite .* lower learning_rate"):
        train_lib.train_and_evaluate(config, model_dir)
    self.assertFalse(os.path.exists(os.path.join(model_dir, "metrics.json")))
    latest = tf.train.latest_checkpoint(model_dir)
    if latest is not None:  # Every checkpoint written holds finite weights only.
      tensors = _float_tensors(latest)
      self.assertNotEmpty(tensors)
      for name, value in tensors.items():
        self.assertTrue(np.all(np.isfinite(value)), name)

  def test_load_and_export_refuse_non_finite_weights_naming_the_variable(self):
    model_dir = self.get_temp_dir()
    with tfds.testing.mock_data(num_examples=64):
      train_lib.train_and_evaluate(test_util.smoke_config(num_steps=2), model_dir)
    model, _, _ = checkpoints.load_vqvae(model_dir)  # Finite: loads.
    # A checkpoint from elsewhere with a NaN in one weight.
    bad_dir = os.path.join(self.get_temp_dir(), "bad")
    variable = model.decoder.trainable_variables[0]
    variable.assign(tf.fill(variable.shape, np.nan))
    tf.train.Checkpoint(model=model, record=tf.Variable(
        checkpoints.read_record(tf.train.latest_checkpoint(model_dir)))).save(
            os.path.join(bad_dir, "ckpt"))
    pattern = rf"holds non-finite values \(NaN or inf\) in {variable.name}"
    with self.assertRaisesRegex(ValueError, pattern):
      checkpoints.load_vqvae(bad_dir)
    with self.assertRaisesRegex(ValueError, pattern):
      export_lib.export_saved_model(bad_dir, os.path.join(self.get_temp_dir(), "base"))

  def test_a_finite_run_is_not_stopped(self):
    with tfds.testing.mock_data(num_examples=64):
      metrics = train_lib.train_and_evaluate(
          test_util.smoke_config(num_steps=4, log_every=1), self.get_temp_dir())
    self.assertEqual(metrics["step"], 4)


class SigtermTest(tf.test.TestCase):

  def test_sigterm_saves_and_the_resumed_run_equals_the_uninterrupted_one(self):
    root = image_files.write_folder(os.path.join(self.get_temp_dir(), "images"),
                                    {"train": 256, "test": 64}, (16, 16, 1))
    args = [sys.executable, "-m", "tfp_vqvae.train", "--flagfile",
            test_util.SMOKE_FLAGS, f"--dataset=folder:{root}", "--num_steps=40",
            "--checkpoint_every=16", "--log_every=1", "--eval_every=20",
            "--binarize=dynamic"]
    straight, stopped = (os.path.join(self.get_temp_dir(), d) for d in ("a", "b"))
    straight_process = subprocess.Popen(
        args + ["--model_dir", straight], cwd=test_util.ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    process = subprocess.Popen(args + ["--model_dir", stopped], cwd=test_util.ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    # Stopped between checkpoints, once training runs (step lines every step).
    stderr_lines = []
    for line in process.stderr:
      stderr_lines.append(line)
      if "step 5/40" in line:
        process.send_signal(signal.SIGTERM)
        break
    stderr_lines.extend(process.stderr)  # To the end: the process has exited then.
    process.wait(timeout=600)
    stderr = "".join(stderr_lines)
    self.assertNotEqual(process.returncode, 0, stderr[-3000:])
    self.assertRegex(stderr, r"stopped: SIGTERM at step \d+/40: saved a checkpoint in "
                     r".*; run the same command to resume\.")
    self.assertNotIn("Traceback", stderr)
    self.assertIsNotNone(tf.train.latest_checkpoint(stopped))
    _, straight_err = straight_process.communicate(timeout=600)
    self.assertEqual(straight_process.returncode, 0, straight_err[-3000:])
    resumed = subprocess.run(args + ["--model_dir", stopped], cwd=test_util.ROOT,
                             capture_output=True, text=True, timeout=600)
    self.assertEqual(resumed.returncode, 0, resumed.stderr[-3000:])
    self.assertIn("Resumed from step", resumed.stderr)
    metrics = []
    for model_dir in (straight, stopped):
      with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics.append(json.load(f))
      metrics[-1].pop("train_seconds")
    self.assertEqual(metrics[0], metrics[1])


if __name__ == "__main__":
  tf.test.main()
