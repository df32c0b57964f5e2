"""Checks of what the library's entry points are given, made before any cast.

A cast first would hide the mistake it should reveal: uint8 pixels 0..255 made
float are 255 times too bright for a model of [0, 1] pixels and give codes that
match nothing, and int64 codes made int32 wrap (2**32 + 3 -> 3, a valid code).
So values are checked in the dtype they come in, and each message names the
argument and what it must be.

Run eagerly, a failed check raises `ValueError` with the values found:
"images must be in [0, 1]; got values from 0.0 to 255.0". Inside a `tf.function`
it is a `tf.debugging.Assert` with the same text, raising InvalidArgumentError
when the function runs. XLA drops Assert ops, so under `jit_compile=True` only the
dtype checks, made when tracing, remain.
"""

import tensorflow as tf


def _require(condition, tensor, message, low, high):
  """`tensor`, once `condition` holds; else "`message`; got values from low to high"."""
  if tf.executing_eagerly():
    if not bool(condition):
      raise ValueError(f"{message}; got values from {low.numpy()} to {high.numpy()}.")
    return tensor
  check = tf.debugging.Assert(condition, [f"{message}; got min", low, "max", high])
  with tf.control_dependencies([check]):
    return tf.identity(tensor)


def pixels(images, name: str = "images") -> tf.Tensor:
  """`images` as a float tensor of its own dtype, checked to lie in [0, 1].

  Integer pixels are refused, not scaled: how a model's inputs come from uint8
  depends on its training (`--binarize`: pixel / 255 or pixel > 127; the exported
  signatures apply the right one), so the caller must choose it.

  Raises:
    ValueError: if `images` are not floats, or (eagerly) not all in [0, 1]; NaN
      is not.
  """
  images = tf.convert_to_tensor(images)
  if not images.dtype.is_floating:
    raise ValueError(f"{name} must be float pixels in [0, 1], got {images.dtype.name} "
                     "(for uint8 0..255: images / 255, or images > 127 for a "
                     "--binarize=threshold model, as its export does).")
  return _require(tf.reduce_all((images >= 0) & (images <= 1)), images,
                  f"{name} must be in [0, 1]", tf.reduce_min(images),
                  tf.reduce_max(images))


def codes(values, num_embeddings: int, name: str = "codes") -> tf.Tensor:
  """`values` as int32 codes, checked in their own integer dtype to lie in [0, K).

  Raises:
    ValueError: if `values` are not integers, or (eagerly) any is outside
      [0, num_embeddings).
  """
  values = tf.convert_to_tensor(values)
  dtype = values.dtype
  if not dtype.is_integer:
    raise ValueError(f"{name} must be integer codes in [0, {num_embeddings}), got "
                     f"{dtype.name}.")
  in_range = values >= 0
  if num_embeddings <= dtype.max:  # Else every value of the dtype is below it.
    in_range &= values < tf.constant(num_embeddings, dtype)
  checked = _require(tf.reduce_all(in_range), values,
                     f"{name} must be in [0, {num_embeddings})",
                     tf.reduce_min(values), tf.reduce_max(values))
  return tf.cast(checked, tf.int32)


def code_maps(values, num_embeddings: int, name: str = "codes"):
  """`codes` of a tensor, or of each map of a dict (VQ-VAE-2's {"top", "bottom"}),
  a map's messages naming it as name["top"]."""
  if isinstance(values, dict):
    return {level: codes(level_codes, num_embeddings, f'{name}["{level}"]')
            for level, level_codes in values.items()}
  return codes(values, num_embeddings, name)
