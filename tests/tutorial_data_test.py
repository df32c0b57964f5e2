"""Tests of the data and config options the tutorial flagfiles use."""


import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.data import pipeline as data


class TutorialDataTest(tf.test.TestCase):

  def test_cifar10_from_mock_tfds(self):
    with tfds.testing.mock_data(num_examples=6):
      image_data = data.open_data("cifar10", "train", "test")
      images = np.concatenate(list(image_data.uint8_batches(data.TRAIN, 4)))
    self.assertEqual(images.shape, (6, 32, 32, 3))
    self.assertEqual(images.dtype, np.uint8)

  def test_cifar10_refuses_dataset_dir(self):
    with self.assertRaisesRegex(ValueError, "--dataset=cifar10 does not use it"):
      data.open_data("cifar10", "train", "test", dataset_dir=self.get_temp_dir())

  def test_grey_likelihoods_need_unbinarized_targets(self):
    config = config_lib.Config.from_fields()
    with self.assertRaisesRegex(ValueError, "binarize='none'"):
      config.override(likelihood="gaussian")
    config.override(likelihood="logistic", binarize="none")


if __name__ == "__main__":
  tf.test.main()
