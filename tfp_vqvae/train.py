r"""Trains a VQ-VAE: `python -m tfp_vqvae.train --flagfile flags/kmnist.cfg --model_dir DIR`.

Resumes automatically when --model_dir holds a checkpoint. Writes checkpoints,
TensorBoard summaries, metrics.json and PNG figures to --model_dir.
"""

import sys

# Before anything imports TensorFlow: keeps its C++ start-up lines quiet.
from tfp_vqvae.internal import cli  # pylint: disable=unused-import

from absl import app
from absl import flags

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.data import pipeline as data
from tfp_vqvae.training import loop as loop_lib
from tfp_vqvae.training import vqvae_trainer as train_lib

config_lib.define_flags()
_MODEL_DIR = flags.DEFINE_string("model_dir", None,
                                 "Directory for checkpoints, summaries and results.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  try:
    train_lib.train_and_evaluate(config_lib.Config.from_flags(), _MODEL_DIR.value)
  except (data.DatasetUnavailableError, ValueError) as error:
    sys.exit(f"error: {error}")
  except loop_lib.Interrupted as stop:
    sys.exit(f"stopped: {stop}")


def run():
  """The console entry point, tfp-vqvae-train."""
  flags.mark_flag_as_required("model_dir")
  app.run(main)


if __name__ == "__main__":
  run()
