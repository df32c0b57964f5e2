"""Small image datasets written by tests: image files in several formats and TFRecords."""

import os
import struct

import numpy as np
import tensorflow as tf

# A 1x1 GIF89a (a two-colour palette, one pixel); no GIF encoder ships with TF.
GIF_1X1 = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01"
           b"\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def bmp_bytes(image: np.ndarray) -> bytes:
  """Encodes uint8 RGB [H, W, 3] as a 24-bit BMP (rows bottom-up, BGR, 4-byte aligned)."""
  height, width, _ = image.shape
  row_bytes = (3 * width + 3) // 4 * 4
  pixels = b"".join(
      image[row, :, ::-1].tobytes().ljust(row_bytes, b"\x00")
      for row in range(height - 1, -1, -1))
  header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
  info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835,
                     2835, 0, 0)
  return header + info + pixels


def encode(image: np.ndarray, extension: str) -> bytes:
  """Encodes uint8 [H, W, C] as `extension` (.png, .jpg/.jpeg or .bmp)."""
  if extension == ".png":
    return tf.io.encode_png(image).numpy()
  if extension in (".jpg", ".jpeg"):
    return tf.io.encode_jpeg(image, quality=100).numpy()
  if extension == ".bmp":
    return bmp_bytes(image)
  raise ValueError(f"Cannot encode {extension}.")


def write_file(path: str, contents: bytes) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb") as f:
    f.write(contents)
  return path


def write_image(path: str, image: np.ndarray) -> str:
  """Writes uint8 [H, W, C] to `path`, encoded as its extension says."""
  return write_file(path, encode(image, os.path.splitext(path)[1].lower()))


def random_images(count: int, shape, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, size=(count,) + tuple(shape),
                                              dtype=np.uint8)


def example_bytes(encoded: bytes, label=None, image_key="image/encoded",
                  label_key="image/class/label") -> bytes:
  """A serialized tf.train.Example holding an encoded image and an optional label."""
  feature = {image_key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded]))}
  if label is not None:
    feature[label_key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))
  return tf.train.Example(
      features=tf.train.Features(feature=feature)).SerializeToString()


def write_tfrecord(path: str, images, labels=None, **keys) -> str:
  """Writes PNG-encoded images (and labels) as one TFRecord file of Examples."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path) as writer:
    for i, image in enumerate(images):
      label = None if labels is None else int(labels[i])
      writer.write(example_bytes(encode(image, ".png"), label, **keys))
  return path


def write_folder(root: str, split_sizes: dict, shape, seed: int = 0) -> str:
  """Writes random uint8 images of `shape` as PNGs root/<split>/NNN.png.

  Args:
    root: the folder (`--dataset=folder:root`).
    split_sizes: {split name: number of images}, e.g. {"train": 48, "test": 16}.
    shape: (H, W, C) of every image.
    seed: of the pixels; each split draws its own from (seed, its position).

  Returns:
    `root`.
  """
  for i, (split, count) in enumerate(split_sizes.items()):
    for j, image in enumerate(random_images(count, shape, seed=seed * 1000 + i)):
      write_image(os.path.join(root, split, f"{j:03d}.png"), image)
  return root
