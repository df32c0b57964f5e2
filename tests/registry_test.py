"""The registry seam: a quantizer defined and registered in this file only trains
through `train_and_evaluate`, exports and serves, with no package file touched."""

import dataclasses
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.configs import quantizers as quantizer_options
from tfp_vqvae.configs import registry
from tfp_vqvae.quantizers import base
from tfp_vqvae.serving import client as serving_client
from tfp_vqvae.serving import export as export_lib
from tfp_vqvae.training import checkpoints
import prediction_server
import test_util


class FrozenCodebookQuantizer(base.SingleCodebook):
  """K random unit-normal codes that never train: the nearest one, straight through."""

  def __init__(self, num_embeddings, embedding_dim, commitment_cost, seed, name=None):
    super().__init__(name=name)
    self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
    self.commitment_cost = commitment_cost
    self.codebook = tf.Variable(
        tf.random.stateless_normal([num_embeddings, embedding_dim], [seed, 7]),
        trainable=False, name="codebook")

  def _quantize(self, inputs, training, seed):
    del training, seed  # Nothing to update, nothing random.
    inputs, vectors = base.flatten_inputs(inputs, self.embedding_dim)
    codes = base.nearest_codes(vectors, self.codebook)
    nearest = tf.gather(self.codebook, codes)
    squared = tf.reduce_sum(tf.square(vectors - tf.stop_gradient(nearest)), axis=1)
    loss = self.commitment_cost * tf.reduce_sum(
        tf.reshape(squared, [tf.shape(inputs)[0], -1]), axis=1)
    counts = tf.math.bincount(codes, minlength=self.num_embeddings,
                              maxlength=self.num_embeddings, dtype=tf.float32)
    return base.straight_through_output(inputs, vectors, nearest, codes, loss, counts)


@quantizer_options.QUANTIZERS.register("frozen_test")
@dataclasses.dataclass(frozen=True)
class FrozenCodebookOptions(quantizer_options.CodebookOptions):

  def build(self, embedding_dim, *, seed, name, reduction_group_size):
    del reduction_group_size
    return FrozenCodebookQuantizer(self.num_embeddings, embedding_dim,
                                   self.commitment_cost, seed, name=name)


class RegistryTest(tf.test.TestCase):

  def test_unknown_and_duplicate_names(self):
    with self.assertRaisesRegex(ValueError, "Unknown quantizer 'vq'; registered: ema, "
                                "loss, .*frozen_test"):
      config_lib.Config.from_fields(quantizer="vq")
    kinds = registry.Registry("widget")

    @kinds.register("a")
    class A:  # pylint: disable=unused-variable
      pass

    with self.assertRaisesRegex(ValueError, "widget 'a' is registered already, by "):
      kinds.register("a")(type("B", (), {}))
    self.assertEqual(kinds.names(), ("a",))

  def test_a_quantizer_of_this_file_trains_exports_and_serves(self):
    root = tempfile.mkdtemp(prefix="registry_test_")
    self.addCleanup(shutil.rmtree, root, ignore_errors=True)
    model_dir = os.path.join(root, "model")
    metrics = test_util.train_tiny_model(model_dir, quantizer="frozen_test",
                                         num_embeddings=6)
    self.assertTrue(np.isfinite(metrics["neg_elbo_nats"]))
    model, config, _ = checkpoints.load_vqvae(model_dir)
    self.assertIsInstance(config.quantizer, FrozenCodebookOptions)
    self.assertIsInstance(model.quantizer, FrozenCodebookQuantizer)
    self.assertEqual(model.quantizer.codebook.shape[0], 6)

    export_dir = export_lib.export_saved_model(
        model_dir, os.path.join(root, "export"), warmup_batch_sizes=(1,))
    images = np.random.default_rng(0).integers(
        0, 256, size=(1,) + tuple(model.image_shape), dtype=np.uint8)
    expected = model.encode(images.astype(np.float32) / 255.0).codes.numpy()
    with prediction_server.PredictionServer(export_dir) as server:
      with serving_client.GrpcClient(server.address) as client:
        served = client.encode(images)
    self.assertAllEqual(served["codes"], expected)


if __name__ == "__main__":
  tf.test.main()
