"""The rotation trick (Fifty et al. 2024) against the paper's rotation in NumPy:
the gradient sg(||q|| / ||e||) R^T g, degenerate vectors, forward values and
training identical to straight-through (dead codes re-seeded alike), the option
chosen by --rotation_trick and read back from a record without it.

The contract (shapes, tf.function, XLA, checkpoints, two replicas) is tested in
quantizer_contract_test.py, whose family has an EMA and a residual loss-trained
member with the rotation trick.
"""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.keras import layers as keras_layers
from tfp_vqvae.quantizers import base as quantizer_lib
from tfp_vqvae.quantizers import ema as ema_lib
from tfp_vqvae.quantizers import loss as quantizer_loss
import quantizer_family as family
import test_util

_K, _D = 6, 5
# A fast EMA whose unused codes die within a step.
_EMA = dict(decay=0.8, dead_code_threshold=0.3, seed=2)
_QUANTIZERS = {
    "ema": lambda **kw: ema_lib.VectorQuantizerEMA(_K, _D, **_EMA, **kw),
    "loss": lambda **kw: quantizer_loss.VectorQuantizerLoss(_K, _D, seed=2, **kw),
}


def _normal(shape, seed):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _gradient(function, inputs, weights):
  """The gradient of sum(function(inputs) * weights) to `inputs`."""
  inputs = tf.constant(inputs)
  with tf.GradientTape() as tape:
    tape.watch(inputs)
    total = tf.reduce_sum(function(inputs) * weights)
  return tape.gradient(total, inputs).numpy()


