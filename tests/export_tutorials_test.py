"""Exports of non-default models: residual codes, Gaussian/logistic likelihoods, MLP."""

import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfp_vqvae.serving import export as export_lib
from tfp_vqvae.training import checkpoints
import test_util

# flags/smoke.cfg with these overrides, trained a few steps on mock KMNIST.
_MODELS = {
    "residual_gaussian_padded": dict(num_quantizers=2, codebook_init="kmeans",
                                     likelihood="gaussian", binarize="none",
                                     pixel_range="symmetric", pad_to=32,
                                     num_downsamples=3),
    "mlp_logistic": dict(architecture="mlp", num_latents=4, likelihood="logistic",
                         binarize="none", quantizer="loss"),
}


class ExportTutorialModelsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*[(name, name) for name in _MODELS])
  def test_export_matches_model(self, name):
    model_dir = os.path.join(self.get_temp_dir(), name)
    test_util.train_tiny_model(model_dir, **_MODELS[name])
    model, _, _ = checkpoints.load_vqvae(model_dir)
    version_dir = export_lib.export_saved_model(model_dir,
                                                os.path.join(self.get_temp_dir(), "x"))
    loaded = tf.saved_model.load(version_dir)
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    encoded = loaded.signatures["encode"](images=tf.constant(images))
    self.assertEqual(tuple(encoded["codes"].shape), (3,) + model.code_shape)
    decoded = loaded.signatures["decode"](codes=encoded["codes"])
    self.assertNotIn("logits", decoded)
    expected = model.decode_codes(encoded["codes"]).mean()
    self.assertAllClose(decoded["probs"], expected, atol=1e-5)
    reconstructed = loaded.signatures["reconstruct"](images=tf.constant(images))
    self.assertAllClose(reconstructed["probs"], decoded["probs"], atol=1e-5)
    neg_elbo = loaded.signatures["neg_elbo"](images=tf.constant(images))["neg_elbo"]
    terms = model.loss_terms(tf.constant(images, tf.float32) / 255)
    self.assertAllClose(neg_elbo, terms.neg_elbo, rtol=1e-4)
    bad = tf.zeros((1,) + model.code_shape[:-1] + (model.code_shape[-1] + 1,), tf.int32)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "codes must have shape"):
      loaded.signatures["decode"](codes=bad)


if __name__ == "__main__":
  tf.test.main()
