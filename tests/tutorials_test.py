"""Every tutorial flagfile trains a few steps on mock TFDS data and writes its results."""

import json
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae.training import checkpoints
from tfp_vqvae.training import vqvae_trainer as train_lib
import test_util

# Flagfile -> (image shape, code shape of one image).
_TUTORIALS = {
    "haiku_mnist.cfg": ((28, 28, 1), (4, 4)),
    "cifar10.cfg": ((32, 32, 3), (8, 8)),
    "tfp_blog_kmnist.cfg": ((28, 28, 1), (1, 1)),
    "mlp_mnist.cfg": ((28, 28, 1), (1, 16)),
    "residual_kmnist.cfg": ((28, 28, 1), (7, 7, 2)),
}
_FIGURES = ("reconstructions", "random_codes", "code_map", "codebook_pca",
            "training_recon_error", "training_perplexity")


class TutorialFlagfilesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*_TUTORIALS)
  def test_flagfile_trains_and_writes_results(self, name):
    path = os.path.join(test_util.FLAGS_DIR, name)
    with open(path) as f:
      self.assertStartsWith(f.read(), "# Mirrors ")
    image_shape, code_shape = _TUTORIALS[name]
    config = test_util.flagfile_config(path, num_steps=3, eval_every=3,
                                       checkpoint_every=3, eval_batch_size=16)
    model_dir = self.get_temp_dir()
    with tfds.testing.mock_data(num_examples=24):
      metrics = train_lib.train_and_evaluate(config, model_dir)
    with open(os.path.join(model_dir, "metrics.json")) as f:
      written = json.load(f)
    self.assertEqual(written["step"], 3)
    self.assertEqual(written["history"]["step"], [1, 2, 3])
    for key in ("recon_nll_nats", "bits_per_dim", "normalized_mse", "perplexity"):
      self.assertTrue(np.isfinite(written[key]), key)
    self.assertAllClose(written["kl_nats"],
                        np.prod(code_shape) * np.log(config.quantizer.num_embeddings), rtol=1e-5)
    self.assertAllClose(written["bits_per_dim"],
                        written["neg_elbo_nats"] / (np.prod(image_shape) * np.log(2)),
                        rtol=1e-5)
    for figure in _FIGURES:
      self.assertTrue(os.path.exists(os.path.join(model_dir, f"{figure}.png")), figure)
    model, _, _ = checkpoints.load_vqvae(model_dir)
    self.assertEqual(model.image_shape, image_shape)
    self.assertEqual(model.code_shape, code_shape)
    self.assertEqual(metrics["step"], 3)


if __name__ == "__main__":
  tf.test.main()
