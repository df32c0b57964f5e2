"""Tests of reading TFDS datasets by example index: mocked, prepared, unavailable."""

import socket
import time
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae.data import image_files as image_readers
from tfp_vqvae.data import pipeline as data
from tfp_vqvae.data import tfds as tfds_source


class ShardedDigits(tfds.core.GeneratorBasedBuilder):
  """100 train and 30 test images whose pixels are their example number."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(4, 4, 1)),
        "label": tfds.features.ClassLabel(num_classes=10)}))

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    return {"train": self._generate_examples(0, 100),
            "test": self._generate_examples(100, 130)}

  def _generate_examples(self, start, stop):
    for i in range(start, stop):
      yield i, {"image": np.full([4, 4, 1], i, np.uint8), "label": i % 10}


def _numbers(examples):
  """The example numbers (= pixel values) of some ShardedDigits examples, in order."""
  return [int(tf.io.decode_png(examples.read(tf.constant(i, tf.int64))[0])[0, 0, 0])
          for i in range(len(examples))]


class PreparedTest(parameterized.TestCase, tf.test.TestCase):

  def _prepare(self, **kwargs):
    data_dir = self.get_temp_dir()
    ShardedDigits(data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(num_shards=5), **kwargs)
    return data_dir

  @parameterized.parameters("train", "train[10:95]", "test+train[:10%]")
  def test_tfrecord_examples_come_in_as_dataset_order(self, split):
    data_dir = self._prepare()
    builder = tfds.builder("sharded_digits", data_dir=data_dir)
    expected = [int(example["image"][0, 0, 0])
                for example in tfds.as_numpy(builder.as_dataset(split=split))]

    examples = tfds_source.TfdsSource("sharded_digits", data_dir).examples(split)

    self.assertIsInstance(examples, image_readers.RecordExamples)
    self.assertEqual(_numbers(examples), expected)
    # Five shards interleaved: not simply file order.
    self.assertNotEqual(expected, sorted(expected))

  def test_array_record_is_read_as_a_data_source(self):
    data_dir = self._prepare(file_format="array_record")
    source = tfds.builder("sharded_digits", data_dir=data_dir).as_data_source("test")
    expected = [int(source[i]["image"][0, 0, 0]) for i in range(len(source))]

    examples = tfds_source.TfdsSource("sharded_digits", data_dir).examples("test")

    self.assertIsInstance(examples, image_readers.DataSourceExamples)
    self.assertEqual(_numbers(examples), expected)
    self.assertCountEqual(expected, range(100, 130))

  def test_unprepared_dataset_is_prepared_first(self):
    data_dir = self.get_temp_dir()

    image_data = data.open_data("sharded_digits", "train[:20]", "test",
                                data_dir=data_dir)

    self.assertEqual(image_data.image_shape, (4, 4, 1))
    self.assertEqual(image_data.num_examples(data.EVAL), 30)
    self.assertEqual(data.num_classes("sharded_digits", "train", data_dir=data_dir), 10)
    (images, labels), = list(image_data.eval_batches(data.EVAL, 30, 0, "none",
                                                     with_labels=True))
    self.assertAllEqual(np.round(images[:, 0, 0, 0] * 255) % 10, labels)


class MockedTest(tf.test.TestCase):

  def test_kmnist(self):
    with tfds.testing.mock_data(num_examples=5):
      image_data = data.open_data("kmnist", "train", "test")
      batches = list(image_data.eval_batches(data.EVAL, 5, 0, "none", with_labels=True))

    self.assertEqual(image_data.image_shape, (28, 28, 1))
    # From TFDS's metadata: nothing is read.
    self.assertEqual(data.num_classes("kmnist", "train"), 10)
    (images, labels), = batches
    self.assertEqual(images.shape, (5, 28, 28, 1))
    self.assertEqual(labels.dtype, tf.int64)
    self.assertAllInRange(labels, 0, 9)

  def test_celeb_a_at_64x64(self):
    with tfds.testing.mock_data(num_examples=6):
      image_data = data.open_data("celeb_a", "train", "test", image_size="64")
      (step, images), = list(image_data.train_batches(4, 0, "none").take(1))
      # No label feature: no classes, and nothing read to find that out.
      self.assertIsNone(data.num_classes("celeb_a", "train"))

    self.assertEqual(image_data.image_shape, (64, 64, 3))
    self.assertEqual(images.shape, (4, 64, 64, 3))
    self.assertEqual(int(step), 0)


class ErrorsTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.named_parameters(
      ("unknown_name", dict(name="no_such_dataset"),
       "--dataset=no_such_dataset: TFDS has no dataset of that name .*folder:DIR"),
      ("image_key", dict(name="celeb_a", image_key="picture"),
       "--image_key=picture: celeb_a has no image feature of that name; its image "
       "features are: image"),
      ("label_key", dict(name="kmnist", label_key="class"),
       "--label_key=class: kmnist has no such feature; its features are: image, label"))
  def test_is_one_line_before_any_download(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message) as raised:
      tfds_source.TfdsSource(**kwargs)

    self.assertNotIn("\n", str(raised.exception))

  def _assert_unavailable_quickly(self):
    data_dir = self.get_temp_dir()
    start = time.monotonic()
    with self.assertRaises(image_readers.DatasetUnavailableError) as raised:
      tfds_source.TfdsSource("kmnist", data_dir).examples("test")
    self.assertLess(time.monotonic() - start, 30)
    message = str(raised.exception)
    self.assertNotIn("\n", message)
    for expected in ("kmnist", "could not download or prepare",
                     "--dataset_dir", "t10k-images-idx3-ubyte",
                     "kmnist-test-imgs.npz", "--data_dir"):
      self.assertIn(expected, message)
    return message

  def test_offline_fails_fast(self):
    try:
      socket.getaddrinfo("codh.rois.ac.jp", 80)
    except OSError:
      self._assert_unavailable_quickly()
    else:
      self.skipTest("Online: the dataset would really be downloaded.")

  def test_unreachable_host_fails_fast(self):
    # Simulates an offline machine even where the network is reachable.
    with mock.patch.object(socket, "create_connection",
                           side_effect=OSError("Network is unreachable")):
      message = self._assert_unavailable_quickly()
    self.assertIn("cannot reach codh.rois.ac.jp:80: Network is unreachable",
                  message)


if __name__ == "__main__":
  tf.test.main()
