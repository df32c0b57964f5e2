"""PNG figures: image grids written with `tf.io` (no plotting library needed)."""

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


def code_map_images(codes, num_embeddings, image_size):
  """Codes [N, h, w] as grey images [N, H, W, 1] (code / (K - 1)), nearest-upsampled."""
  codes = np.asarray(codes)
  scale = (image_size[0] // codes.shape[1], image_size[1] // codes.shape[2])
  grey = codes.astype(np.float32) / max(num_embeddings - 1, 1)
  grey = np.repeat(np.repeat(grey, scale[0], axis=1), scale[1], axis=2)
  return grey[..., None]


def write_png(path, grid):
  """Writes a uint8 [H, W, C] array as PNG (any tf.io.gfile path)."""
  tf.io.write_file(path, tf.io.encode_png(tf.convert_to_tensor(grid, tf.uint8)))
