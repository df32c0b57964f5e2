r"""Calls a served VQ-VAE from the command line (gRPC, or REST with --rest).

    tfp-vqvae-client --server localhost:8500 encode a.png b.jpg --output codes.npy
    tfp-vqvae-client --server localhost:8500 reconstruct 'photos/*.jpg' --output out/
    tfp-vqvae-client --server localhost:8500 decode out/codes.npy --output decoded/
    tfp-vqvae-client --server localhost:8500 neg_elbo images.npy

(also `python -m tfp_vqvae.client`).

Inputs. encode, reconstruct and neg_elbo take image files (PNG, JPEG, BMP, GIF,
WebP; one image each) or .npy files of uint8 images [B, H, W, C] (or [H, W, C],
or [B, H, W] for C = 1); decode takes .npy files of integer codes [B, h, w]. A
quoted glob stands for the files it matches, in sorted order. The client asks the
server for the model's image shape (TF Serving's model metadata) and converts each
image file to the model's channels as training does (grey to RGB by repetition,
RGB to grey as TF's luma, alpha dropped), bit for bit: PNG, BMP, GIF and WebP are
decoded with Pillow, which gives TF's pixels for them; JPEG with TensorFlow
(imported for it, about 4 s), as no other decoder here uses TF's default fast
integer DCT (Pillow's differs by up to ~15 levels). It does not resize: a file of
another size than the model's H x W is refused with one line naming it (resize or
crop it as training did, e.g. with --image_size). Values are checked as they are
stored, before any conversion: images must be uint8, codes integers in int32's
range (the server then checks them against the codebook size).

Outputs are named after the inputs: an image file a.png gives `a`, row i of an
array file x.npy gives `x_000`, `x_001`, ... The --output directory is created.
  encode       --output codes.npy: all codes in one file, in input order; or
               --output DIR: one a.npy per input file (its rows).
  reconstruct  --output DIR: a.png per image, and all codes in DIR/codes.npy.
  decode       --output DIR: x_000.png, ... per row of each codes file x.npy.
  neg_elbo     prints "a  12.3456" per image (nats); no --output.
A VQ-VAE-2's two code maps go into one .npz file (arrays top_codes and
bottom_codes, the signatures' names) in place of each .npy, which decode takes
back. Two inputs that would give one output name (a.png and a.jpg), or an output
that would replace an input, are refused before anything is sent.

The program does not import TensorFlow unless it reads a JPEG, so a call answers
in about a second. Errors, the server's included, are one line on stderr.
"""

import glob
import io
import os
import sys

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from tfp_vqvae.configs import flags as config_flags
from tfp_vqvae.internal import cli
from tfp_vqvae.serving import client as serving_client

_SERVER = flags.DEFINE_string(
    "server", None, "HOST:PORT of the gRPC port, or of the REST port with --rest.")
_MODEL_NAME = flags.DEFINE_string("model_name", serving_client.DEFAULT_MODEL_NAME,
                                  "Served model name.")
_REST = flags.DEFINE_bool("rest", False, "Use the REST API instead of gRPC.")
_TIMEOUT = flags.DEFINE_float("timeout", 30.0, "Deadline of the request, seconds.")
_OUTPUT = flags.DEFINE_string(
    "output", None, "encode: a .npy file for all codes, or a directory for one file "
    "per input; decode/reconstruct: the directory for the PNGs (created). Required "
    "except for neg_elbo.")

_COMMANDS = ("encode", "decode", "reconstruct", "neg_elbo")
_ARRAY_SUFFIXES = (".npy", ".npz")
_INT32_MAX = np.iinfo(np.int32).max
# Weights and float32 arithmetic of tf.image.rgb_to_grayscale, which training
# applies: summed in this order they give its uint8 values for all 2**24 colours.
_LUMA_WEIGHTS = tuple(np.float32(w) for w in (0.2989, 0.5870, 0.1140))
# Pillow modes of a grey image (1-bit, 8-bit, with alpha) and of 16-bit grey,
# which TF decodes to its high byte.
_GREY_MODES = ("1", "L", "LA")
_WIDE_GREY_MODES = ("I", "I;16", "I;16B", "I;16L")


def _expand(patterns):
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


def _luma(rgb):
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


def _decode_image(path, data, channels):
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
    return _luma(pixels)
  if channels == 3 and pixels.shape[-1] == 1:
    return np.repeat(pixels, 3, axis=-1)
  return pixels


def _read_image_file(path, image_shape):
  """uint8 [1, H, W, C]: the image file `path` in the model's channels.

  Raises:
    ValueError: if the file cannot be read or decoded, or is not H x W.
  """
  height, width, channels = image_shape
  with open(path, "rb") as f:
    image = _decode_image(path, f.read(), channels)
  if image.shape[:2] != (height, width):
    raise ValueError(f"{path} is {image.shape[0]}x{image.shape[1]} pixels but the model "
                     f"takes {height}x{width} images; resize or crop it first (the "
                     "client does not).")
  return image[None]


def _read_npy_images(path, image_shape):
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


def _read_codes(path):
  """{input name: int32 [B, ...]} of a codes file: "codes" from a .npy, VQ-VAE-2's
  "top_codes" and "bottom_codes" from a .npz."""
  loaded = np.load(path)
  arrays = dict(loaded) if path.endswith(".npz") else {"codes": loaded}
  return {name: _checked_codes(path, name, array) for name, array in arrays.items()}


