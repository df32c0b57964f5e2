"""PNG figures: image grids written with `tf.io` (no plotting library needed; charts
are drawn by plots.py)."""

import numpy as np
import tensorflow as tf


def image_grid(images, columns, padding=2):
  """Tiles images [N, H, W, C] (float in [0, 1]) into one uint8 [rows*H', cols*W', C].

  Cells are separated by `padding` pixels of mid grey; missing cells stay grey.
  """
  images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
  if images.ndim != 4:
    raise ValueError(f"images must be [N, H, W, C], got shape {images.shape}.")
  count, height, width, channels = images.shape
  columns = max(1, min(columns, count))
  rows = -(-count // columns)
  cell_h, cell_w = height + padding, width + padding
  grid = np.full((rows * cell_h + padding, columns * cell_w + padding, channels), 0.5,
                 np.float32)
  for i, image in enumerate(images):
    top = padding + (i // columns) * cell_h
    left = padding + (i % columns) * cell_w
    grid[top:top + height, left:left + width] = image
  return np.round(grid * 255.0).astype(np.uint8)


def upsample_nearest(grids, size):
  """Nearest-neighbour resize of grids [N, h, w, ...] to [N, size[0], size[1], ...].

  Any sizes: cell (i, j) of the output takes grid cell (i * h // H, j * w // W), so
  a 1 x L grid of global latents becomes L vertical bands.
  """
  grids = np.asarray(grids)
  rows = np.arange(size[0]) * grids.shape[1] // size[0]
  cols = np.arange(size[1]) * grids.shape[2] // size[1]
  return grids[:, rows][:, :, cols]



def write_png(path, grid):
  """Writes a uint8 [H, W, C] array as PNG (any tf.io.gfile path)."""
  tf.io.write_file(path, tf.io.encode_png(tf.convert_to_tensor(grid, tf.uint8)))
