"""The codes of a split, encoded once into sharded .npy files and streamed by tf.data.

A prior trains on the codes a frozen VQ-VAE gives its training images. Held in RAM
(or embedded in a graph) they would bound the dataset by memory: ImageNet's 1.28M
images are 5 GB of int32 32x32 codes. So `train_prior` writes them, split by split,
into shards of about `SHARD_BYTES` in a directory:

    DIR/train-00000.npy ... DIR/eval-00000.npy ... DIR/index.json

Each shard is a NumPy structured array (`np.load` reads it) with one record per
image: its codes (field "codes" [*code_shape], or "top" and "bottom" for VQ-VAE-2),
its "label", and on the eval split the VQ-VAE's "recon_nll". `index.json`, written
last, lists the shards and their row counts and marks the directory complete: a
directory without it (an encoding that was killed) is encoded afresh.

Reading is by row index (`CodeShards.read`): the records have a fixed size, so
row r is one seek and one read in its shard, on local disks and on GCS alike
(tf.io.gfile). That keeps the prior's batches what they were when the codes were
held in RAM: training batch s draws its rows uniformly, with replacement, from a
stateless seed of (seed, s), and reads just those rows. A stateless permutation per
epoch over shards would read sequentially, but would change every batch of every
existing run; the random reads cost ~1 ms for a batch of 64 from the page cache,
and the memory held is that of the rows in flight (`train_batches`,
`eval_batches`), whatever the dataset's size.
"""

import collections
import json
import os
import threading
from typing import Optional

import numpy as np
import tensorflow as tf

from tfp_vqvae.internal import progress
from tfp_vqvae.internal import seeds as seeds_lib

INDEX_FILE = "index.json"
# Target size of a shard: large enough for few files, small enough to write one
# from memory.
SHARD_BYTES = 64 << 20
# Open shard files kept per reader (a file per shard would exceed the OS limit).
_MAX_OPEN_FILES = 16
LABEL = "label"
RECON_NLL = "recon_nll"


def code_fields(code_shape) -> dict[str, tuple[int, ...]]:
  """{field: shape} of one example's codes: "codes", or one field per level."""
  if isinstance(code_shape, dict):
    return {name: tuple(int(s) for s in shape) for name, shape in code_shape.items()}
  return {"codes": tuple(int(s) for s in code_shape)}


def record_dtype(code_shape, with_recon: bool) -> np.dtype:
  """The structured dtype of one record: codes, label, and the recon NLL if asked."""
  fields = [(name, np.int32, shape) for name, shape in code_fields(code_shape).items()]
  fields.append((LABEL, np.int32))
  if with_recon:
    fields.append((RECON_NLL, np.float32))
  return np.dtype(fields)


def _shard_name(split, number):
  return f"{split}-{number:05d}.npy"


