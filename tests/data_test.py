"""Tests of data loading, binarization and the deterministic pipelines."""

import gzip
import hashlib
import os
import socket
import time
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae import data

_REAL_KMNIST_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "shared", "data", "kmnist")


def _idx_bytes(array):
  """Encodes a uint8 array in the idx format, as the official files are."""
  header = bytes([0, 0, 0x08, array.ndim])
  header += np.asarray(array.shape, ">u4").tobytes()
  return header + array.astype(np.uint8).tobytes()


def _fake_split(num_examples, first_label):
  """Images whose pixels all differ between examples, and labels."""
  rng = np.random.default_rng(first_label)
  images = rng.integers(0, 256, size=(num_examples, 28, 28), dtype=np.uint8)
  labels = (np.arange(num_examples) + first_label) % 10
  return images, labels.astype(np.uint8)


def _write(path, contents):
  with open(path, "wb") as f:
    f.write(contents)


def _write_official_files(directory, file_format):
  """Writes a 10-example train and 4-example test split; returns the arrays.

  Args:
    directory: Where to write.
    file_format: "idx", "idx.gz" or "npz".

  Returns:
    {split name: (images [N, 28, 28], labels [N])} as written.
  """
  splits = {"train": _fake_split(10, 0), "test": _fake_split(4, 3)}
  for split_name, (images, labels) in splits.items():
    if file_format == "npz":
      np.savez_compressed(
          os.path.join(directory, f"kmnist-{split_name}-imgs.npz"), images)
      np.savez_compressed(
          os.path.join(directory, f"kmnist-{split_name}-labels.npz"), labels)
      continue
    prefix = "train" if split_name == "train" else "t10k"
    suffix = ".gz" if file_format == "idx.gz" else ""
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
      contents = _idx_bytes(array)
      if suffix:
        contents = gzip.compress(contents)
      _write(os.path.join(directory, f"{prefix}-{kind}-ubyte{suffix}"),
             contents)
  return splits


def _write_md5sums(directory, overrides=None):
  """Writes MD5SUMS for every file in `directory`, except `overrides`."""
  overrides = overrides or {}
  lines = []
  for filename in sorted(os.listdir(directory)):
    with open(os.path.join(directory, filename), "rb") as f:
      md5 = hashlib.md5(f.read()).hexdigest()
    lines.append(f"{overrides.get(filename, md5)}  {filename}\n")
  with open(os.path.join(directory, "MD5SUMS"), "w") as f:
    f.writelines(lines)


