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

import os
import sys

from absl import app
from absl import flags
import numpy as np

from tfp_vqvae.configs import flags as config_flags
from tfp_vqvae.internal import cli
from tfp_vqvae.serving import client as serving_client
from tfp_vqvae.serving import client_files as files

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


def _make_client():
  if _REST.value:
    return serving_client.RestClient(f"http://{_SERVER.value}", _MODEL_NAME.value,
                                     timeout_seconds=_TIMEOUT.value)
  return serving_client.GrpcClient(_SERVER.value, _MODEL_NAME.value,
                                   timeout_seconds=_TIMEOUT.value)


def _run(command, patterns):
  """Runs `command` on the files `patterns` name and writes or prints its outputs."""
  output = _OUTPUT.value
  if command != "neg_elbo" and not output:
    raise ValueError(f"{command} needs --output.")
  if command in ("decode", "reconstruct") and output.endswith(files.ARRAY_SUFFIXES):
    raise ValueError(f"{command} writes PNGs: --output must be a directory, not "
                     f"{output}.")
  paths = files.expand(patterns)
  with _make_client() as client:
    if command == "decode":
      batches = [files.read_codes(path) for path in paths]
    else:
      image_shape = client.image_shape(command)
      batches = [{"images": files.read_npy_images(path, image_shape)
                            if path.endswith(".npy")
                            else files.read_image_file(path, image_shape)}
                 for path in paths]
    counts = [len(next(iter(batch.values()))) for batch in batches]
    names = files.output_names(paths, counts)
    # Output paths are checked, and directories made, before anything is sent.
    if command == "encode":
      code_targets = files.code_targets(output, paths)
    elif command != "neg_elbo":
      png_targets = files.output_paths(output, names, ".png", paths)
    outputs = client.predict(command, {
        name: np.concatenate([batch[name] for batch in batches]) for name in batches[0]})
  if command == "encode":
    files.write_codes(output, files.code_arrays(outputs), code_targets, counts)
  elif command in ("decode", "reconstruct"):
    files.write_pngs(png_targets, outputs["probs"], output)
    if command == "reconstruct":
      files.write_codes(os.path.join(output, "codes.npy"), files.code_arrays(outputs),
                        None, counts)
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
