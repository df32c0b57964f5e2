"""Tests of the input pipelines: binarization, determinism, resume, sharding, bad files."""

import hashlib
import os
import time
from unittest import mock

from absl import logging as absl_logging
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfp_vqvae.data import image_files as image_readers
from tfp_vqvae.data import pipeline as data
from tfp_vqvae.internal import progress
import image_files

_REAL_KMNIST_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "shared", "data", "kmnist")


def _array_data(images, eval_images=None):
  """An ImageData over in-memory uint8 images [N, H, W, C] (the idx route's reader)."""

  def examples(array):
    return image_readers.ArrayExamples("test images", array, np.arange(len(array)) % 10)

  eval_images = images if eval_images is None else eval_images
  return data.ImageData({data.TRAIN: examples(images), data.EVAL: examples(eval_images)},
                        images.shape[1:])


def _indexed_images(num_examples):
  """Images whose every pixel is the example's index, to recover it."""
  return np.broadcast_to(
      np.arange(num_examples, dtype=np.uint8)[:, None, None, None],
      (num_examples, 2, 2, 1)).copy()


def _batch_indices(images):
  """Recovers the example indices of a batch of `_indexed_images` ("none")."""
  return np.round(images.numpy()[:, 0, 0, 0] * 255).astype(int).tolist()


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

  def test_rows_of_a_batch_binarize_as_in_the_batch(self):
    pixels = image_files.random_images(6, (5, 5, 1))

    whole = data.binarize(pixels, "dynamic", seed=(1, 2))
    part = data.binarize(pixels[2:5], "dynamic", seed=(1, 2), batch_rows=(2, 6))

    self.assertAllEqual(part, whole[2:5])

  def test_unknown_mode_raises(self):
    with self.assertRaisesRegex(ValueError, "'bernoulli'.*dynamic"):
      data.binarize(self._ALL_PIXELS, "bernoulli", seed=(0, 0))

  def test_float_images_raise(self):
    with self.assertRaisesRegex(TypeError, "uint8"):
      data.binarize(self._ALL_PIXELS.astype(np.float32), "none", seed=(0, 0))


class TargetVarianceTest(tf.test.TestCase):

  def test_pixel_variance_matches_numpy(self):
    images = image_files.random_images(50, (4, 4, 1))
    histogram = np.bincount(images.ravel(), minlength=256)
    probs = images / 255.0

    self.assertAllClose(data.pixel_variance(histogram, "none"), probs.var())
    self.assertAllClose(data.pixel_variance(histogram, "threshold"), (images > 127).var())
    # Dynamic binarization: the variance of Bernoulli(p) pixels pooled over pixels.
    samples = np.random.default_rng(1).uniform(size=(400,) + probs.shape) < probs
    self.assertAllClose(data.pixel_variance(histogram, "dynamic"), samples.var(),
                        atol=2e-3)

  def test_streamed_over_the_training_split(self):
    images = image_files.random_images(40, (3, 3, 1))

    variance = _array_data(images, images[:4]).target_variance("none")

    self.assertAllClose(variance, (images / 255.0).var(), rtol=1e-12)

  def test_evenly_spaced_subset_of_a_large_split(self):
    images = image_files.random_images(40, (3, 3, 1))

    variance = _array_data(images).target_variance("threshold", max_examples=8)

    self.assertAllClose(variance, (images[::5] > 127).var(), rtol=1e-12)


