"""FSQ, LFQ and SimVQ inside a `VQVAE`: a training step, the uniform-prior KL over
their K codes, a SavedModel round trip through the serving module, and residual
stages of them (not yet VQ-VAE-2 levels: refused by `Config`)."""

import math
import os

from absl import flags
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfp_vqvae.configs import flags as config_flags
from tfp_vqvae.models import likelihoods
from tfp_vqvae.models import vqvae
from tfp_vqvae.nets import conv
from tfp_vqvae.quantizers import fsq
from tfp_vqvae.quantizers import lfq
from tfp_vqvae.quantizers import simvq
from tfp_vqvae.serving import export as export_lib
from tfp_vqvae.training import checkpoints
from tfp_vqvae.training import optimization
import test_util

_D = 8
_QUANTIZERS = {
    "fsq": lambda: fsq.FiniteScalarQuantizer(_D, levels=(8, 5, 5, 5), seed=3),
    "lfq": lambda: lfq.LookupFreeQuantizer(_D, code_dim=9, seed=3),
    "simvq": lambda: simvq.SimVQQuantizer(512, _D, seed=3),
}


def _model(name):
  """A small conv VQ-VAE for 28x28 binary images: 7x7 latents of D=8."""
  sizes = dict(num_hiddens=8, num_residual_hiddens=4, num_residual_layers=1,
               embedding_dim=_D)
  return vqvae.VQVAE(conv.Encoder(in_channels=1, **sizes), _QUANTIZERS[name](),
                     conv.Decoder(out_channels=1, **sizes), likelihoods.Bernoulli(),
                     image_shape=(28, 28, 1))


def _images(seed=0, count=4):
  return (np.random.default_rng(seed).random((count, 28, 28, 1)) > 0.5).astype(np.float32)


class GridQuantizersInVQVAETest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("fsq", "lfq", "simvq")
  def test_train_step_and_uniform_prior_kl(self, name):
    model = _model(name)
    self.assertEqual(model.code_shape, (7, 7))
    num_codes = {"fsq": 1000, "lfq": 512, "simvq": 512}[name]
    self.assertEqual(model.num_embeddings, num_codes)
    images = _images()
    before = [v.numpy() for v in model.quantizer.trainable_variables]
    optimizer = optimization.make_optimizer(1e-2)

    @tf.function
    def step():
      def loss_fn():
        terms = model.loss_terms(images, training=True)
        return tf.reduce_mean(terms.loss), terms
      return optimization.minimize(optimizer, loss_fn, model.trainable_variables)

    terms = step()
    self.assertAllEqual(tf.math.is_finite(terms.loss), [True] * 4)
    # The projections are trained through the straight-through gradient, SimVQ's
    # map by its codebook loss.
    for old, new in zip(before, model.quantizer.trainable_variables):
      self.assertNotAllClose(old, new)
    # KL(point mass || uniform over K) = positions * log K, = -log p(codes).
    self.assertAllClose(terms.kl, [49 * math.log(num_codes)] * 4)
    codes = model.encode(images).codes
    self.assertAllClose(model.kl_divergence(codes), -model.prior().log_prob(codes))
    self.assertAllClose(model.decode_codes(codes).mean(),
                        model.decode(model.encode(images).quantized).mean(), atol=1e-5)

  @parameterized.parameters("fsq", "lfq", "simvq")
  def test_saved_model_round_trip(self, name):
    model = _model(name)
    export_dir = export_lib.save_module(
        export_lib.ServingModule(model, "threshold"),
        os.path.join(self.get_temp_dir(), name), warmup_batch_sizes=(1,))
    loaded = tf.saved_model.load(export_dir)
    images = (_images(seed=1) * 255).astype(np.uint8)
    encoded = loaded.encode(images)
    want = model.encode(tf.constant(images > 127, tf.float32))
    self.assertAllEqual(encoded["codes"], want.codes)
    self.assertAllClose(encoded["latents"], model.quantizer.lookup(want.codes),
                        atol=1e-6)
    self.assertAllClose(loaded.decode(encoded["codes"])["probs"],
                        model.decode_codes(want.codes).mean(), atol=1e-6)

  @parameterized.parameters(("fsq", "--fsq_levels=5,3", fsq.FiniteScalarQuantizer, 15),
                            ("lfq", "--lfq_code_dim=4", lfq.LookupFreeQuantizer, 16),
                            ("simvq", "--num_embeddings=12", simvq.SimVQQuantizer, 12))
  def test_chosen_by_flags_and_trained_by_the_trainer(self, name, flag, cls, num_codes):
    flag_values = flags.FlagValues()
    config_flags.define_config_flags(flag_values)
    flag_values(["train", "--flagfile", test_util.SMOKE_FLAGS, f"--quantizer={name}",
                 flag])
    config = config_flags.config_from_flags(flag_values)
    model_dir = os.path.join(self.get_temp_dir(), name)
    metrics = test_util.train_tiny_model(model_dir, **config.quantizer.to_record(),
                                         quantizer=name)
    self.assertLessEqual(metrics["codes_used"], num_codes)
    model, loaded, _ = checkpoints.load_vqvae(model_dir)
    self.assertEqual(loaded.quantizer, config.quantizer)
    self.assertIsInstance(model.quantizer, cls)
    self.assertEqual(model.num_embeddings, num_codes)

  @parameterized.parameters(
      ("fsq", dict(fsq_levels="4,4", num_quantizers=2)),
      ("lfq", dict(lfq_code_dim=4, num_quantizers=2)),
      ("simvq", dict(num_embeddings=8, num_quantizers=2)))
  def test_residual_stages_every_variable_gets_a_gradient(self, name, overrides):
    model = test_util.tiny_vqvae((16, 16, 1), quantizer=name, **overrides)
    self.assertEqual(model.code_shape, (4, 4, 2))
    images = tf.constant(
        (np.random.default_rng(0).random((4, 16, 16, 1)) > 0.5).astype(np.float32))
    # Each stage's projections train (the sum of the stages' outputs keeps their
    # gradients), and so do the encoder and decoder.
    self.assertEmpty(test_util.variables_without_gradient(model, images))
    self.assertEqual(int(model.quantizer.num_updates.numpy()), 1)
    encoded = model.encode(images)
    self.assertAllClose(model.quantizer.lookup(encoded.codes), encoded.quantized,
                        atol=1e-5)


if __name__ == "__main__":
  tf.test.main()
