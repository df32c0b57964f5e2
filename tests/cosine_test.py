"""Low-dimensional cosine codebooks (cosine.LowDimCosine) against NumPy: codes by
cosine similarity in the projection, unit code vectors projected back, the
commitment loss and the EMA of unit vectors; --cosine_dim in a VQ-VAE and in
residual stages; the Keras layers' option.

The contract (shapes, straight-through and rotation gradients, tf.function, XLA,
checkpoints, two replicas) is tested in quantizer_contract_test.py, whose family
has an EMA and a loss-trained (with the rotation trick) cosine member.
"""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.keras import layers as keras_layers
from tfp_vqvae.quantizers import base
from tfp_vqvae.quantizers import cosine
from tfp_vqvae.quantizers import ema as ema_lib
from tfp_vqvae.quantizers import loss as quantizer_loss
import quantizer_family as family
import test_util

_K, _D, _DIM = 6, 10, 3


def _normal(shape, seed):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


class LowDimCosineTest(tf.test.TestCase, parameterized.TestCase):

  def test_codes_loss_and_ema_update_match_numpy(self):
    decay, beta = 0.9, 0.25
    codebook = ema_lib.VectorQuantizerEMA(
        _K, _DIM, commitment_cost=beta, decay=decay, dead_code_threshold=0.0,
        decay_warmup=False, cosine=True, name="codebook")
    quantizer = cosine.LowDimCosine(codebook, _D, seed=1)
    self.assertEqual((quantizer.code_dim, quantizer.num_embeddings), (_DIM, _K))
    quantizer(_normal((4, 3, 3, _D), 0), training=True)
    count, total = codebook.ema_count.numpy(), codebook.ema_sum.numpy()
    inputs = _normal((4, 3, 3, _D), 1)
    codes, code_vectors = family.numpy_cosine(quantizer, inputs.reshape(-1, _D))
    out = quantizer(inputs, training=True)
    self.assertAllEqual(tf.reshape(out.codes, [-1]), codes)
    self.assertAllClose(tf.reshape(out.quantized, [-1, _D]),
                        family.numpy_linear(quantizer.project_out, code_vectors),
                        rtol=1e-5, atol=1e-5)
    unit = _unit(family.numpy_linear(quantizer.project_in,
                                     inputs.reshape(-1, _D).astype(np.float64)))
    self.assertAllClose(out.commitment_loss, beta * ((unit - code_vectors) ** 2).reshape(
        4, -1).sum(1), rtol=1e-5, atol=1e-5)
    # The EMA averages the unit vectors assigned to each code.
    counts = np.bincount(codes, minlength=_K)
    sums = np.zeros((_K, _DIM))
    np.add.at(sums, codes, unit)
    want_count = decay * count + (1 - decay) * counts
    want_sum = decay * total + (1 - decay) * sums
    self.assertAllClose(codebook.ema_count, want_count, rtol=1e-5, atol=1e-6)
    self.assertAllClose(codebook.ema_sum, want_sum, rtol=1e-5, atol=1e-6)
    smoothed = (want_count + 1e-5) / (want_count.sum() + _K * 1e-5) * want_count.sum()
    self.assertAllClose(codebook.codebook, want_sum / smoothed[:, None], rtol=1e-4,
                        atol=1e-5)
    # Codes stand for the unit rows, projected back.
    self.assertAllClose(quantizer.codebooks[0], family.numpy_linear(
        quantizer.project_out, _unit(codebook.codebook.numpy().astype(np.float64))),
                        rtol=1e-5, atol=1e-5)
    evaluated = quantizer(inputs)
    self.assertAllClose(quantizer.lookup(evaluated.codes), evaluated.quantized,
                        rtol=1e-5, atol=1e-5)

  def test_unit_vectors_round_each_row_alike_wherever_it_sits(self):
    # 2 x 18 rows of 3: on AVX2, tf.math.l2_normalize rounds the tail of a batch
    # otherwise than the rest, so one replica's half of a global batch differed
    # from the same rows normalised with the whole batch.
    x = _normal([36, 3], 3)
    x[5] = 0.0
    unit = tf.function(base.unit_vectors)
    whole = unit(tf.constant(x)).numpy()
    halves = np.concatenate([unit(tf.constant(x[:18])).numpy(),
                             unit(tf.constant(x[18:])).numpy()])
    self.assertAllEqual(whole, halves)
    rows = np.arange(36) != 5
    self.assertAllClose(whole[rows], _unit(x[rows].astype(np.float64)), atol=1e-6)
    self.assertAllEqual(whole[5], np.zeros(3))

  def test_codebook_quantizer_must_be_cosine(self):
    with self.assertRaisesRegex(ValueError, "codebook_quantizer must be made with "
                                "cosine=True"):
      cosine.LowDimCosine(quantizer_loss.VectorQuantizerLoss(_K, _DIM), _D)

  @parameterized.parameters(("ema", 1), ("loss", 2))
  def test_cosine_dim_flag_trains_every_variable(self, name, num_quantizers):
    model = test_util.tiny_vqvae((16, 16, 1), quantizer=name, cosine_dim=2,
                                 embedding_dim=4, num_quantizers=num_quantizers)
    stages = getattr(model.quantizer, "stages", [model.quantizer])
    for stage in stages:
      self.assertIsInstance(stage, cosine.LowDimCosine)
      self.assertEqual(stage.code_dim, 2)
      self.assertTrue(stage.codebook_quantizer.cosine)
    images = tf.constant(
        (np.random.default_rng(0).random((4, 16, 16, 1)) > 0.5).astype(np.float32))
    self.assertEmpty(test_util.variables_without_gradient(model, images))
    encoded = model.encode(images)
    self.assertAllClose(model.quantizer.lookup(encoded.codes), encoded.quantized,
                        atol=1e-5)

  def test_off_by_default_and_in_old_records(self):
    config = test_util.smoke_config(cosine_dim=8)
    self.assertEqual(config.quantizer.cosine_dim, 8)
    record = config.to_record()
    del record["cosine_dim"]
    self.assertEqual(config_lib.Config.from_record(record).quantizer.cosine_dim, 0)
    self.assertIsInstance(test_util.tiny_vqvae((16, 16, 1)).quantizer,
                          ema_lib.VectorQuantizerEMA)

  @parameterized.parameters(keras_layers.VectorQuantizerEMALayer,
                            keras_layers.VectorQuantizerLossLayer)
  def test_keras_layer_codes_are_unit_rows(self, layer_class):
    layer = layer_class(_K, _DIM, cosine=True)
    layer.build((None, _DIM))
    inputs = _normal((8, _DIM), 2)
    out = layer.quantizer_output(inputs, training=True)
    book = _unit(layer.codebook.numpy().astype(np.float64))
    self.assertAllClose(layer.lookup(out.codes), book[out.codes.numpy()], atol=1e-6)
    self.assertTrue(layer_class.from_config(layer.get_config()).get_config()["cosine"])


if __name__ == "__main__":
  tf.test.main()
