"""Tests of writing a split out as a folder of PNG files."""

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tfp_vqvae.data import pipeline as data
from tfp_vqvae.data import png_folder as data_export
import image_files

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class DataExportTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.images = image_files.random_images(12, (5, 4, 1))
    self.labels = np.arange(12) % 3
    self.records = image_files.write_tfrecord(
        os.path.join(self.get_temp_dir(), "in", "data.tfrecord"), self.images, self.labels)

  def _open(self, split):
    return data.open_data(f"tfrecord:{self.records}", split, split)

  def _read_folder(self, root, split):
    image_data = data.open_data(f"folder:{root}", split, split)
    pairs = list(image_data.uint8_batches(data.TRAIN, 5, with_labels=True))
    return (np.concatenate([images for images, _ in pairs]),
            np.concatenate([labels for _, labels in pairs]), image_data)

  def test_files_keep_the_split_order(self):
    root = os.path.join(self.get_temp_dir(), "out")

    count = data_export.export_png_folder(self._open("train[2:]"), root, "test")

    self.assertEqual(count, 10)
    self.assertEqual(sorted(os.listdir(os.path.join(root, "test")))[:2],
                     ["00000.png", "00001.png"])
    images, _, folder = self._read_folder(root, "test[3:]")
    self.assertAllEqual(images, self.images[5:])
    self.assertFalse(folder.has_labels(data.TRAIN))

  def test_label_folders_make_the_labels_readable(self):
    root = os.path.join(self.get_temp_dir(), "out")

    data_export.export_png_folder(self._open("train"), root, "train", label_folders=True)

    images, labels, _ = self._read_folder(root, "train")
    # Sorted by label first, then by position.
    order = np.argsort(self.labels, kind="stable")
    self.assertAllEqual(labels, self.labels[order])
    self.assertAllEqual(images, self.images[order])
    self.assertEqual(data.num_classes(f"folder:{root}", "train"), 3)

  def test_refusals_are_one_line(self):
    root = os.path.join(self.get_temp_dir(), "out")
    data_export.export_png_folder(self._open("train[:2]"), root, "train")
    with self.assertRaisesRegex(ValueError, "train already holds files"):
      data_export.export_png_folder(self._open("train[:2]"), root, "train")
    unlabelled = image_files.write_tfrecord(
        os.path.join(self.get_temp_dir(), "plain.tfrecord"), self.images[:2])
    with self.assertRaisesRegex(ValueError, "--label_folders: .* has no labels"):
      data_export.export_png_folder(
          data.open_data(f"tfrecord:{unlabelled}", "train", "train"), root, "test",
          label_folders=True)

  def test_cli(self):
    root = os.path.join(self.get_temp_dir(), "cli")
    result = subprocess.run(
        [sys.executable, "-m", "tfp_vqvae.data_export", f"--dataset=tfrecord:{self.records}",
         "--split=train[:4]", f"--output_dir={root}"],
        cwd=_ROOT, capture_output=True, text=True, timeout=600, check=False)

    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertLen(os.listdir(os.path.join(root, "train")), 4)
    self.assertIn(f"Wrote 4 PNG files of tfrecord:{self.records} train[:4]", result.stderr)


if __name__ == "__main__":
  tf.test.main()
