"""Tests of the CLIs' start-up (tfp_vqvae/internal/cli.py): help and flag errors before
TensorFlow is imported, and TF's C++ chatter quiet by default."""

import os
import re
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tfp_vqvae.internal import cli as _cli
import test_util

# A C++ log line (absl's or TF's older format, naming a source file that is not
# Python's) or absl's preamble, anywhere.
_CPP_CHATTER = re.compile(r"^(([IWEF]\d{4} [\d:.]+ +\d+|\d{4}-\d\d-\d\d [\d:.]+: [IWEF]) "
                          r"\S+(?<!\.py):\d+\] |"
                          r"WARNING: All log messages before absl::InitializeLog)", re.M)


def _run(args, level=None):
  """Runs `python args` from the repository root, with TF_CPP_MIN_LOG_LEVEL=level."""
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  if level is not None:
    env["TF_CPP_MIN_LOG_LEVEL"] = level
  return subprocess.run([sys.executable, *args], cwd=test_util.ROOT, env=env,
                        capture_output=True, text=True, timeout=600)


def _sources(text):
  """The sorted C++ source tags ("cudart_stub.cc:31") of the log lines in text."""
  return sorted(re.findall(r"^[IWEF]\d{4} .*? (\S+\.cc:\d+)\] ", text, re.M))


class CliTest(tf.test.TestCase):

  def test_an_error_raised_while_tracing_exits_with_its_own_line(self):
    @tf.function
    def check_rows(images):
      if images.shape[0] != 3:
        raise ValueError(f"images must have 3 rows, got {images.shape[0]}.")
      return images

    with self.assertRaises(SystemExit) as stop:
      _cli.exit_on_error(check_rows, tf.zeros([2]))
    self.assertEqual(stop.exception.code, "error: images must have 3 rows, got 2.")
    with self.assertRaises(SystemExit) as stop:
      _cli.exit_on_error(int, "x")  # not traced: the first line
    self.assertEqual(stop.exception.code,
                     "error: invalid literal for int() with base 10: 'x'")

  def test_kept_lines_follow_the_level(self):
    text = "\n".join([
        "WARNING: All log messages before absl::InitializeLog() is called are written "
        "to STDERR",
        "I0000 00:00:1795910334.790236   32544 cudart_stub.cc:31] Could not find cuda",
        "W0000 00:00:1795910334.790236   32544 some.cc:1] a warning",
        "2025-09-17 14:44:05.176998: E external/xla/cuda_fft.cc:467] Unable to register",
        "F0000 00:00:1795910334.790236   32544 check.cc:9] Check failed",
        "a line from Python",
    ])
    lines = text.splitlines() + [
        "I1129 00:06:23.187538 140143631281024 train_lib.py:434] absl in Python"]
    text = "\n".join(lines)
    self.assertEqual(_cli.kept_lines(text, 0), lines)
    self.assertEqual(_cli.kept_lines(text, 1), lines[2:])
    self.assertEqual(_cli.kept_lines(text, 2), lines[3:])
    self.assertEqual(_cli.kept_lines(text, 3), lines[4:])

  def test_train_cli_prints_its_own_lines_and_no_cpp_chatter(self):
    dataset_dir = self.get_temp_dir()
    rng = np.random.default_rng(0)
    for split, count in (("train", 64), ("test", 32)):
      np.savez(os.path.join(dataset_dir, f"kmnist-{split}-imgs.npz"),
               rng.integers(0, 256, (count, 28, 28), np.uint8))
      np.savez(os.path.join(dataset_dir, f"kmnist-{split}-labels.npz"),
               np.zeros([count], np.uint8))
    result = _run(["-m", "tfp_vqvae.train", "--flagfile", test_util.SMOKE_FLAGS,
                   "--model_dir", os.path.join(self.get_temp_dir(), "model"),
                   "--dataset_dir", dataset_dir, "--num_steps=10", "--log_every=5"])
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertRegex(result.stderr, r"step 5/10  loss [\d.]+")
    self.assertRegex(result.stderr, r"step 10/10  loss [\d.]+")
    self.assertRegex(result.stderr, r"Wrote .*metrics\.json")
    self.assertNotRegex(result.stderr + result.stdout, _CPP_CHATTER)

  def test_a_level_the_user_set_is_respected(self):
    # An export of a directory without checkpoint imports TensorFlow, then fails.
    command = ["-m", "export.export_saved_model", "--model_dir", self.get_temp_dir(),
               "--export_base", os.path.join(self.get_temp_dir(), "export")]
    quiet = _run(command)
    self.assertIn("holds no checkpoint", quiet.stderr)
    self.assertNotRegex(quiet.stderr, _CPP_CHATTER)
    # At level 0 the CLI prints what importing TensorFlow prints on this machine.
    plain = _run(["-c", "import tensorflow"], level="0")
    loud = _run(command, level="0")
    self.assertIn("holds no checkpoint", loud.stderr)
    # (and more: the export goes on to start the runtime).
    self.assertContainsSubset(_sources(plain.stderr), _sources(loud.stderr))
    self.assertEqual(bool(_CPP_CHATTER.search(loud.stderr)),
                     bool(_CPP_CHATTER.search(plain.stderr)))

  def test_a_flag_of_a_prior_not_chosen_is_reported_in_one_line(self):
    missing = os.path.join(self.get_temp_dir(), "no_vqvae")
    shown = _run(["-m", "tfp_vqvae.train_prior", "--prior=transformer",
                  "--any_order_eval", "--num_channels=32", "--dropout_rate=0.2",
                  "--kernel_size=3",  # pixelcnn's, at its default: no effect either way
                  f"--vqvae_dir={missing}", f"--model_dir={missing}_prior"])
    self.assertNotEqual(shown.returncode, 0)
    warnings = [line for line in shown.stderr.splitlines() if line.startswith("warning")]
    self.assertCountEqual(warnings, [
        "warning: --any_order_eval is an option of --prior=maskgit; it has no effect "
        "here.",
        "warning: --num_channels is an option of --prior=pixelcnn; it has no effect "
        "here."])

  def test_help_and_bad_flags_come_before_tensorflow(self):
    programs = {"tfp_vqvae.train": "--quantizer=ema",
                "tfp_vqvae.train_prior": "--prior=pixelcnn",
                "tfp_vqvae.sample": "--prior_dir", "tfp_vqvae.export": "--export_base",
                "tfp_vqvae.client": "--server", "tfp_vqvae.benchmark": "--what",
                "tfp_vqvae.data_export": "--output_dir",
                "tfp_vqvae.data_benchmark": "--batch_size",
                "export.export_saved_model": "--model_dir", "export.client": "--server"}
    for program, flag in programs.items():
      shown = _run(["-X", "importtime", "-m", program, "--help"])
      self.assertEqual(shown.returncode, 0, (program, shown.stderr[-2000:]))
      self.assertIn(flag, shown.stdout, program)
      self.assertNotRegex(shown.stderr, r"(?m)\| tensorflow$", program)
      refused = _run(["-X", "importtime", "-m", program, "--no_such_flag=1"])
      self.assertNotEqual(refused.returncode, 0, program)
      self.assertRegex(refused.stderr, "(Unknown command line flag|unrecognized "
                       "arguments:) '?-*no_such_flag", program)
      if program != "tfp_vqvae.benchmark":  # argparse's usage line and error
        self.assertEqual(refused.stderr.strip().splitlines()[-1],
                         "error: Unknown command line flag 'no_such_flag'. --help "
                         "lists the flags.", program)
      self.assertNotRegex(refused.stderr, r"(?m)\| tensorflow$", program)


if __name__ == "__main__":
  tf.test.main()