class LoadLocalTest(parameterized.TestCase, tf.test.TestCase):

  def _dir(self):
    return self.get_temp_dir()

  @parameterized.product(
      (dict(name="mnist", file_format="idx"),
       dict(name="fashion_mnist", file_format="idx.gz"),
       dict(name="kmnist", file_format="npz"),
       dict(name="kmnist", file_format="idx.gz")),
      (dict(split="train", rows=[("train", slice(None))]),
       dict(split="test", rows=[("test", slice(None))]),
       dict(split="test[:3]", rows=[("test", slice(0, 3))]),
       dict(split="train[50%:]", rows=[("train", slice(5, None))]),
       dict(split="test[-2:]", rows=[("test", slice(2, None))]),
       dict(split="train+test",
            rows=[("train", slice(None)), ("test", slice(None))])))
  def test_returns_the_file_contents(self, name, file_format, split, rows):
    directory = self._dir()
    written = _write_official_files(directory, file_format)

    image_set = data.load_images(name, split, dataset_dir=directory)

    expected_images = np.concatenate(
        [written[s][0][r] for s, r in rows])[..., np.newaxis]
    expected_labels = np.concatenate([written[s][1][r] for s, r in rows])
    self.assertEqual(image_set.images.dtype, np.uint8)
    self.assertEqual(image_set.labels.dtype, np.int64)
    self.assertAllEqual(image_set.images, expected_images)
    self.assertAllEqual(image_set.labels, expected_labels)

  def test_md5sums_that_match_pass(self):
    directory = self._dir()
    written = _write_official_files(directory, "idx.gz")
    _write_md5sums(directory)

    image_set = data.load_images("mnist", "test", dataset_dir=directory)

    self.assertAllEqual(image_set.labels, written["test"][1])

  def test_md5_mismatch_raises(self):
    directory = self._dir()
    _write_official_files(directory, "idx.gz")
    _write_md5sums(directory, {"t10k-images-idx3-ubyte.gz": "0" * 32})

    with self.assertRaisesRegex(data.DatasetUnavailableError,
                                r"t10k-images-idx3-ubyte\.gz has MD5 .*"
                                r"MD5SUMS .* lists 0{32}"):
      data.load_images("mnist", "test", dataset_dir=directory)

  def test_md5sums_of_unread_files_are_not_checked(self):
    directory = self._dir()
    _write_official_files(directory, "idx")
    _write_md5sums(directory, {"train-images-idx3-ubyte": "0" * 32})

    self.assertLen(
        data.load_images("mnist", "test", dataset_dir=directory).labels, 4)
    with self.assertRaisesRegex(data.DatasetUnavailableError, "MD5"):
      data.load_images("mnist", "train", dataset_dir=directory)

  @parameterized.named_parameters(
      ("bad_magic", lambda b: b"\x01" + b[1:], "not an idx file"),
      ("labels_as_images", lambda b: b[:3] + b"\x01" + b[4:],
       "magic number 0x00000801, expected 0x00000803"),
      ("truncated_data", lambda b: b[:-5], "truncated"),
      ("trailing_bytes", lambda b: b + b"\x00", "truncated or corrupt"),
      ("truncated_header", lambda b: b[:9], "truncated"))
  def test_corrupt_idx_raises(self, corrupt, message):
    directory = self._dir()
    _write_official_files(directory, "idx")
    path = os.path.join(directory, "t10k-images-idx3-ubyte")
    with open(path, "rb") as f:
      contents = f.read()
    _write(path, corrupt(contents))

    with self.assertRaisesRegex(data.DatasetUnavailableError,
                                f"t10k-images-idx3-ubyte.*{message}"):
      data.load_images("mnist", "test", dataset_dir=directory)

  def test_truncated_gzip_raises(self):
    directory = self._dir()
    _write_official_files(directory, "idx.gz")
    path = os.path.join(directory, "t10k-labels-idx1-ubyte.gz")
    with open(path, "rb") as f:
      contents = f.read()
    _write(path, contents[:len(contents) // 2])

    with self.assertRaisesRegex(
        data.DatasetUnavailableError,
        "t10k-labels-idx1-ubyte.gz is not a valid gzip"):
      data.load_images("mnist", "test", dataset_dir=directory)

  def test_label_count_mismatch_raises(self):
    directory = self._dir()
    _write_official_files(directory, "idx")
    _write(os.path.join(directory, "t10k-labels-idx1-ubyte"),
           _idx_bytes(np.zeros([3], np.uint8)))

    with self.assertRaisesRegex(data.DatasetUnavailableError,
                                "4 images but .* 3 labels"):
      data.load_images("mnist", "test", dataset_dir=directory)

  def test_missing_directory_raises(self):
    directory = os.path.join(self._dir(), "absent")

    with self.assertRaises(data.DatasetUnavailableError) as raised:
      data.load_images("kmnist", "test", dataset_dir=directory)

    message = str(raised.exception)
    self.assertIn(directory, message)
    self.assertIn("t10k-images-idx3-ubyte", message)
    self.assertIn("kmnist-test-imgs.npz", message)
    self.assertNotIn("\n", message)

  def test_missing_labels_raises(self):
    directory = self._dir()
    _write_official_files(directory, "idx.gz")
    os.remove(os.path.join(directory, "t10k-labels-idx1-ubyte.gz"))

    with self.assertRaisesRegex(
        data.DatasetUnavailableError,
        f"'test' split of mnist from --dataset_dir {directory}: none of its "
        "label files \\(t10k-labels-idx1-ubyte, t10k-labels-idx1-ubyte.gz\\)"):
      data.load_images("mnist", "test", dataset_dir=directory)

  def test_only_needed_splits_are_read(self):
    directory = self._dir()
    _write_official_files(directory, "idx")
    for filename in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
      os.remove(os.path.join(directory, filename))

    self.assertLen(
        data.load_images("mnist", "test[:3]", dataset_dir=directory).labels, 3)
    with self.assertRaisesRegex(data.DatasetUnavailableError,
                                "'train' split .* train-images-idx3-ubyte"):
      data.load_images("mnist", "train+test", dataset_dir=directory)

  @parameterized.named_parameters(
      ("unknown_split", "validation", "Unknown split 'validation'"),
      ("malformed", "test[", "Unrecognized split format"),
      ("beyond_end", "test[:5]", "incompatible with 4 examples"),
      ("empty", "test[2:2]", "selects no examples"))
  def test_bad_split_raises_value_error(self, split, message):
    directory = self._dir()
    _write_official_files(directory, "idx")

    with self.assertRaisesRegex(ValueError, message):
      data.load_images("mnist", split, dataset_dir=directory)

  def test_unsupported_dataset_raises(self):
    with self.assertRaisesRegex(ValueError,
                                "svhn_cropped.*kmnist, mnist, fashion_mnist"):
      data.load_images("svhn_cropped", "test", dataset_dir=self._dir())


class RealKmnistTest(tf.test.TestCase):
  """The official KMNIST test files (with their MD5SUMS) next to the repo."""

  def setUp(self):
    super().setUp()
    if not os.path.isdir(_REAL_KMNIST_DIR):
      self.skipTest(f"{_REAL_KMNIST_DIR} is absent.")

  def test_test_split_slices(self):
    first = data.load_images("kmnist", "test[:9000]",
                             dataset_dir=_REAL_KMNIST_DIR)
    rest = data.load_images("kmnist", "test[9000:]",
                            dataset_dir=_REAL_KMNIST_DIR)

    self.assertEqual(first.images.shape, (9000, 28, 28, 1))
    self.assertEqual(first.images.dtype, np.uint8)
    self.assertEqual(rest.images.shape, (1000, 28, 28, 1))
    labels = np.concatenate([first.labels, rest.labels])
    # The KMNIST test set is balanced: 1000 examples of each of 10 classes.
    self.assertAllEqual(np.bincount(labels), [1000] * 10)

  def test_train_split_is_missing(self):
    with self.assertRaisesRegex(data.DatasetUnavailableError,
                                "'train' split of kmnist .*"
                                "train-images-idx3-ubyte"):
      data.load_images("kmnist", "train", dataset_dir=_REAL_KMNIST_DIR)


class LoadTfdsTest(tf.test.TestCase):

  def test_mock_data(self):
    with tfds.testing.mock_data(num_examples=5):
      image_set = data.load_images("kmnist", "test")

    self.assertEqual(image_set.images.shape, (5, 28, 28, 1))
    self.assertEqual(image_set.images.dtype, np.uint8)
    self.assertEqual(image_set.labels.shape, (5,))
    self.assertEqual(image_set.labels.dtype, np.int64)

  def _assert_unavailable_quickly(self):
    data_dir = self.get_temp_dir()
    start = time.monotonic()
    with self.assertRaises(data.DatasetUnavailableError) as raised:
      data.load_images("kmnist", "test", data_dir=data_dir)
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


class BinarizeTest(parameterized.TestCase, tf.test.TestCase):

  _ALL_PIXELS = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)

  def test_threshold(self):
    binary = data.binarize(self._ALL_PIXELS, "threshold", seed=(0, 0))

    self.assertEqual(binary.dtype, tf.float32)
    expected = (self._ALL_PIXELS.astype(np.float32) / 255 > 0.5)
    self.assertAllEqual(binary, expected.astype(np.float32))

  def test_none(self):
    scaled = data.binarize(self._ALL_PIXELS, "none", seed=(0, 0))

    self.assertEqual(scaled.dtype, tf.float32)
    self.assertAllEqual(
        scaled, self._ALL_PIXELS.astype(np.float32) / np.float32(255))

  def test_dynamic_is_bernoulli_of_pixel_intensity(self):
    pixels = np.repeat(self._ALL_PIXELS, 400, axis=0)

    binary = data.binarize(pixels, "dynamic", seed=(3, 4)).numpy()

    self.assertEqual(binary.dtype, np.float32)
    self.assertAllInSet(binary, [0.0, 1.0])
    probs = np.arange(256) / 255
    means = binary.reshape(400, 256).mean(axis=0)
    # 4.5 standard deviations of the mean of 400 Bernoulli draws.
    tolerance = 4.5 * np.sqrt(probs * (1 - probs) / 400)
    self.assertEmpty(np.flatnonzero(np.abs(means - probs) > tolerance))
    self.assertAllEqual(means[[0, 255]], [0.0, 1.0])
    self.assertNear(binary.mean(), probs.mean(), 0.005)

  def test_dynamic_is_a_function_of_the_seed(self):
    pixels = np.full([4, 28, 28, 1], 128, np.uint8)

    first = data.binarize(pixels, "dynamic", seed=(1, 2))
    again = data.binarize(pixels, "dynamic", seed=tf.constant([1, 2]))
    other = data.binarize(pixels, "dynamic", seed=(1, 3))

    self.assertAllEqual(first, again)
    self.assertNotAllEqual(first, other)

  def test_unknown_mode_raises(self):
    with self.assertRaisesRegex(ValueError, "'bernoulli'.*dynamic"):
      data.binarize(self._ALL_PIXELS, "bernoulli", seed=(0, 0))

  def test_float_images_raise(self):
    with self.assertRaisesRegex(TypeError, "uint8"):
      data.binarize(self._ALL_PIXELS.astype(np.float32), "none", seed=(0, 0))


def _indexed_images(num_examples):
  """Images whose every pixel is the example's index, to recover it."""
  return np.broadcast_to(
      np.arange(num_examples, dtype=np.uint8)[:, None, None, None],
      (num_examples, 2, 2, 1)).copy()


def _batch_indices(images):
  """Recovers the example indices of a batch of `_indexed_images` ("none")."""
  return np.round(images.numpy()[:, 0, 0, 0] * 255).astype(int).tolist()


class TrainDatasetTest(parameterized.TestCase, tf.test.TestCase):

  def _index_stream(self, num_examples, batch_size, num_batches, seed=0):
    dataset = data.train_dataset(_indexed_images(num_examples), batch_size,
                                 seed, "none")
    indices = []
    for _, images in dataset.take(num_batches):
      indices.extend(_batch_indices(images))
    return indices

  def test_shapes_dtypes_and_steps(self):
    images = np.zeros([10, 28, 28, 1], np.uint8)
    dataset = data.train_dataset(images, 4, seed=0, binarize_mode="dynamic",
                                 start_step=5)

    batches = list(dataset.take(3))

    self.assertEqual([int(step) for step, _ in batches], [5, 6, 7])
    for step, batch in batches:
      self.assertEqual(step.dtype, tf.int64)
      self.assertEqual(step.shape, [])
      self.assertEqual(batch.dtype, tf.float32)
      self.assertEqual(batch.shape, [4, 28, 28, 1])

  def test_each_epoch_is_a_permutation(self):
    indices = self._index_stream(12, 4, num_batches=9)

    epochs = [indices[i:i + 12] for i in range(0, 36, 12)]
    for epoch in epochs:
      self.assertCountEqual(epoch, range(12))
    self.assertNotEqual(epochs[0], epochs[1])
    self.assertNotEqual(epochs[1], epochs[2])

  @parameterized.parameters(4, 25)
  def test_batches_straddle_epochs(self, batch_size):
    # With 10 examples, batch 2 of size 4 holds the end of epoch 0 and the
    # start of epoch 1; a batch of 25 holds several whole epochs.
    indices = self._index_stream(10, batch_size, num_batches=5)

    for start in range(0, len(indices) - 9, 10):
      self.assertCountEqual(indices[start:start + 10], range(10))

  @parameterized.parameters(1, 2, 3, 7)
  def test_resume_equals_skipping(self, start_step):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 5, 5, 1), dtype=np.uint8)
    fresh = data.train_dataset(images, 4, seed=7, binarize_mode="dynamic")
    resumed = data.train_dataset(images, 4, seed=7, binarize_mode="dynamic",
                                 start_step=start_step)

    expected = list(fresh.skip(start_step).take(4))
    actual = list(resumed.take(4))

    for (expected_step, expected_batch), (step, batch) in zip(expected,
                                                              actual):
      self.assertEqual(step, expected_step)
      self.assertAllEqual(batch, expected_batch)

  def test_resume_far_ahead_is_immediate(self):
    images = _indexed_images(10)
    start_step = 10**9
    begin = time.monotonic()

    steps_and_indices = [
        (int(step), _batch_indices(batch)) for step, batch in
        data.train_dataset(images, 4, 0, "none", start_step).take(2)]
    next_only = [
        (int(step), _batch_indices(batch)) for step, batch in
        data.train_dataset(images, 4, 0, "none", start_step + 1).take(1)]

    self.assertLess(time.monotonic() - begin, 10)
    self.assertEqual(steps_and_indices[0][0], start_step)
    self.assertEqual(steps_and_indices[1], next_only[0])

  def test_binarization_noise_changes_with_step(self):
    images = np.full([4, 8, 8, 1], 128, np.uint8)
    dataset = data.train_dataset(images, 4, seed=0, binarize_mode="dynamic")

    (_, first), (_, second) = list(dataset.take(2))

    # The batches hold the same (identical) images, so only the noise differs.
    self.assertNotAllEqual(first, second)

  def test_seed_determines_order(self):
    first = self._index_stream(20, 5, num_batches=8, seed=1)

    self.assertEqual(first, self._index_stream(20, 5, num_batches=8, seed=1))
    self.assertNotEqual(first,
                        self._index_stream(20, 5, num_batches=8, seed=2))

  @parameterized.named_parameters(
      ("zero_batch", dict(batch_size=0), "batch_size must be positive"),
      ("negative_start", dict(start_step=-1), "start_step"),
      ("bad_mode", dict(binarize_mode="gray"), "'gray'"),
      ("float_images", dict(images=np.zeros([2, 2, 2, 1], np.float32)),
       "uint8"),
      ("empty_images", dict(images=np.zeros([0, 2, 2, 1], np.uint8)),
       "empty"))
  def test_bad_arguments_raise(self, overrides, message):
    kwargs = dict(images=_indexed_images(4), batch_size=2, seed=0,
                  binarize_mode="none", start_step=0)
    kwargs.update(overrides)

    with self.assertRaisesRegex(ValueError, message):
      data.train_dataset(**kwargs)


