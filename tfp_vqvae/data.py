"""Image data for the VQ-VAE: loading, binarization and input pipelines.

Sources. `load_images` reads KMNIST, MNIST or Fashion-MNIST (grey 28x28) from
one of the two sources below, and CIFAR-10 (RGB 32x32) from TFDS only:

* A local directory (`dataset_dir`) holding the official distribution files:
  the idx files `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
  `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (each plain or
  `.gz`), or, for KMNIST only, the npz files `kmnist-{train,test}-imgs.npz` and
  `kmnist-{train,test}-labels.npz`. If the directory holds an `MD5SUMS` file
  (`md5sum` output), every file read that it lists is verified.
* TensorFlow Datasets, optionally from a prepared TFDS `data_dir`. When the
  dataset is not prepared yet, TFDS downloads it; on a machine without network
  access that download would retry for minutes, so the download host is probed
  first and an unreachable host fails immediately.

Both sources accept TFDS split strings (`train`, `test[:9000]`,
`train[90%:]`, `train+test`, ...); `test` is the official `t10k` set.

Determinism. The pipelines are pure functions of their arguments:

* `train_dataset` yields `(step, images)` batches forever. The examples form
  a stream of epochs, each a permutation drawn with stateless ops seeded by
  `(seed, epoch)`; batch `step` is the slice
  `[step * batch_size, (step + 1) * batch_size)` of that stream (so a batch
  may straddle epochs), and its dynamic binarization is seeded by
  `(seed, step)`. Starting at `start_step=s` therefore yields exactly the
  batches a fresh pipeline yields from step `s` on, which makes resumed
  training bit-identical to uninterrupted training without replaying data.
* `eval_dataset` yields the examples once, in order, and binarizes example `i`
  with a seed derived from `(seed, i)`, so evaluation is repeatable and does
  not depend on the batch size.
"""

import collections.abc
import gzip
import hashlib
import io
import os
import socket
import urllib.parse
import urllib.request
import zipfile
import zlib
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae import seeds as seeds_lib

SUPPORTED_DATASETS = ("kmnist", "mnist", "fashion_mnist", "cifar10")
# The datasets distributed as idx (or KMNIST npz) files that --dataset_dir can hold.
_LOCAL_DATASETS = ("kmnist", "mnist", "fashion_mnist")
BINARIZE_MODES = ("dynamic", "threshold", "none")

# Official file name prefix of each TFDS split.
_IDX_PREFIXES = {"train": "train", "test": "t10k"}

# Seconds to wait when checking that the TFDS download host is reachable. A
# reachable host answers within a fraction of a second; an offline machine
# usually fails name resolution at once, so this only bounds the worst case.
_PROBE_TIMEOUT_SECONDS = 10.0


class DatasetUnavailableError(RuntimeError):
  """Raised when a dataset cannot be loaded; str() is one readable paragraph.

  Covers data that cannot be obtained (offline TFDS, missing files) as well as
  local files that are corrupt or fail their MD5 check.
  """


class ImageSet(NamedTuple):
  """Images with their class labels.

  Attributes:
    images: uint8 array of shape [N, H, W, C] (28x28x1, or 32x32x3 for CIFAR-10).
    labels: int64 array of shape [N].
  """
  images: np.ndarray
  labels: np.ndarray


