"""Where images come from: the `--dataset` spellings and their splits.

* `--dataset=NAME[/CONFIG]`: a TFDS dataset (see data/tfds.py), e.g.
  `kmnist`, `celeb_a`, `imagenet_resized/64x64`, `imagenet2012`.
* `--dataset=kmnist|mnist|fashion_mnist` with `--dataset_dir=DIR`: the official
  idx/npz files in DIR (see idx_files.py).
* `--dataset=folder:DIR`: image files (PNG, JPEG, BMP, GIF, WebP; by
  extension, any case) below DIR. If DIR has sub-folders named `train`, `test` or
  `validation`, those are its splits (and nothing else in DIR is read);
  otherwise all of DIR is the split `train`. Within a split, files are found
  recursively and taken in sorted path order. Only files inside DIR are read:
  a symbolic link is followed only if it leads to a file inside DIR (links to
  directories are not followed, so no file is listed twice and no loop is
  walked); the others are left out with one warning. If every file of a split
  lies in a sub-folder of it, the sub-folder names are class labels (numbered in
  sorted order over all splits, as `tf.keras.utils.image_dataset_from_directory`
  does); otherwise the split has no labels.
* `--dataset=tfrecord:GLOB`: uncompressed TFRecord files of `tf.train.Example`s
  holding an encoded image (bytes feature `--image_key`, default `image/encoded`
  or else `image`) and optionally an int64 label (`--label_key`, default
  `image/class/label` or else `label` when present). The matched files, in
  sorted order, form the split `train`; a GLOB containing `{split}`, e.g.
  `data/{split}-*.tfrecord`, has the splits `train`, `test` and `validation`,
  each reading the files its name matches.

Every source takes TFDS split strings over its splits: `train`, `test[:1000]`,
`train[:90%]`, `train[90%:]`, `train+validation`, resolved by
`tfds.core.ReadInstruction` exactly as TFDS resolves them.
"""

import collections.abc
import os
from typing import Callable, Optional, Protocol, Sequence

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae.configs.data import FOLDER_PREFIX
from tfp_vqvae.configs.data import TFRECORD_PREFIX
from tfp_vqvae.configs.data import check_dataset
from tfp_vqvae.data import idx_files
from tfp_vqvae.data import image_files as image_readers
from tfp_vqvae.data.image_files import DatasetUnavailableError
from tfp_vqvae.data.image_files import first_line
from tfp_vqvae.data import tfds as tfds_source

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# Sub-folders of a folder dataset, and `{split}` values of a TFRecord glob.
SPLIT_NAMES = ("train", "test", "validation")
_SPLIT_PLACEHOLDER = "{split}"
# Feature keys tried in turn when --image_key / --label_key are unset.
_TFRECORD_IMAGE_KEYS = ("image/encoded", "image")
_TFRECORD_LABEL_KEYS = ("image/class/label", "label")


class Source(Protocol):
  """A dataset whose splits can be read by example index.

  Attributes:
    name: The `--dataset` value.
    num_classes: Number of label classes if known without reading the data,
      0 if the data has no labels, None if only its labels can tell.
  """

  name: str
  num_classes: Optional[int]

  def examples(self, split: str) -> image_readers.Examples:
    """The examples a split string selects, in order."""


def open_source(dataset: str, dataset_dir: Optional[str] = None,
                data_dir: Optional[str] = None, image_key: str = "",
                label_key: str = "") -> Source:
  """Opens the source `--dataset` names (see the module docstring).

  Args:
    dataset: TFDS name, `folder:DIR` or `tfrecord:GLOB`.
    dataset_dir: Directory of official idx/npz files, for kmnist, mnist and
      fashion_mnist only.
    data_dir: TFDS data directory (TFDS datasets only).
    image_key: Image feature of TFDS or TFRecord data; "" for the default.
    label_key: Label feature of TFDS or TFRecord data; "" for the default.

  Raises:
    ValueError: If the spelling or a flag does not fit the source, or TFDS has
      no such dataset or feature.
    DatasetUnavailableError: If a folder has no images or a glob matches no file.
  """
  problem = check_dataset(dataset)
  if problem:
    raise ValueError(f"--dataset={dataset}: {problem}.")
  is_tfds = not dataset.startswith((FOLDER_PREFIX, TFRECORD_PREFIX))
  if dataset_dir is not None and not (is_tfds and dataset in idx_files.LOCAL_DATASETS):
    raise ValueError(
        f"--dataset_dir reads the official files of {', '.join(idx_files.LOCAL_DATASETS)}"
        f"; --dataset={dataset} does not use it: drop --dataset_dir.")
  if dataset_dir is not None or dataset.startswith(FOLDER_PREFIX):
    if image_key or label_key:
      raise ValueError(f"--image_key and --label_key name features of TFDS or TFRecord "
                       f"data; --dataset={dataset} has none: drop them.")
    if dataset_dir is not None:
      return IdxSource(dataset, dataset_dir)
    return FolderSource(dataset[len(FOLDER_PREFIX):])
  if dataset.startswith(TFRECORD_PREFIX):
    return TfrecordSource(dataset[len(TFRECORD_PREFIX):], image_key, label_key)
  return tfds_source.TfdsSource(dataset, data_dir, image_key, label_key)


