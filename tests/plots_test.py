"""Tests of the matplotlib charts: sizes, what they draw, no leaked figures."""

import gc
import os
from unittest import mock
import weakref

from matplotlib import colors
from matplotlib import pyplot
import numpy as np
import tensorflow as tf

from tfp_vqvae.training import figures
from tfp_vqvae.training import plots


def _has_color(image, name, tolerance=12):
  """Whether a pixel of uint8 `image` is within `tolerance` of colour `name`."""
  target = np.array(colors.to_rgb(name)) * 255
  return bool(np.any(np.all(np.abs(image.astype(float) - target) <= tolerance, axis=-1)))


def _drawn(chart, *args, **kwargs):
  """(image, matplotlib Figure) of `chart(*args, **kwargs)`."""
  drawn = []
  render = plots.render

  def render_and_keep(fig):
    drawn.append(fig)
    return render(fig)

  with mock.patch.object(plots, "render", render_and_keep):
    image = chart(*args, **kwargs)
  (fig,) = drawn
  return image, fig


class PlotsTest(tf.test.TestCase):

  def test_smooth_is_a_centred_mean_that_shrinks_at_the_ends(self):
    values = np.array([1.0, 3.0, 5.0, 7.0, 9.0, 2.0])
    expected = [3.0, 4.0, 5.0, 5.2, 23 / 4, 6.0]  # half width 2: 5 points inside
    self.assertAllClose(plots.smooth(values, 2), expected)
    self.assertAllClose(plots.smooth(values, 0), values)
    self.assertEmpty(plots.smooth([], 1))

  def test_training_curve_is_an_rgb_chart_and_writes_a_png(self):
    steps = np.arange(1, 101)
    chart, fig = _drawn(plots.training_curve, steps, 100.0 / steps, "NMSE", "nmse",
                        log_y=True)
    self.assertEqual(chart.dtype, np.uint8)
    self.assertEqual(chart.shape, (450, 800, 3))
    self.assertTrue(_has_color(chart, "tab:blue"))
    path = os.path.join(self.get_temp_dir(), "chart.png")
    figures.write_png(path, chart)
    self.assertAllEqual(tf.io.decode_png(tf.io.read_file(path)), chart)
    (axes,) = fig.axes
    self.assertEqual((axes.get_title(), axes.get_xlabel(), axes.get_ylabel()),
                     ("NMSE", "training step", "nmse"))
    self.assertEqual(axes.get_yscale(), "log")
    labels = [label.get_text() for minor in (False, True)
              for label in axes.yaxis.get_ticklabels(minor=minor) if label.get_text()]
    self.assertContainsSubset(["1", "10", "100"], labels)  # plain decimals, not 1e+02
    self.assertGreater(len(labels), 3)  # and some between the powers of ten
    for label in labels:
      self.assertRegex(label, r"^\d+(\.\d+)?$")
    self.assertEqual([t.get_text() for t in axes.get_legend().get_texts()],
                     ["raw (per history point)", "smoothed (moving average of 5 points)"])
    self.assertAllClose(axes.lines[1].get_ydata(), plots.smooth(100.0 / steps, 2))

  def test_training_curve_draws_a_dashed_reference_line(self):
    steps = np.arange(1, 41)
    _, fig = _drawn(plots.training_curve, steps, np.sqrt(steps), "Perplexity",
                    "perplexity", reference=(16, "codebook size K = 16"))
    (axes,) = fig.axes
    self.assertEqual(axes.get_yscale(), "linear")
    self.assertEqual(axes.get_legend().get_texts()[-1].get_text(), "codebook size K = 16")
    self.assertEqual(axes.lines[-1].get_linestyle(), "--")
    self.assertAllEqual(axes.lines[-1].get_ydata(), [16, 16])

  def test_codebook_scatter_has_a_subplot_per_stage_and_marks_unused_codes(self):
    rng = np.random.default_rng(0)
    points = [rng.normal(size=(32, 2)) for _ in range(2)]
    all_used = [np.arange(1, 33)] * 2
    one_stage, fig = _drawn(plots.codebook_scatter, points[:1], all_used[:1], "PCA",
                            [("PC 1 (60% var)", "PC 2 (30% var)")])
    self.assertEqual(one_stage.dtype, np.uint8)
    self.assertEqual(one_stage.shape, (440, 570, 3))
    self.assertFalse(_has_color(one_stage, "tab:red"))
    axes, bar = fig.axes
    self.assertEqual((axes.get_xlabel(), axes.get_ylabel()),
                     ("PC 1 (60% var)", "PC 2 (30% var)"))
    self.assertEqual(bar.get_ylabel(), "eval uses per code (log scale)")
    self.assertEqual(fig.get_suptitle(), "PCA")
    some_unused = [np.where(np.arange(32) < 4, 0, 5), np.arange(32)]
    two_stages, fig = _drawn(plots.codebook_scatter, points, some_unused, "PCA",
                             [("PC 1", "PC 2")] * 2)
    self.assertEqual(two_stages.shape, (440, 1030, 3))
    self.assertTrue(_has_color(two_stages, "tab:red"))
    self.assertLen(fig.axes, 3)  # two stages and the colour bar
    self.assertEqual([axes.get_title() for axes in fig.axes[:2]],
                     ["stage 1: 28 of 32 codes used", "stage 2: 31 of 32 codes used"])
    self.assertEqual([t.get_text() for t in fig.axes[0].get_legend().get_texts()],
                     ["used (28 of 32)", "unused (4)"])

  def test_image_figure_shows_grey_and_rgb_grids_magnified(self):
    grey = figures.image_grid(np.zeros((4, 28, 28, 1)), 4)
    rgb = figures.image_grid(np.ones((4, 28, 28, 3)) * [1.0, 0.0, 0.0], 4)
    shown, fig = _drawn(plots.image_figure, rgb, "title", row_labels=["row"],
                        num_codes=16)
    axes, bar = fig.axes
    self.assertEqual(axes.get_title(), "title")
    self.assertEqual([t.get_text() for t in axes.get_yticklabels()], ["row"])
    self.assertEqual(bar.get_ylabel(), "code index")
    self.assertEqual(bar.get_ylim(), (-0.5, 15.5))
    self.assertEqual(shown.dtype, np.uint8)
    self.assertTrue(_has_color(shown, "red", tolerance=1))
    # The 32 x 122 grid magnified 5x (to >= 560 wide), plus 40 + 16 pixels for the
    # title, 120 for row labels and 110 for the colour bar.
    self.assertEqual(shown.shape, (32 * 5 + 56, 122 * 5 + 120 + 110, 3))
    shown = plots.image_figure(grey, "title")
    self.assertEqual(shown.shape, (32 * 5 + 56, 122 * 5 + 32, 3))
    self.assertFalse(_has_color(shown, "red", tolerance=60))
    with self.assertRaisesRegex(ValueError, r"grid must be \[H, W, 1\] or \[H, W, 3\]"):
      plots.image_figure(np.zeros((8, 8, 2), np.uint8), "title")

  def test_code_colors_are_stable_and_distinct(self):
    palette = plots.code_colors(np.arange(16))
    self.assertAllInRange(palette, 0.0, 1.0)
    self.assertLen({tuple(np.round(c, 3)) for c in palette}, 16)
    self.assertAllEqual(plots.code_colors([[3]])[0, 0], palette[3])

  def test_no_figure_outlives_its_chart(self):
    drawn = []
    render = plots.render

    def render_and_track(fig):
      drawn.append(weakref.ref(fig))
      return render(fig)

    with mock.patch.object(plots, "render", render_and_track):
      plots.training_curve([1, 2], [1.0, 2.0], "t", "y")
      plots.codebook_scatter([np.eye(3)[:, :2]], [np.array([0, 1, 2])], "t", [("x", "y")])
      plots.image_figure(np.zeros((4, 4, 1), np.uint8), "t", num_codes=4)
    # Some matplotlib artists are freed by a second collection (weakref callbacks).
    for _ in range(3):
      gc.collect()
    self.assertLen(drawn, 3)
    self.assertEqual([ref() for ref in drawn], [None] * 3)
    self.assertEqual(pyplot.get_fignums(), [])


if __name__ == "__main__":
  tf.test.main()
