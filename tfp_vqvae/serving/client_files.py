"""The client's files: images and codes read as the model takes them, outputs written.

`tfp-vqvae-client` (tfp_vqvae/client.py) is a thin main over these. Nothing here
imports TensorFlow unless a JPEG is read (training's own decoder, about 4 s), so a
call answers in about a second; see the client's docstring for the file formats and
how outputs are named.
"""

import glob
import io
import os

import numpy as np
from PIL import Image

from tfp_vqvae.internal import cli
from tfp_vqvae.serving import client as serving_client

ARRAY_SUFFIXES = (".npy", ".npz")
_INT32_MAX = np.iinfo(np.int32).max
# Weights and float32 arithmetic of tf.image.rgb_to_grayscale, which training
# applies: summed in this order they give its uint8 values for all 2**24 colours.
_LUMA_WEIGHTS = tuple(np.float32(w) for w in (0.2989, 0.5870, 0.1140))
# Pillow modes of a grey image (1-bit, 8-bit, with alpha) and of 16-bit grey,
# which TF decodes to its high byte.
_GREY_MODES = ("1", "L", "LA")
_WIDE_GREY_MODES = ("I", "I;16", "I;16B", "I;16L")


def expand(patterns):
  """The files `patterns` name, in order; a glob stands for its matches, sorted.

  Raises:
    ValueError: if a glob matches no file.
  """
  paths = []
  for pattern in patterns:
    if not any(char in pattern for char in "*?["):
      paths.append(pattern)
      continue
    matches = sorted(glob.glob(pattern))
    if not matches:
      raise ValueError(f"{pattern} matches no file.")
    paths.extend(matches)
  return paths


def luma(rgb):
  """uint8 [H, W, 1] luma of uint8 [H, W, 3], exactly as `tf.image.rgb_to_grayscale`."""
  scaled = rgb.astype(np.float32) * np.float32(1 / 255)
  luma = sum(scaled[..., i] * weight for i, weight in enumerate(_LUMA_WEIGHTS))
  return (luma * np.float32(255.5)).astype(np.uint8)[..., None]


def _decode_jpeg(path, data, channels):
  """uint8 [H, W, channels] of JPEG bytes, with training's own decoding (TensorFlow)."""
  cli.quiet_tensorflow()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfp_vqvae.data import preprocessing  # pylint: disable=g-import-not-at-top
  try:
    return preprocessing.to_channels(preprocessing.decode(data), channels).numpy()
  except tf.errors.OpError as error:
    raise ValueError(f"Cannot read image {path}: "
                     f"{serving_client.one_line(error.message)}") from None


def decode_image(path, data, channels):
  """uint8 [H, W, channels] of an image file's bytes, the pixels training sees.

  Raises:
    ValueError: if the bytes are no image Pillow can read.
  """
  try:
    image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":
      return _decode_jpeg(path, data, channels)
    image.seek(0)  # A GIF's first frame, as training takes.
    if image.mode in _WIDE_GREY_MODES:
      pixels = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)[..., None]
    elif image.mode in _GREY_MODES:
      pixels = np.asarray(image.convert("L"))[..., None]
    else:
      pixels = np.array(image.convert("RGB"))
      if image.format == "GIF" and image.mode == "P" and "transparency" in image.info:
        # TF's GIF decoder leaves transparent pixels black; Pillow paints them.
        pixels[np.asarray(image) == image.info["transparency"]] = 0
  except (OSError, ValueError, EOFError) as error:
    raise ValueError(f"Cannot read image {path}: {error}") from None
  if channels == 1 and pixels.shape[-1] == 3:
    return luma(pixels)
  if channels == 3 and pixels.shape[-1] == 1:
    return np.repeat(pixels, 3, axis=-1)
  return pixels


def read_image_file(path, image_shape):
  """uint8 [1, H, W, C]: the image file `path` in the model's channels.

  Raises:
    ValueError: if the file cannot be read or decoded, or is not H x W.
  """
  height, width, channels = image_shape
  with open(path, "rb") as f:
    image = decode_image(path, f.read(), channels)
  if image.shape[:2] != (height, width):
    raise ValueError(f"{path} is {image.shape[0]}x{image.shape[1]} pixels but the model "
                     f"takes {height}x{width} images; resize or crop it first (the "
                     "client does not).")
  return image[None]


def read_npy_images(path, image_shape):
  """uint8 [B, H, W, C] from a .npy file of [B, H, W, C], [H, W, C] or [B, H, W] images.

  Raises:
    ValueError: if the values are not uint8 or the images not of `image_shape`.
  """
  array = np.load(path)
  if array.dtype != np.uint8:
    raise ValueError(f"{path} holds {array.dtype} values; images must be uint8 0..255.")
  if array.ndim == 3 and image_shape[-1] == 1 and array.shape[-1] != 1:
    array = array[..., None]  # [B, H, W] greyscale.
  if array.ndim == 3:
    array = array[None]
  if array.ndim != 4 or array.shape[1:] != tuple(image_shape):
    raise ValueError(f"{path} holds an array of shape {list(array.shape)}; the model "
                     f"takes images [B, {', '.join(map(str, image_shape))}].")
  return array


