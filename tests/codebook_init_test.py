"""Tests of codebook initialisation: k-means against NumPy, replica consistency."""

import os
import subprocess
import sys
import textwrap
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfp_vqvae import builder
from tfp_vqvae import codebook_init
from tfp_vqvae import quantizer as quantizer_lib


def _numpy_lloyd(points, centroids, iterations):
  centroids = centroids.copy()
  for _ in range(iterations):
    codes = ((points[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    for k in range(len(centroids)):
      if np.any(codes == k):
        centroids[k] = points[codes == k].mean(0)
  return centroids


class KMeansTest(tf.test.TestCase):

  def test_lloyd_matches_numpy(self):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(300, 3)).astype(np.float32)
    start = points[:7] + 5.0  # far off: some centroids may end up empty
    expected = _numpy_lloyd(points, start, 4)
    self.assertAllClose(codebook_init.kmeans(points, start, 4), expected, rtol=1e-4,
                        atol=1e-5)

  def test_kmeans_finds_separated_clusters(self):
    rng = np.random.default_rng(1)
    centres = np.array([[-5, 0], [0, 5], [5, 0], [0, -5]], np.float32)
    labels = np.arange(400) % 4
    points = (centres[labels] + 0.1 * rng.normal(size=(400, 2))).astype(np.float32)
    # Started from two points of cluster 0 and none of cluster 3.
    start = points[[0, 4, 1, 2]]
    found = codebook_init.kmeans(points, start, 10).numpy()
    distances = ((found[:, None] - centres[None]) ** 2).sum(-1)
    self.assertLess(distances.min(0)[:3].max(), 0.01)

  def test_ema_quantizer_starts_from_kmeans_of_the_first_batch(self):
    rng = np.random.default_rng(2)
    k, d = 4, 2
    inputs = rng.normal(size=(64, d)).astype(np.float32)
    initializer = codebook_init.KMeansInit(iterations=3)
    quantizer = quantizer_lib.VectorQuantizerEMA(k, d, decay=0.5, epsilon=1e-12,
                                                 dead_code_threshold=0.0,
                                                 initializer=initializer)
    seed = tf.constant([3, 4])
    out = quantizer(inputs, training=True, seed=seed)
    # The documented rule: the pool is pool_size(K) rows of the global batch drawn
    # with fold_in(seed, 1), the start the candidates of a quantizer without one.
    pool_rows = tf.random.stateless_uniform(
        [codebook_init.pool_size(k)], seed=tf.random.experimental.stateless_fold_in(seed, 1),
        maxval=64, dtype=tf.int32).numpy()
    start_rows = tf.random.stateless_uniform([k], seed=seed, maxval=64,
                                             dtype=tf.int32).numpy()
    expected = _numpy_lloyd(inputs[pool_rows], inputs[start_rows], 3)
    codes = ((inputs[:, None] - expected[None]) ** 2).sum(-1).argmin(1)
    self.assertAllClose(out.quantized, expected[codes], rtol=1e-4, atol=1e-5)

  def test_pool_size_and_bad_arguments(self):
    self.assertEqual(codebook_init.pool_size(512), 4096)
    self.assertEqual(codebook_init.pool_size(4096), 16384)
    self.assertEqual(codebook_init.pool_size(20000), 20000)
    with self.assertRaisesRegex(ValueError, "iterations must be an integer >= 0"):
      codebook_init.KMeansInit(iterations=-1)
    with self.assertRaisesRegex(ValueError, "Unknown codebook_init 'random'; expected "
                                "one of data, kmeans, uniform"):
      builder.build_quantizer(mock.Mock(quantizer="ema", codebook_init="random"))


_MIRRORED_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, {tests_dir!r})
    import test_util
    from tfp_vqvae import codebook_init
    from tfp_vqvae import quantizer as quantizer_lib
    from tfp_vqvae import quantizer_loss
    from tfp_vqvae import residual_quantizer

    K, D, GLOBAL = 16, 4, 64
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(GLOBAL, D)).astype(np.float32) for _ in range(3)]

    def run(strategy, kind):
      initializer = codebook_init.KMeansInit()

      def make_quantizer():
        if kind == "ema":
          stages = [quantizer_lib.VectorQuantizerEMA(K, D, decay=0.8, name=f"s{{i}}",
                                                     initializer=initializer)
                    for i in range(2)]
        else:
          stages = [quantizer_loss.VectorQuantizerLoss(K, D, name=f"s{{i}}",
                                                       initializer=initializer)
                    for i in range(2)]
        return residual_quantizer.ResidualQuantizer(stages)

      quantizer = test_util.train_quantizer(strategy, make_quantizer, batches)
      return [stage.codebook for stage in quantizer.stages]

    single = run(tf.distribute.OneDeviceStrategy("/cpu:0"), sys.argv[1])
    mirrored = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), sys.argv[1])
    for one, two in zip(single, mirrored):
      replicas = [v.numpy() for v in two.values]
      np.testing.assert_array_equal(replicas[0], replicas[1])
      np.testing.assert_allclose(replicas[0], one.numpy(), atol=1e-5)
    print("MIRRORED_OK")
""").format(tests_dir=os.path.dirname(os.path.abspath(__file__)))


class MirroredInitTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("ema", "loss")
  def test_two_replicas_keep_the_single_device_residual_codebooks(self, kind):
    # Logical devices must be set before the runtime starts, and two mirrored
    # strategies in one process can mismatch collective keys: a fresh process each.
    result = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT, kind],
                            capture_output=True, text=True, timeout=300)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn("MIRRORED_OK", result.stdout)


if __name__ == "__main__":
  tf.test.main()
