"""The official MNIST-family distribution files: idx (MNIST, Fashion-MNIST, KMNIST) and npz.

`--dataset_dir DIR` holds the files `train-images-idx3-ubyte`,
`train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`
(each plain or `.gz`), or, for KMNIST only, `kmnist-{train,test}-imgs.npz` and
`kmnist-{train,test}-labels.npz`. If the directory holds an `MD5SUMS` file
(`md5sum` output), every file read that it lists is verified. The splits are
`train` and `test` (the official `t10k` set); they are small (47 MB for 60,000
images) and are read into memory whole, once, when a split string names them.
"""

import gzip
import hashlib
import io
import os
import zipfile
import zlib

import numpy as np

from tfp_vqvae.data.image_files import DatasetUnavailableError
from tfp_vqvae.data.image_files import first_line

# The datasets distributed as idx (or KMNIST npz) files.
LOCAL_DATASETS = ("kmnist", "mnist", "fashion_mnist")
# Official file name prefix of each split.
_IDX_PREFIXES = {"train": "train", "test": "t10k"}
SPLIT_NAMES = tuple(_IDX_PREFIXES)


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


def official_files(name: str) -> str:
  """Returns a readable list of the official files of `name`."""
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
        f"({first_line(e)}). Download it again.") from e


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
            f"{path} is not a valid gzip file ({first_line(e)}); it is "
            "corrupt or truncated. Download it again.") from e
    array = _parse_idx(data, expected_ndim, path)
  if array.dtype != np.uint8 or array.ndim != expected_ndim:
    raise DatasetUnavailableError(
        f"{path} holds a {array.dtype} array of shape {array.shape}, expected "
        f"uint8 with {expected_ndim} dimensions.")
  return array


class IdxDirectory:
  """The official splits of one dataset in a directory, each read on first use.

  A split's files are only read when asked for, so e.g. `test[:100]` works in
  a directory that holds only the test files.
  """

  def __init__(self, name: str, dataset_dir: str):
    """Args: one of `LOCAL_DATASETS`; the directory.

    Raises:
      DatasetUnavailableError: If `dataset_dir` is not a directory.
    """
    if not os.path.isdir(dataset_dir):
      raise DatasetUnavailableError(
          f"Cannot load {name}: --dataset_dir {dataset_dir} is not a directory. "
          f"It should hold the official files: {official_files(name)}.")
    self.name = name
    self._dataset_dir = dataset_dir
    self._md5sums = _read_md5sums(dataset_dir)
    self._loaded = {}

  def load(self, split_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns the whole official split `split_name` ("train" or "test").

    Returns:
      uint8 images [N, 28, 28, 1] and int64 labels [N].

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
        f"Cannot load the '{split_name}' split of {self.name} from "
        f"--dataset_dir {self._dataset_dir}: none of its {kind} files "
        f"({', '.join(candidates)}) is there. Put the official files in that "
        "directory, or ask only for splits whose files are present.")

  def _read_split(self, split_name: str) -> tuple[np.ndarray, np.ndarray]:
    image_names, label_names = _expected_files(self.name, split_name)
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
    return images[..., np.newaxis], labels.astype(np.int64)
