"""Tests of codebook initialisation: k-means against NumPy.

Replica consistency of every initialiser: quantizer_contract_test.py.
"""

import numpy as np
import tensorflow as tf

from tfp_vqvae.configs import quantizers as quantizer_options
from tfp_vqvae.quantizers import codebook_init
from tfp_vqvae.quantizers import ema as ema_lib


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
    quantizer = ema_lib.VectorQuantizerEMA(k, d, decay=0.5, epsilon=1e-12,
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
    with self.assertRaisesRegex(ValueError, "codebook_init='random': must be one of "
                                "data, kmeans, uniform"):
      quantizer_options.EMAOptions(codebook_init="random")


if __name__ == "__main__":
  tf.test.main()