class TrainBatchesTest(parameterized.TestCase, tf.test.TestCase):

  def _index_stream(self, num_examples, batch_size, num_batches, seed=0):
    dataset = _array_data(_indexed_images(num_examples)).train_batches(
        batch_size, seed, "none")
    indices = []
    for _, images in dataset.take(num_batches):
      indices.extend(_batch_indices(images))
    return indices

  def test_shapes_dtypes_and_steps(self):
    images = np.zeros([10, 28, 28, 1], np.uint8)
    dataset = _array_data(images).train_batches(4, seed=0, binarize_mode="dynamic",
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
    image_data = _array_data(image_files.random_images(10, (5, 5, 1)))
    fresh = image_data.train_batches(4, seed=7, binarize_mode="dynamic")
    resumed = image_data.train_batches(4, seed=7, binarize_mode="dynamic",
                                       start_step=start_step)

    expected = list(fresh.skip(start_step).take(4))
    actual = list(resumed.take(4))

    for (expected_step, expected_batch), (step, batch) in zip(expected, actual):
      self.assertEqual(step, expected_step)
      self.assertAllEqual(batch, expected_batch)

  def test_resume_far_ahead_is_immediate(self):
    image_data = _array_data(_indexed_images(10))
    start_step = 10**9
    begin = time.monotonic()

    steps_and_indices = [
        (int(step), _batch_indices(batch)) for step, batch in
        image_data.train_batches(4, 0, "none", start_step).take(2)]
    next_only = [
        (int(step), _batch_indices(batch)) for step, batch in
        image_data.train_batches(4, 0, "none", start_step + 1).take(1)]

    self.assertLess(time.monotonic() - begin, 10)
    self.assertEqual(steps_and_indices[0][0], start_step)
    self.assertEqual(steps_and_indices[1], next_only[0])

  def test_train_indices_name_the_batch(self):
    image_data = _array_data(_indexed_images(10))

    batches = list(image_data.train_batches(4, 3, "none").take(4))

    for step, batch in batches:
      self.assertEqual(image_data.train_indices(int(step), 4, 3).tolist(),
                       _batch_indices(batch))

  @parameterized.parameters(2, 4)
  def test_shards_cut_the_global_batch(self, num_shards):
    image_data = _array_data(image_files.random_images(10, (3, 3, 1)))
    whole = list(image_data.train_batches(8, 1, "dynamic", start_step=2).take(3))

    shards = [list(image_data.train_batches(8, 1, "dynamic", 2, num_shards, i).take(3))
              for i in range(num_shards)]

    for step, (expected_step, expected) in enumerate(whole):
      self.assertEqual([int(shard[step][0]) for shard in shards], [expected_step] * num_shards)
      self.assertAllEqual(np.concatenate([shard[step][1] for shard in shards]), expected)

  def test_binarization_noise_changes_with_step(self):
    images = np.full([4, 8, 8, 1], 128, np.uint8)
    dataset = _array_data(images).train_batches(4, seed=0, binarize_mode="dynamic")

    (_, first), (_, second) = list(dataset.take(2))

    # The batches hold the same (identical) images, so only the noise differs.
    self.assertNotAllEqual(first, second)

  def test_seed_determines_order(self):
    first = self._index_stream(20, 5, num_batches=8, seed=1)

    self.assertEqual(first, self._index_stream(20, 5, num_batches=8, seed=1))
    self.assertNotEqual(first, self._index_stream(20, 5, num_batches=8, seed=2))

  @parameterized.named_parameters(
      ("zero_batch", dict(batch_size=0), "batch_size must be positive"),
      ("negative_start", dict(start_step=-1), "start_step"),
      ("bad_mode", dict(binarize_mode="gray"), "'gray'"),
      ("uneven_shards", dict(num_shards=3), "cannot be cut into 3"))
  def test_bad_arguments_raise(self, overrides, message):
    kwargs = dict(batch_size=2, seed=0, binarize_mode="none", start_step=0)
    kwargs.update(overrides)

    with self.assertRaisesRegex(ValueError, message):
      _array_data(_indexed_images(4)).train_batches(**kwargs)


class EvalBatchesTest(tf.test.TestCase):

  def test_covers_all_examples_in_order(self):
    batches = list(_array_data(_indexed_images(10)).eval_batches(
        data.EVAL, 4, seed=0, binarize_mode="none"))

    self.assertEqual([b.shape[0] for b in batches], [4, 4, 2])
    self.assertEqual([b.dtype for b in batches], [tf.float32] * 3)
    self.assertEqual(sum((_batch_indices(b) for b in batches), []), list(range(10)))

  def test_labels_and_max_examples(self):
    image_data = _array_data(_indexed_images(10))

    batches = list(image_data.eval_batches(data.TRAIN, 4, 0, "none", with_labels=True,
                                           max_examples=6))

    self.assertEqual([labels.numpy().tolist() for _, labels in batches],
                     [[0, 1, 2, 3], [4, 5]])

  def test_dynamic_is_repeatable_and_batch_size_independent(self):
    image_data = _array_data(image_files.random_images(10, (6, 6, 1)))

    def evaluate(batch_size, seed):
      return np.concatenate(list(image_data.eval_batches(data.EVAL, batch_size, seed,
                                                         "dynamic")))

    first = evaluate(4, seed=5)
    self.assertAllInSet(first, [0.0, 1.0])
    self.assertAllEqual(first, evaluate(4, seed=5))
    self.assertAllEqual(first, evaluate(3, seed=5))
    self.assertNotAllEqual(first, evaluate(4, seed=6))

  def test_dynamic_noise_differs_between_examples(self):
    images = np.full([2, 8, 8, 1], 128, np.uint8)

    (batch,) = list(_array_data(images).eval_batches(data.EVAL, 2, 0, "dynamic"))

    self.assertNotAllEqual(batch[0], batch[1])

  def test_bad_arguments_raise(self):
    image_data = _array_data(_indexed_images(4))
    with self.assertRaisesRegex(ValueError, "batch_size must be positive"):
      next(image_data.eval_batches(data.EVAL, 0, 0, "none"))
    with self.assertRaisesRegex(ValueError, "'test'"):
      next(image_data.eval_batches("test", 2, 0, "none"))


def _write_mixed_folder(root, count=12):
  """A folder of mixed sizes, grey and RGB, PNG/JPEG/BMP; returns the train paths."""
  paths = []
  for i in range(count):
    channels = 3 if i % 2 else 1
    image = image_files.random_images(1, (10 + i, 14 - i % 3, channels), seed=i)[0]
    extension = (".png", ".bmp", ".png", ".jpg")[i % 4]
    if extension == ".bmp":
      image = np.repeat(image[..., :1], 3, axis=-1)
    paths.append(image_files.write_image(
        os.path.join(root, "train", f"{i:02d}{extension}"), image))
  image_files.write_image(os.path.join(root, "test", "a.png"),
                          image_files.random_images(1, (9, 9, 3))[0])
  return paths


class FolderPipelineTest(parameterized.TestCase, tf.test.TestCase):

  def _open(self, **kwargs):
    root = self.get_temp_dir()
    paths = _write_mixed_folder(root)
    kwargs = dict(dict(image_size="8", channels=3), **kwargs)
    return data.open_data(f"folder:{root}", "train", "test", **kwargs), paths

  @parameterized.parameters(
      dict(binarize_mode="dynamic", augment=False),
      dict(binarize_mode="none", augment=True))
  def test_resume_equals_skipping(self, binarize_mode, augment):
    image_data, _ = self._open()

    def batches(start_step):
      return list(image_data.train_batches(
          5, 3, binarize_mode, start_step, random_crop=augment,
          random_flip=augment).take(6 - start_step))

    for (expected_step, expected), (step, batch) in zip(batches(0)[3:], batches(3)):
      self.assertEqual(int(step), int(expected_step))
      self.assertAllEqual(batch, expected)

  def test_random_crops_and_flips_change_with_the_step(self):
    root = self.get_temp_dir()
    image_files.write_image(os.path.join(root, "one.png"),
                            image_files.random_images(1, (10, 14, 3))[0])
    # Every batch holds the one image, so batches differ only by augmentation.
    image_data = data.open_data(f"folder:{root}", "train", "train", image_size="6")

    def batches(**augment):
      return np.concatenate([batch for _, batch in image_data.train_batches(
          4, 0, "none", **augment).take(3)])

    plain = batches()
    augmented = batches(random_crop=True, random_flip=True)

    self.assertAllEqual(plain, np.broadcast_to(plain[:1], plain.shape))
    self.assertGreater(len(np.unique(augmented.reshape(12, -1), axis=0)), 4)
    self.assertAllEqual(augmented, batches(random_crop=True, random_flip=True))

  def test_each_shard_reads_only_its_own_files(self):
    image_data, paths = self._open()
    whole = next(iter(image_data.train_batches(6, 2, "none")))[1]
    own = image_data.train_indices(0, 6, 2)[:3]
    # Every file but shard 0's three of batch 0 becomes unreadable.
    for index, path in enumerate(paths):
      if index not in own:
        image_files.write_file(path, b"not an image")

    _, shard = next(iter(image_data.train_batches(6, 2, "none", num_shards=2,
                                                  shard_index=0)))

    self.assertAllEqual(shard, whole[:3])

  def test_target_variance_is_exact_over_the_split(self):
    image_data, _ = self._open()
    images = np.concatenate(list(image_data.uint8_batches(data.TRAIN, 5)))

    self.assertEqual(images.shape, (12, 8, 8, 3))
    self.assertAllClose(image_data.target_variance("none"), (images / 255.0).var(),
                        rtol=1e-12)

  def test_corrupt_training_file_is_named(self):
    image_data, paths = self._open()
    image_files.write_file(paths[5], b"\x89PNG truncated")
    batches = image_data.train_batches(4, 0, "none")

    with self.assertRaises(data.DatasetUnavailableError) as raised:
      for _ in image_data.name_bad_files(iter(batches), 0, 4, 0):
        pass

    message = str(raised.exception)
    self.assertIn(f"Cannot read image {paths[5]}:", message)
    self.assertIn("--skip_corrupt_images", message)
    self.assertNotIn("\n", message)

  def test_corrupt_eval_file_is_named(self):
    image_data, paths = self._open()
    image_files.write_file(paths[7], b"")

    with self.assertRaisesRegex(data.DatasetUnavailableError,
                                f"Cannot read image {paths[7]}: "):
      list(image_data.eval_batches(data.TRAIN, 5, 0, "none"))

  def test_corrupt_first_file_is_named_when_its_size_is_needed(self):
    root = self.get_temp_dir()
    paths = _write_mixed_folder(root)
    image_files.write_file(paths[0], b"GIF89a")

    with self.assertRaisesRegex(data.DatasetUnavailableError,
                                f"Cannot read image {paths[0]}: "):
      data.open_data(f"folder:{root}", "train", "test")

  def test_skip_corrupt_images_leaves_them_out_and_counts_them(self):
    root = self.get_temp_dir()
    paths = _write_mixed_folder(root)
    for index in (0, 6):
      image_files.write_file(paths[index], b"not an image")

    with self.assertLogs(level="WARNING") as logs:
      image_data = data.open_data(f"folder:{root}", "train", "test", channels=1,
                                  image_size="8", skip_corrupt_images=True)

    self.assertEqual(image_data.skipped_images, 2)
    self.assertEqual(image_data.num_examples(data.TRAIN), 10)
    self.assertEqual(image_data.image_shape, (8, 8, 1))
    self.assertLen(list(image_data.train_batches(10, 0, "none").take(2)), 2)
    logged = "\n".join(logs.output)
    self.assertIn(paths[0], logged)
    self.assertIn("Skipped 2 unreadable image(s) of 12", logged)


  def test_a_bad_eval_file_is_refused_before_training(self):
    root = self.get_temp_dir()
    _write_mixed_folder(root)
    image_files.write_file(os.path.join(root, "test", "b.png"), b"\x89PNG\r\n\x1a\n cut")
    image_files.write_file(os.path.join(root, "test", "c.jpg"), b"")

    with self.assertRaises(data.DatasetUnavailableError) as raised:
      data.open_data(f"folder:{root}", "train", "test", image_size="8")

    self.assertRegex(
        str(raised.exception),
        f"^Cannot read image {root}/test/b.png: the file has only 12 bytes, and "
        f"decoding it fails: .* \\(1 more of the 3 files of folder:{root} test are bad "
        "too\\)\\. Replace or remove it, or pass --skip_corrupt_images")
    self.assertNotIn("\n", str(raised.exception))

  def test_images_of_several_sizes_need_image_size(self):
    root = self.get_temp_dir()
    # A large image sorted first must not set the size of every image.
    image_files.write_image(os.path.join(root, "train", "0_large.png"),
                            image_files.random_images(1, (600, 400, 1))[0])
    for i in range(3):
      image_files.write_image(os.path.join(root, "train", f"{i + 1}.png"),
                              image_files.random_images(1, (28, 28, 1), seed=i)[0])
    image_files.write_image(os.path.join(root, "test", "a.jpg"),
                            image_files.random_images(1, (28, 20, 3))[0])

    with self.assertRaises(ValueError) as raised:
      data.open_data(f"folder:{root}", "train", "test")

    self.assertEqual(
        str(raised.exception),
        f"image_size: the images of folder:{root} train and folder:{root} test have 3 "
        f"sizes (height x width: images): 28x28 (3, e.g. {root}/train/1.png), 600x400 "
        f"(1, e.g. {root}/train/0_large.png), 28x20 (1, e.g. {root}/test/a.jpg); pass "
        "image_size, e.g. 28 for the most common one, to bring every image to one "
        "size.")
    self.assertEqual(data.open_data(f"folder:{root}", "train", "test",
                                    image_size="28").image_shape, (28, 28, 1))

  def test_size_and_colour_default_to_the_stored_ones(self):
    root = self.get_temp_dir()
    for i, channels in enumerate((1, 3)):
      image_files.write_image(os.path.join(root, "train", f"{i}.png"),
                              image_files.random_images(1, (6, 5, channels))[0])

    image_data = data.open_data(f"folder:{root}", "train", "train")

    # The first training image's colour.
    self.assertEqual(image_data.image_shape, (6, 5, 1))
    self.assertEqual(np.concatenate(list(image_data.uint8_batches(data.EVAL, 2))).shape,
                     (2, 6, 5, 1))

  def test_first_images_are_the_pixels_not_binarized(self):
    images = image_files.random_images(5, (3, 3, 1))
    image_data = _array_data(images)

    self.assertAllClose(image_data.first_images(data.EVAL, 4), images[:4] / 255.0)
    self.assertEqual(image_data.first_images(data.EVAL, 9).shape, (5, 3, 3, 1))

  def test_long_passes_show_progress(self):
    image_data, _ = self._open()
    with mock.patch.object(progress, "FIRST_LINE_SECONDS", 0.0):
      with self.assertLogs(absl_logging.get_absl_logger(), level="INFO") as logs:
        image_data.target_variance("none")
        data.open_data(f"folder:{self.get_temp_dir()}", "train", "test", image_size="8",
                       skip_corrupt_images=True)

    lines = [record.getMessage() for record in logs.records]
    self.assertIn("Data variance over 12 training images: 12/12 images (100%)", lines[0])
    self.assertIn("Data variance over 12 training images: done, 12 images in", lines[1])
    self.assertTrue(any(line.startswith("Decoding the 12 images of folder:") for line in lines),
                    lines)


class TfrecordPipelineTest(tf.test.TestCase):

  def test_an_image_of_another_size_is_refused_when_read(self):
    root = self.get_temp_dir()
    images = list(image_files.random_images(3, (4, 4, 1))) + [
        image_files.random_images(1, (5, 4, 1))[0]]
    path = image_files.write_tfrecord(os.path.join(root, "train.tfrecord"), images)
    image_data = data.open_data(f"tfrecord:{path}", "train", "train")

    with self.assertRaises(data.DatasetUnavailableError) as raised:
      list(image_data.eval_batches(data.EVAL, 2, 0, "none"))

    self.assertStartsWith(
        str(raised.exception),
        f"Cannot read image record 3 of {path}: it is not 4x4 like the first training "
        "image; pass image_size to bring every image to one size. Replace or remove it")
    self.assertLen(list(data.open_data(f"tfrecord:{path}", "train", "train",
                                       image_size="4").eval_batches(data.EVAL, 2, 0,
                                                                    "none")), 2)

  def test_resume_equals_skipping(self):
    root = self.get_temp_dir()
    images = image_files.random_images(9, (6, 5, 3))
    for shard in range(3):
      image_files.write_tfrecord(os.path.join(root, f"train-{shard}.tfrecord"),
                                 images[shard::3])
    image_data = data.open_data(f"tfrecord:{root}/train-*", "train", "train[:2]")

    fresh = list(image_data.train_batches(4, 1, "dynamic").take(5))
    resumed = list(image_data.train_batches(4, 1, "dynamic", start_step=2).take(3))

    for (expected_step, expected), (step, batch) in zip(fresh[2:], resumed):
      self.assertEqual(int(step), int(expected_step))
      self.assertAllEqual(batch, expected)


class OpenDataTest(parameterized.TestCase, tf.test.TestCase):

  def test_num_classes_from_the_source_or_the_labels(self):
    root = self.get_temp_dir()
    images = image_files.random_images(4, (2, 2, 1))
    labelled = image_files.write_tfrecord(os.path.join(root, "a.rec"), images, [0, 6, 2, 1])
    plain = image_files.write_tfrecord(os.path.join(root, "b.rec"), images)

    for subdir in ("cat", "dog"):
      image_files.write_image(os.path.join(root, "folder", subdir, "a.png"), images[0])

    self.assertEqual(data.num_classes(f"tfrecord:{labelled}", "train"), 7)
    self.assertEqual(data.num_classes(f"tfrecord:{labelled}", "train[2:]"), 3)
    self.assertIsNone(data.num_classes(f"tfrecord:{plain}", "train"))
    self.assertEqual(data.num_classes(f"folder:{root}/folder", "train"), 2)

  @parameterized.named_parameters(
      ("empty_selection", dict(train_split="train[3:3]"), ValueError,
       "Split 'train\\[3:3\\]' of folder:.* selects no examples"),
      ("bad_channels", dict(channels=2), ValueError, "--channels=2: must be 1"),
      ("bad_size", dict(image_size="64x64"), ValueError, "image_size=.64x64.: must be N or H,W"),
      ("unknown_split", dict(eval_split="validation"), ValueError,
       "Split 'validation' of folder:.*Unknown split"))
  def test_bad_arguments_are_one_line(self, overrides, error, message):
    root = self.get_temp_dir()
    _write_mixed_folder(root)
    kwargs = dict(dataset=f"folder:{root}", train_split="train", eval_split="test")
    kwargs.update(overrides)

    with self.assertRaisesRegex(error, message) as raised:
      data.open_data(**kwargs)

    self.assertNotIn("\n", str(raised.exception))


class RealKmnistTest(tf.test.TestCase):
  """The official KMNIST test files next to the repo: the batches of the
  deterministic 3000-step run (test[:9000], seed 0) must never change."""

  def setUp(self):
    super().setUp()
    if not os.path.isdir(_REAL_KMNIST_DIR):
      self.skipTest(f"{_REAL_KMNIST_DIR} is absent.")
    self.image_data = data.open_data("kmnist", "test[:9000]", "test[9000:]",
                                     dataset_dir=_REAL_KMNIST_DIR)

  def _digest(self, batches):
    digest = hashlib.sha256()
    for batch in batches:
      digest.update(batch.numpy().tobytes())
    return digest.hexdigest()

  def test_batches_are_those_of_earlier_versions(self):
    # Digests of the batches of the in-memory pipeline before streaming came.
    threshold = self.image_data.train_batches(64, 0, "threshold").take(3)
    dynamic = self.image_data.train_batches(64, 0, "dynamic", start_step=140).take(3)
    evaluation = self.image_data.eval_batches(data.EVAL, 500, 0, "dynamic")

    self.assertEqual(self._digest(batch for _, batch in threshold),
                     "ddee8048031c02cd9893d08bd87acac7ead3c9a3ea8c80099b7879ee728b92ad")
    self.assertEqual(self._digest(batch for _, batch in dynamic),
                     "8d77094e1970776de849e99bd52a430f0c599dd222a5d3b55fcefd8a0a5aeb9f")
    self.assertEqual(self._digest(evaluation),
                     "a0f7bea4eeebeb49d9c6f5226c586671e26e8365ceb832548a57f1b781944bc0")

  def test_threshold_variance_is_that_of_earlier_versions(self):
    # np.var(images > 127) of the in-memory pipeline, bit for bit.
    self.assertEqual(self.image_data.target_variance("threshold"), 0.1502752652231291)


if __name__ == "__main__":
  tf.test.main()
