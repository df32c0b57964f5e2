r"""Writes a split of any dataset out as a folder of PNG files (a `folder:` dataset).

    python -m tfp_vqvae.data_export --dataset=kmnist \
      --dataset_dir=../shared/data/kmnist --split=test --output_dir=/tmp/kmnist_png

See `tfp_vqvae.data.png_folder` for the files' names and order.
"""

import os
import sys

# Before anything imports TensorFlow: keeps its C++ start-up lines quiet.
from tfp_vqvae.internal import cli  # pylint: disable=unused-import

from absl import app
from absl import flags
from absl import logging

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.data import image_files as image_readers
from tfp_vqvae.data import pipeline as data
from tfp_vqvae.data import png_folder


def define_flags(flag_values=flags.FLAGS):
  config_lib.define_flags(flag_values, fields=png_folder._SOURCE_FIELDS)
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
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  values = flags.FLAGS
  output_split = values.output_split or values.split.split("[")[0].split("+")[0]
  try:
    image_data = data.open_data(train_split=values.split, eval_split=values.split,
                                **{name: values[name].value for name in png_folder._SOURCE_FIELDS})
    count = png_folder.export_png_folder(image_data, values.output_dir, output_split,
                              values.label_folders)
  except (image_readers.DatasetUnavailableError, ValueError) as error:
    sys.exit(f"error: {error}")
  logging.info("Wrote %d PNG files of %s to %s.", count, image_data.describe(data.TRAIN),
               os.path.join(values.output_dir, output_split))


def run():
  """The console entry point, tfp-vqvae-data-export."""
  define_flags()
  flags.mark_flag_as_required("output_dir")
  app.run(main)


if __name__ == "__main__":
  run()
