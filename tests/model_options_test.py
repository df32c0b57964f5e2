"""Tests of the VQ-VAE's options: padding, pixel range, residual codes, likelihoods."""

import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import test_util


def _tiny(image_shape=(6, 6, 1), **kwargs):
  return test_util.tiny_vqvae(image_shape, **kwargs)


class ModelOptionsTest(tf.test.TestCase, parameterized.TestCase):

  def test_padding_and_symmetric_range_match_numpy(self):
    model = _tiny(pad_to=8, pixel_range="symmetric")
    images = np.random.default_rng(0).uniform(size=(2, 6, 6, 1)).astype(np.float32)
    expected = np.pad(images, [(0, 0), (1, 1), (1, 1), (0, 0)]) * 2 - 1
    self.assertAllClose(model.network_inputs(images), expected)
    self.assertEqual(model.latent_shape, (2, 2))
    # The decoder's 8x8 output is cropped back to the 6x6 images.
    self.assertEqual(model.decode(tf.zeros([2, 2, 2, 3])).mean().shape, (2, 6, 6, 1))

  def test_residual_codes_and_kl(self):
    model = _tiny(image_shape=(8, 8, 1), num_quantizers=3, codebook_init="kmeans")
    images = tf.cast(tf.random.stateless_uniform([4, 8, 8, 1], [0, 1]) > 0.5,
                     tf.float32)
    terms = model.loss_terms(images, training=True)
    self.assertEqual(model.code_shape, (2, 2, 3))
    self.assertEqual(terms.quantizer.codes.shape, (4, 2, 2, 3))
    self.assertAllClose(terms.kl, [12 * math.log(5)] * 4, rtol=1e-6)
    # The training call updated the codebooks after quantizing: compare at rest.
    encoded = model.encode(images)
    decoded = model.decode_codes(encoded.codes).mean()
    self.assertAllClose(decoded, model.decode(encoded.quantized).mean(),
                        atol=1e-4)  # z + sg(sum - z) rounds differently

  @parameterized.parameters(("bernoulli", "ema"), ("gaussian", "loss"),
                            ("logistic", "ema"))
  def test_loss_terms_and_squared_error(self, likelihood, quantizer):
    model = _tiny(image_shape=(8, 8, 3), likelihood=likelihood, quantizer=quantizer,
                  data_variance=0.05)
    images = tf.round(tf.random.stateless_uniform([2, 8, 8, 3], [0, 2]) * 255) / 255
    terms = model.loss_terms(images, training=True)
    decoded = model.decode(terms.quantizer.quantized)
    self.assertAllClose(terms.recon_nll, -decoded.log_prob(images))
    squared = ((images.numpy() - decoded.mean().numpy()) ** 2).reshape(2, -1).sum(1)
    self.assertAllClose(terms.squared_error, squared, rtol=1e-5)
    self.assertAllClose(terms.loss, terms.recon_nll + terms.commitment_loss + terms.kl)

  def test_gaussian_variance_is_checkpointed(self):
    model = _tiny(image_shape=(8, 8, 1), likelihood="gaussian", data_variance=0.123)
    restored = _tiny(image_shape=(8, 8, 1), likelihood="gaussian")
    path = tf.train.Checkpoint(model=model).write(self.get_temp_dir() + "/ckpt")
    tf.train.Checkpoint(model=restored).read(path).assert_existing_objects_matched()
    self.assertAllClose(restored.likelihood.variance, 0.123)

  def test_bad_options_raise(self):
    with self.assertRaisesRegex(ValueError, "pad_to=4"):
      _tiny(pad_to=4)
    with self.assertRaisesRegex(ValueError, "pixel_range"):
      _tiny(pixel_range="bytes")
    with self.assertRaisesRegex(ValueError, "quantizer"):
      _tiny(image_shape=(8, 8, 1), quantizer="gumbel")


if __name__ == "__main__":
  tf.test.main()
