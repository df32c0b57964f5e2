r"""Trains a VQ-VAE: `python -m tfp_vqvae.train --flagfile flags/kmnist.cfg --model_dir DIR`.

Resumes automatically when --model_dir holds a checkpoint. Writes checkpoints,
TensorBoard summaries, metrics.json and PNG figures to --model_dir.
"""

from absl import flags

from tfp_vqvae.configs import flags as config_flags
from tfp_vqvae.internal import cli

config_flags.define_config_flags()
_MODEL_DIR = flags.DEFINE_string("model_dir", None,
                                 "Directory for checkpoints, summaries and results.")
config_flags.add_help_group("run", ["model_dir"])


def main(argv):
  cli.check_no_arguments(argv)
  config = cli.exit_on_error(config_flags.config_from_flags)
  cli.start_tensorflow(f"Training in {_MODEL_DIR.value}")
  from tfp_vqvae.training import vqvae_trainer  # pylint: disable=g-import-not-at-top
  cli.exit_on_error(vqvae_trainer.train_and_evaluate, config, _MODEL_DIR.value)


def run():
  """The console entry point, tfp-vqvae-train."""
  cli.run(main, __doc__, required=["model_dir"])


if __name__ == "__main__":
  run()
