"""SimVQQuantizer against NumPy: its codebook is the frozen one through the learned
map, its loss the loss-trained codebook's, and a training step moves every code
(the ones no input picked too) while the frozen codebook stays as drawn.

The contract every quantizer meets (shapes, straight-through and rotation-trick
gradients, codes against NumPy, tf.function and XLA, checkpoints, two replicas) is
tested in quantizer_contract_test.py, which has SimVQ members; training through the
trainer and the SavedModel round trip in grid_quantizers_model_test.py.
"""

import numpy as np
import tensorflow as tf

from tfp_vqvae.quantizers import simvq
import quantizer_family as family

_K, _D = 16, 6


def _inputs(seed=0, shape=(3, 2, 2, _D)):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _numpy_codebook(quantizer):
  frozen = quantizer.frozen_codebook.numpy().astype(np.float64)
  return family.numpy_linear(quantizer.transform, frozen)


class SimVQQuantizerTest(tf.test.TestCase):

  def test_codebook_is_the_frozen_codebook_through_the_map(self):
    quantizer = simvq.SimVQQuantizer(_K, _D, seed=3)
    self.assertAllClose(quantizer.codebook, _numpy_codebook(quantizer), atol=1e-6)
    self.assertAllClose(quantizer.codebooks[0], _numpy_codebook(quantizer), atol=1e-6)
    inputs = _inputs()
    codes, total = family.numpy_codes(inputs.reshape(-1, _D), [_numpy_codebook(quantizer)])
    out = quantizer(inputs)
    self.assertAllEqual(tf.reshape(out.codes, [-1]), codes[:, 0])
    self.assertAllClose(tf.reshape(out.quantized, [-1, _D]), total, atol=1e-5)
    self.assertAllClose(quantizer.lookup(out.codes), out.quantized, atol=1e-6)

  def test_frozen_codebook_is_drawn_from_n_0_1_over_d_by_the_seed(self):
    wide = simvq.SimVQQuantizer(4096, 64, seed=1)
    self.assertAllClose(np.std(wide.frozen_codebook.numpy()), 64**-0.5, rtol=0.02)
    self.assertAllClose(np.mean(wide.frozen_codebook.numpy()), 0.0, atol=2e-3)
    same, other = (simvq.SimVQQuantizer(_K, _D, seed=seed) for seed in (3, 4))
    again = simvq.SimVQQuantizer(_K, _D, seed=3)
    self.assertAllEqual(same.frozen_codebook, again.frozen_codebook)
    self.assertAllEqual(same.transform.kernel, again.transform.kernel)
    self.assertNotAllClose(same.frozen_codebook, other.frozen_codebook)
    self.assertCountEqual([v.name for v in same.trainable_variables],
                          ["quantizer/transform/kernel:0", "quantizer/transform/bias:0"])

  def test_loss_is_codebook_plus_beta_commitment_per_example(self):
    quantizer = simvq.SimVQQuantizer(_K, _D, commitment_cost=0.4, seed=3)
    inputs = _inputs(seed=1)
    _, total = family.numpy_codes(inputs.reshape(-1, _D), [_numpy_codebook(quantizer)])
    squares = ((inputs.reshape(-1, _D) - total) ** 2).reshape(3, -1).sum(axis=1)
    out = quantizer(inputs, training=True)
    self.assertAllClose(out.commitment_loss, 1.4 * squares, rtol=1e-5)
    self.assertEqual(int(quantizer.num_updates.numpy()), 1)

  def test_a_step_moves_every_code_and_not_the_frozen_codebook(self):
    quantizer = simvq.SimVQQuantizer(_K, _D, seed=3)
    frozen, before = quantizer.frozen_codebook.numpy(), quantizer.codebook.numpy()
    inputs = 3.0 + _inputs(seed=2)  # far from every code: only a few are picked
    optimizer = tf.keras.optimizers.SGD(0.05)
    with tf.GradientTape() as tape:
      out = quantizer(inputs, training=True)
      loss = tf.reduce_sum(out.commitment_loss)
    variables = quantizer.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    unused = np.setdiff1d(np.arange(_K), out.codes.numpy().ravel())
    self.assertNotEmpty(unused)
    moved = np.linalg.norm(quantizer.codebook.numpy() - before, axis=1)
    self.assertAllGreater(moved[unused], 1e-3)
    self.assertAllEqual(quantizer.frozen_codebook, frozen)

  def test_bad_arguments_raise(self):
    for args, message in (((0, _D), "num_embeddings"), ((_K, 0), "embedding_dim"),
                          ((_K, _D, -1.0), "commitment_cost")):
      with self.assertRaisesRegex(ValueError, message):
        simvq.SimVQQuantizer(*args)


if __name__ == "__main__":
  tf.test.main()
