"""Tests of the image sources: the official idx/npz files, folders and TFRecords."""

import gzip
import hashlib
import os
import re

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfp_vqvae.configs import data as data_options
from tfp_vqvae.data import image_files as image_readers
from tfp_vqvae.data import preprocessing
from tfp_vqvae.data import sources as image_sources
import image_files

_REAL_KMNIST_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "shared", "data", "kmnist")


def _read_all(examples):
  """(uint8 images as stored, a list; int64 labels [N]) of some examples."""

  def read(index):
    image, label = examples.read(index)
    return (preprocessing.decode(image) if examples.encoded else image), label

  pairs = list(tf.data.Dataset.range(len(examples)).map(read).as_numpy_iterator())
  return [image for image, _ in pairs], np.array([label for _, label in pairs], np.int64)


def _load(name, split, dataset_dir):
  """(images [N, H, W, C], labels [N]) of a split of official files."""
  source = image_sources.open_source(name, dataset_dir=dataset_dir)
  images, labels = _read_all(source.examples(split))
  return np.stack(images), labels


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


class IdxSourceTest(parameterized.TestCase, tf.test.TestCase):

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

    images, labels = _load(name, split, dataset_dir=directory)

    expected_images = np.concatenate(
        [written[s][0][r] for s, r in rows])[..., np.newaxis]
    expected_labels = np.concatenate([written[s][1][r] for s, r in rows])
    self.assertEqual(images.dtype, np.uint8)
    self.assertEqual(labels.dtype, np.int64)
    self.assertAllEqual(images, expected_images)
    self.assertAllEqual(labels, expected_labels)

  def test_md5sums_that_match_pass(self):
    directory = self._dir()
    written = _write_official_files(directory, "idx.gz")
    _write_md5sums(directory)

    _, labels = _load("mnist", "test", dataset_dir=directory)

    self.assertAllEqual(labels, written["test"][1])

  def test_md5_mismatch_raises(self):
    directory = self._dir()
    _write_official_files(directory, "idx.gz")
    _write_md5sums(directory, {"t10k-images-idx3-ubyte.gz": "0" * 32})

    with self.assertRaisesRegex(image_readers.DatasetUnavailableError,
                                r"t10k-images-idx3-ubyte\.gz has MD5 .*"
                                r"MD5SUMS .* lists 0{32}"):
      _load("mnist", "test", dataset_dir=directory)

  def test_md5sums_of_unread_files_are_not_checked(self):
    directory = self._dir()
    _write_official_files(directory, "idx")
    _write_md5sums(directory, {"train-images-idx3-ubyte": "0" * 32})

    self.assertLen(
        _load("mnist", "test", dataset_dir=directory)[1], 4)
    with self.assertRaisesRegex(image_readers.DatasetUnavailableError, "MD5"):
      _load("mnist", "train", dataset_dir=directory)

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

    with self.assertRaisesRegex(image_readers.DatasetUnavailableError,
                                f"t10k-images-idx3-ubyte.*{message}"):
      _load("mnist", "test", dataset_dir=directory)

  def test_truncated_gzip_raises(self):
    directory = self._dir()
    _write_official_files(directory, "idx.gz")
    path = os.path.join(directory, "t10k-labels-idx1-ubyte.gz")
    with open(path, "rb") as f:
      contents = f.read()
    _write(path, contents[:len(contents) // 2])

    with self.assertRaisesRegex(
        image_readers.DatasetUnavailableError,
        "t10k-labels-idx1-ubyte.gz is not a valid gzip"):
      _load("mnist", "test", dataset_dir=directory)

  def test_label_count_mismatch_raises(self):
    directory = self._dir()
    _write_official_files(directory, "idx")
    _write(os.path.join(directory, "t10k-labels-idx1-ubyte"),
           _idx_bytes(np.zeros([3], np.uint8)))

    with self.assertRaisesRegex(image_readers.DatasetUnavailableError,
                                "4 images but .* 3 labels"):
      _load("mnist", "test", dataset_dir=directory)

  def test_missing_directory_raises(self):
    directory = os.path.join(self._dir(), "absent")

    with self.assertRaises(image_readers.DatasetUnavailableError) as raised:
      _load("kmnist", "test", dataset_dir=directory)

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
        image_readers.DatasetUnavailableError,
        f"'test' split of mnist from --dataset_dir {directory}: none of its "
        "label files \\(t10k-labels-idx1-ubyte, t10k-labels-idx1-ubyte.gz\\)"):
      _load("mnist", "test", dataset_dir=directory)

  def test_only_needed_splits_are_read(self):
    directory = self._dir()
    _write_official_files(directory, "idx")
    for filename in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
      os.remove(os.path.join(directory, filename))

    self.assertLen(
        _load("mnist", "test[:3]", dataset_dir=directory)[1], 3)
    with self.assertRaisesRegex(image_readers.DatasetUnavailableError,
                                "'train' split .* train-images-idx3-ubyte"):
      _load("mnist", "train+test", dataset_dir=directory)

  @parameterized.named_parameters(
      ("unknown_split", "validation", "Unknown split 'validation'"),
      ("malformed", "test[", "Error parsing split 'test\\['"),
      ("beyond_end", "test[:5]", "incompatible with 4 examples"))
  def test_bad_split_raises_value_error(self, split, message):
    directory = self._dir()
    _write_official_files(directory, "idx")

    with self.assertRaisesRegex(ValueError, message):
      _load("mnist", split, dataset_dir=directory)

  def test_unsupported_dataset_raises(self):
    with self.assertRaisesRegex(
        ValueError, "kmnist, mnist, fashion_mnist; --dataset=svhn_cropped does not"):
      _load("svhn_cropped", "test", dataset_dir=self._dir())


class RealKmnistTest(tf.test.TestCase):
  """The official KMNIST test files (with their MD5SUMS) next to the repo."""

  def setUp(self):
    super().setUp()
    if not os.path.isdir(_REAL_KMNIST_DIR):
      self.skipTest(f"{_REAL_KMNIST_DIR} is absent.")

  def test_test_split_slices(self):
    first = _load("kmnist", "test[:9000]", dataset_dir=_REAL_KMNIST_DIR)
    rest = _load("kmnist", "test[9000:]", dataset_dir=_REAL_KMNIST_DIR)

    self.assertEqual(first[0].shape, (9000, 28, 28, 1))
    self.assertEqual(first[0].dtype, np.uint8)
    self.assertEqual(rest[0].shape, (1000, 28, 28, 1))
    labels = np.concatenate([first[1], rest[1]])
    # The KMNIST test set is balanced: 1000 examples of each of 10 classes.
    self.assertAllEqual(np.bincount(labels), [1000] * 10)

  def test_train_split_is_missing(self):
    with self.assertRaisesRegex(image_readers.DatasetUnavailableError,
                                "'train' split of kmnist .*"
                                "train-images-idx3-ubyte"):
      _load("kmnist", "train", dataset_dir=_REAL_KMNIST_DIR)




def _folder(root, files):
  """Writes {relative path: uint8 image}; returns root."""
  for relative, image in files.items():
    image_files.write_image(os.path.join(root, relative), image)
  return root


class FolderSourceTest(parameterized.TestCase, tf.test.TestCase):

  def test_split_folders_sorted_paths_and_labels(self):
    images = image_files.random_images(6, (4, 4, 3))
    root = _folder(self.get_temp_dir(), {
        "train/dog/b.png": images[0], "train/cat/z.png": images[1],
        "train/dog/a/deeper.png": images[2], "train/cat/a.png": images[3],
        "test/zebra/x.png": images[4], "test/cat/y.png": images[5]})
    image_files.write_file(os.path.join(root, "train", "cat", "notes.txt"), b"x")
    source = image_sources.open_source(f"folder:{root}")

    train = source.examples("train")
    test = source.examples("test")

    self.assertEqual(source.class_names, ["cat", "dog", "zebra"])
    self.assertEqual(source.num_classes, 3)
    self.assertEqual([train.describe(i) for i in range(len(train))],
                     [os.path.join(root, "train", f) for f in
                      ("cat/a.png", "cat/z.png", "dog/a/deeper.png", "dog/b.png")])
    read, labels = _read_all(train)
    self.assertAllEqual(np.stack(read), images[[3, 1, 2, 0]])
    self.assertAllEqual(labels, [0, 0, 1, 1])
    self.assertAllEqual(_read_all(test)[1], [0, 2])
    self.assertTrue(test.has_labels)

  def test_without_split_folders_all_is_train(self):
    images = image_files.random_images(4, (5, 3, 1))
    root = _folder(self.get_temp_dir(), {
        "b.PNG": images[0], "a.png": images[1], "c/d.png": images[2], "e.Png": images[3]})
    source = image_sources.open_source(f"folder:{root}")

    examples = source.examples("train[:75%]")
    read, labels = _read_all(examples)

    self.assertAllEqual(np.stack(read), images[[1, 0, 2]])
    # Files at the top of the split: no labels.
    self.assertFalse(examples.has_labels)
    self.assertAllEqual(labels, [image_readers.NO_LABEL] * 3)
    self.assertEqual(source.num_classes, 0)
    with self.assertRaisesRegex(ValueError, "Split 'test' of folder:.*Unknown split 'test'"):
      source.examples("test")

  def test_formats_decode_to_their_pixels(self):
    image = image_files.random_images(1, (3, 5, 3))[0]
    root = _folder(self.get_temp_dir(), {"a.png": image, "b.bmp": image})
    image_files.write_file(os.path.join(root, "c.gif"), image_files.GIF_1X1)
    flat = np.full([8, 8, 3], [200, 100, 50], np.uint8)
    image_files.write_image(os.path.join(root, "d.jpg"), flat)

    read, _ = _read_all(image_sources.open_source(f"folder:{root}").examples("train"))

    self.assertAllEqual(read[0], image)
    self.assertAllEqual(read[1], image)
    self.assertEqual(read[2].shape, (1, 1, 3))
    # JPEG is lossy, even at quality 100.
    self.assertAllClose(read[3], flat, atol=2)

  def test_reads_only_files_inside_its_directory(self):
    images = image_files.random_images(2, (4, 4, 1))
    root = _folder(os.path.join(self.get_temp_dir(), "data"),
                   {"train/a.png": images[0]})
    outside = _folder(os.path.join(self.get_temp_dir(), "elsewhere"),
                      {"secret.png": images[1], "more/b.png": images[1]})
    for target, link in ((f"{outside}/secret.png", "train/s.png"),
                         (f"{outside}/more", "train/more"),
                         (f"{root}/train", "train/loop"),
                         (f"{root}/train/a.png", "train/c.png"), (outside, "test")):
      os.symlink(target, os.path.join(root, link))
      # TF's clean-up of the temporary directory would follow the links.
      self.addCleanup(os.remove, os.path.join(root, link))

    with self.assertLogs(level="WARNING") as logs:
      source = image_sources.open_source(f"folder:{root}/../data")

    self.assertEqual(list(source.examples("train").files()),
                     [os.path.join(root, "..", "data", "train", name)
                      for name in ("a.png", "c.png")])
    with self.assertRaisesRegex(ValueError, "incompatible with 0 examples"):
      source.examples("test[:1]")
    self.assertEqual(
        [record.getMessage() for record in logs.records],
        [f"folder:{root}/../data: left out 4 symbolic link(s) that lead outside "
         f"{root}/../data or to a directory, e.g. {root}/../data/test -> {outside}; a "
         "folder dataset reads only the files inside its directory."])

  @parameterized.named_parameters(
      ("missing", "absent", "is not a directory"),
      ("empty", "", r"no image files \(.png, .jpg.*\) in"))
  def test_unusable_folder_is_one_line(self, subdir, message):
    root = os.path.join(self.get_temp_dir(), subdir)
    image_files.write_file(os.path.join(self.get_temp_dir(), "notes.txt"), b"x")

    with self.assertRaisesRegex(image_readers.DatasetUnavailableError,
                                f"--dataset=folder:{root}: .*{message}") as raised:
      image_sources.open_source(f"folder:{root}")

    self.assertNotIn("\n", str(raised.exception))

  def test_feature_keys_are_refused(self):
    with self.assertRaisesRegex(ValueError, "--image_key and --label_key name features"):
      image_sources.open_source(f"folder:{self.get_temp_dir()}", image_key="image")


class TfrecordSourceTest(parameterized.TestCase, tf.test.TestCase):

  def test_default_keys_files_in_sorted_order(self):
    images = image_files.random_images(5, (4, 6, 3))
    root = self.get_temp_dir()
    image_files.write_tfrecord(os.path.join(root, "b.tfrecord"), images[3:], [3, 4])
    image_files.write_tfrecord(os.path.join(root, "a.tfrecord"), images[:3], [0, 1, 2])
    source = image_sources.open_source(f"tfrecord:{root}/*.tfrecord")

    examples = source.examples("train[1:]")
    read, labels = _read_all(examples)

    self.assertEqual((source.image_key, source.label_key),
                     ("image/encoded", "image/class/label"))
    self.assertAllEqual(np.stack(read), images[1:])
    self.assertAllEqual(labels, [1, 2, 3, 4])
    self.assertEqual(examples.describe(2), f"record 0 of {root}/b.tfrecord")

  def test_tfds_style_keys_and_no_label(self):
    images = image_files.random_images(2, (4, 4, 1))
    path = image_files.write_tfrecord(os.path.join(self.get_temp_dir(), "x.rec"), images,
                                      image_key="image")

    source = image_sources.open_source(f"tfrecord:{path}")
    examples = source.examples("train")

    self.assertEqual((source.image_key, source.label_key), ("image", None))
    self.assertFalse(examples.has_labels)
    self.assertAllEqual(np.stack(_read_all(examples)[0]), images)

  def test_split_placeholder(self):
    images = image_files.random_images(7, (2, 2, 3))
    root = self.get_temp_dir()
    for name, rows in (("train", slice(0, 4)), ("validation", slice(4, 7))):
      image_files.write_tfrecord(os.path.join(root, f"{name}-0.rec"), images[rows])

    source = image_sources.open_source(f"tfrecord:{root}/{{split}}-*.rec")

    self.assertAllEqual(np.stack(_read_all(source.examples("validation"))[0]), images[4:])
    self.assertAllEqual(np.stack(_read_all(source.examples("train[2:]+validation[:1]"))[0]),
                        images[[2, 3, 4]])
    with self.assertRaisesRegex(ValueError, "Unknown split 'test'"):
      source.examples("test")

  @parameterized.named_parameters(
      ("image_key", dict(image_key="jpeg"), "--image_key: the records of .* have no "
       "bytes_list feature jpeg; their features are: image/class/label \\(int64_list\\), "
       "image/encoded \\(bytes_list\\)"),
      ("label_key", dict(label_key="image/encoded"), "--label_key: .* no int64_list "
       "feature image/encoded"))
  def test_missing_feature_is_one_line(self, keys, message):
    path = image_files.write_tfrecord(os.path.join(self.get_temp_dir(), "x.rec"),
                                      image_files.random_images(1, (2, 2, 1)), [0])

    with self.assertRaisesRegex(ValueError, message):
      image_sources.open_source(f"tfrecord:{path}", **keys)

  def test_glob_matching_nothing_is_one_line(self):
    pattern = os.path.join(self.get_temp_dir(), "none-*.tfrecord")

    with self.assertRaisesRegex(
        image_readers.DatasetUnavailableError,
        re.escape(f"--dataset=tfrecord:{pattern}: the glob matches no file.")):
      image_sources.open_source(f"tfrecord:{pattern}")

  @parameterized.named_parameters(
      ("gzip", lambda b: gzip.compress(b), "is gzip-compressed"),
      ("truncated", lambda b: b[:-7], "is truncated or not a TFRecord file: its record 1"))
  def test_damaged_file_is_one_line(self, damage, message):
    path = image_files.write_tfrecord(os.path.join(self.get_temp_dir(), "x.rec"),
                                      image_files.random_images(2, (2, 2, 1)))
    good = os.path.join(self.get_temp_dir(), "good.rec")
    os.rename(path, good)
    with open(good, "rb") as f:
      contents = f.read()
    # The first record stays readable, so that the keys can be found.
    image_files.write_file(os.path.join(self.get_temp_dir(), "y.rec"), damage(contents))
    source = image_sources.open_source(f"tfrecord:{self.get_temp_dir()}/*.rec")

    with self.assertRaisesRegex(image_readers.DatasetUnavailableError,
                                f"y.rec {message}"):
      source.examples("train")


class CheckDatasetTest(parameterized.TestCase):

  @parameterized.parameters("kmnist", "imagenet_resized/64x64", "folder:/x",
                            "tfrecord:/x/*.tfrecord")
  def test_well_formed(self, value):
    self.assertIsNone(data_options.check_dataset(value))

  @parameterized.parameters("", "folder:", "tfrecord: ")
  def test_malformed(self, value):
    self.assertIsNotNone(data_options.check_dataset(value))
