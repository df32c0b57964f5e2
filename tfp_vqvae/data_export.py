r"""Writes a split of any dataset out as a folder of PNG files (a `folder:` dataset).

    python -m tfp_vqvae.data_export --dataset=kmnist \
      --dataset_dir=../shared/data/kmnist --split=test --output_dir=/tmp/kmnist_png

See `tfp_vqvae.data.png_folder` for the files' names and order.
"""

import os

from absl import flags
from absl import logging

from tfp_vqvae.configs import flags as config_flags
from tfp_vqvae.configs.data import SOURCE_FIELDS
from tfp_vqvae.configs.data import DataOptions
from tfp_vqvae.internal import cli

def define_flags(flag_values=flags.FLAGS):
  config_flags.define_options_flags(DataOptions, "data", flag_values, only=SOURCE_FIELDS)
  flags.DEFINE_string("split", "test", "TFDS split string of the images to write.",
                      flag_values=flag_values)
  flags.DEFINE_string("output_dir", None, "Root of the folder dataset to write.",
                      flag_values=flag_values)
  flags.DEFINE_string("output_split", "", "Sub-folder to write (train, test or "
                      "validation); empty: --split's split name, e.g. test for "
                      "test[:100].", flag_values=flag_values)
  flags.DEFINE_bool("label_folders", False, "One sub-folder per label (orders the "
                    "files by label).", flag_values=flag_values)


def main(argv):
  cli.check_no_arguments(argv)
  values = flags.FLAGS
  output_split = values.output_split or values.split.split("[")[0].split("+")[0]
  cli.start_tensorflow(f"Writing {values.split} to {values.output_dir}")
  # pylint: disable=g-import-not-at-top
  from tfp_vqvae.data import pipeline as data
  from tfp_vqvae.data import png_folder

  def export():
    image_data = data.open_data(train_split=values.split, eval_split=values.split,
                                **{name: values[name].value for name in SOURCE_FIELDS})
    count = png_folder.export_png_folder(image_data, values.output_dir, output_split,
                                         values.label_folders)
    logging.info("Wrote %d PNG files of %s to %s.", count,
                 image_data.describe(data.TRAIN),
                 os.path.join(values.output_dir, output_split))

  cli.exit_on_error(export)


def run():
  """The console entry point, tfp-vqvae-data-export."""
  define_flags()
  config_flags.add_help_group("output", ["split", "output_dir", "output_split",
                                         "label_folders"])
  cli.run(main, __doc__, required=["output_dir"])


if __name__ == "__main__":
  run()