class RotationTrickTest(tf.test.TestCase, parameterized.TestCase):

  def test_rotated_value_and_gradient_match_numpy(self):
    vectors, nearest = _normal((20, _D), 0), _normal((20, _D), 1)
    weights = _normal((20, _D), 2)
    value = quantizer_lib.rotated(tf.constant(vectors), tf.constant(nearest))
    self.assertAllClose(value, nearest, rtol=1e-5, atol=1e-5)
    scale, rotations = family.numpy_rotation(vectors, nearest)
    # R maps e^ onto q^, and is orthogonal.
    directions = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    self.assertAllClose(scale * np.einsum("nij,nj->ni", rotations, vectors), nearest,
                        atol=1e-7)
    self.assertAllClose(np.einsum("nji,njk->nik", rotations, rotations),
                        np.broadcast_to(np.eye(_D), rotations.shape), atol=1e-7)
    self.assertAllClose(np.einsum("nij,nj->ni", rotations, directions),
                        nearest / np.linalg.norm(nearest, axis=1, keepdims=True),
                        atol=1e-7)
    want = scale * np.einsum("nji,nj->ni", rotations, weights)
    got = _gradient(lambda x: quantizer_lib.rotated(x, tf.constant(nearest)), vectors,
                    weights)
    self.assertAllClose(got, want, rtol=1e-5, atol=1e-5)
    # Unlike straight-through's, the gradient is not the incoming one.
    self.assertGreater(np.abs(got - weights).max(), 0.1)

  def test_degenerate_vectors(self):
    code = np.array([[3.0, 0.0, 4.0, 0.0, 0.0]], np.float32)
    vectors = np.concatenate([np.zeros_like(code), -2.0 * code, _normal((1, _D), 3)])
    nearest = np.concatenate([code, code, np.zeros_like(code)])
    weights = _normal((3, _D), 4)
    value = quantizer_lib.rotated(tf.constant(vectors), tf.constant(nearest))
    # (A zero vector's value is 0: only its gradient is used.)
    self.assertAllClose(value[1:], nearest[1:], atol=1e-6)
    got = _gradient(lambda x: quantizer_lib.rotated(x, tf.constant(nearest)), vectors,
                    weights)
    # A zero vector: straight through.
    self.assertAllClose(got[0], weights[0], atol=1e-6)
    # Antipodal: w = 0, R = I + 2 q^ e^^T (a reflection of e^'s line), scale 1/2.
    unit = code[0] / 5.0
    rotation = np.eye(_D) - 2.0 * np.outer(unit, unit)
    self.assertAllClose(got[1], 0.5 * rotation.T @ weights[1], atol=1e-6)
    # A zero code: its value is 0 whatever the vector, so no gradient.
    self.assertAllClose(got[2], np.zeros(_D), atol=1e-6)

  @parameterized.parameters("ema", "loss")
  def test_outputs_and_training_equal_straight_through(self, name):
    straight, rotation = _QUANTIZERS[name](), _QUANTIZERS[name](rotation_trick=True)
    self.assertFalse(straight.own_gradient)
    self.assertTrue(rotation.own_gradient)
    # After a spread first batch, batches around one point leave most codes unused:
    # the EMA re-seeds them (count 1) from the same vectors in both.
    batches = [_normal((4, 3, 3, _D), 0)] + [
        0.1 * _normal((4, 3, 3, _D), seed) + 2.0 for seed in (1, 2, 3)]
    weights = _normal((4, 3, 3, _D), 9)
    for step, batch in enumerate(batches):
      flat = batch.reshape(-1, _D)
      codebook = rotation.codebook.numpy()
      codes, _ = family.numpy_codes(flat, [codebook])
      scale, rotations = family.numpy_rotation(flat, codebook[codes[:, 0]])
      inputs = tf.constant(batch)
      with tf.GradientTape(persistent=True) as tape:
        tape.watch(inputs)
        want, got = straight(inputs, training=True), rotation(inputs, training=True)
        totals = [tf.reduce_sum(out.quantized * weights) for out in (want, got)]
      # Bit for bit the straight-through outputs and state.
      for a, b in zip(got, want):
        self.assertAllEqual(a, b)
      for a, b in zip(rotation.variables, straight.variables):
        self.assertAllEqual(a, b, msg=a.name)
      self.assertAllEqual(tape.gradient(totals[0], inputs), weights)
      if step:  # (The first call sets the codebook it codes with.)
        self.assertAllEqual(got.codes, codes.reshape(batch.shape[:-1]))
        self.assertAllClose(
            tf.reshape(tape.gradient(totals[1], inputs), [-1, _D]),
            scale * np.einsum("nji,nj->ni", rotations, weights.reshape(-1, _D)),
            rtol=1e-5, atol=1e-5, msg=f"step {step}")
    if name == "ema":
      self.assertIn(1.0, rotation.ema_count.numpy())

  @parameterized.parameters("ema", "loss")
  def test_chosen_by_flags_in_every_stage_and_off_in_old_records(self, name):
    config = test_util.smoke_config(quantizer=name, rotation_trick=True,
                                    num_quantizers=2)
    model = test_util.tiny_vqvae((16, 16, 1), quantizer=name, rotation_trick=True,
                                 num_quantizers=2)
    self.assertTrue(config.quantizer.rotation_trick)
    self.assertTrue(model.quantizer.own_gradient)
    self.assertTrue(all(stage.rotation_trick for stage in model.quantizer.stages))
    images = tf.constant(
        (np.random.default_rng(0).random((4, 16, 16, 1)) > 0.5).astype(np.float32))
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(model.loss_terms(images, training=True).loss)
    gradients = tape.gradient(loss, model.trainable_variables)
    self.assertTrue(all(np.all(np.isfinite(tf.convert_to_tensor(g))) for g in gradients
                        if g is not None))
    record = config.to_record()
    del record["rotation_trick"]
    self.assertFalse(config_lib.Config.from_record(record).quantizer.rotation_trick)
    self.assertFalse(test_util.smoke_config(quantizer=name).quantizer.rotation_trick)

  @parameterized.parameters(keras_layers.VectorQuantizerEMALayer,
                            keras_layers.VectorQuantizerLossLayer)
  def test_keras_layer_keeps_the_option_in_its_config(self, layer_class):
    layer = layer_class(_K, _D, rotation_trick=True)
    self.assertTrue(layer.get_config()["rotation_trick"])
    self.assertTrue(layer_class.from_config(layer.get_config()).get_config()[
        "rotation_trick"])
    self.assertFalse(layer_class(_K, _D).get_config()["rotation_trick"])


if __name__ == "__main__":
  tf.test.main()
