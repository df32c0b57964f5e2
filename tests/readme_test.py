"""Runs the README's "Use it in your own model" snippets exactly as printed."""

import os
import re
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tfp_vqvae.serving import export as export_lib
import test_util

_README = os.path.join(test_util.ROOT, "README.md")


def readme_snippet(heading: str) -> str:
  """The first ```python block after the line `heading` of README.md."""
  with open(_README) as f:
    text = f.read()
  start = text.index("\n" + heading + "\n")
  return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def _run_program(code, cwd):
  """Runs `code` as a program file in `cwd`; returns its stdout."""
  path = os.path.join(cwd, "snippet.py")
  with open(path, "w") as f:
    f.write(code)
  result = subprocess.run([sys.executable, path], cwd=cwd, capture_output=True,
                          text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


class ReadmeTest(tf.test.TestCase):

  def test_quantizer_in_own_module_trains(self):
    code = readme_snippet("### (a) The EMA quantizer in your own `tf.Module`, trained "
                          "with a GradientTape")
    output = _run_program(code, self.get_temp_dir())
    match = re.search(r"loss ([\d.]+), code perplexity ([\d.]+) of 32", output)
    self.assertIsNotNone(match, output)
    self.assertGreater(float(match.group(2)), 2.0)  # more than one code in use

  def test_keras_layer_in_model_fit(self):
    code = readme_snippet("### (b) The Keras layer in `keras.Model.fit`")
    namespace = {}
    cwd = os.getcwd()
    os.chdir(self.get_temp_dir())  # The snippet saves vqvae.keras where it runs.
    try:
      exec(compile(code, _README, "exec"), namespace)  # pylint: disable=exec-used
    finally:
      os.chdir(cwd)
    self.assertEqual(namespace["codes"].shape, (8, 7, 7))
    self.assertEqual(namespace["codes"].dtype, tf.int32)
    history = namespace["model"].history.history["loss"]
    self.assertLess(history[-1], history[0])
    self.assertEqual(int(namespace["vq"].num_updates.numpy()), 2 * 256 // 32)
    images = namespace["images"][:8]
    self.assertAllEqual(namespace["restored"].predict(images, verbose=0),
                        namespace["model"].predict(images, verbose=0))
    self.assertGreater(len(np.unique(namespace["codes"].numpy())), 1)

  def test_loading_a_saved_model(self):
    workdir = self.get_temp_dir()
    model_dir = os.path.join(workdir, "run")
    test_util.train_tiny_model(model_dir, num_embeddings=16)
    export_lib.export_saved_model(model_dir, os.path.join(workdir, "models", "vqvae"))
    code = readme_snippet("### (c) A trained, exported model from other TensorFlow code")
    output = _run_program(code, workdir)
    self.assertIn("(2, 7, 7) (2, 28, 28, 1) [", output)


if __name__ == "__main__":
  tf.test.main()
