"""Tests of residual vector quantization against a NumPy reference."""

import numpy as np
import tensorflow as tf

from tfp_vqvae.quantizers import ema as ema_lib
from tfp_vqvae.quantizers import loss as quantizer_loss
from tfp_vqvae.quantizers import residual as residual_quantizer


def _numpy_nearest(vectors, codebook):
  return ((vectors[:, None, :] - codebook[None]) ** 2).sum(-1).argmin(1)


def _ema_stage(codebook, name):
  stage = ema_lib.VectorQuantizerEMA(*codebook.shape, commitment_cost=0.25,
                                           name=name)
  stage.codebook.assign(codebook)
  stage.ema_sum.assign(codebook)
  stage.ema_count.assign(np.ones(len(codebook), np.float32))
  stage.initialized.assign(True)
  return stage


class ResidualQuantizerTest(tf.test.TestCase):

  def test_losses_and_counts_match_numpy_residual_coding(self):
    # Shapes, dtypes, codes, lookup, tf.function and XLA: quantizer_contract_test.py.
    rng = np.random.default_rng(0)
    codebooks = [rng.normal(size=(8, 3)).astype(np.float32),
                 0.3 * rng.normal(size=(8, 3)).astype(np.float32)]
    quantizer = residual_quantizer.ResidualQuantizer(
        [_ema_stage(c, f"stage_{i}") for i, c in enumerate(codebooks)])
    inputs = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    out = quantizer(inputs)
    flat = inputs.reshape(-1, 3)
    first = _numpy_nearest(flat, codebooks[0])
    residual = flat - codebooks[0][first]
    second = _numpy_nearest(residual, codebooks[1])
    total = codebooks[0][first] + codebooks[1][second]
    commitment = (((flat - codebooks[0][first]) ** 2).reshape(2, -1).sum(1)
                  + ((residual - codebooks[1][second]) ** 2).reshape(2, -1).sum(1))
    self.assertAllClose(out.commitment_loss, 0.25 * commitment, rtol=1e-5)
    counts = np.stack([np.bincount(c, minlength=8) for c in (first, second)])
    self.assertAllEqual(out.code_counts, counts)
    self.assertAllClose(out.usage, (counts > 0).mean(1))
    # Two stages code the inputs better than the first alone.
    self.assertLess(((flat - total) ** 2).sum(), ((flat - codebooks[0][first]) ** 2).sum())

  def test_every_stage_commitment_reaches_the_inputs(self):
    rng = np.random.default_rng(1)
    codebooks = [rng.normal(size=(4, 2)).astype(np.float32) for _ in range(2)]
    quantizer = residual_quantizer.ResidualQuantizer(
        [_ema_stage(c, f"s{i}") for i, c in enumerate(codebooks)])
    inputs = tf.constant(rng.normal(size=(5, 2)).astype(np.float32))
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      commitment = tf.reduce_sum(quantizer(inputs).commitment_loss)
    # r_1 = z - sg(e_0): beta * (||z - e_0||^2 + ||r_1 - e_1||^2) pulls z by both.
    x = inputs.numpy()
    e0 = codebooks[0][_numpy_nearest(x, codebooks[0])]
    e1 = codebooks[1][_numpy_nearest(x - e0, codebooks[1])]
    self.assertAllClose(tape.gradient(commitment, inputs),
                        0.25 * 2 * ((x - e0) + (x - e0 - e1)), rtol=1e-5, atol=1e-6)

  def test_training_updates_every_stage_with_its_own_seed(self):
    rng = np.random.default_rng(2)
    quantizer = residual_quantizer.ResidualQuantizer(
        [quantizer_loss.VectorQuantizerLoss(6, 2, name=f"s{i}") for i in range(2)])
    inputs = rng.normal(size=(40, 2)).astype(np.float32)
    quantizer(inputs, training=True, seed=[1, 2])
    first, second = (stage.codebook.numpy() for stage in quantizer.stages)
    self.assertTrue(all(stage.initialized.numpy() for stage in quantizer.stages))
    # Stage 0 starts from encoder outputs, stage 1 from residuals: different scales.
    self.assertGreater(np.abs(first).mean(), np.abs(second).mean())

  def test_bad_stages_raise(self):
    with self.assertRaisesRegex(ValueError, ">= 2 stages"):
      residual_quantizer.ResidualQuantizer([ema_lib.VectorQuantizerEMA(4, 2)])
    with self.assertRaisesRegex(ValueError, "same K and D"):
      residual_quantizer.ResidualQuantizer([ema_lib.VectorQuantizerEMA(4, 2),
                                            ema_lib.VectorQuantizerEMA(5, 2)])


if __name__ == "__main__":
  tf.test.main()
