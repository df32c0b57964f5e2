"""Tests of the data and config options the tutorial flagfiles use."""

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae import config as config_lib
from tfp_vqvae import data


class TutorialDataTest(tf.test.TestCase):

  def test_cifar10_from_mock_tfds(self):
    with tfds.testing.mock_data(num_examples=6):
      image_set = data.load_images("cifar10", "train")
    self.assertEqual(image_set.images.shape, (6, 32, 32, 3))
    self.assertEqual(image_set.images.dtype, np.uint8)

  def test_cifar10_refuses_dataset_dir(self):
    with self.assertRaisesRegex(data.DatasetUnavailableError, "cifar10 is read from TFDS"):
      data.load_images("cifar10", "train", dataset_dir=self.get_temp_dir())

  def test_target_variance_matches_numpy(self):
    images = np.random.default_rng(0).integers(0, 256, size=(50, 4, 4, 1), dtype=np.uint8)
    probs = images / 255.0
    self.assertAllClose(data.target_variance(images, "none"), probs.var())
    self.assertAllClose(data.target_variance(images, "threshold"), (images > 127).var())
    # Dynamic binarization: the variance of Bernoulli(p) pixels pooled over pixels.
    samples = np.random.default_rng(1).uniform(size=(400,) + probs.shape) < probs
    self.assertAllClose(data.target_variance(images, "dynamic"), samples.var(),
                        atol=2e-3)

  def test_grey_likelihoods_need_unbinarized_targets(self):
    config = config_lib.Config()
    with self.assertRaisesRegex(ValueError, "binarize='none'"):
      dataclasses.replace(config, likelihood="gaussian")
    dataclasses.replace(config, likelihood="logistic", binarize="none")


if __name__ == "__main__":
  tf.test.main()