def _expected_files(name: str, split_name: str) -> tuple[list[str], list[str]]:
  """Returns the candidate (image, label) file names of an official split."""
  prefix = _IDX_PREFIXES[split_name]
  images = [f"{prefix}-images-idx3-ubyte", f"{prefix}-images-idx3-ubyte.gz"]
  labels = [f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels-idx1-ubyte.gz"]
  # Only KMNIST is also distributed as npz.
  if name == "kmnist":
    images.append(f"kmnist-{split_name}-imgs.npz")
    labels.append(f"kmnist-{split_name}-labels.npz")
  return images, labels


def _official_files(name: str) -> str:
  """Returns a readable list of the files `load_images` reads for `name`."""
  files = ("train-images-idx3-ubyte, train-labels-idx1-ubyte, "
           "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each plain or "
           ".gz)")
  if name == "kmnist":
    files += (", or kmnist-train-imgs.npz, kmnist-train-labels.npz, "
              "kmnist-test-imgs.npz and kmnist-test-labels.npz")
  return files


def _read_md5sums(dataset_dir: str) -> dict[str, str]:
  """Parses `dataset_dir/MD5SUMS` into {file name: md5}, or {} if absent."""
  path = os.path.join(dataset_dir, "MD5SUMS")
  if not os.path.exists(path):
    return {}
  md5sums = {}
  with open(path) as f:
    for line in f:
      fields = line.split(maxsplit=1)
      if len(fields) == 2:
        # `md5sum -b` marks binary mode with a leading "*" on the file name.
        md5sums[fields[1].strip().lstrip("*")] = fields[0].lower()
  return md5sums


def _parse_idx(data: bytes, expected_ndim: int, path: str) -> np.ndarray:
  """Decodes an idx file (the MNIST format) holding unsigned bytes.

  The header is two zero bytes, a type code (0x08 = uint8), the number of
  dimensions, then each dimension as a big-endian uint32.

  Args:
    data: The uncompressed file contents.
    expected_ndim: 3 for image files, 1 for label files.
    path: File path, for error messages.

  Returns:
    A uint8 array of the shape the header declares.

  Raises:
    DatasetUnavailableError: If the header is invalid or the data size does
      not match it (e.g. a truncated download).
  """
  if len(data) < 4 or data[0] != 0 or data[1] != 0:
    raise DatasetUnavailableError(
        f"{path} is not an idx file: it does not start with the idx magic "
        "number (two zero bytes, a type code and a dimension count). The file "
        "is corrupt or of another format; download it again.")
  if data[2] != 0x08 or data[3] != expected_ndim:
    raise DatasetUnavailableError(
        f"{path} has idx magic number 0x{data[:4].hex()}, expected "
        f"0x000008{expected_ndim:02x} (unsigned bytes, {expected_ndim} "
        "dimensions). The file is corrupt or not the expected image/label "
        "file; download it again.")
  header_size = 4 + 4 * expected_ndim
  if len(data) < header_size:
    raise DatasetUnavailableError(
        f"{path} is truncated: its {len(data)} bytes do not even hold the "
        f"{header_size}-byte idx header. Download it again.")
  shape = tuple(int(d) for d in np.frombuffer(data[4:header_size], ">u4"))
  expected_size = header_size + int(np.prod(shape))
  if len(data) != expected_size:
    raise DatasetUnavailableError(
        f"{path} has {len(data)} bytes but its idx header declares shape "
        f"{shape}, i.e. {expected_size} bytes; the file is truncated or "
        "corrupt. Download it again.")
  return np.frombuffer(data, np.uint8, offset=header_size).reshape(shape)


def _parse_npz(data: bytes, path: str) -> np.ndarray:
  """Returns the `arr_0` array of a KMNIST npz file."""
  try:
    with np.load(io.BytesIO(data)) as npz:
      return npz["arr_0"]
  except (ValueError, KeyError, OSError, zipfile.BadZipFile, zlib.error) as e:
    raise DatasetUnavailableError(
        f"{path} is not a valid KMNIST npz file with an 'arr_0' array "
        f"({_first_line(e)}). Download it again.") from e


def _read_array(path: str, expected_ndim: int,
                md5sums: dict[str, str]) -> np.ndarray:
  """Reads, checksums and decodes one official data file.

  Args:
    path: An idx (optionally gzipped) or npz file.
    expected_ndim: 3 for image files, 1 for label files.
    md5sums: {file name: md5} from the directory's MD5SUMS, possibly empty.

  Returns:
    The uint8 array stored in the file.

  Raises:
    DatasetUnavailableError: If the file fails its MD5 check, is corrupt or
      holds an array of unexpected dtype or rank.
  """
  with open(path, "rb") as f:
    data = f.read()
  expected_md5 = md5sums.get(os.path.basename(path))
  if expected_md5 is not None:
    actual_md5 = hashlib.md5(data).hexdigest()
    if actual_md5 != expected_md5:
      raise DatasetUnavailableError(
          f"{path} has MD5 {actual_md5} but the MD5SUMS file next to it lists "
          f"{expected_md5}; the file is corrupt or incomplete. Download it "
          "again.")
  if path.endswith(".npz"):
    array = _parse_npz(data, path)
  else:
    if path.endswith(".gz"):
      try:
        data = gzip.decompress(data)
      except (OSError, EOFError, zlib.error) as e:
        raise DatasetUnavailableError(
            f"{path} is not a valid gzip file ({_first_line(e)}); it is "
            "corrupt or truncated. Download it again.") from e
    array = _parse_idx(data, expected_ndim, path)
  if array.dtype != np.uint8 or array.ndim != expected_ndim:
    raise DatasetUnavailableError(
        f"{path} holds a {array.dtype} array of shape {array.shape}, expected "
        f"uint8 with {expected_ndim} dimensions.")
  return array


class _LocalSplits(collections.abc.Mapping):
  """The official splits of a local dataset directory, loaded on demand.

  Maps split names to `tfds.core.SplitInfo` so that TFDS's own split-string
  logic (`ReadInstruction.to_absolute`) can resolve slices; a split's files
  are only read when the split string refers to it, so e.g. `test[:100]`
  works in a directory that holds only the test files.
  """

  def __init__(self, name: str, dataset_dir: str):
    self._name = name
    self._dataset_dir = dataset_dir
    self._md5sums = _read_md5sums(dataset_dir)
    self._loaded = {}

  def __iter__(self):
    return iter(_IDX_PREFIXES)

  def __len__(self):
    return len(_IDX_PREFIXES)

  def __getitem__(self, split_name: str) -> tfds.core.SplitInfo:
    num_examples = len(self.load(split_name).labels)
    return tfds.core.SplitInfo(
        name=split_name, shard_lengths=[num_examples], num_bytes=0)

  def load(self, split_name: str) -> ImageSet:
    """Returns the whole official split `split_name` ("train" or "test").

    Raises:
      KeyError: If `split_name` is not an official split.
      DatasetUnavailableError: If its files are missing or invalid.
    """
    if split_name not in _IDX_PREFIXES:
      raise KeyError(split_name)
    if split_name not in self._loaded:
      self._loaded[split_name] = self._read_split(split_name)
    return self._loaded[split_name]

  def _find(self, split_name: str, kind: str, candidates: list[str]) -> str:
    """Returns the path of the first candidate file that exists."""
    for candidate in candidates:
      path = os.path.join(self._dataset_dir, candidate)
      if os.path.exists(path):
        return path
    raise DatasetUnavailableError(
        f"Cannot load the '{split_name}' split of {self._name} from "
        f"--dataset_dir {self._dataset_dir}: none of its {kind} files "
        f"({', '.join(candidates)}) is there. Put the official files in that "
        "directory, or ask only for splits whose files are present.")

  def _read_split(self, split_name: str) -> ImageSet:
    image_names, label_names = _expected_files(self._name, split_name)
    # Both files are located before either is read, so that a missing one is
    # reported without first decoding the other.
    images_path = self._find(split_name, "image", image_names)
    labels_path = self._find(split_name, "label", label_names)
    images = _read_array(images_path, 3, self._md5sums)
    labels = _read_array(labels_path, 1, self._md5sums)
    if len(images) != len(labels):
      raise DatasetUnavailableError(
          f"{images_path} holds {len(images)} images but {labels_path} holds "
          f"{len(labels)} labels; the files do not belong together.")
    return ImageSet(images=images[..., np.newaxis],
                    labels=labels.astype(np.int64))


def _load_local(name: str, split: str, dataset_dir: str) -> ImageSet:
  """Loads `split` of `name` from the official files in `dataset_dir`."""
  if not os.path.isdir(dataset_dir):
    raise DatasetUnavailableError(
        f"Cannot load {name}: --dataset_dir {dataset_dir} is not a directory. "
        f"It should hold the official files: {_official_files(name)}.")
  splits = _LocalSplits(name, dataset_dir)
  instructions = tfds.core.ReadInstruction.from_spec(split).to_absolute(splits)
  parts = [(splits.load(i.splitname), slice(i.from_, i.to))
           for i in instructions]
  return ImageSet(
      images=np.concatenate([part.images[rows] for part, rows in parts]),
      labels=np.concatenate([part.labels[rows] for part, rows in parts]))


def _first_line(error: BaseException) -> str:
  """Returns the first line of an exception's message, or its type name."""
  lines = str(error).strip().splitlines()
  return lines[0] if lines else type(error).__name__


def _probe_download_host(url: str) -> None:
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


def _load_tfds(name: str, split: str, data_dir: Optional[str]) -> ImageSet:
  """Loads `split` of `name` with TFDS, downloading it if needed."""
  builder = tfds.builder(name, data_dir=data_dir)
  try:
    dataset = builder.as_dataset(split=split)
  except AssertionError:
    # `as_dataset` asserts that the data has been prepared. Asking it first,
    # rather than `builder.is_prepared()`, also keeps
    # `tfds.testing.mock_data` working, which fakes `as_dataset` only.
    try:
      _probe_download_host(builder.URL)
      builder.download_and_prepare()
    # TFDS surfaces download and preparation failures as many exception types
    # (requests, gfile, checksum, import errors); all mean the same to users.
    except Exception as e:  # pylint: disable=broad-exception-caught
      raise DatasetUnavailableError(
          f"Cannot load {name}: TFDS could not download or prepare it "
          f"({type(e).__name__}: {_first_line(e)}). If this machine is "
          "offline, pass --dataset_dir pointing at a directory holding the "
          f"official files, i.e. {_official_files(name)}; or pass --data_dir "
          "pointing at a TFDS data directory in which it is already "
          "prepared.") from e
    dataset = builder.as_dataset(split=split)
  # Iterated rather than read with `batch_size=-1`, which crashes under
  # `tfds.testing.mock_data` with this TFDS version.
  examples = list(tfds.as_numpy(dataset))
  if not examples:
    raise ValueError(f"Split {split!r} of {name} selects no examples.")
  return ImageSet(
      images=np.stack([e["image"] for e in examples]).astype(np.uint8),
      labels=np.array([e["label"] for e in examples], np.int64))


def load_images(name: str,
                split: str,
                dataset_dir: Optional[str] = None,
                data_dir: Optional[str] = None) -> ImageSet:
  """Loads one split of an MNIST-like dataset or CIFAR-10 into memory.

  Args:
    name: One of `SUPPORTED_DATASETS`.
    split: A TFDS split string over the splits `train` and `test`, e.g.
      `test[:9000]`, `train[90%:]` or `train+test`.
    dataset_dir: Directory with the official distribution files (see the
      module docstring). If given, TFDS is not used and `data_dir` is ignored.
      Not for CIFAR-10, which is read from TFDS.
    data_dir: TFDS data directory; None for the TFDS default.

  Returns:
    The selected examples, in split order: uint8 images [N, H, W, C] and
    int64 labels [N].

  Raises:
    ValueError: If `name` is not supported, `split` is malformed, names an
      unknown split, slices beyond it or selects no examples.
    DatasetUnavailableError: If the data cannot be loaded: TFDS cannot
      download it, local files are missing, corrupt or fail their MD5 check.
  """
  if name not in SUPPORTED_DATASETS:
    raise ValueError(f"Unsupported dataset {name!r}; supported datasets are "
                     f"{', '.join(SUPPORTED_DATASETS)}.")
  if dataset_dir is None:
    return _load_tfds(name, split, data_dir)
  if name not in _LOCAL_DATASETS:
    raise DatasetUnavailableError(
        f"--dataset_dir reads the idx files of {', '.join(_LOCAL_DATASETS)}; "
        f"{name} is read from TFDS: drop --dataset_dir (pass --data_dir for a "
        "prepared TFDS directory).")
  image_set = _load_local(name, split, dataset_dir)
  if not len(image_set.labels):
    raise ValueError(f"Split {split!r} of {name} selects no examples.")
  return image_set


def num_classes(name: str,
                split: str,
                dataset_dir: Optional[str] = None,
                data_dir: Optional[str] = None) -> int:
  """The number of classes of a dataset's labels, for a class-conditional model.

  From TFDS's metadata (the label feature's `num_classes`) when the data come
  from TFDS, which needs no download; else the largest label of `split` + 1, as
  the official files carry no class list.

  Args:
    name, split, dataset_dir, data_dir: as for `load_images`; `split` is the
      training split.

  Returns:
    A positive number of classes.

  Raises:
    ValueError, DatasetUnavailableError: as `load_images`, when it is called.
  """
  if dataset_dir is None and name in SUPPORTED_DATASETS:
    label = tfds.builder(name, data_dir=data_dir).info.features["label"]
    if getattr(label, "num_classes", None):
      return int(label.num_classes)
  return int(load_images(name, split, dataset_dir, data_dir).labels.max()) + 1


def binarize(images, mode: str, seed) -> tf.Tensor:
  """Maps uint8 pixels to float32 values in [0, 1].

  Args:
    images: uint8 tensor of any shape.
    mode: "dynamic": each pixel is 1 with probability pixel / 255, sampled
      with `tf.random.stateless_uniform`; "threshold": 1 where pixel > 127
      (i.e. pixel / 255 > 0.5); "none": pixel / 255.
    seed: Shape [2] integer seed of the "dynamic" sampling; unused otherwise.

  Returns:
    A float32 tensor of the shape of `images`.

  Raises:
    ValueError: If `mode` is not one of `BINARIZE_MODES`.
    TypeError: If `images` is not uint8, which would make pixel / 255 wrong.
  """
  if mode not in BINARIZE_MODES:
    raise ValueError(f"Unknown binarize mode {mode!r}; expected one of "
                     f"{', '.join(BINARIZE_MODES)}.")
  images = tf.convert_to_tensor(images)
  if images.dtype != tf.uint8:
    raise TypeError(f"binarize expects uint8 images, got {images.dtype.name}.")
  if mode == "threshold":
    return tf.cast(images > 127, tf.float32)
  probs = tf.cast(images, tf.float32) / 255.0
  if mode == "none":
    return probs
  # uniform is in [0, 1), so pixels 0 and 255 map to exactly 0 and 1.
  noise = tf.random.stateless_uniform(tf.shape(probs), seed=seed)
  return tf.cast(noise < probs, tf.float32)


def target_variance(images: np.ndarray, binarize_mode: str) -> float:
  """Variance of all pixel values of `images` after `binarize` (per pixel, pooled).

  The denominator of the normalised MSE the tutorials report, and the Gaussian
  likelihood's fixed variance. Exact for every mode without sampling: a
  dynamically binarized pixel is Bernoulli(p), so E[x^2] = E[x] = mean(p).

  Args:
    images: uint8 array of any shape.
    binarize_mode: One of `BINARIZE_MODES`.

  Returns:
    The variance, a Python float.
  """
  if binarize_mode not in BINARIZE_MODES:
    raise ValueError(f"Unknown binarize mode {binarize_mode!r}; expected one of "
                     f"{', '.join(BINARIZE_MODES)}.")
  if binarize_mode == "threshold":
    return float(np.var(images > 127))
  probs = images.astype(np.float64) / 255.0
  if binarize_mode == "none":
    return float(np.var(probs))
  mean = float(np.mean(probs))
  return mean - mean ** 2


def _check_pipeline_args(images: np.ndarray, batch_size: int,
                         binarize_mode: str) -> None:
  """Validates the arguments shared by the train and eval pipelines."""
  if images.dtype != np.uint8 or images.ndim != 4:
    raise ValueError("images must be a uint8 array [N, H, W, C], got "
                     f"{images.dtype} of shape {images.shape}.")
  if not len(images):
    raise ValueError("images is empty.")
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}.")
  if binarize_mode not in BINARIZE_MODES:
    raise ValueError(f"Unknown binarize mode {binarize_mode!r}; expected one "
                     f"of {', '.join(BINARIZE_MODES)}.")


