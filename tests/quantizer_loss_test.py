"""Tests of the loss-trained vector quantizer against NumPy references."""

import numpy as np
import tensorflow as tf

from tfp_vqvae.quantizers import codebook_init
from tfp_vqvae.quantizers import loss as quantizer_loss


def _numpy_nearest(vectors, codebook):
  return ((vectors[:, None, :] - codebook[None]) ** 2).sum(-1).argmin(1)


def _initialised(codebook, commitment_cost=0.25):
  quantizer = quantizer_loss.VectorQuantizerLoss(*codebook.shape,
                                                 commitment_cost=commitment_cost)
  quantizer.codebook.assign(codebook)
  quantizer.initialized.assign(True)
  return quantizer


class VectorQuantizerLossTest(tf.test.TestCase):

  def test_loss_and_counts_match_numpy(self):
    # Shapes, dtypes, codes, tf.function and XLA: quantizer_contract_test.py.
    rng = np.random.default_rng(0)
    codebook = rng.normal(size=(10, 4)).astype(np.float32)
    inputs = rng.normal(size=(3, 5, 5, 4)).astype(np.float32)
    quantizer = _initialised(codebook, commitment_cost=0.3)
    out = quantizer(inputs, training=True, seed=[0, 0])
    flat = inputs.reshape(-1, 4)
    codes = _numpy_nearest(flat, codebook)
    per_example = ((flat - codebook[codes]) ** 2).reshape(3, -1).sum(1)
    # Codebook loss + beta * commitment loss: equal values, different gradients.
    self.assertAllClose(out.commitment_loss, 1.3 * per_example, rtol=1e-5)
    self.assertAllEqual(out.code_counts, np.bincount(codes, minlength=10))
    self.assertAllClose(quantizer.codebook, codebook)  # no update besides gradients

  def test_gradients_split_between_codebook_and_encoder(self):
    rng = np.random.default_rng(1)
    codebook = rng.normal(size=(6, 3)).astype(np.float32)
    quantizer = _initialised(codebook, commitment_cost=0.25)
    inputs = tf.constant(rng.normal(size=(8, 3)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(inputs)
      out = quantizer(inputs, training=True, seed=[0, 0])
      vq_loss = tf.reduce_sum(out.commitment_loss)
    x = inputs.numpy()
    codes = _numpy_nearest(x, codebook)
    # d/dz of beta ||z - sg(e)||^2 and d/de of ||sg(z) - e||^2, summed per code.
    self.assertAllClose(tape.gradient(vq_loss, inputs), 0.5 * (x - codebook[codes]),
                        rtol=1e-5, atol=1e-6)
    expected = np.zeros_like(codebook)
    np.add.at(expected, codes, 2 * (codebook[codes] - x))
    # tf.gather's gradient is IndexedSlices: densify it.
    self.assertAllClose(tf.convert_to_tensor(tape.gradient(vq_loss, quantizer.codebook)),
                        expected, rtol=1e-5, atol=1e-6)

  def test_first_training_call_initialises_from_the_batch(self):
    rng = np.random.default_rng(2)
    inputs = rng.normal(size=(30, 2)).astype(np.float32)
    quantizer = quantizer_loss.VectorQuantizerLoss(8, 2)
    quantizer(inputs, training=False)
    self.assertFalse(quantizer.initialized.numpy())
    seed = tf.constant([3, 4])
    quantizer(inputs, training=True, seed=seed)
    rows = tf.random.stateless_uniform([8], seed=seed, maxval=30, dtype=tf.int32)
    self.assertAllClose(quantizer.codebook, inputs[rows.numpy()])
    # Later calls keep the codebook.
    quantizer(inputs * 3, training=True, seed=[5, 6])
    self.assertAllClose(quantizer.codebook, inputs[rows.numpy()])

  def test_uniform_initializer(self):
    quantizer = quantizer_loss.VectorQuantizerLoss(
        16, 4, initializer=codebook_init.UniformInit())
    quantizer(tf.ones([5, 4]) * 7.0, training=True, seed=[0, 1])
    codebook = quantizer.codebook.numpy()
    self.assertAllInRange(codebook, -1 / 16, 1 / 16)
    self.assertGreater(np.std(codebook), 0.01)

  def test_bad_arguments_raise(self):
    with self.assertRaisesRegex(ValueError, "num_embeddings"):
      quantizer_loss.VectorQuantizerLoss(0, 2)
    with self.assertRaisesRegex(ValueError, "commitment_cost"):
      quantizer_loss.VectorQuantizerLoss(2, 2, commitment_cost=-1.0)
    quantizer = quantizer_loss.VectorQuantizerLoss(4, 3)
    # No seed needed: each training call draws its own from (seed, num_updates).
    quantizer(tf.zeros([2, 3]), training=True)
    quantizer(tf.zeros([2, 3]), training=True)
    self.assertEqual(int(quantizer.num_updates.numpy()), 2)


if __name__ == "__main__":
  tf.test.main()
