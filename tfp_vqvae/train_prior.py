r"""Trains a learned prior over a trained VQ-VAE's codes.

    python -m tfp_vqvae.train_prior --flagfile flags/kmnist_prior.cfg \
      --vqvae_dir DIR --model_dir PRIOR_DIR [data flags as for tfp_vqvae.train]

Writes checkpoints, the best one in PRIOR_DIR/best/, and prior_metrics.json; see
`tfp_vqvae.training.prior_trainer` for what it does and what it reports.
"""

import sys

# Before anything imports TensorFlow: keeps its C++ start-up lines quiet.
from tfp_vqvae.internal import cli  # pylint: disable=unused-import

from absl import app
from absl import flags

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.data import pipeline as data
from tfp_vqvae.training import loop as loop_lib
from tfp_vqvae.training import prior_trainer


def define_flags(flag_values=flags.FLAGS):
  """The data and optimisation flags of `config`, plus the prior's architecture."""
  config_lib.define_flags(flag_values, fields=prior_trainer._SHARED_FIELDS)
  defaults = prior_trainer.TrainPriorConfig()
  for name in prior_trainer._SHARED_FIELDS:
    flag_values.set_default(name, getattr(defaults, name))
  flags.DEFINE_string("vqvae_dir", None, "model_dir of the trained VQ-VAE to encode with.",
                      flag_values=flag_values)
  flags.DEFINE_string("model_dir", None, "Directory for the prior's checkpoints, code "
                      "cache, summaries and prior_metrics.json.", flag_values=flag_values)
  flags.DEFINE_integer("num_channels", defaults.num_channels,
                       "Channels of each PixelCNN stack.", lower_bound=1,
                       flag_values=flag_values)
  flags.DEFINE_integer("num_layers", defaults.num_layers, "Gated PixelCNN layers; enough "
                       "to see the whole grid (6 for 7x7 with kernel 3).", lower_bound=1,
                       flag_values=flag_values)
  flags.DEFINE_integer("kernel_size", defaults.kernel_size,
                       "Odd kernel size of the stacks' convolutions.", lower_bound=3,
                       flag_values=flag_values)
  flags.DEFINE_float("dropout_rate", defaults.dropout_rate,
                     "Dropout on the gated outputs of both stacks, in [0, 1).",
                     flag_values=flag_values)
  flags.register_validator("dropout_rate", lambda value: 0.0 <= value < 1.0,
                           message="must be in [0, 1)", flag_values=flag_values)
  flags.DEFINE_integer("num_attention_blocks", defaults.num_attention_blocks,
                       "Causal multi-head self-attention blocks (PixelSNAIL-like), "
                       "evenly spaced among the gated layers of the prior of the only "
                       "grid, or of the top grid of a VQ-VAE-2; 0 for none.",
                       lower_bound=0, flag_values=flag_values)
  flags.DEFINE_integer("num_heads", defaults.num_heads, "Heads of each attention "
                       "block; must divide --num_channels.", lower_bound=1,
                       flag_values=flag_values)
  for name, what in (("num_channels", "channels"), ("num_layers", "gated layers"),
                     ("kernel_size", "kernel size")):
    flags.DEFINE_integer(f"bottom_{name}", getattr(defaults, f"bottom_{name}"),
                         f"VQ-VAE-2 only: {what} of the bottom prior (conditioned on "
                         f"the top codes); 0 for --{name}'s.", lower_bound=0,
                         flag_values=flag_values)
  flags.register_validator("bottom_kernel_size",
                           lambda value: value == 0 or (value >= 3 and value % 2),
                           message="must be 0 or an odd number >= 3",
                           flag_values=flag_values)
  flags.DEFINE_bool("class_conditional", defaults.class_conditional,
                    "Condition the prior on the class label: it then bounds "
                    "-log p(x | label), not -log p(x).", flag_values=flag_values)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  try:
    prior_trainer.train_prior(prior_trainer.TrainPriorConfig.from_flags(), flags.FLAGS.vqvae_dir,
                flags.FLAGS.model_dir)
  except (data.DatasetUnavailableError, ValueError) as error:
    sys.exit(f"error: {error}")
  except loop_lib.Interrupted as stop:
    sys.exit(f"stopped: {stop}")


def run():
  """The console entry point, tfp-vqvae-train-prior."""
  define_flags()
  flags.mark_flags_as_required(["vqvae_dir", "model_dir"])
  app.run(main)


if __name__ == "__main__":
  run()
