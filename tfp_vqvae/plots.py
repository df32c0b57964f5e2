"""Charts drawn into NumPy arrays: training curves, codebook scatter, code maps.

The tutorials plot with matplotlib; the figures they show are simple enough to draw
directly (lines, dots, flat colours, a few digits), which keeps the package free of
a plotting dependency and gives the same PNGs headless, in tests and on servers.
Every function returns float32 RGB images [H, W, 3] in [0, 1] for
`figures.image_grid` / `figures.write_png` and `tf.summary.image`.
"""

import numpy as np

# Colours (RGB in [0, 1]) of the lines of one chart, in order.
LINE_COLORS = ((0.12, 0.47, 0.71), (0.84, 0.15, 0.16), (0.17, 0.63, 0.17),
               (1.0, 0.5, 0.05))
_BACKGROUND = 1.0
_AXIS = 0.3
_UNUSED = (0.85, 0.1, 0.1)
# 3x5 bitmaps of the characters axis labels need, one string of rows per glyph.
_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111", ".": "000000000000010", "-": "000000111000000",
    "e": "000111101110011", "+": "000010111010000", " ": "000000000000000",
}
_MARGIN = 8


def smooth(values, window):
  """Trailing moving average of a 1-D series (the first points average fewer)."""
  values = np.asarray(values, np.float64)
  if not len(values):
    return values
  sums = np.cumsum(np.insert(values, 0, 0.0))
  counts = np.minimum(np.arange(1, len(values) + 1), window)
  return (sums[1:] - sums[np.arange(1, len(values) + 1) - counts]) / counts


def draw_text(canvas, text, top, left, color=(0.0, 0.0, 0.0), scale=1):
  """Writes `text` (digits, '.', '-', '+', 'e', ' ') into `canvas` in place."""
  for i, char in enumerate(text):
    glyph = np.array([int(b) for b in _GLYPHS[char]], bool).reshape(5, 3)
    glyph = np.kron(glyph, np.ones((scale, scale), bool))
    y, x = top, left + i * 4 * scale
    region = canvas[y:y + glyph.shape[0], x:x + glyph.shape[1]]
    region[glyph[:region.shape[0], :region.shape[1]]] = color


def _format(value):
  return f"{value:.3g}".replace("e+0", "e").replace("e-0", "e-")


def line_chart(series, height=160, width=320, log_y=False):
  """Lines over a shared x axis, with the y range written at the left.

  Args:
    series: list of (x [n], y [n]) pairs, drawn in `LINE_COLORS` order.
    height, width: size of the plot area in pixels.
    log_y: plot log10(y) (y must be > 0), as the PyTorch tutorial plots its NMSE.

  Returns:
    float32 [height + 2 * margin, width + label margin, 3] image.
  """
  label_width = 4 * 9 + 4
  canvas = np.full((height + 2 * _MARGIN, width + label_width + _MARGIN, 3), _BACKGROUND,
                   np.float32)
  finite = [(np.asarray(x, np.float64), np.asarray(y, np.float64)) for x, y in series]
  finite = [(x[np.isfinite(y)], y[np.isfinite(y)]) for x, y in finite]
  if log_y:
    finite = [(x[y > 0], np.log10(y[y > 0])) for x, y in finite]
  finite = [(x, y) for x, y in finite if len(x)]
  left, top = label_width, _MARGIN
  canvas[top:top + height, left] = _AXIS
  canvas[top + height - 1, left:left + width] = _AXIS
  if not finite:
    return canvas
  x_all = np.concatenate([x for x, _ in finite])
  y_all = np.concatenate([y for _, y in finite])
  x_low, x_high = x_all.min(), max(x_all.max(), x_all.min() + 1e-9)
  y_low, y_high = y_all.min(), max(y_all.max(), y_all.min() + 1e-9)
  for (x, y), color in zip(finite, LINE_COLORS):
    # Dense resampling of each segment draws a connected line without gaps.
    steps = max(2, 2 * width)
    grid = np.linspace(x.min(), x.max(), steps) if len(x) > 1 else x
    values = np.interp(grid, x, y)
    cols = left + 1 + np.round((grid - x_low) / (x_high - x_low) * (width - 2)).astype(int)
    rows = top + np.round((y_high - values) / (y_high - y_low) * (height - 2)).astype(int)
    for dy in (0, 1):
      canvas[np.clip(rows + dy, 0, canvas.shape[0] - 1), cols] = color
  for value, row in ((y_high, top), (y_low, top + height - 6)):
    draw_text(canvas, _format(10 ** value if log_y else value), row, 1)
  return canvas


def usage_colors(counts):
  """RGB per code: dark blue (rare) to yellow (most used) by log count; red if unused."""
  counts = np.asarray(counts, np.float64)
  level = np.log1p(counts) / max(np.log1p(counts.max()), 1e-9)
  colors = np.stack([level, 0.2 + 0.7 * level, 0.6 * (1.0 - level) + 0.1], axis=-1)
  colors[counts == 0] = _UNUSED
  return colors.astype(np.float32)


def pca_2d(vectors):
  """Projection of vectors [N, D] on their first two principal axes: [N, 2]."""
  vectors = np.asarray(vectors, np.float64)
  centred = vectors - vectors.mean(axis=0)
  if vectors.shape[1] < 2:
    centred = np.pad(centred, [(0, 0), (0, 2 - vectors.shape[1])])
  _, _, axes = np.linalg.svd(centred, full_matrices=False)
  return centred @ axes[:2].T


def scatter(points, colors, size=240, dot=2):
  """Square dots at `points` [N, 2] (scaled to fit) in `colors` [N, 3]: an image.

  Later points are drawn over earlier ones.
  """
  canvas = np.full((size, size, 3), _BACKGROUND, np.float32)
  canvas[[0, -1], :] = _AXIS
  canvas[:, [0, -1]] = _AXIS
  points = np.asarray(points, np.float64)
  low, high = points.min(axis=0), points.max(axis=0)
  span = np.maximum(high - low, 1e-9)
  inner = size - 2 * _MARGIN
  cells = _MARGIN + np.round((points - low) / span * (inner - 1)).astype(int)
  for (x, y), color in zip(cells, colors):
    row = size - 1 - y
    canvas[max(row - dot, 0):row + dot + 1, max(x - dot, 0):x + dot + 1] = color
  return canvas


def code_colors(codes):
  """A colour per code, the same in every figure: codes [...] -> RGB [..., 3].

  Hues step by the golden ratio, so consecutive codes get well separated colours.
  """
  hue = (np.asarray(codes, np.float64) * 0.618033988749895) % 1.0
  # HSV (hue, 0.65, 0.95) to RGB, vectorised.
  sector = hue * 6.0
  chroma = 0.95 * 0.65
  x = chroma * (1 - np.abs(sector % 2 - 1))
  zeros = np.zeros_like(hue)
  table = [(chroma, x, zeros), (x, chroma, zeros), (zeros, chroma, x),
           (zeros, x, chroma), (x, zeros, chroma), (chroma, zeros, x)]
  index = np.minimum(sector.astype(int), 5)
  rgb = np.stack([np.choose(index, [t[c] for t in table]) for c in range(3)], axis=-1)
  return (rgb + 0.95 - chroma).astype(np.float32)
