r"""Calls a served VQ-VAE from the command line (gRPC, or REST with --rest).

    tfp-vqvae-client --server localhost:8500 encode a.png b.png --output codes.npy
    tfp-vqvae-client --server localhost:8500 decode codes.npy --output out/
    tfp-vqvae-client --server localhost:8500 reconstruct images.npy --output out/
    tfp-vqvae-client --server localhost:8500 neg_elbo a.png

(also `python -m tfp_vqvae.client`, or `python -m export.client` from a checkout).

Inputs are PNG files (one image each, decoded with --channels channels) or .npy
files: uint8 images [B, H, W, C] (or [H, W, C], [B, H, W] for C = 1), or int32
codes [B, h, w] for decode. encode writes the codes to --output (.npy);
decode and reconstruct write one PNG per image into the --output directory
(reconstruct also writes codes.npy there); neg_elbo prints one value per image.
"""

import os
import sys

# Before anything imports TensorFlow: keeps its C++ start-up lines quiet.
from tfp_vqvae import _cli  # pylint: disable=unused-import

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from tfp_vqvae import serving_client

_SERVER = flags.DEFINE_string(
    "server", None, "HOST:PORT of the gRPC port, or of the REST port with --rest.")
_MODEL_NAME = flags.DEFINE_string("model_name", serving_client.DEFAULT_MODEL_NAME,
                                  "Served model name.")
_REST = flags.DEFINE_bool("rest", False, "Use the REST API instead of gRPC.")
_TIMEOUT = flags.DEFINE_float("timeout", 30.0, "Deadline of the request, seconds.")
_CHANNELS = flags.DEFINE_integer("channels", 1, "Channels to decode PNG inputs to.")
_OUTPUT = flags.DEFINE_string(
    "output", None, "encode: .npy file for the codes; decode/reconstruct: directory "
    "for the PNGs. Required except for neg_elbo.")

_COMMANDS = ("encode", "decode", "reconstruct", "neg_elbo")


def _read_images(paths, channels):
  """uint8 [B, H, W, C] from PNG and .npy files, in order."""
  batches = []
  for path in paths:
    if path.endswith(".npy"):
      array = np.load(path)
      if array.dtype != np.uint8:
        raise ValueError(f"{path} holds {array.dtype} values; images must be uint8 0..255.")
      if array.ndim == 3 and channels == 1 and array.shape[-1] != 1:
        array = array[..., None]  # [B, H, W] greyscale.
      batches.append(array[None] if array.ndim == 3 else array)
    else:
      batches.append(tf.io.decode_png(tf.io.read_file(path), channels=channels)[None])
  return np.concatenate(batches)


def _read_codes(paths):
  """int32 [B, h, w] from .npy files, in order."""
  batches = []
  for path in paths:
    array = np.load(path)
    if not np.issubdtype(array.dtype, np.integer):
      raise ValueError(f"{path} holds {array.dtype} values; codes must be integers.")
    batches.append(array.astype(np.int32))
  return np.concatenate(batches)


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
  with client:
    if command == "decode":
      _write_pngs(_OUTPUT.value, client.decode(_read_codes(paths))["probs"], "decoded")
      return
    outputs = client.predict(command, {"images": _read_images(paths, _CHANNELS.value)})
  if command == "encode":
    np.save(_OUTPUT.value, outputs["codes"])
    print(f"Wrote codes {outputs['codes'].shape} to {_OUTPUT.value}.")
  elif command == "reconstruct":
    _write_pngs(_OUTPUT.value, outputs["probs"], "reconstructed")
    np.save(os.path.join(_OUTPUT.value, "codes.npy"), outputs["codes"])
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
