r"""Calls a served VQ-VAE from the command line (gRPC, or REST with --rest).

    tfp-vqvae-client --server localhost:8500 encode a.png b.jpg --output codes.npy
    tfp-vqvae-client --server localhost:8500 decode codes.npy --output out/
    tfp-vqvae-client --server localhost:8500 reconstruct 'photos/*.jpg' --output out/
    tfp-vqvae-client --server localhost:8500 neg_elbo images.npy

(also `python -m tfp_vqvae.client`, or `python -m export.client` from a checkout).

encode, reconstruct and neg_elbo take image files (PNG, JPEG, BMP, GIF, WebP;
one image each) or .npy files of uint8 images [B, H, W, C] (or [H, W, C], or
[B, H, W] for C = 1); decode takes .npy files of int32 codes [B, h, w]. A
quoted glob stands for the files it matches, in sorted order. The client asks
the server for the model's image shape (TF Serving's model metadata) and
converts each image file to the model's channels as training does (grey to RGB
by repetition, RGB to grey as luma, alpha dropped). It does not resize: a file
of another size than the model's H x W is refused with one line naming it
(resize or crop it as training did, e.g. with --image_size). encode writes the
codes to --output (.npy); decode and reconstruct write one PNG per image into
the --output directory (reconstruct also writes codes.npy there); neg_elbo
prints one value per image. A VQ-VAE-2's two code maps go into one .npz file
(arrays top_codes and bottom_codes, the signatures' names) in place of each .npy,
which decode takes back.
"""

import os
import sys

# Before anything imports TensorFlow: keeps its C++ start-up lines quiet.
from tfp_vqvae.internal import cli  # pylint: disable=unused-import

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from tfp_vqvae.data import image_files as image_readers
from tfp_vqvae.data import preprocessing
from tfp_vqvae.serving import client as serving_client

_SERVER = flags.DEFINE_string(
    "server", None, "HOST:PORT of the gRPC port, or of the REST port with --rest.")
_MODEL_NAME = flags.DEFINE_string("model_name", serving_client.DEFAULT_MODEL_NAME,
                                  "Served model name.")
_REST = flags.DEFINE_bool("rest", False, "Use the REST API instead of gRPC.")
_TIMEOUT = flags.DEFINE_float("timeout", 30.0, "Deadline of the request, seconds.")
_OUTPUT = flags.DEFINE_string(
    "output", None, "encode: .npy file for the codes; decode/reconstruct: directory "
    "for the PNGs. Required except for neg_elbo.")

_COMMANDS = ("encode", "decode", "reconstruct", "neg_elbo")


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
    matches = sorted(tf.io.gfile.glob(pattern))
    if not matches:
      raise ValueError(f"{pattern} matches no file.")
    paths.extend(matches)
  return paths


def _read_image_file(path, image_shape):
  """uint8 [1, H, W, C]: the image file `path` in the model's channels.

  Raises:
    ValueError: if the file cannot be read or decoded, or is not H x W.
  """
  height, width, channels = image_shape
  try:
    image = preprocessing.decode(tf.io.read_file(path))
  except tf.errors.OpError as error:
    raise ValueError(f"Cannot read image {path}: {image_readers.first_line(error)}") from None
  if tuple(image.shape[:2]) != (height, width):
    raise ValueError(f"{path} is {image.shape[0]}x{image.shape[1]} pixels but the model "
                     f"takes {height}x{width} images; resize or crop it first (the "
                     "client does not).")
  return preprocessing.to_channels(image, channels)[None].numpy()


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


def _read_images(paths, image_shape):
  """uint8 [B, H, W, C] from image and .npy files, in order, for a model taking
  images of `image_shape` (H, W, C)."""
  return np.concatenate([
      _read_npy_images(path, image_shape) if path.endswith(".npy")
      else _read_image_file(path, image_shape) for path in paths])


def _read_codes(paths):
  """int32 [B, h, w] from .npy files, in order; for VQ-VAE-2, .npz files give
  {"top_codes": ..., "bottom_codes": ...}."""
  batches = []
  for path in paths:
    loaded = np.load(path)
    arrays = dict(loaded) if path.endswith(".npz") else {"codes": loaded}
    for name, array in arrays.items():
      if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{path} holds {array.dtype} values in {name}; codes must be "
                         "integers.")
    batches.append({name: array.astype(np.int32) for name, array in arrays.items()})
  codes = {name: np.concatenate([batch[name] for batch in batches])
           for name in batches[0]}
  return codes["codes"] if list(codes) == ["codes"] else codes


def _save_codes(path, outputs):
  """Writes the codes of `outputs`: "codes" as .npy, VQ-VAE-2's two maps as .npz."""
  if "codes" in outputs:
    np.save(path, outputs["codes"])
    shapes = outputs["codes"].shape
  else:
    path = os.path.splitext(path)[0] + ".npz"
    codes = {name: outputs[name] for name in ("top_codes", "bottom_codes")}
    np.savez(path, **codes)
    shapes = ", ".join(f"{name} {value.shape}" for name, value in codes.items())
  print(f"Wrote codes {shapes} to {path}.")


def _write_pngs(directory, probs, prefix):
  """Writes float [B, H, W, C] in [0, 1] as directory/prefix_000.png, ..."""
  tf.io.gfile.makedirs(directory)
  pixels = np.round(np.clip(probs, 0.0, 1.0) * 255.0).astype(np.uint8)
  for i, image in enumerate(pixels):
    tf.io.write_file(os.path.join(directory, f"{prefix}_{i:03d}.png"),
                     tf.io.encode_png(image))
  print(f"Wrote {len(pixels)} PNGs to {directory}.")


def _run(command, paths):
  """Runs `command` on the files `paths` and writes or prints its outputs."""
  if command != "neg_elbo" and not _OUTPUT.value:
    raise ValueError(f"{command} needs --output.")
  if _REST.value:
    client = serving_client.RestClient(f"http://{_SERVER.value}", _MODEL_NAME.value,
                                       timeout_seconds=_TIMEOUT.value)
  else:
    client = serving_client.GrpcClient(_SERVER.value, _MODEL_NAME.value,
                                       timeout_seconds=_TIMEOUT.value)
  paths = _expand(paths)
  with client:
    if command == "decode":
      _write_pngs(_OUTPUT.value, client.decode(_read_codes(paths))["probs"], "decoded")
      return
    images = _read_images(paths, client.image_shape(command))
    outputs = client.predict(command, {"images": images})
  if command == "encode":
    _save_codes(_OUTPUT.value, outputs)
  elif command == "reconstruct":
    _write_pngs(_OUTPUT.value, outputs["probs"], "reconstructed")
    _save_codes(os.path.join(_OUTPUT.value, "codes.npy"), outputs)
  else:
    for value in outputs["neg_elbo"]:
      print(f"{value:.4f}")


def main(argv):
  if len(argv) < 3 or argv[1] not in _COMMANDS:
    raise app.UsageError(f"usage: {argv[0]} [flags] {'|'.join(_COMMANDS)} FILE...")
  try:
    _run(argv[1], argv[2:])
  except serving_client.PredictionError as error:
    sys.exit(f"error: the server answered {error}")
  except (ValueError, OSError, tf.errors.OpError) as error:
    sys.exit(f"error: {error}")


def run():
  """The console entry point."""
  flags.mark_flag_as_required("server")
  app.run(main)


if __name__ == "__main__":
  run()