def train_dataset(images: np.ndarray,
                  batch_size: int,
                  seed: int,
                  binarize_mode: str,
                  start_step: int = 0,
                  num_shards: int = 1,
                  shard_index: int = 0) -> tf.data.Dataset:
  """Returns the infinite, resumable training pipeline.

  See the module docstring for the determinism contract. `batch_size` may
  exceed the number of examples; batches then span several epochs.

  With `num_shards` > 1 (one shard per input pipeline of a tf.distribute
  strategy), every shard computes the same global batch and keeps its own
  consecutive slice of it: shards never read the same examples, and together
  they see exactly the batches of an unsharded run.

  Args:
    images: uint8 array [N, H, W, C].
    batch_size: Number of images per batch.
    seed: Integer seed of the epoch permutations and of binarization.
    binarize_mode: One of `BINARIZE_MODES`.
    start_step: Global step of the first batch; resuming at step s yields the
      same batches as a fresh pipeline from step s on, without replaying the
      first s batches.
    num_shards: Number of slices the global batch is cut into; must divide
      `batch_size`.
    shard_index: Which slice this pipeline yields, in [0, num_shards).

  Returns:
    A dataset of `(step, images)`: an int64 scalar, the global step the batch
    is for, and float32 images [batch_size / num_shards, H, W, C].

  Raises:
    ValueError: If `images` is not a non-empty uint8 [N, H, W, C] array,
      `batch_size` or `start_step` is out of range, or `binarize_mode` is
      unknown.
  """
  _check_pipeline_args(images, batch_size, binarize_mode)
  if start_step < 0:
    raise ValueError(f"start_step must be non-negative, got {start_step}.")
  if num_shards < 1 or batch_size % num_shards or not 0 <= shard_index < num_shards:
    raise ValueError(f"batch_size {batch_size} cannot be cut into {num_shards} equal "
                     f"shards (shard_index {shard_index}).")
  shard_size = batch_size // num_shards
  num_examples = len(images)
  all_images = tf.constant(images)
  # Python ints, so that huge steps cannot overflow.
  start_epoch, start_offset = divmod(start_step * batch_size, num_examples)

  def epoch_indices(epoch):
    order = tf.argsort(tf.random.stateless_uniform(
        [num_examples], seed=seeds_lib.step_seed(seed, seeds_lib.Stream.EPOCH_ORDER, epoch)))
    # The first epoch starts where batch `start_step` begins.
    first = tf.where(epoch == start_epoch, start_offset, 0)
    return tf.data.Dataset.from_tensor_slices(order[first:])

  index_batches = (
      tf.data.Dataset.counter(start_epoch)
      .flat_map(epoch_indices)
      .batch(batch_size, drop_remainder=True))

  def make_batch(step, indices):
    batch = binarize(tf.gather(all_images, indices), binarize_mode,
                     seeds_lib.step_seed(seed, seeds_lib.Stream.TRAIN_BINARIZE, step))
    return step, batch[shard_index * shard_size:(shard_index + 1) * shard_size]

  return (
      tf.data.Dataset.zip((tf.data.Dataset.counter(start_step), index_batches))
      .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE)
      .prefetch(tf.data.AUTOTUNE))


