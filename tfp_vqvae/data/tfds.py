"""TensorFlow Datasets as a source of images: `--dataset=NAME[/CONFIG]`.

Any TFDS dataset with an image feature (`--image_key`, default `image`) and
optionally a label feature (`--label_key`, default `label` when the dataset has
one) is read by example index, without loading a split into memory:

* prepared in TFDS's default TFRecord format: the split's files are indexed
  (see `image_readers.RecordIndex`) and the examples are numbered in exactly
  the order `builder.as_dataset(split)` yields them (its files interleaved as
  TFDS interleaves them), so `test[:1000]` and example i mean what they mean in
  TFDS;
* prepared as ArrayRecord (or under `tfds.testing.mock_data`): through TFDS's
  random-access `as_data_source`.

Split strings are TFDS's (`train`, `test[:9000]`, `train[90%:]`, `train+test`).
When the dataset is not prepared yet, TFDS downloads it; on a machine without
network access that download would retry for minutes, so the download host is
probed first and an unreachable host fails immediately.
"""

import socket
import urllib.parse
import urllib.request
from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae.data import idx_files
from tfp_vqvae.data import image_files as image_readers
from tfp_vqvae.data.image_files import DatasetUnavailableError
from tfp_vqvae.data.image_files import first_line

DEFAULT_IMAGE_KEY = "image"
DEFAULT_LABEL_KEY = "label"
# Seconds to wait when checking that the TFDS download host is reachable. A
# reachable host answers within a fraction of a second; an offline machine
# usually fails name resolution at once, so this only bounds the worst case.
_PROBE_TIMEOUT_SECONDS = 10.0
# TFDS's default interleaving of a split's files when reading them in order
# (`tfds.ReadConfig`: 16 files at a time, 16 examples from each in turn; one
# file at a time for datasets whose order matters).
_INTERLEAVE_CYCLE_LENGTH = 16
_INTERLEAVE_BLOCK_LENGTH = 16


def probe_download_host(url: str) -> None:
  """Raises OSError quickly if the host serving `url` cannot be reached.

  TFDS's downloader retries failed connections with exponential backoff, which
  takes minutes (measured: ~200 s) on a machine without network access. One
  plain TCP connection, to the HTTP proxy if one is configured as `requests`
  would use it, tells the same thing at once.

  Args:
    url: The URL TFDS downloads from.

  Raises:
    OSError: If the host (or proxy) cannot be resolved or connected to.
  """
  parts = urllib.parse.urlsplit(url)
  proxy = urllib.request.getproxies().get(parts.scheme)
  if proxy and not urllib.request.proxy_bypass(parts.hostname):
    parts = urllib.parse.urlsplit(proxy)
  port = parts.port or (443 if parts.scheme == "https" else 80)
  try:
    with socket.create_connection((parts.hostname, port),
                                  timeout=_PROBE_TIMEOUT_SECONDS):
      pass
  except OSError as e:
    raise OSError(f"cannot reach {parts.hostname}:{port}: {e}") from e


def _feature_names(features, feature_type) -> list[str]:
  return [key for key, feature in features.items() if isinstance(feature, feature_type)]


