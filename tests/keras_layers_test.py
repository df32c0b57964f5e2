"""The Keras VQ layers in the uses they are for: model.fit, .keras files, MirroredStrategy.

Shapes, dtypes, straight-through, codes, XLA, checkpoints and replica equality of
the layers' quantization: quantizer_contract_test.py.
"""

import os

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tfp_vqvae.keras import layers as keras_layers
from tfp_vqvae.quantizers import codebook_init
from tfp_vqvae.quantizers import ema as ema_lib
from tfp_vqvae.quantizers import loss as quantizer_loss
import keras_layers_mirrored as mirrored_lib
import test_util

_KINDS = [("ema", "ema"), ("loss", "loss")]
_MODULES = {"ema": ema_lib.VectorQuantizerEMA,
            "loss": quantizer_loss.VectorQuantizerLoss}


def _fitted(kind, epochs, **options):
  """(model, history) of the tiny model with a `kind` layer fitted on 64 images."""
  model = mirrored_lib.tiny_model(
      mirrored_lib.LAYERS[kind](mirrored_lib.K, mirrored_lib.D, **options))
  model.compile(optimizer=keras.optimizers.Adam(0.01),
                loss=keras.losses.BinaryCrossentropy(from_logits=True))
  images = mirrored_lib.random_images(64)
  history = model.fit(images, images, batch_size=16, epochs=epochs, shuffle=False,
                      verbose=0).history["loss"]
  return model, history


class KerasLayersTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*_KINDS)
  def test_layer_computes_what_the_module_computes(self, kind):
    # One math for both: the same options give the same bits.
    options = dict(seed=7, initializer=codebook_init.KMeansInit(iterations=2))
    layer = mirrored_lib.LAYERS[kind](8, 3, **options)
    module = _MODULES[kind](8, 3, **options)
    rng = np.random.default_rng(0)
    for _ in range(3):
      inputs = rng.normal(size=(4, 5, 5, 3)).astype(np.float32)
      got = layer.quantizer_output(inputs, training=True)
      want = module(inputs, training=True)
      for a, b in zip(got, want):
        self.assertAllEqual(a, b)
    # Weights named as the module's variables, holding the same values.
    self.assertCountEqual([w.name for w in layer.weights],
                          [v.name.split("/")[-1].split(":")[0] for v in module.variables])
    for weight in layer.weights:
      self.assertAllEqual(weight, getattr(module, weight.name))

  @parameterized.named_parameters(*_KINDS)
  def test_call_returns_quantized_and_adds_the_mean_loss(self, kind):
    layer = mirrored_lib.LAYERS[kind](8, 3, commitment_cost=0.5)
    inputs = np.random.default_rng(1).normal(size=(4, 5, 5, 3)).astype(np.float32)
    layer(inputs, training=True)  # The first training call sets the codebook.
    out = layer.quantizer_output(inputs)
    quantized = layer(inputs)
    self.assertAllEqual(quantized, out.quantized)
    # One loss: the per-example loss (summed over 5 * 5 * 3 entries), averaged.
    self.assertLen(layer.losses, 1)
    self.assertAllClose(layer.losses[0], np.mean(out.commitment_loss) / 75, rtol=1e-6)

  @parameterized.named_parameters(*_KINDS)
  def test_fit_lowers_the_loss_and_uses_several_codes(self, kind):
    model, history = _fitted(kind, epochs=3)
    self.assertLess(history[-1], 0.95 * history[0])
    layer = model.layers[2]
    self.assertEqual(int(layer.num_updates.numpy()), 3 * 4)  # epochs * steps
    encoder = model.layers[1]
    codes = layer.quantizer_output(encoder(mirrored_lib.random_images(64))).codes
    self.assertGreater(len(np.unique(codes.numpy())), 1)

  @parameterized.named_parameters(*_KINDS)
  def test_saved_and_loaded_as_keras_file(self, kind):
    model, _ = _fitted(kind, epochs=1, initializer=codebook_init.KMeansInit(3))
    path = os.path.join(self.get_temp_dir(), f"{kind}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    images = mirrored_lib.random_images(16, seed=1)
    self.assertAllEqual(loaded.predict(images, verbose=0),
                        model.predict(images, verbose=0))
    layer, restored = model.layers[2], loaded.layers[2]
    self.assertIsInstance(restored, type(layer))
    for a, b in zip(restored.weights, layer.weights):
      self.assertAllEqual(a, b, msg=b.path)
    self.assertEqual(restored.get_config(), layer.get_config())
    self.assertEqual(restored.get_config()["initializer"]["config"], {"iterations": 3})
    # Training resumes the saved codebook (no second first-batch initialisation).
    loaded.fit(images, images, batch_size=16, epochs=1, verbose=0)
    self.assertEqual(int(restored.num_updates.numpy()), 5)

  @parameterized.named_parameters(*_KINDS)
  def test_mirrored_fit_keeps_one_codebook_equal_to_one_device(self, kind):
    report = test_util.run_json_program("keras_layers_mirrored.py")[kind]
    self.assertEqual(report["updates"], 8)
    # Both replicas hold the same weights, codebook included.
    self.assertTrue(report["replicas_equal"], report)
    # Equal to a one-device fit on the same global batches up to the order of float
    # sums (gradients and code statistics all-reduced over two halves instead of
    # summed over one batch): a few float32 ulps (1.2e-7 relative) a step, far below
    # what a wrong first-batch row, a missing replica's statistics or a double-counted
    # loss would change (O(1)).
    self.assertLess(report["codebook_difference"], 1e-5, report)
    self.assertLess(report["weights_difference"], 1e-5, report)
    # Keras reports the same loss: each replica counts its own quantizer loss once.
    self.assertAllClose(report["mirrored_history"], report["single_history"],
                        rtol=1e-5)


if __name__ == "__main__":
  tf.test.main()