class ShardWriter:
  """Writes the records of one split, in order, into shards of a directory.

  Writing the codes of a large split follows encoding its images, which takes
  minutes; the writer shows progress lines (internal/progress.py) as rows come.

  Example:
    writer = ShardWriter(directory, "train", record_dtype((7, 7), False))
    writer.write(codes=codes, label=labels)    # as many times as needed
    entry = writer.close()                     # for `write_index`
  """

  def __init__(self, directory: str, split: str, dtype: np.dtype,
               rows_per_shard: Optional[int] = None, total: Optional[int] = None):
    """Args: the directory (created if missing), the split's name, the records'
    dtype, the rows per shard (default: about `SHARD_BYTES` per shard) and the
    rows that will be written, if known, for the progress lines' ETA."""
    tf.io.gfile.makedirs(directory)
    self._progress = progress.Progress(f"Encoding the codes of {split}", total)
    self._directory = directory
    self._split = split
    self._dtype = dtype
    self._rows_per_shard = rows_per_shard or max(1, SHARD_BYTES // dtype.itemsize)
    self._buffer = []
    self._buffered = 0
    self._shards = []
    self._rows = []
    self._label_range = [None, None]

  def write(self, **columns: np.ndarray) -> None:
    """Appends rows: one array per field of the dtype, all of the same length."""
    if set(columns) != set(self._dtype.names):
      raise ValueError(f"Expected the fields {self._dtype.names}, got {sorted(columns)}.")
    count = len(columns[LABEL])
    rows = np.empty(count, self._dtype)
    for name, values in columns.items():
      rows[name] = values
    if count:
      low, high = self._label_range
      self._label_range = [int(rows[LABEL].min()) if low is None else
                           min(low, int(rows[LABEL].min())),
                           int(rows[LABEL].max()) if high is None else
                           max(high, int(rows[LABEL].max()))]
    self._buffer.append(rows)
    self._buffered += count
    while self._buffered >= self._rows_per_shard:
      self._flush(self._rows_per_shard)
    self._progress.add(count)

  def _flush(self, count):
    rows = np.concatenate(self._buffer) if self._buffer else np.empty(0, self._dtype)
    name = _shard_name(self._split, len(self._shards))
    with tf.io.gfile.GFile(os.path.join(self._directory, name), "wb") as f:
      np.save(f, rows[:count])
    self._shards.append(name)
    self._rows.append(count)
    self._buffer = [rows[count:]]
    self._buffered -= count

  def close(self) -> dict:
    """Writes the last shard; returns the split's entry of the index."""
    if self._buffered or not self._shards:
      self._flush(self._buffered)
    self._progress.finish()
    return {"shards": self._shards, "rows": self._rows,
            "dtype": np.lib.format.dtype_to_descr(self._dtype),
            "label_range": self._label_range}


def write_index(directory: str, splits: dict[str, dict]) -> None:
  """Writes `INDEX_FILE` ({split: `ShardWriter.close()`}), marking `directory`
  complete; through a temporary file, so that a killed write leaves none."""
  path = os.path.join(directory, INDEX_FILE)
  with tf.io.gfile.GFile(path + ".tmp", "w") as f:
    json.dump(splits, f, indent=1, sort_keys=True)
  tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def is_complete(directory: str) -> bool:
  """Whether `directory` holds shards with their index (see `write_index`)."""
  return tf.io.gfile.exists(os.path.join(directory, INDEX_FILE))


def _descr_dtype(descr):
  """The dtype of `np.lib.format.dtype_to_descr`'s JSON round trip (lists)."""
  return np.dtype([tuple(tuple(part) if isinstance(part, list) else part
                         for part in field) for field in descr])


class CodeShards:
  """Random access to the records of one split of a shard directory.

  Example:
    shards = CodeShards(directory, "eval")
    shards.num_rows, shards.read([5, 6, 7])["codes"]
  """

  def __init__(self, directory: str, split: str):
    """Reads the index.

    Raises:
      ValueError: if `directory` is not complete or lacks `split`.
    """
    if not is_complete(directory):
      raise ValueError(f"{directory} holds no complete encoded codes ({INDEX_FILE}).")
    with tf.io.gfile.GFile(os.path.join(directory, INDEX_FILE)) as f:
      entry = json.load(f).get(split)
    if entry is None:
      raise ValueError(f"{directory} holds no codes of the split {split!r}.")
    self._directory = directory
    self.split = split
    self.dtype = _descr_dtype(entry["dtype"])
    self._shards = entry["shards"]
    self._starts = np.cumsum([0] + entry["rows"])
    self.num_rows = int(self._starts[-1])
    self.label_range = tuple(entry["label_range"])
    self.code_names = tuple(name for name in self.dtype.names
                            if name not in (LABEL, RECON_NLL))
    self._files = collections.OrderedDict()
    self._lock = threading.Lock()

  def _open(self, shard):
    """(open file, offset of the first record) of shard number `shard`."""
    if shard in self._files:
      self._files.move_to_end(shard)
      return self._files[shard]
    path = os.path.join(self._directory, self._shards[shard])
    f = tf.io.gfile.GFile(path, "rb")
    version = np.lib.format.read_magic(f)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, _, dtype = read_header(f)
    rows = self._starts[shard + 1] - self._starts[shard]
    if dtype != self.dtype or shape != (rows,):
      raise ValueError(f"{path} holds {shape} records of {dtype}, not the index's "
                       f"({rows},) of {self.dtype}: encode the codes afresh.")
    self._files[shard] = (f, f.tell())
    if len(self._files) > _MAX_OPEN_FILES:
      self._files.popitem(last=False)[1][0].close()
    return self._files[shard]

  def read(self, indices) -> np.ndarray:
    """The records of rows `indices` (int, any order, repeats allowed), in order.

    Raises:
      IndexError: if an index is outside [0, num_rows).
    """
    indices = np.asarray(indices, np.int64).reshape(-1)
    if indices.size and (indices.min() < 0 or indices.max() >= self.num_rows):
      raise IndexError(f"Rows {indices.min()}..{indices.max()} are outside the "
                       f"{self.num_rows} of {self.split}.")
    out = np.empty(len(indices), self.dtype)
    shard_of = np.searchsorted(self._starts, indices, side="right") - 1
    size = self.dtype.itemsize
    with self._lock:
      start = 0
      while start < len(indices):
        # A run of consecutive rows of one shard is one read.
        stop = start + 1
        while (stop < len(indices) and shard_of[stop] == shard_of[start]
               and indices[stop] == indices[stop - 1] + 1):
          stop += 1
        f, offset = self._open(int(shard_of[start]))
        f.seek(offset + int(indices[start] - self._starts[shard_of[start]]) * size)
        out[start:stop] = np.frombuffer(f.read((stop - start) * size), self.dtype)
        start = stop
    return out

  def _read_fields(self, indices):
    rows = self.read(indices)
    return tuple(np.ascontiguousarray(rows[name]) for name in self.dtype.names)

  def _batch(self, indices):
    """The structure of tensors of rows `indices`: (codes, labels[, recon_nll]);
    codes a tensor, or a dict of them for several levels."""
    fields = tf.numpy_function(self._read_fields, [indices],
                               [tf.as_dtype(self.dtype[name].base)
                                for name in self.dtype.names], stateful=False)
    by_name = {}
    for name, tensor in zip(self.dtype.names, fields):
      tensor.set_shape(indices.shape[:1] + self.dtype[name].shape)
      by_name[name] = tensor
    codes = (by_name["codes"] if self.code_names == ("codes",)
             else {name: by_name[name] for name in self.code_names})
    rest = (by_name[LABEL],) + ((by_name[RECON_NLL],) if RECON_NLL in by_name else ())
    return (codes,) + rest

  def train_batches(self, batch_size: int, seed: int, start: int,
                    stop: int) -> tf.data.Dataset:
    """Batches `start` .. `stop` - 1 of a training run, as (index, codes, labels).

    Batch s holds `batch_size` rows drawn uniformly with replacement by
    `seeds.step_seed(seed, Stream.PRIOR_BATCHES, s)`: a pure function of
    (seed, s), so a resumed run reads the batches of an uninterrupted one.
    """

    def rows(index):
      step_seed = seeds_lib.step_seed(seed, seeds_lib.Stream.PRIOR_BATCHES, index)
      return index, tf.random.stateless_uniform([batch_size], step_seed,
                                                maxval=self.num_rows, dtype=tf.int32)

    return (tf.data.Dataset.range(start, stop)
            .map(rows)
            .map(lambda index, indices: (index,) + self._batch(indices))
            .prefetch(2))

  def eval_batches(self, batch_size: int) -> tf.data.Dataset:
    """The split in order, in batches of `batch_size` (the last holds the rest),
    as (codes, labels) or, with recon NLLs, (codes, labels, recon_nll)."""
    return (tf.data.Dataset.range(0, self.num_rows, batch_size)
            .map(lambda first: tf.range(first, tf.minimum(first + batch_size,
                                                          self.num_rows)))
            .map(self._batch)
            .prefetch(2))
