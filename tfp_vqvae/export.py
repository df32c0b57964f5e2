r"""Exports a trained model_dir as a TF Serving SavedModel version.

    tfp-vqvae-export --model_dir DIR --export_base BASE [--version N] [--prior_dir DIR]

(also `python -m tfp_vqvae.export`, or `python -m export.export_saved_model` from a
checkout).

Restores the latest checkpoint of --model_dir (every model variable must match)
and writes BASE/<version>/ atomically; --version defaults to one more than the
highest version in BASE. With --prior_dir (a tfp_vqvae.train_prior model_dir over
the same VQ-VAE) the export also samples and scores codes. See
tfp_vqvae/serving/export.py for the signatures.
"""

from absl import flags

from tfp_vqvae.configs import flags as config_flags
from tfp_vqvae.internal import cli

_MODEL_DIR = flags.DEFINE_string("model_dir", None,
                                 "Training directory whose latest checkpoint to export.")
_EXPORT_BASE = flags.DEFINE_string(
    "export_base", None, "Model base path (TF Serving's --model_base_path); the "
    "export goes to BASE/<version>.")
_VERSION = flags.DEFINE_integer(
    "version", None, "Version number; default: one more than the highest in BASE.",
    lower_bound=1)
_PRIOR_DIR = flags.DEFINE_string(
    "prior_dir", None, "Optional learned prior over --model_dir's codes: adds the "
    "sample and log_prob_codes signatures.")
_MODEL_NAME = flags.DEFINE_string(
    "model_name", "vqvae",  # serving/export.py's DEFAULT_MODEL_NAME, without TF.
    "Model name the warm-up requests address (TF Serving's --model_name).")


config_flags.add_help_group("export", ["model_dir", "export_base", "version",
                                       "prior_dir", "model_name"])


def main(argv):
  cli.check_no_arguments(argv)
  cli.start_tensorflow(f"Exporting {_MODEL_DIR.value}")
  from tfp_vqvae.serving import export as export_lib  # pylint: disable=g-import-not-at-top
  path = cli.exit_on_error(export_lib.export_saved_model, _MODEL_DIR.value,
                           _EXPORT_BASE.value, _VERSION.value, _MODEL_NAME.value,
                           prior_dir=_PRIOR_DIR.value, errors=(AssertionError, OSError))
  print(path)


def run():
  """The console entry point, tfp-vqvae-export."""
  cli.run(main, __doc__, required=["model_dir", "export_base"])


if __name__ == "__main__":
  run()
