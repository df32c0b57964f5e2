"""Decoding and preprocessing: every image of a dataset to one size and colour.

Steps, all on uint8 pixels (they stay uint8 until `data.binarize`):

1. Decode PNG, JPEG, BMP, GIF (first frame) or WebP with `tf.io.decode_image`.
2. Channels (`--channels`): an alpha channel is dropped; grey becomes RGB by
   repeating it, RGB becomes grey with `tf.image.rgb_to_grayscale` (ITU-R 601
   luma). An image already in the wanted colour is unchanged.
3. Size (`--image_size=N` or `H,W`): the image is scaled, keeping its aspect
   ratio, until it just covers H x W (the shorter side, relative to the target,
   becomes the target's), with antialiased bilinear resampling rounded back to
   uint8; then an H x W window is cut from its centre, or for training with
   `--random_crop` from a random place along the longer side. An image already
   H x W is unchanged (bit for bit).
4. For training, `--random_flip` mirrors half the images left-right.

The random choices take stateless seeds, which `data/pipeline.py` derives from
(--seed, step, position in the batch), so they are part of the run's pure
function of its flags.
"""

from typing import Optional

import tensorflow as tf

CHANNELS = (1, 3)


def decode(encoded: tf.Tensor) -> tf.Tensor:
  """Decodes PNG, JPEG, BMP, GIF or WebP bytes into uint8 [H, W, C] (C as stored: 1-4)."""
  image = tf.io.decode_image(encoded, channels=0, expand_animations=False)
  image.set_shape([None, None, None])
  return image


def stored_channels(channels: int) -> int:
  """The channels an image with `channels` stored ones has here (alpha dropped)."""
  return 3 if channels >= 3 else 1


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
  """uint8 [H, W, C] with any C in 1..4 -> uint8 [H, W, channels], channels 1 or 3."""
  if channels not in CHANNELS:
    raise ValueError(f"channels must be 1 or 3, got {channels}.")
  image = tf.convert_to_tensor(image)
  if channels == 1:
    from_colour = lambda: tf.image.rgb_to_grayscale(image[..., :3])
    from_grey = lambda: image[..., :1]
  else:
    from_colour = lambda: image[..., :3]
    from_grey = lambda: tf.tile(image[..., :1], [1, 1, 3])
  stored = image.shape[-1]
  if stored is not None:  # Known when tracing: no branch in the graph.
    converted = from_colour() if stored >= 3 else from_grey()
  else:
    converted = tf.cond(tf.shape(image)[-1] >= 3, from_colour, from_grey)
  converted.set_shape(image.shape[:-1].concatenate([channels]))
  return converted


def resize_and_crop(image: tf.Tensor, size: tuple[int, int],
                    crop_seed: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Scales uint8 [h, w, C] to just cover `size`, then cuts a `size` window.

  Args:
    image: uint8 [h, w, C].
    size: (H, W) of the result.
    crop_seed: Shape [2] stateless seed of a random window position; None for
      the centre.

  Returns:
    uint8 [H, W, C]; `image` itself if it is already H x W.
  """
  target_h, target_w = size
  image = tf.convert_to_tensor(image)
  if tuple(image.shape[:2]) == (target_h, target_w):
    return image
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  scale = tf.maximum(target_h / height, target_w / width)
  new_h = tf.maximum(target_h, tf.cast(tf.round(tf.cast(height, tf.float64) * scale),
                                       tf.int32))
  new_w = tf.maximum(target_w, tf.cast(tf.round(tf.cast(width, tf.float64) * scale),
                                       tf.int32))

  def resize():
    resized = tf.image.resize(image, [new_h, new_w], method="bilinear", antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)

  image = tf.cond((new_h == height) & (new_w == width), lambda: image, resize)
  if crop_seed is None:
    top, left = (new_h - target_h) // 2, (new_w - target_w) // 2
  else:
    offsets = tf.random.stateless_uniform(
        [2], crop_seed, minval=0, maxval=tf.int32.max, dtype=tf.int32)
    top = offsets[0] % (new_h - target_h + 1)
    left = offsets[1] % (new_w - target_w + 1)
  cropped = image[top:top + target_h, left:left + target_w]
  return tf.ensure_shape(cropped, [target_h, target_w, image.shape[-1]])


def preprocess(image: tf.Tensor, size: tuple[int, int], channels: int,
               crop_seed: Optional[tf.Tensor] = None,
               flip_seed: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Steps 2-4 of the module docstring: uint8 [h, w, any C] -> uint8 [H, W, channels].

  Args:
    image: A decoded uint8 image [h, w, C], C in 1..4.
    size: (H, W).
    channels: 1 or 3.
    crop_seed: Seed of a random crop position, or None for a centre crop.
    flip_seed: Seed of a random left-right flip, or None for no flip.
  """
  image = resize_and_crop(to_channels(image, channels), size, crop_seed)
  if flip_seed is not None:
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
  return image
