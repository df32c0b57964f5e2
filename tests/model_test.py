"""Tests of the networks and the VQ-VAE model's likelihood and loss terms."""

import math

from absl.testing import parameterized
import numpy as np
from scipy import special
import tensorflow as tf

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.models import builder
from tfp_vqvae.models import vqvae as model_lib
from tfp_vqvae.nets import conv as networks
import test_util


def _tiny_model(**kwargs):
  return test_util.tiny_vqvae((8, 8, 1), **kwargs)


class NetworksTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((2, (28, 28), (7, 7)), (3, (32, 32), (4, 4)),
                            (1, (28, 28), (14, 14)))
  def test_shapes(self, num_downsamples, image_size, latent_size):
    encoder = networks.Encoder(in_channels=3, num_hiddens=16, num_residual_hiddens=4,
                               embedding_dim=6, num_downsamples=num_downsamples)
    decoder = networks.Decoder(out_channels=3, num_hiddens=16, num_residual_hiddens=4,
                               embedding_dim=6, num_downsamples=num_downsamples)
    latents = encoder(tf.zeros((2,) + image_size + (3,)))
    self.assertEqual(latents.shape, (2,) + latent_size + (6,))
    self.assertEqual(decoder(latents).shape, (2,) + image_size + (3,))

  def test_paper_architecture_variables_are_tracked(self):
    # 658,625 parameters, the same count as the Sonnet and PyTorch peers' model.
    model = builder.build_vqvae(config_lib.Config.from_fields(), (28, 28, 1))
    self.assertLen(model.trainable_variables, 30)
    self.assertEqual(sum(v.shape.num_elements() for v in model.trainable_variables),
                     658625)
    self.assertLen(model.quantizer.variables, 5)  # codebook, 2 EMAs, 2 counters

  def test_seed_fixes_initial_weights(self):
    first, second, other = (networks.Encoder(num_hiddens=8, num_residual_hiddens=4,
                                             embedding_dim=2, seed=s) for s in (1, 1, 2))
    for a, b, c in zip(first.variables, second.variables, other.variables):
      self.assertAllEqual(a, b)
      if "kernel" in a.name:
        self.assertNotAllClose(a, c)

  def test_bad_sizes_raise(self):
    with self.assertRaisesRegex(ValueError, "num_hiddens"):
      networks.Encoder(num_hiddens=0)
    with self.assertRaisesRegex(ValueError, "divisible"):
      builder.build_vqvae(config_lib.Config.from_fields(num_downsamples=2), (30, 30, 1))


class VQVAETest(tf.test.TestCase, parameterized.TestCase):

  def test_kl_equals_latents_times_log_k(self):
    model = builder.build_vqvae(config_lib.Config.from_fields(num_embeddings=512), (28, 28, 1))
    codes = np.random.default_rng(0).integers(0, 512, size=(3, 7, 7))
    self.assertAllClose(model.kl_divergence(codes), [49 * math.log(512)] * 3, rtol=1e-6)
    self.assertAllClose(model.kl_divergence(codes), -model.prior().log_prob(codes))

  def test_kl_reads_the_prior_table_at_each_position(self):
    model = _tiny_model()
    logits = np.random.default_rng(7).normal(size=(2, 2, 5)).astype(np.float32)
    model.prior = lambda: model_lib.tfd.Independent(
        model_lib.tfd.Categorical(logits=logits), reinterpreted_batch_ndims=2)
    codes = np.random.default_rng(8).integers(0, 5, size=(4, 2, 2))
    log_p = logits - special.logsumexp(logits, axis=-1, keepdims=True)
    expected = -np.take_along_axis(log_p[None], codes[..., None], -1).sum((1, 2, 3))
    self.assertAllClose(model.kl_divergence(codes), expected, rtol=1e-5)

  def test_bernoulli_log_prob_matches_numpy(self):
    model = _tiny_model()
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 8, 8, 1)).astype(np.float32)
    images = (rng.uniform(size=(2, 8, 8, 1)) > 0.5).astype(np.float32)
    # Decode whatever latents and compare against its own logits.
    latents = rng.normal(size=(2, 2, 2, 3)).astype(np.float32)
    likelihood = model.decode(latents)
    logits = likelihood.distribution.logits.numpy()
    log_p = images * special.log_expit(logits) + (1 - images) * special.log_expit(-logits)
    self.assertAllClose(likelihood.log_prob(images), log_p.reshape(2, -1).sum(1),
                        rtol=1e-5)
    self.assertAllClose(likelihood.mean(), special.expit(logits), rtol=1e-5)
    self.assertEqual(likelihood.event_shape, (8, 8, 1))

  @parameterized.parameters(True, False)
  def test_loss_terms_add_up(self, training):
    model = _tiny_model()
    images = tf.cast(tf.random.stateless_uniform([4, 8, 8, 1], [0, 1]) > 0.5, tf.float32)
    terms = model.loss_terms(images, training=training)
    self.assertAllClose(terms.loss, terms.recon_nll + terms.commitment_loss + terms.kl)
    self.assertAllClose(terms.neg_elbo, terms.recon_nll + terms.kl)
    self.assertAllClose(terms.kl, [4 * math.log(5)] * 4, rtol=1e-6)
    reference = -model.decode(terms.quantizer.quantized).log_prob(images)
    self.assertAllClose(terms.recon_nll, reference)
    self.assertEqual(model.quantizer.initialized.numpy(), training)

  def test_bits_per_dim(self):
    model = _tiny_model()
    self.assertAllClose(model.bits_per_dim(64 * math.log(2.0)), 1.0)

  def test_bfloat16_model_close_to_float32(self):
    images = tf.cast(tf.random.stateless_uniform([2, 8, 8, 1], [0, 2]) > 0.5, tf.float32)
    full = _tiny_model()
    half = _tiny_model(dtype="bfloat16")
    for a, b in zip(full.variables, half.variables):
      b.assign(a)
    self.assertEqual(half.decode(tf.zeros([1, 2, 2, 3])).distribution.logits.dtype,
                     tf.float32)
    logits_full = full.decoder(full.encoder(images))
    logits_half = half.decoder(half.encoder(images))
    self.assertEqual(logits_half.dtype, tf.bfloat16)
    self.assertAllClose(tf.cast(logits_half, tf.float32), logits_full, atol=0.1, rtol=0.05)


if __name__ == "__main__":
  tf.test.main()
