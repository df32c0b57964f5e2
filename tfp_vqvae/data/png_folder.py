r"""A split of any dataset written out as a folder of PNG files (a `folder:` dataset).

`python -m tfp_vqvae.data_export --split=test --output_dir=/tmp/kmnist_png ...`
writes /tmp/kmnist_png/test/00000.png ... 09999.png, in the split's order, so that
`--dataset=folder:/tmp/kmnist_png --train_split='test[:9000]'
--eval_split='test[9000:]'` trains on exactly the images the idx files give for
the same split strings. With `--label_folders` each image goes to a sub-folder
named after its label (test/0/00003.png, ...), which makes the labels readable
(data/sources.py) but orders the files by label first: then `test[:9000]` of the
folder is not `test[:9000]` of the source.

The images are written as the data pipeline reads them, so `--image_size` and
`--channels` apply (unset: as stored). Any `--dataset` spelling works, e.g. to
turn TFRecords or a TFDS dataset into files.
"""

import os

import tensorflow as tf

from tfp_vqvae.data import pipeline as data


def export_png_folder(image_data: data.ImageData, output_dir: str, split_name: str,
                      label_folders: bool = False) -> int:
  """Writes the training split of `image_data` as PNG files.

  Args:
    image_data: Data whose `data.TRAIN` split is written.
    output_dir: Root of the folder dataset; created if missing.
    split_name: Sub-folder of `output_dir` to write, e.g. "test".
    label_folders: Put each image in a sub-folder named after its label.

  Returns:
    The number of files written.

  Raises:
    ValueError: If the split folder already holds files, or labels are asked
      for and the data has none.
  """
  split_dir = os.path.join(output_dir, split_name)
  if tf.io.gfile.exists(split_dir) and tf.io.gfile.listdir(split_dir):
    raise ValueError(f"--output_dir: {split_dir} already holds files; choose another "
                     "--output_dir or --output_split.")
  if label_folders and not image_data.has_labels(data.TRAIN):
    raise ValueError(f"--label_folders: {image_data.describe(data.TRAIN)} has no labels.")
  digits = max(5, len(str(image_data.num_examples(data.TRAIN) - 1)))
  index = 0
  for images, labels in image_data.uint8_batches(data.TRAIN, 256, with_labels=True):
    for image, label in zip(images, labels.numpy()):
      parent = os.path.join(split_dir, str(label)) if label_folders else split_dir
      if index == 0 or label_folders:
        tf.io.gfile.makedirs(parent)
      tf.io.write_file(os.path.join(parent, f"{index:0{digits}d}.png"),
                       tf.io.encode_png(image))
      index += 1
  return index
