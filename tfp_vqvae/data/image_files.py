"""Random access to the examples of one split: example i -> its image and label.

An `Examples` object lists the examples of a split in order and reads any of
them by index inside a `tf.data` pipeline, without holding the images: a file
path (folders), the place of a record in a TFRecord file (TFRecords and TFDS),
a key of a TFDS random-access data source, or a row of a small in-memory array
(the official idx files). Random access is what lets `data/pipeline.py` draw each epoch
as a stateless permutation of example indices (see its docstring).

TFRecord files are indexed once when opened: one pass over the 12-byte record
headers (seeking over the payloads) gives each record's offset and length, and
`tf.data.FixedLengthRecordDataset` then reads exactly those bytes. Records are
uncompressed `tf.train.Example`s; their CRCs are not checked (a damaged image
fails to decode and is reported as such).
"""

import abc
import copy
import re
import struct
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tfp_vqvae.internal.errors import DatasetUnavailableError

# Label of an example that has none (a folder without class sub-folders, a
# TFRecord without a label feature).
NO_LABEL = -1
# Leading bytes of a gzip file: a compressed TFRecord file cannot be indexed.
_GZIP_MAGIC = b"\x1f\x8b"
# TFRecord framing: uint64 length, uint32 CRC of the length, data, uint32 CRC.
_RECORD_HEADER_BYTES = 12
_RECORD_FOOTER_BYTES = 4


def first_line(error: BaseException) -> str:
  """Returns the first line of an exception's message, or its type name.

  TensorFlow's own decorations of an op's message (the `{{function_node ...}}`
  prefix, the `[Op:...]` suffix) are left out.
  """
  text = error.message if isinstance(error, tf.errors.OpError) else str(error)
  text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
  text = re.sub(r"\s*\[Op:[^\]]*\].*", "", text)
  lines = text.strip().splitlines()
  return lines[0].strip() if lines else type(error).__name__


