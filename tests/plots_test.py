"""Tests of the NumPy-drawn charts."""

import numpy as np
import tensorflow as tf

from tfp_vqvae import figures
from tfp_vqvae import plots


class PlotsTest(tf.test.TestCase):

  def test_smooth_is_trailing_mean(self):
    values = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    expected = [1.0, 2.0, 3.0, 5.0, 7.0]  # window 3, fewer points at the start
    self.assertAllClose(plots.smooth(values, 3), expected)

  def test_pca_matches_numpy_variances(self):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 5)) * np.array([5.0, 3.0, 0.1, 0.1, 0.1])
    projected = plots.pca_2d(vectors)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(vectors.T)))[::-1]
    self.assertAllClose(projected.var(0, ddof=1), eigenvalues[:2], rtol=1e-6)

  def test_line_chart_draws_each_series(self):
    x = np.arange(50)
    chart = plots.line_chart([(x, 100.0 / (x + 1)), (x, np.full(50, 2.0))], log_y=True)
    self.assertEqual(chart.dtype, np.float32)
    for color in plots.LINE_COLORS[:2]:
      self.assertTrue(np.any(np.all(np.isclose(chart, color), axis=-1)), color)
    path = self.get_temp_dir() + "/chart.png"
    figures.write_png(path, figures.image_grid(chart[None], 1))
    # image_grid frames the chart with 2 pixels of grey.
    self.assertEqual(tf.io.decode_png(tf.io.read_file(path)).shape[:2],
                     (chart.shape[0] + 4, chart.shape[1] + 4))

  def test_usage_colors_mark_unused_codes(self):
    colors = plots.usage_colors([0, 1, 100])
    self.assertAllClose(colors[0], [0.85, 0.1, 0.1])
    self.assertGreater(colors[2, 0], colors[1, 0])  # frequent codes are brighter

  def test_code_colors_are_stable_and_distinct(self):
    colors = plots.code_colors(np.arange(16))
    self.assertAllInRange(colors, 0.0, 1.0)
    self.assertLen({tuple(np.round(c, 3)) for c in colors}, 16)
    self.assertAllEqual(plots.code_colors([[3]])[0, 0], colors[3])

  def test_upsample_nearest_any_size(self):
    grids = np.arange(3).reshape(1, 1, 3)
    self.assertAllEqual(figures.upsample_nearest(grids, (2, 7))[0],
                        [[0, 0, 0, 1, 1, 2, 2]] * 2)
    grids = np.arange(4).reshape(1, 2, 2)
    self.assertAllEqual(figures.upsample_nearest(grids, (4, 4))[0],
                        np.repeat(np.repeat(grids[0], 2, 0), 2, 1))


if __name__ == "__main__":
  tf.test.main()