def eval_dataset(images: np.ndarray, batch_size: int, seed: int,
                 binarize_mode: str) -> tf.data.Dataset:
  """Returns the finite, ordered, repeatable evaluation pipeline.

  Args:
    images: uint8 array [N, H, W, C].
    batch_size: Number of images per batch; the last batch holds the rest.
    seed: Integer seed; example i is binarized with a seed derived from
      (seed, i), independent of the training seeds and of `batch_size`.
    binarize_mode: One of `BINARIZE_MODES`.

  Returns:
    A dataset of float32 images [<= batch_size, H, W, C] covering `images`
    once, in order.

  Raises:
    ValueError: If `images` is not a non-empty uint8 [N, H, W, C] array,
      `batch_size` is not positive, or `binarize_mode` is unknown.
  """
  _check_pipeline_args(images, batch_size, binarize_mode)
  all_images = tf.constant(images)

  def make_example(index):
    return binarize(all_images[index], binarize_mode,
                    seeds_lib.step_seed(seed, seeds_lib.Stream.EVAL_BINARIZE, index))

  return (
      tf.data.Dataset.range(len(images))
      .map(make_example, num_parallel_calls=tf.data.AUTOTUNE)
      .batch(batch_size)
      .prefetch(tf.data.AUTOTUNE))
