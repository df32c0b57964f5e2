"""README.md's "Use it in your own model" snippets, run exactly as printed."""

import os
import re

import numpy as np
import tensorflow as tf

_README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "README.md")


def readme_snippet(heading: str) -> str:
  """The first ```python block after the line `heading` of README.md."""
  with open(_README) as f:
    text = f.read()
  start = text.index("\n" + heading + "\n")
  return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


class ReadmeTest(tf.test.TestCase):

  def test_keras_layer_in_model_fit(self):
    code = readme_snippet("### The Keras layer in `keras.Model.fit`")
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


if __name__ == "__main__":
  tf.test.main()
