"""Matplotlib charts, rendered headless into uint8 RGB arrays.

Figures are built as `matplotlib.figure.Figure` objects on an Agg canvas, never
through pyplot: nothing needs a display, a user's pyplot backend and figure list
are left alone, and each figure is garbage once its function returns. Every
function returns uint8 RGB [H, W, 3] for `figures.write_png` and
`tf.summary.image`; the charts are `CHART_SIZE` inches at `DPI`.
"""

import math
from typing import Sequence

from matplotlib import cm
from matplotlib import colors
from matplotlib import figure
from matplotlib import ticker
from matplotlib.backends import backend_agg
import numpy as np

DPI = 100
# (width, height) in inches of the training curves: 800 x 450 pixels.
CHART_SIZE = (8.0, 4.5)
# (width per stage, height) in inches of codebook scatter plots.
SCATTER_SIZE = (4.6, 4.4)
# Image grids are magnified by a whole factor until they are at least this wide.
_MIN_IMAGE_WIDTH = 560
# Pixels around an image grid for the title, row labels and colour bar.
_TITLE_PIXELS, _ROW_LABEL_PIXELS, _COLORBAR_PIXELS, _EDGE_PIXELS = 40, 120, 110, 16
_LINE_COLOR = "tab:blue"
_UNUSED_COLOR = "tab:red"


class _DecimalLogFormatter(ticker.LogFormatter):
  """Labels the ticks `LogFormatter` labels, as plain decimals (0.6, not 6e-01)."""

  def __call__(self, x, pos=None):
    return f"{x:g}" if super().__call__(x, pos) else ""


def _label_log_axis(axis):
  """Decimal tick labels on a log axis, between the powers of ten too.

  Curves and counts often span less than a decade, where only one power of ten
  (or none) would be labelled: label all ticks within one decade, some within two.
  """
  axis.set_major_formatter(_DecimalLogFormatter())
  axis.set_minor_formatter(_DecimalLogFormatter(labelOnlyBase=False,
                                                minor_thresholds=(2, 1)))


def render(fig: figure.Figure) -> np.ndarray:
  """Draws `fig` on an Agg canvas: uint8 RGB [height, width, 3]."""
  canvas = backend_agg.FigureCanvasAgg(fig)
  canvas.draw()
  return np.array(canvas.buffer_rgba())[..., :3]


def smooth(values, half_width: int) -> np.ndarray:
  """Centred moving average of a 1-D series over 2 * half_width + 1 points.

  Centred, so the smoothed curve does not lag the raw one; near the ends the
  window shrinks to the points that exist.
  """
  values = np.asarray(values, np.float64)
  index = np.arange(len(values))
  low = np.maximum(index - half_width, 0)
  high = np.minimum(index + half_width + 1, len(values))
  sums = np.cumsum(np.insert(values, 0, 0.0))
  return (sums[high] - sums[low]) / (high - low)


def training_curve(steps, values, title: str, ylabel: str, log_y: bool = False,
                   reference: tuple[float, str] | None = None) -> np.ndarray:
  """A training metric against the step: the raw series and its moving average.

  Args:
    steps: training steps [n], the x axis.
    values: the metric at those steps [n].
    title: the chart's title.
    ylabel: the y axis label.
    log_y: log-scaled y axis, as the tutorials plot the normalised MSE.
    reference: optional (value, legend label) of a dashed horizontal line, e.g.
      the codebook size K that perplexity cannot exceed.

  Returns:
    uint8 RGB [450, 800, 3].
  """
  steps = np.asarray(steps)
  values = np.asarray(values, np.float64)
  half_width = max(len(values) // 40, 1)
  fig = figure.Figure(figsize=CHART_SIZE, dpi=DPI, layout="constrained")
  axes = fig.add_subplot()
  # Markers keep a curve of a few points (a short run) visible.
  marker = "o" if len(values) <= 20 else None
  axes.plot(steps, values, color=_LINE_COLOR, alpha=0.35, linewidth=1, marker=marker,
            markersize=3, label="raw (per history point)")
  axes.plot(steps, smooth(values, half_width), color=_LINE_COLOR, linewidth=2,
            label=f"smoothed (moving average of {2 * half_width + 1} points)")
  if reference is not None:
    axes.axhline(reference[0], color="0.35", linestyle="--", linewidth=1.2,
                 label=reference[1])
  if log_y:
    axes.set_yscale("log")
    _label_log_axis(axes.yaxis)
  axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10]))
  axes.set_title(title)
  axes.set_xlabel("training step")
  axes.set_ylabel(ylabel)
  axes.grid(True, which="both", alpha=0.25)
  axes.legend(loc="best")
  return render(fig)


