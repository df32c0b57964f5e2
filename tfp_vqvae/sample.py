r"""Generates images: codes by ancestral sampling from the prior, decoded by the VQ-VAE.

    python -m tfp_vqvae.sample --vqvae_dir DIR --prior_dir PRIOR_DIR --num 64 \
      --out samples.png [--temperature 1.0 --seed 0]

Writes a PNG grid of the decoder's means. Sample i is drawn from its own seed,
derived from (--seed, i), so the output depends only on the flags: the same
command writes the same image, whatever --batch_size. Every code layout works:
single-level and residual codes are drawn by their PixelCNN, VQ-VAE-2's top codes
first and then its bottom codes given them.
"""

import sys

# Before anything imports TensorFlow: keeps its C++ start-up lines quiet.
from tfp_vqvae.internal import cli  # pylint: disable=unused-import

from absl import app
from absl import flags
import numpy as np

from tfp_vqvae.priors import pixelcnn as prior_lib
from tfp_vqvae.priors import sampling
from tfp_vqvae.training import checkpoints
from tfp_vqvae.training import figures


def define_flags(flag_values=flags.FLAGS):
  flags.DEFINE_string("vqvae_dir", None, "model_dir of the trained VQ-VAE.",
                      flag_values=flag_values)
  flags.DEFINE_string("prior_dir", None, "model_dir of a prior trained by "
                      "tfp_vqvae.train_prior over that VQ-VAE's codes; its best/ "
                      "checkpoint is used.", flag_values=flag_values)
  flags.DEFINE_string("out", None, "PNG file to write.", flag_values=flag_values)
  flags.DEFINE_integer("num", 64, "Number of samples.", lower_bound=1,
                       flag_values=flag_values)
  flags.DEFINE_float("temperature", 1.0, "Divides the prior's logits; < 1 gives "
                     "cleaner, less varied samples.", flag_values=flag_values)
  flags.register_validator("temperature", lambda value: value > 0, message="must be > 0",
                           flag_values=flag_values)
  flags.DEFINE_integer("seed", 0, "Seed of the draw.", lower_bound=0,
                       flag_values=flag_values)
  flags.DEFINE_integer("columns", 8, "Images per row of the grid.", lower_bound=1,
                       flag_values=flag_values)
  flags.DEFINE_integer("batch_size", 64, "Samples drawn at once.", lower_bound=1,
                       flag_values=flag_values)
  flags.DEFINE_integer("label", None, "Class of every sample, for a class-conditional "
                       "prior; default: classes 0, 1, ... in turn.", lower_bound=0,
                       flag_values=flag_values)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  values = flags.FLAGS
  try:
    vqvae, _, _ = checkpoints.load_vqvae(values.vqvae_dir)
    prior, _ = prior_lib.load_prior(values.prior_dir, vqvae)
    labels = None
    if prior.num_classes:
      if values.label is not None and values.label >= prior.num_classes:
        raise ValueError(f"--label must be < {prior.num_classes}, got {values.label}.")
      labels = (np.full([values.num], values.label, np.int32) if values.label is not None
                else np.arange(values.num, dtype=np.int32) % prior.num_classes)
    elif values.label is not None:
      raise ValueError("--label needs a class-conditional prior.")
    _, probs = sampling.sample_images(vqvae, prior, values.num, values.temperature, values.seed,
                             values.batch_size, labels)
    figures.write_png(values.out, figures.image_grid(probs, values.columns))
  except ValueError as error:
    sys.exit(f"error: {error}")
  print(values.out)


def run():
  """The console entry point, tfp-vqvae-sample."""
  define_flags()
  flags.mark_flags_as_required(["vqvae_dir", "prior_dir", "out"])
  app.run(main)


if __name__ == "__main__":
  run()
