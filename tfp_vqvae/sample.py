r"""Generates images: codes sampled from the prior, decoded by the VQ-VAE.

    python -m tfp_vqvae.sample --vqvae_dir DIR --prior_dir PRIOR_DIR --num 64 \
      --out samples.png [--temperature 1.0 --top_k 0 --top_p 1.0 --seed 0]

Writes a PNG grid of the decoder's means. Sample i is drawn from its own seed,
derived from (--seed, i), so the output depends only on the flags: the same
command writes the same image, whatever --batch_size. Every code layout works:
single-level and residual codes are drawn by their prior (PixelCNN or causal
Transformer: one code after another; MaskGIT: in 8 parallel steps), VQ-VAE-2's top
codes first and then its bottom codes given them.
"""

import math

from absl import flags
import numpy as np

from tfp_vqvae.configs import flags as config_flags
from tfp_vqvae.internal import cli


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
  flags.register_validator("temperature", lambda value: 0 < value < math.inf,
                           message="must be finite and > 0", flag_values=flag_values)
  flags.DEFINE_integer("top_k", 0, "Draws each code among the top_k most likely codes "
                       "(at most the prior's K); 0 for all.", lower_bound=0,
                       flag_values=flag_values)
  flags.DEFINE_float("top_p", 1.0, "Draws each code from the smallest set of most "
                     "likely codes whose probability reaches top_p (nucleus "
                     "sampling); 1 for all.", flag_values=flag_values)
  flags.register_validator("top_p", lambda value: 0 < value <= 1,
                           message="must be in (0, 1]", flag_values=flag_values)
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
  cli.check_no_arguments(argv)
  values = flags.FLAGS
  cli.start_tensorflow(f"Sampling {values.num} images to {values.out}")
  # pylint: disable=g-import-not-at-top
  from tfp_vqvae.priors import pixelcnn as prior_lib
  from tfp_vqvae.priors import sampling
  from tfp_vqvae.training import checkpoints
  from tfp_vqvae.training import figures

  def sample():
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
    if values.top_k > prior.num_embeddings:
      raise ValueError(f"--top_k must be at most the prior's K={prior.num_embeddings}, "
                       f"got {values.top_k}.")
    _, probs = sampling.sample_images(vqvae, prior, values.num, values.temperature,
                                      values.seed, values.batch_size, labels,
                                      values.top_k, values.top_p)
    knobs = (f", top_k {values.top_k}" if values.top_k else "") + (
        f", top_p {values.top_p:g}" if values.top_p < 1 else "")
    title = (f"{values.num} samples of the prior {values.prior_dir}, temperature "
             f"{values.temperature:g}{knobs}, seed {values.seed}")
    figures.write_png(values.out, figures.samples_figure(probs, values.columns, title))

  cli.exit_on_error(sample)
  print(values.out)


def run():
  """The console entry point, tfp-vqvae-sample."""
  define_flags()
  config_flags.add_help_group("sampling", ["vqvae_dir", "prior_dir", "out", "num",
                                           "temperature", "top_k", "top_p", "seed",
                                           "columns", "batch_size", "label"])
  cli.run(main, __doc__, required=["vqvae_dir", "prior_dir", "out"])


if __name__ == "__main__":
  run()