def _output_names(paths, counts):
  """The output name of each row: a's for image file a.png, x_000, x_001, ... for
  the rows of array file x.npy.

  Raises:
    ValueError: if two inputs would give the same name.
  """
  names, sources = [], {}
  for path, count in zip(paths, counts):
    stem = os.path.splitext(os.path.basename(path))[0]
    rows = ([f"{stem}_{i:03d}" for i in range(count)]
            if path.endswith(_ARRAY_SUFFIXES) else [stem])
    for name in rows:
      if name in sources:
        raise ValueError(f"{sources[name]} and {path} would both be written as {name}; "
                         "rename one.")
      sources[name] = path
    names.extend(rows)
  return names


def _output_paths(directory, names, suffix, inputs):
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


def _code_arrays(outputs):
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


def _code_targets(output, paths):
  """Where encode writes: None for the one file `output` (.npy/.npz), else a path
  per input file in the directory `output`, which this creates."""
  if output.endswith(_ARRAY_SUFFIXES):
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    return None
  stems = [os.path.splitext(os.path.basename(path))[0] for path in paths]
  return _output_paths(output, stems, ".npy", paths)


def _write_codes(output, codes, targets, counts):
  """Writes the codes to the file `output`, or the rows of input file i (counts[i]
  of them) to targets[i] (see `_code_targets`); prints where."""
  if targets is None:
    path = _save_codes(output, codes)
    shapes = ", ".join(f"{name} {list(value.shape)}" for name, value in codes.items())
    print(f"Wrote {shapes} to {path}.")
    return
  starts = np.cumsum([0] + list(counts))
  for target, start, stop in zip(targets, starts[:-1], starts[1:]):
    _save_codes(target, {name: value[start:stop] for name, value in codes.items()})
  print(f"Wrote the codes of {len(targets)} files to {output}.")


def _write_pngs(targets, probs):
  """Writes float [B, H, W, C] in [0, 1] as PNGs, image i to targets[i]."""
  pixels = np.round(np.clip(probs, 0.0, 1.0) * 255.0).astype(np.uint8)
  for target, image in zip(targets, pixels):
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(target, "PNG")
  shown = f": {os.path.basename(targets[0])}{' ...' if len(targets) > 1 else ''}"
  print(f"Wrote {len(targets)} PNGs to {_OUTPUT.value}{shown if targets else '.'}")


def _make_client():
  if _REST.value:
    return serving_client.RestClient(f"http://{_SERVER.value}", _MODEL_NAME.value,
                                     timeout_seconds=_TIMEOUT.value)
  return serving_client.GrpcClient(_SERVER.value, _MODEL_NAME.value,
                                   timeout_seconds=_TIMEOUT.value)


def _run(command, patterns):
  """Runs `command` on the files `patterns` name and writes or prints its outputs."""
  if command != "neg_elbo" and not _OUTPUT.value:
    raise ValueError(f"{command} needs --output.")
  if command in ("decode", "reconstruct") and _OUTPUT.value.endswith(_ARRAY_SUFFIXES):
    raise ValueError(f"{command} writes PNGs: --output must be a directory, not "
                     f"{_OUTPUT.value}.")
  paths = _expand(patterns)
  with _make_client() as client:
    if command == "decode":
      batches = [_read_codes(path) for path in paths]
    else:
      image_shape = client.image_shape(command)
      batches = [{"images": _read_npy_images(path, image_shape) if path.endswith(".npy")
                             else _read_image_file(path, image_shape)} for path in paths]
    counts = [len(next(iter(batch.values()))) for batch in batches]
    names = _output_names(paths, counts)
    # Output paths are checked, and directories made, before anything is sent.
    if command == "encode":
      code_targets = _code_targets(_OUTPUT.value, paths)
    elif command != "neg_elbo":
      png_targets = _output_paths(_OUTPUT.value, names, ".png", paths)
    outputs = client.predict(command, {name: np.concatenate([batch[name] for batch in batches])
                                       for name in batches[0]})
  if command == "encode":
    _write_codes(_OUTPUT.value, _code_arrays(outputs), code_targets, counts)
  elif command == "decode":
    _write_pngs(png_targets, outputs["probs"])
  elif command == "reconstruct":
    _write_pngs(png_targets, outputs["probs"])
    _write_codes(os.path.join(_OUTPUT.value, "codes.npy"), _code_arrays(outputs), None,
                 counts)
  else:
    width = max(map(len, names))
    for name, value in zip(names, outputs["neg_elbo"]):
      print(f"{name:<{width}}  {value:.4f}")


def main(argv):
  if len(argv) < 3 or argv[1] not in _COMMANDS:
    raise app.UsageError(f"usage: {argv[0]} [flags] {'|'.join(_COMMANDS)} FILE...")
  try:
    _run(argv[1], argv[2:])
  except serving_client.PredictionError as error:
    sys.exit(f"error: the server answered {error}")
  except (ValueError, OSError) as error:
    sys.exit(f"error: {error}")


def run():
  """The console entry point."""
  config_flags.add_help_group("client", ["server", "model_name", "rest", "timeout",
                                         "output"])
  cli.run(main, __doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
          required=("server",))


if __name__ == "__main__":
  run()
