"""Runs the README's "Use it in your own model" snippets exactly as printed."""

import os
import re
import subprocess
import sys

import tensorflow as tf

from tfp_vqvae import export_lib
import test_util

_SECTION = "## Use it in your own model"


def readme_snippets():
  """{label: code} of the python blocks of the section, labelled (a), (b), ..."""
  with open(os.path.join(test_util.ROOT, "README.md")) as f:
    text = f.read()
  section = text[text.index(_SECTION):]
  section = section[:section.index("\n## ", len(_SECTION))]
  snippets = {}
  for match in re.finditer(r"\*\*\((\w)\)(.*?)```python\n(.*?)```", section, re.S):
    snippets[match.group(1)] = match.group(3)
  return snippets


def _run(code, cwd):
  """Runs `code` as a program file in `cwd`; returns its stdout."""
  path = os.path.join(cwd, "snippet.py")
  with open(path, "w") as f:
    f.write(code)
  result = subprocess.run([sys.executable, path], cwd=cwd, capture_output=True,
                          text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


class ReadmeSnippetsTest(tf.test.TestCase):

  def test_the_section_has_its_snippets(self):
    self.assertContainsSubset({"a", "c"}, set(readme_snippets()))

  def test_quantizer_in_own_module_trains(self):
    output = _run(readme_snippets()["a"], self.get_temp_dir())
    match = re.search(r"loss ([\d.]+), code perplexity ([\d.]+) of 32", output)
    self.assertIsNotNone(match, output)
    self.assertGreater(float(match.group(2)), 2.0)  # more than one code in use

  def test_loading_a_saved_model(self):
    workdir = self.get_temp_dir()
    model_dir = os.path.join(workdir, "run")
    test_util.train_tiny_model(model_dir, num_embeddings=16)
    export_lib.export_saved_model(model_dir, os.path.join(workdir, "models", "vqvae"))
    output = _run(readme_snippets()["c"], workdir)
    self.assertIn("(2, 7, 7) (2, 28, 28, 1) [", output)


if __name__ == "__main__":
  tf.test.main()