class _SplitSizes(collections.abc.Mapping):
  """Split name -> `tfds.core.SplitInfo`, each size asked for only when needed.

  What `ReadInstruction.to_absolute` resolves split strings against; lazy so
  that e.g. the idx train files are not read for `test[:100]`.
  """

  def __init__(self, names: Sequence[str], size_of: Callable[[str], int]):
    self._names = tuple(names)
    self._size_of = size_of

  def __iter__(self):
    return iter(self._names)

  def __len__(self):
    return len(self._names)

  def __getitem__(self, name: str) -> tfds.core.SplitInfo:
    if name not in self._names:
      raise KeyError(name)
    return tfds.core.SplitInfo(name=name, shard_lengths=[self._size_of(name)],
                               num_bytes=0)


def resolve_split(split: str, names: Sequence[str], size_of: Callable[[str], int],
                  dataset: str) -> list[tuple[str, int, int]]:
  """Resolves a TFDS split string into (split name, start, stop) row ranges (ints).

  Args:
    split: e.g. "test[:9000]", "train[90%:]", "train+test".
    names: The dataset's split names.
    size_of: Number of examples of a split name.
    dataset: The dataset, for messages.

  Raises:
    ValueError: If the split string is malformed, names an unknown split or
      slices beyond one.
  """
  try:
    instructions = tfds.core.ReadInstruction.from_spec(split).to_absolute(
        _SplitSizes(names, size_of))
  except (ValueError, KeyError, AssertionError) as e:
    raise ValueError(f"Split {split!r} of {dataset}: {first_line(e)}") from e
  return [(i.splitname, i.from_ or 0, size_of(i.splitname) if i.to is None else i.to)
          for i in instructions]


class IdxSource:
  """The official idx/npz files of an MNIST-family dataset in a directory."""

  def __init__(self, name: str, dataset_dir: str):
    self.name = name
    # The files carry no class list (`data.num_classes` reads the labels).
    self.num_classes = None
    self._directory = idx_files.IdxDirectory(name, dataset_dir)

  def examples(self, split: str) -> image_readers.ArrayExamples:
    ranges = resolve_split(split, idx_files.SPLIT_NAMES,
                           lambda name: len(self._directory.load(name)[1]), self.name)
    parts = [(self._directory.load(name), slice(start, stop))
             for name, start, stop in ranges]
    return image_readers.ArrayExamples(
        f"{self.name} {split}",
        np.concatenate([images[rows] for (images, _), rows in parts]),
        np.concatenate([labels[rows] for (_, labels), rows in parts]))


def _image_files(directory: str, root: str) -> tuple[list[str], list[str]]:
  """The image files below `directory` that lie inside `root`, and the links left out.

  Returns:
    (paths relative to `directory`, sorted; paths of the symbolic links that
    lead outside `root` or to a directory, which are not followed).
  """
  inside = os.path.realpath(root)
  found, left_out = [], []
  for parent, dirs, files in os.walk(directory):
    left_out += [os.path.join(parent, name) for name in dirs
                 if os.path.islink(os.path.join(parent, name))]
    relative = os.path.relpath(parent, directory)
    for name in files:
      if not name.lower().endswith(IMAGE_EXTENSIONS):
        continue
      path = os.path.join(parent, name)
      if os.path.commonpath([os.path.realpath(path), inside]) != inside:
        left_out.append(path)
      else:
        found.append(name if relative == "." else os.path.join(relative, name))
  return sorted(found), left_out