class EvalDatasetTest(tf.test.TestCase):

  def test_covers_all_examples_in_order(self):
    images = _indexed_images(10)

    batches = list(data.eval_dataset(images, 4, seed=0, binarize_mode="none"))

    self.assertEqual([b.shape[0] for b in batches], [4, 4, 2])
    self.assertEqual([b.dtype for b in batches], [tf.float32] * 3)
    self.assertEqual(sum((_batch_indices(b) for b in batches), []),
                     list(range(10)))

  def test_dynamic_is_repeatable_and_batch_size_independent(self):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 6, 6, 1), dtype=np.uint8)

    def evaluate(batch_size, seed):
      return np.concatenate(
          list(data.eval_dataset(images, batch_size, seed, "dynamic")))

    first = evaluate(4, seed=5)
    self.assertAllInSet(first, [0.0, 1.0])
    self.assertAllEqual(first, evaluate(4, seed=5))
    self.assertAllEqual(first, evaluate(3, seed=5))
    self.assertNotAllEqual(first, evaluate(4, seed=6))

  def test_dynamic_noise_differs_between_examples(self):
    images = np.full([2, 8, 8, 1], 128, np.uint8)

    (batch,) = list(data.eval_dataset(images, 2, seed=0,
                                      binarize_mode="dynamic"))

    self.assertNotAllEqual(batch[0], batch[1])

  def test_zero_batch_size_raises(self):
    with self.assertRaisesRegex(ValueError, "batch_size must be positive"):
      data.eval_dataset(_indexed_images(4), 0, seed=0, binarize_mode="none")


if __name__ == "__main__":
  tf.test.main()
