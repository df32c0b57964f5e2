"""Tests of the public API: `import tfp_vqvae as tv`, what it loads, what it exposes."""

from importlib import metadata
import inspect
import json
import os
import subprocess
import sys

import tensorflow as tf

import tfp_vqvae as tv

_PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs",
                        "imported_modules.py")
# What only training needs: exporting and serving must not load it.
_TRAINING_MODULES = ("tfp_vqvae.training.vqvae_trainer", "tfp_vqvae.training.prior_trainer", "tfp_vqvae.training.loop",
                     "tfp_vqvae.training.optimization", "tfp_vqvae.training.plots", "tfp_vqvae.training.figures")


def _imported(modules, watched):
  """Which of `watched` a fresh interpreter has loaded after importing `modules`."""
  result = subprocess.run([sys.executable, _PROGRAM, *modules, "--", *watched],
                          capture_output=True, text=True, check=True, timeout=300)
  return json.loads(result.stdout.strip().splitlines()[-1])


_CONSOLE_SCRIPTS = {
    "tfp-vqvae-train": "tfp_vqvae.train:run",
    "tfp-vqvae-train-prior": "tfp_vqvae.train_prior:run",
    "tfp-vqvae-sample": "tfp_vqvae.sample:run",
    "tfp-vqvae-export": "tfp_vqvae.export:run",
    "tfp-vqvae-client": "tfp_vqvae.client:run",
    "tfp-vqvae-benchmark": "tfp_vqvae.benchmark:main",
    "tfp-vqvae-data-export": "tfp_vqvae.data_export:run",
}


class PublicApiTest(tf.test.TestCase):

  def test_all_names_resolve_and_are_documented(self):
    self.assertEqual(tv.__all__, sorted(tv.__all__))
    for name in tv.__all__:
      value = getattr(tv, name)
      self.assertTrue(inspect.getdoc(value), f"tv.{name} has no docstring")
    self.assertIn("VectorQuantizerEMA", dir(tv))
    with self.assertRaisesRegex(AttributeError, "no attribute 'Trainer'"):
      tv.Trainer  # pylint: disable=pointless-statement

  def test_console_scripts_are_installed(self):
    installed = {entry.name: entry.value
                 for entry in metadata.entry_points(group="console_scripts")
                 if entry.value.startswith("tfp_vqvae.")}
    self.assertEqual(installed, _CONSOLE_SCRIPTS)
    # The installed script runs the program: here, to its one-line error.
    script = os.path.join(os.path.dirname(sys.executable), "tfp-vqvae-export")
    empty = self.get_temp_dir()
    result = subprocess.run([script, "--model_dir", empty, "--export_base",
                             os.path.join(empty, "base")], capture_output=True,
                            text=True, timeout=300)
    self.assertEqual(result.returncode, 1)
    self.assertIn(f"error: {empty} holds no checkpoint to load", result.stderr)

  def test_import_is_lazy(self):
    self.assertEqual(_imported(["tfp_vqvae"], ["tensorflow"]), [])

  def test_exporting_does_not_import_the_trainer(self):
    watched = list(_TRAINING_MODULES) + ["tfp_vqvae.serving.export"]
    self.assertEqual(_imported(["tfp_vqvae.serving.export"], watched),
                     ["tfp_vqvae.serving.export"])
    # tf_keras: no module on the export path imports it (TFP itself may, when TF is
    # imported first; that is TFP's own dependency).
    for name in ("serving/export", "training/checkpoints", "models/builder",
                 "models/vqvae", "quantizers/base", "quantizers/ema",
                 "models/likelihoods", "priors/pixelcnn", "nets/conv", "nets/layers"):
      with open(os.path.join(os.path.dirname(tv.__file__), f"{name}.py")) as f:
        self.assertNotIn("import tf_keras", f.read(), name)


if __name__ == "__main__":
  tf.test.main()
