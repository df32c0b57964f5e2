"""Fits a tiny conv -> VQ layer -> conv keras.Model on one device and under
MirroredStrategy over 2 logical CPUs, on the same global batches, and prints one
JSON line comparing them:

  {kind: {"replicas_equal": ..., "codebook_difference": ..., "weights_difference":
          ..., "single_history": [...], "mirrored_history": [...], "updates": ...}}

with the largest difference between the mirrored and the one-device weights relative
to each weight's largest magnitude (at least 1), for the codebook and for all.

Run by tests/keras_layers_test.py in a fresh process: logical devices must be
configured before the TensorFlow runtime starts. `tiny_model` and `random_images`
are that test's model and data too.
"""

import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

# The package of this checkout, not an installed one.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfp_vqvae.keras import layers as keras_layers  # pylint: disable=g-import-not-at-top,wrong-import-position

IMAGE_SHAPE = (8, 8, 1)
K, D = 16, 4
LAYERS = {"ema": keras_layers.VectorQuantizerEMALayer,
          "loss": keras_layers.VectorQuantizerLossLayer}
_GLOBAL_BATCH, _EPOCHS = 16, 2


def random_images(count: int, seed: int = 0) -> np.ndarray:
  """`count` random binary images of IMAGE_SHAPE, float32."""
  rng = np.random.default_rng(seed)
  return (rng.uniform(size=(count,) + IMAGE_SHAPE) > 0.5).astype(np.float32)


def tiny_model(layer: keras.layers.Layer) -> keras.Model:
  """Conv2D (D channels) -> `layer` -> Conv2D (1 channel of logits), with seeded
  initial weights: layers[1] is the encoder, layers[2] the VQ layer."""
  inputs = keras.Input(IMAGE_SHAPE)
  z_e = keras.layers.Conv2D(D, 3, padding="same",
                            kernel_initializer=keras.initializers.GlorotUniform(1))(inputs)
  z_q = layer(z_e)
  logits = keras.layers.Conv2D(1, 3, padding="same",
                               kernel_initializer=keras.initializers.GlorotUniform(2))(z_q)
  return keras.Model(inputs, logits)


def _fit(strategy, kind):
  with strategy.scope():
    model = tiny_model(LAYERS[kind](K, D))
    # Plain SGD: replica counts then differ only by the order of float sums.
    model.compile(optimizer=keras.optimizers.SGD(0.5),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
  images = random_images(4 * _GLOBAL_BATCH)
  dataset = tf.data.Dataset.from_tensor_slices((images, images)).batch(_GLOBAL_BATCH)
  history = model.fit(dataset, epochs=_EPOCHS, verbose=0).history["loss"]
  return model, history


def _compare(kind, mirrored_strategy):
  single, single_history = _fit(tf.distribute.OneDeviceStrategy("/cpu:0"), kind)
  mirrored, mirrored_history = _fit(mirrored_strategy, kind)
  replicas_equal, codebook_difference, weights_difference = True, 0.0, 0.0
  for one, two in zip(single.weights, mirrored.weights):
    replicas = [value.numpy() for value in two.value.values]
    assert len(replicas) == 2, two.path
    # Relative to the weight's scale (EMA sums grow with the batch).
    want = one.numpy().astype(np.float64)
    difference = float(np.abs(replicas[0] - want).max() / max(1.0, np.abs(want).max()))
    replicas_equal &= bool(np.array_equal(replicas[0], replicas[1]))
    if one.path.endswith("/codebook"):
      codebook_difference = difference
    weights_difference = max(weights_difference, difference)
  return dict(replicas_equal=replicas_equal, codebook_difference=codebook_difference,
              weights_difference=weights_difference, single_history=single_history,
              mirrored_history=mirrored_history,
              updates=int(mirrored.layers[2].num_updates.numpy()))


def main():
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  # One MirroredStrategy for both layers: several in one process can mismatch
  # their collective keys.
  strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  print(json.dumps({kind: _compare(kind, strategy) for kind in LAYERS}))


if __name__ == "__main__":
  main()