class TfdsSource:
  """One TFDS dataset: its image and label features, and its splits by index.

  Attributes:
    name: The dataset's name as given, e.g. "celeb_a" or "imagenet_resized/64x64".
    image_key: The image feature.
    label_key: The label feature, or None.
    num_classes: Number of classes of a `ClassLabel` label, 0 without a label
      feature, None for another label feature.
    stored_shape: The image feature's (H, W, C) if fully known, else None.
  """

  def __init__(self, name: str, data_dir: Optional[str] = None, image_key: str = "",
               label_key: str = ""):
    """Finds the dataset and checks its feature keys (nothing is downloaded yet).

    Args:
      name: TFDS name, optionally with config and version ("name/config:1.0.0").
      data_dir: TFDS data directory; None for TFDS's default.
      image_key: Image feature; "" for `DEFAULT_IMAGE_KEY`.
      label_key: Label feature; "" for `DEFAULT_LABEL_KEY` if the dataset has it.

    Raises:
      ValueError: If TFDS has no dataset `name`, or it has no image feature
        `image_key` or no feature `label_key`.
    """
    try:
      self._builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
      raise ValueError(
          f"--dataset={name}: TFDS has no dataset of that name ({first_line(e)}). "
          "Use a TFDS name such as celeb_a or imagenet_resized/64x64, "
          "folder:DIR for a directory of images or tfrecord:GLOB for TFRecord "
          "files.") from e
    self.name = name
    self._data_dir = data_dir
    features = self._builder.info.features
    self.image_key = image_key or DEFAULT_IMAGE_KEY
    if (self.image_key not in features
        or not isinstance(features[self.image_key], tfds.features.Image)):
      found = ", ".join(_feature_names(features, tfds.features.Image)) or "none"
      raise ValueError(f"--image_key={self.image_key}: {name} has no image feature of "
                       f"that name; its image features are: {found}.")
    if label_key and label_key not in features:
      raise ValueError(f"--label_key={label_key}: {name} has no such feature; its "
                       f"features are: {', '.join(features)}.")
    if not label_key and DEFAULT_LABEL_KEY in features:
      label_key = DEFAULT_LABEL_KEY
    self.label_key = label_key or None
    label = features[self.label_key] if self.label_key else None
    self.num_classes = (label.num_classes if isinstance(label, tfds.features.ClassLabel)
                        else None if label else 0)
    shape = features[self.image_key].shape
    self.stored_shape = tuple(shape) if None not in shape else None

  def examples(self, split: str) -> image_readers.Examples:
    """The examples of a TFDS split string, in TFDS's order, downloading if needed.

    Raises:
      ValueError: If the split is unknown, malformed or slices beyond it.
      DatasetUnavailableError: If the data cannot be downloaded or prepared.
    """
    if not self._builder.info.splits:
      # Nothing prepared (or mocked): a mocked dataset is read as a data source;
      # a real one fails there and is prepared first.
      try:
        return self._data_source_examples(split)
      # Unprepared datasets fail with one of several types (NotImplementedError
      # for the TFRecord format, file errors for the others).
      except Exception:  # pylint: disable=broad-exception-caught
        self._prepare()
    if self._builder.info.file_format == tfds.core.FileFormat.TFRECORD:
      return self._record_examples(split)
    return self._data_source_examples(split)

  def _prepare(self) -> None:
    try:
      # Not every builder downloads from one URL (e.g. manual downloads).
      url = getattr(self._builder, "URL", None)
      if url:
        probe_download_host(url)
      self._builder.download_and_prepare()
    # TFDS surfaces download and preparation failures as many exception types
    # (requests, gfile, checksum, import errors); all mean the same to users.
    except Exception as e:  # pylint: disable=broad-exception-caught
      base_name = self.name.split("/")[0].split(":")[0]
      hint = ("pass --data_dir pointing at a TFDS data directory in which it is "
              "already prepared")
      if base_name in idx_files.LOCAL_DATASETS:
        hint = ("pass --dataset_dir pointing at a directory holding the official "
                f"files, i.e. {idx_files.official_files(base_name)}; or " + hint)
      raise DatasetUnavailableError(
          f"Cannot load {self.name}: TFDS could not download or prepare it "
          f"({type(e).__name__}: {first_line(e)}). If this machine is offline, "
          f"{hint}.") from e

  def _split_info(self, split: str):
    try:
      return self._builder.info.splits[split]
    except (KeyError, ValueError) as e:
      raise ValueError(f"Split {split!r} of {self.name}: {first_line(e)}") from e

  def _record_examples(self, split: str) -> image_readers.RecordExamples:
    instructions = self._split_info(split).file_instructions
    files = list(dict.fromkeys(i.filename for i in instructions))
    index = image_readers.RecordIndex(files)
    file_starts = index.file_starts()
    starts = np.array([file_starts[files.index(i.filename)] + i.skip
                       for i in instructions], np.int64)
    takes = np.array([i.take for i in instructions], np.int64)
    cycle_length = (1 if self._builder.info.disable_shuffling
                    else _INTERLEAVE_CYCLE_LENGTH)
    rows = tf.data.Dataset.from_tensor_slices((starts, takes)).interleave(
        lambda start, take: tf.data.Dataset.range(start, start + take),
        cycle_length=cycle_length, block_length=_INTERLEAVE_BLOCK_LENGTH)
    order = np.concatenate([np.zeros([0], np.int64)] +
                           list(rows.batch(1 << 16).as_numpy_iterator()))
    return image_readers.RecordExamples(
        f"{self.name} {split}", index, order, self.image_key, self.label_key,
        self.stored_shape)

  def _data_source_examples(self, split: str) -> image_readers.DataSourceExamples:
    source = self._builder.as_data_source(
        split=split, decoders={self.image_key: tfds.decode.SkipDecoding()})
    return image_readers.DataSourceExamples(
        f"{self.name} {split}", source, self.image_key, self.label_key,
        self.stored_shape)