def codebook_scatter(points: Sequence[np.ndarray], counts: Sequence[np.ndarray],
                     title: str, axis_labels: Sequence[tuple[str, str]]) -> np.ndarray:
  """Each quantizer stage's codes as 2-D points, coloured by how often eval used them.

  One subplot per stage. Used codes are coloured by their count on a log scale
  (one colour bar shared by the stages); unused codes are red crosses, drawn on
  top so they are never hidden.

  Args:
    points: per stage, [K, 2] coordinates of its K codes.
    counts: per stage, [K] eval uses of each code.
    title: the figure's title.
    axis_labels: per stage, (x label, y label).

  Returns:
    uint8 RGB [440, 460 * stages + 120, 3].
  """
  counts = [np.asarray(c) for c in counts]
  stages = len(points)
  width = SCATTER_SIZE[0] * stages + _COLORBAR_PIXELS / DPI
  fig = figure.Figure(figsize=(width, SCATTER_SIZE[1]), dpi=DPI, layout="constrained")
  all_axes = fig.subplots(1, stages, squeeze=False)[0]
  # The colours span the used codes' counts, so their differences show.
  used_counts = np.concatenate([c[c > 0] for c in counts])
  high = float(used_counts.max()) if len(used_counts) else 1.0
  low = float(used_counts.min()) if len(used_counts) else 1.0
  norm = colors.LogNorm(vmin=min(low, high / 2), vmax=high)
  for stage, (axes, xy, count) in enumerate(zip(all_axes, points, counts)):
    xy = np.asarray(xy)
    size = float(np.clip(4000 / len(count), 8, 50))
    used = np.flatnonzero(count > 0)
    used = used[np.argsort(-count[used], kind="stable")]  # rare codes drawn last
    unused = np.flatnonzero(count == 0)
    axes.scatter(xy[used, 0], xy[used, 1], c=count[used], norm=norm, cmap="viridis",
                 s=size, edgecolors="none", label=f"used ({len(used)} of {len(count)})")
    if len(unused):
      axes.scatter(xy[unused, 0], xy[unused, 1], marker="x", color=_UNUSED_COLOR,
                   s=size, linewidths=1.2, label=f"unused ({len(unused)})")
    name = f"stage {stage + 1}: " if stages > 1 else ""
    axes.set_title(f"{name}{len(used)} of {len(count)} codes used", fontsize=10)
    axes.set_xlabel(axis_labels[stage][0])
    axes.set_ylabel(axis_labels[stage][1])
    axes.grid(True, alpha=0.25)
    axes.legend(loc="best", fontsize=8)
  bar = fig.colorbar(cm.ScalarMappable(norm=norm, cmap="viridis"), ax=all_axes,
                     label="eval uses per code (log scale)")
  _label_log_axis(bar.ax.yaxis)
  fig.suptitle(title)
  return render(fig)


def code_colors(codes) -> np.ndarray:
  """A colour per code, the same in every figure: codes [...] -> RGB [..., 3].

  Hues step by the golden ratio, so consecutive codes get well separated colours.
  """
  hue = (np.asarray(codes, np.float64) * 0.618033988749895) % 1.0
  hsv = np.stack([hue, np.full_like(hue, 0.65), np.full_like(hue, 0.95)], axis=-1)
  return colors.hsv_to_rgb(hsv).astype(np.float32)


def image_figure(grid: np.ndarray, title: str, row_labels: Sequence[str] = (),
                 num_codes: int | None = None) -> np.ndarray:
  """An image grid with a title, optional row labels and a colour bar of codes.

  The grid is magnified by a whole factor (nearest neighbour) so that small
  images stay sharp and are at least `_MIN_IMAGE_WIDTH` pixels wide.

  Args:
    grid: uint8 [H, W, C] from `figures.image_grid`; C is 1 (grey) or 3 (RGB).
    title: the figure's title.
    row_labels: a label per row of cells, top to bottom, written at the left.
    num_codes: if set, the grid shows codes coloured by `code_colors`: adds a
      colour bar from code 0 to num_codes - 1.

  Returns:
    uint8 RGB [height, width, 3], of a size that grows with the grid's.

  Raises:
    ValueError: if the grid is not [H, W, 1] or [H, W, 3].
  """
  grid = np.asarray(grid)
  if grid.ndim != 3 or grid.shape[-1] not in (1, 3):
    raise ValueError(f"grid must be [H, W, 1] or [H, W, 3], got shape {grid.shape}.")
  height, width = grid.shape[:2]
  scale = max(1, math.ceil(_MIN_IMAGE_WIDTH / width))
  left = _ROW_LABEL_PIXELS if row_labels else _EDGE_PIXELS
  right = _COLORBAR_PIXELS if num_codes else _EDGE_PIXELS
  fig = figure.Figure(figsize=((width * scale + left + right) / DPI,
                               (height * scale + _TITLE_PIXELS + _EDGE_PIXELS) / DPI),
                      dpi=DPI, layout="constrained")
  axes = fig.add_subplot()
  if grid.shape[-1] == 1:
    axes.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
  else:
    axes.imshow(grid, interpolation="nearest")
  axes.set_xticks([])
  axes.set_yticks((np.arange(len(row_labels)) + 0.5) * height / max(len(row_labels), 1),
                  row_labels)
  axes.tick_params(left=False)
  for spine in axes.spines.values():
    spine.set_visible(False)
  axes.set_title(title)
  if num_codes:
    palette = colors.ListedColormap(code_colors(np.arange(num_codes)))
    bar = fig.colorbar(cm.ScalarMappable(colors.Normalize(-0.5, num_codes - 0.5),
                                         palette), ax=axes, label="code index")
    bar.locator = ticker.MaxNLocator(nbins=8, integer=True)
    bar.update_ticks()
  return render(fig)