def _checked_codes(path, name, array):
  """int32 codes of `array`, checked in its own dtype before the cast.

  Raises:
    ValueError: if the values are not integers, or some do not fit in int32 (as
      int64 2**32 + 3, which would become the valid code 3) or are negative.
  """
  if not np.issubdtype(array.dtype, np.integer):
    raise ValueError(f"{path} holds {array.dtype} values in {name}; codes must be "
                     "integers.")
  if array.size and (array.min() < 0 or array.max() > _INT32_MAX):
    raise ValueError(f"{path}: {name} must be in [0, the model's codebook size); got "
                     f"{array.dtype} values from {array.min()} to {array.max()}.")
  return array.astype(np.int32)


def read_codes(path):
  """{input name: int32 [B, ...]} of a codes file: "codes" from a .npy, VQ-VAE-2's
  "top_codes" and "bottom_codes" from a .npz."""
  loaded = np.load(path)
  arrays = dict(loaded) if path.endswith(".npz") else {"codes": loaded}
  return {name: _checked_codes(path, name, array) for name, array in arrays.items()}


def output_names(paths, counts):
  """The output name of each row: a's for image file a.png, x_000, x_001, ... for
  the rows of array file x.npy.

  Raises:
    ValueError: if two inputs would give the same name.
  """
  names, sources = [], {}
  for path, count in zip(paths, counts):
    stem = os.path.splitext(os.path.basename(path))[0]
    rows = ([f"{stem}_{i:03d}" for i in range(count)]
            if path.endswith(ARRAY_SUFFIXES) else [stem])
    for name in rows:
      if name in sources:
        raise ValueError(f"{sources[name]} and {path} would both be written as {name}; "
                         "rename one.")
      sources[name] = path
    names.extend(rows)
  return names


def output_paths(directory, names, suffix, inputs):
  """directory/name+suffix for `names`, after creating `directory`.

  Raises:
    ValueError: if `directory` is a file, or an output would replace an input.
  """
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise ValueError(f"--output {directory} exists and is not a directory.")
  os.makedirs(directory, exist_ok=True)
  outputs = [os.path.join(directory, name + suffix) for name in names]
  replaced = set(map(os.path.abspath, outputs)) & set(map(os.path.abspath, inputs))
  if replaced:
    raise ValueError(f"--output {directory}: writing {sorted(replaced)[0]} would "
                     "replace an input; choose another directory.")
  return outputs


def code_arrays(outputs):
  """{name: codes} of a signature's outputs: "codes", or VQ-VAE-2's two maps."""
  if "codes" in outputs:
    return {"codes": outputs["codes"]}
  return {name: outputs[name] for name in ("top_codes", "bottom_codes")}


def _save_codes(path, codes):
  """Writes {name: codes}: one array as .npy, VQ-VAE-2's two maps as .npz; returns
  the path written."""
  if list(codes) == ["codes"]:
    path = os.path.splitext(path)[0] + ".npy"
    np.save(path, codes["codes"])
  else:
    path = os.path.splitext(path)[0] + ".npz"
    np.savez(path, **codes)
  return path


def code_targets(output, paths):
  """Where encode writes: None for the one file `output` (.npy/.npz), else a path
  per input file in the directory `output`, which this creates."""
  if output.endswith(ARRAY_SUFFIXES):
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    return None
  stems = [os.path.splitext(os.path.basename(path))[0] for path in paths]
  return output_paths(output, stems, ".npy", paths)


def write_codes(output, codes, targets, counts):
  """Writes the codes to the file `output`, or the rows of input file i (counts[i]
  of them) to targets[i] (see `code_targets`); prints where."""
  if targets is None:
    path = _save_codes(output, codes)
    shapes = ", ".join(f"{name} {list(value.shape)}" for name, value in codes.items())
    print(f"Wrote {shapes} to {path}.")
    return
  starts = np.cumsum([0] + list(counts))
  for target, start, stop in zip(targets, starts[:-1], starts[1:]):
    _save_codes(target, {name: value[start:stop] for name, value in codes.items()})
  print(f"Wrote the codes of {len(targets)} files to {output}.")


def write_pngs(targets, probs, directory):
  """Writes float [B, H, W, C] in [0, 1] as PNGs, image i to targets[i] (in `directory`)."""
  pixels = np.round(np.clip(probs, 0.0, 1.0) * 255.0).astype(np.uint8)
  for target, image in zip(targets, pixels):
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(target, "PNG")
  shown = f": {os.path.basename(targets[0])}{' ...' if len(targets) > 1 else ''}"
  print(f"Wrote {len(targets)} PNGs to {directory}{shown if targets else '.'}")