class FolderSource:
  """A directory tree of image files (see the module docstring)."""

  def __init__(self, root: str):
    """Lists the files of every split (their contents are read later).

    Raises:
      DatasetUnavailableError: If `root` is not a directory or holds no image.
    """
    self.name = f"{FOLDER_PREFIX}{root}"
    if not os.path.isdir(root):
      raise DatasetUnavailableError(f"--dataset={self.name}: {root} is not a directory.")
    split_dirs = {name: os.path.join(root, name) for name in SPLIT_NAMES
                  if os.path.isdir(os.path.join(root, name))}
    if not split_dirs:
      split_dirs = {"train": root}
    self._files, left_out = {}, []
    for name, path in split_dirs.items():
      if path != root and os.path.islink(path):
        left_out.append(path)
        self._files[name] = []
      else:
        self._files[name], split_left_out = _image_files(path, root)
        left_out += split_left_out
    if left_out:
      left_out.sort()
      logging.warning(
          "%s: left out %d symbolic link(s) that lead outside %s or to a directory, "
          "e.g. %s -> %s; a folder dataset reads only the files inside its "
          "directory.", self.name, len(left_out), root, left_out[0],
          os.path.realpath(left_out[0]))
    self._dirs = split_dirs
    if not any(self._files.values()):
      raise DatasetUnavailableError(
          f"--dataset={self.name}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in "
          f"{' or '.join(sorted(split_dirs.values()))}.")
    # A split is labelled if all its files lie in class sub-folders.
    self._labelled = {name: bool(files) and all(os.sep in f for f in files)
                      for name, files in self._files.items()}
    self.class_names = sorted({f.split(os.sep)[0] for name, files in self._files.items()
                               if self._labelled[name] for f in files})
    self.num_classes = len(self.class_names)

  def examples(self, split: str) -> image_readers.FileExamples:
    ranges = resolve_split(split, tuple(self._files),
                           lambda name: len(self._files[name]), self.name)
    class_ids = {name: i for i, name in enumerate(self.class_names)}
    paths, labels = [], []
    for name, start, stop in ranges:
      files = self._files[name][start:stop]
      paths += [os.path.join(self._dirs[name], f) for f in files]
      labels.append(np.array([class_ids[f.split(os.sep)[0]] for f in files], np.int64)
                    if self._labelled[name] else None)
    labelled = all(label is not None for label in labels)
    return image_readers.FileExamples(
        f"{self.name} {split}", paths, np.concatenate(labels) if labelled else None)


def _first_record_features(path: str) -> dict[str, str]:
  """{feature key: kind} of the first record of a TFRecord file."""
  try:
    for record in tf.data.TFRecordDataset(path).take(1):
      example = tf.train.Example.FromString(record.numpy())
      return {key: feature.WhichOneof("kind")
              for key, feature in example.features.feature.items()}
  except (tf.errors.OpError, ValueError) as e:
    raise DatasetUnavailableError(f"Cannot read a tf.train.Example from {path}: "
                                  f"{first_line(e)}") from e
  raise DatasetUnavailableError(f"{path} holds no records.")


class TfrecordSource:
  """TFRecord files of encoded images (see the module docstring)."""

  def __init__(self, pattern: str, image_key: str = "", label_key: str = ""):
    """Finds the files and the feature keys (from the first record).

    Raises:
      DatasetUnavailableError: If the glob matches no file.
      ValueError: If a feature key is not in the first record.
    """
    self.name = f"{TFRECORD_PREFIX}{pattern}"
    if _SPLIT_PLACEHOLDER in pattern:
      self._files = {name: sorted(tf.io.gfile.glob(pattern.replace(_SPLIT_PLACEHOLDER,
                                                                   name)))
                     for name in SPLIT_NAMES}
      self._files = {name: files for name, files in self._files.items() if files}
    else:
      files = sorted(tf.io.gfile.glob(pattern))
      self._files = {"train": files} if files else {}
    if not self._files:
      raise DatasetUnavailableError(f"--dataset={self.name}: the glob matches no file.")
    first_file = next(iter(self._files.values()))[0]
    features = _first_record_features(first_file)
    self.image_key = self._key("--image_key", image_key, _TFRECORD_IMAGE_KEYS, features,
                               first_file, "bytes_list")
    self.label_key = self._key("--label_key", label_key, _TFRECORD_LABEL_KEYS, features,
                               first_file, "int64_list", optional=True)
    # TFRecords carry no class list (`data.num_classes` reads the labels).
    self.num_classes = None if self.label_key else 0
    self._index = None

  @staticmethod
  def _key(flag: str, key: str, defaults: Sequence[str], features: dict[str, str],
           path: str, kind: str, optional: bool = False) -> Optional[str]:
    """The feature key to read: `key` if given, else the first default present."""
    candidates = [key] if key else [k for k in defaults if k in features]
    if candidates and features.get(candidates[0]) == kind:
      return candidates[0]
    if optional and not key:
      return None
    wanted = key or " or ".join(defaults)
    listing = ", ".join(f"{k} ({v})" for k, v in sorted(features.items()))
    raise ValueError(f"{flag}: the records of {path} have no {kind} feature {wanted}; "
                     f"their features are: {listing}.")

  def examples(self, split: str) -> image_readers.RecordExamples:
    if self._index is None:
      # One index over the files of all splits, split after split.
      self._index = image_readers.RecordIndex(
          [f for files in self._files.values() for f in files])
    file_starts = self._index.file_starts()
    split_starts, first_file = {}, 0
    for name, files in self._files.items():
      split_starts[name] = (file_starts[first_file], file_starts[first_file + len(files)])
      first_file += len(files)
    ranges = resolve_split(split, tuple(self._files),
                           lambda name: split_starts[name][1] - split_starts[name][0],
                           self.name)
    rows = np.concatenate([np.arange(split_starts[name][0] + start,
                                     split_starts[name][0] + stop)
                           for name, start, stop in ranges])
    return image_readers.RecordExamples(f"{self.name} {split}", self._index, rows,
                                        self.image_key, self.label_key)
