r"""Trains a learned prior over a trained VQ-VAE's codes.

    python -m tfp_vqvae.train_prior --flagfile flags/kmnist_prior.cfg \
      --vqvae_dir DIR --model_dir PRIOR_DIR [data flags as for tfp_vqvae.train]

Writes checkpoints, the best one in PRIOR_DIR/best/, and prior_metrics.json; see
`tfp_vqvae.training.prior_trainer` for what it does and what it reports.
"""

from absl import flags

from tfp_vqvae.configs import flags as config_flags
from tfp_vqvae.configs import priors
from tfp_vqvae.configs.data import DataOptions
from tfp_vqvae.configs.data import LoopOptions
from tfp_vqvae.internal import cli


def define_flags(flag_values=flags.FLAGS):
  """The data and loop flags of tfp_vqvae.train, the prior's, and the directories."""
  config_flags.define_options_flags(DataOptions, "data", flag_values)
  flags.DEFINE_string("prior", "pixelcnn",
                      f"The prior: one of {', '.join(priors.PRIORS.names())}.",
                      flag_values=flag_values)
  flags.register_validator("prior", lambda value: value in priors.PRIORS.names(),
                           message="must be a registered prior", flag_values=flag_values)
  flags.DEFINE_bool("class_conditional", False,
                    "Condition the prior on the class label: it then bounds "
                    "-log p(x | label), not -log p(x).", flag_values=flag_values)
  flags.DEFINE_integer("train_shifts", 0,
                       "N > 0: also train on the codes of each training image shifted "
                       "by every (dy, dx) with |dy|, |dx| <= N pixels, zeros shifted "
                       "in: (2N + 1)^2 code maps per image, more data for a prior that "
                       "overfits. The eval split is never shifted.",
                       lower_bound=0, flag_values=flag_values)
  config_flags.add_help_group("prior (choose with --prior)",
                              ["prior", "class_conditional", "train_shifts"], flag_values)
  for cls in priors.PRIORS.classes():
    config_flags.define_options_flags(cls, f"--prior={cls.name}", flag_values)
  config_flags.define_options_flags(LoopOptions, "loop", flag_values,
                                    defaults=priors.PRIOR_LOOP_DEFAULTS)
  flags.DEFINE_string("vqvae_dir", None, "model_dir of the trained VQ-VAE to encode with.",
                      flag_values=flag_values)
  flags.DEFINE_string("model_dir", None, "Directory for the prior's checkpoints, code "
                      "cache, summaries and prior_metrics.json.", flag_values=flag_values)
  config_flags.add_help_group("run", ["vqvae_dir", "model_dir"], flag_values)


def config_from_flags(flag_values=flags.FLAGS) -> priors.TrainPriorConfig:
  """The config of the parsed flags; a flag of a prior not chosen (e.g.
  --any_order_eval with --prior=transformer), at a value other than its default,
  is reported on stderr in one line."""
  config = priors.TrainPriorConfig.from_record(
      {name: flag_values[name].value for name in priors.TrainPriorConfig.field_names()})
  config_flags.warn_of_unchosen_options(priors.PRIORS.field_owners("prior"),
                                        set(config.prior.field_names()), flag_values)
  return config


def main(argv):
  cli.check_no_arguments(argv)
  config = cli.exit_on_error(config_from_flags)
  values = flags.FLAGS
  cli.start_tensorflow(f"Training a prior in {values.model_dir}")
  from tfp_vqvae.training import prior_trainer  # pylint: disable=g-import-not-at-top
  cli.exit_on_error(prior_trainer.train_prior, config, values.vqvae_dir,
                    values.model_dir)


def run():
  """The console entry point, tfp-vqvae-train-prior."""
  define_flags()
  cli.run(main, __doc__, required=["vqvae_dir", "model_dir"])


if __name__ == "__main__":
  run()