class Examples(abc.ABC):
  """The examples of one split, in order, each readable by index.

  Per-example facts are kept as NumPy columns of equal length (paths, record
  offsets, labels, ...), so that `take` can select any rows. Subclasses say
  how one example is read.

  Attributes:
    name: What the examples are, for messages, e.g. "kmnist test[:9000]".
    encoded: True if `read` gives encoded image bytes (PNG, JPEG, BMP, GIF)
      to decode, False if it gives a uint8 image [H, W, C].
    stored_shape: (H, W, C) shared by every stored image if known without
      decoding any, else None.
    has_labels: Whether `read` gives real labels rather than `NO_LABEL`.
  """

  encoded = True
  stored_shape: Optional[tuple[int, int, int]] = None

  def __init__(self, name: str, columns: dict[str, np.ndarray], has_labels: bool = False):
    lengths = {len(column) for column in columns.values()}
    if len(lengths) != 1:
      raise ValueError(f"Columns of unequal lengths: {sorted(lengths)}.")
    self.name = name
    self.has_labels = has_labels
    self._columns = columns
    self._tensors = {}

  def __len__(self) -> int:
    return len(next(iter(self._columns.values())))

  def take(self, rows: np.ndarray) -> "Examples":
    """Returns the examples at `rows` (indices into this split), in that order."""
    subset = copy.copy(self)
    subset._columns = {key: column[rows] for key, column in self._columns.items()}
    subset._tensors = {}
    return subset

  def _column(self, key: str) -> tf.Tensor:
    """Column `key` as a tensor, made once, for the pipelines to gather from."""
    return self._constant(key, self._columns[key])

  def _constant(self, key: str, value) -> tf.Tensor:
    """`value` as a tensor cached under `key`, made eagerly even while tracing
    (so that every pipeline function captures the same tensor)."""
    if key not in self._tensors:
      with tf.init_scope():
        self._tensors[key] = tf.constant(value)
    return self._tensors[key]

  @abc.abstractmethod
  def read(self, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Reads example `index` (int64 scalar tensor) in a graph.

    Returns:
      (image, label): encoded bytes (a string scalar) if `encoded`, else a
      uint8 image [H, W, C]; an int64 scalar label, `NO_LABEL` if none.
    """

  @abc.abstractmethod
  def describe(self, index: int) -> str:
    """Names example `index` for messages: a file path, a record of a file..."""

  def files(self) -> Optional[Sequence[str]]:
    """The file of each example, if each is a file of its own (whose header can
    then be checked before training, see data/image_headers.py), else None."""
    return None


class ArrayExamples(Examples):
  """Decoded images held in memory (small datasets such as the idx files)."""

  encoded = False

  def __init__(self, name: str, images: np.ndarray, labels: np.ndarray):
    """Args: name; uint8 images [N, H, W, C]; int64 labels [N]."""
    super().__init__(name, {"images": images, "labels": labels.astype(np.int64)},
                     has_labels=True)
    self.stored_shape = tuple(int(s) for s in images.shape[1:])

  def read(self, index):
    return (tf.gather(self._column("images"), index),
            tf.gather(self._column("labels"), index))

  def describe(self, index):
    return f"example {index} of {self.name}"


class FileExamples(Examples):
  """One image file per example (PNG, JPEG, BMP, GIF or WebP)."""

  def __init__(self, name: str, paths: Sequence[str], labels: Optional[np.ndarray]):
    """Args: name; file paths; int64 labels [N] or None."""
    has_labels = labels is not None
    if labels is None:
      labels = np.full([len(paths)], NO_LABEL, np.int64)
    super().__init__(name, {"paths": np.asarray(paths, dtype=object),
                            "labels": labels.astype(np.int64)},
                     has_labels)

  def read(self, index):
    return (tf.io.read_file(tf.gather(self._column("paths"), index)),
            tf.gather(self._column("labels"), index))

  def describe(self, index):
    return str(self._columns["paths"][index])

  def files(self):
    return self._columns["paths"]


class RecordIndex:
  """Where each record of some TFRecord files is: file, offset and length."""

  def __init__(self, files: Sequence[str]):
    """Reads the record headers of `files` (each once).

    Raises:
      DatasetUnavailableError: If a file is compressed, truncated or missing.
    """
    self.files = list(files)
    self.file_sizes = []
    file_ids, offsets, lengths, numbers = [], [], [], []
    for file_id, path in enumerate(self.files):
      file_offsets, file_lengths, size = _index_file(path)
      self.file_sizes.append(size)
      file_ids.append(np.full(len(file_offsets), file_id, np.int32))
      offsets.append(file_offsets)
      lengths.append(file_lengths)
      numbers.append(np.arange(len(file_offsets), dtype=np.int64))
    self.columns = {
        "file_ids": np.concatenate(file_ids or [np.zeros([0], np.int32)]),
        "offsets": np.concatenate(offsets or [np.zeros([0], np.int64)]),
        "lengths": np.concatenate(lengths or [np.zeros([0], np.int64)]),
        "record_numbers": np.concatenate(numbers or [np.zeros([0], np.int64)]),
    }

  def file_starts(self) -> np.ndarray:
    """Index of each file's first record in `columns`, plus the total."""
    counts = np.bincount(self.columns["file_ids"], minlength=len(self.files))
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _index_file(path: str) -> tuple[np.ndarray, np.ndarray, int]:
  """(data offsets, data lengths, file size) of the records of one file."""
  try:
    size = tf.io.gfile.stat(path).length
    offsets, lengths = [], []
    with tf.io.gfile.GFile(path, "rb") as f:
      if f.read(2) == _GZIP_MAGIC:
        raise DatasetUnavailableError(
            f"{path} is gzip-compressed; only uncompressed TFRecord files can be "
            "read by index. Decompress it (e.g. with gunzip) first.")
      position = 0
      while position < size:
        f.seek(position)
        header = f.read(_RECORD_HEADER_BYTES)
        length = (struct.unpack("<Q", header[:8])[0]
                  if len(header) == _RECORD_HEADER_BYTES else size)
        end = position + _RECORD_HEADER_BYTES + length + _RECORD_FOOTER_BYTES
        if end > size:
          raise DatasetUnavailableError(
              f"{path} is truncated or not a TFRecord file: its record "
              f"{len(offsets)} at byte {position} runs past the end of the file "
              f"({size} bytes).")
        offsets.append(position + _RECORD_HEADER_BYTES)
        lengths.append(length)
        position = end
  except tf.errors.OpError as e:
    raise DatasetUnavailableError(f"Cannot read {path}: {first_line(e)}") from e
  return np.array(offsets, np.int64), np.array(lengths, np.int64), size


class RecordExamples(Examples):
  """Serialized `tf.train.Example`s in TFRecord files, each with an encoded image.

  Attributes (besides `Examples`'):
    image_key: Feature holding the encoded image (a bytes feature).
    label_key: Int64 feature holding the label, or None.
  """

  def __init__(self, name: str, index: RecordIndex, rows: np.ndarray, image_key: str,
               label_key: Optional[str],
               stored_shape: Optional[tuple[int, int, int]] = None):
    """Args: name; the files' `RecordIndex`; its rows that form this split, in
    order; feature keys; stored image shape if known."""
    super().__init__(name, {key: column[rows] for key, column in index.columns.items()},
                     has_labels=label_key is not None)
    self.image_key = image_key
    self.label_key = label_key
    self.stored_shape = stored_shape
    self._files = index.files
    self._file_sizes = np.array(index.file_sizes, np.int64)

  def read(self, index):
    file_id = tf.gather(self._column("file_ids"), index)
    offset = tf.gather(self._column("offsets"), index)
    length = tf.gather(self._column("lengths"), index)
    size = tf.gather(self._constant("file_sizes", self._file_sizes), file_id)
    record = tf.data.FixedLengthRecordDataset(
        tf.gather(self._constant("files", self._files), file_id), record_bytes=length,
        header_bytes=offset, footer_bytes=size - offset - length,
        buffer_size=1).get_single_element()
    return parse_example(record, self.image_key, self.label_key)

  def describe(self, index):
    number = self._columns["record_numbers"][index]
    return f"record {number} of {self._files[self._columns['file_ids'][index]]}"


def parse_example(record: tf.Tensor, image_key: str,
                  label_key: Optional[str]) -> tuple[tf.Tensor, tf.Tensor]:
  """(encoded image, int64 label or NO_LABEL) of a serialized tf.train.Example."""
  features = {image_key: tf.io.FixedLenFeature([], tf.string)}
  if label_key:
    features[label_key] = tf.io.FixedLenFeature([], tf.int64)
  parsed = tf.io.parse_single_example(record, features)
  label = parsed[label_key] if label_key else tf.constant(NO_LABEL, tf.int64)
  return parsed[image_key], label


class DataSourceExamples(Examples):
  """Examples of a Python random-access source (a TFDS `as_data_source`).

  Read through `tf.numpy_function`, so each read holds the GIL briefly; used
  for TFDS datasets stored as ArrayRecord (and under `tfds.testing.mock_data`).
  """

  def __init__(self, name: str, source, image_key: str, label_key: Optional[str],
               stored_shape: Optional[tuple[int, int, int]] = None):
    """Args: name; source with len() and [i] -> {key: value}, images encoded;
    feature keys; stored image shape if known."""
    super().__init__(name, {"keys": np.arange(len(source), dtype=np.int64)},
                     has_labels=label_key is not None)
    self.stored_shape = stored_shape
    self._source = source
    self._image_key = image_key
    self._label_key = label_key

  def _fetch(self, key):
    example = self._source[int(key)]
    label = example[self._label_key] if self._label_key else NO_LABEL
    return bytes(example[self._image_key]), np.int64(label)

  def read(self, index):
    image, label = tf.numpy_function(
        self._fetch, [tf.gather(self._column("keys"), index)], (tf.string, tf.int64),
        stateful=False)
    return tf.ensure_shape(image, []), tf.ensure_shape(label, [])

  def describe(self, index):
    return f"example {self._columns['keys'][index]} of {self.name}"
