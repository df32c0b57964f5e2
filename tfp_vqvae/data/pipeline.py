"""Image data for the VQ-VAE: one streaming, deterministic tf.data pipeline.

`open_data` opens the training and evaluation splits of any source
(data/sources.py: TFDS by name, `folder:DIR`, `tfrecord:GLOB`, the official
idx files) and returns an `ImageData`, which knows the image shape and makes
the pipelines. Images are read one at a time by example index, decoded and
preprocessed (preprocessing.py: channels, size) as uint8, and binarized as
float32 at the end. No split is held in memory (except the small idx files) or
embedded in a graph; per example only its path or record position is kept.

Determinism and resume. The examples of a split are numbered 0..N-1 (in
TFDS's reading order; in sorted path order; TFRecord files in sorted order and
records in file order; the official files' order). Training reads them by
index through a stateless permutation per epoch:

* `train_batches` yields `(step, images)` batches forever. The examples form
  a stream of epochs, each a permutation drawn with stateless ops seeded by
  `(seed, epoch)`; batch `step` is the slice
  `[step * batch_size, (step + 1) * batch_size)` of that stream (so a batch
  may straddle epochs), and its dynamic binarization, random crops and flips
  are seeded by `(seed, step)` and the image's row in the batch. Batch s is
  therefore a pure function of (flags, s), and starting at `start_step=s`
  yields exactly the batches a fresh pipeline yields from step s on, at once.
* `eval_batches` yields the examples once, in order, and binarizes example `i`
  with a seed derived from `(seed, i)`, so evaluation is repeatable and does
  not depend on the batch size.

Why a stateless permutation of indices rather than checkpointing the tf.data
iterator (`tf.train.Checkpoint(iterator=...)`): resuming costs nothing
(no replay, no iterator state in checkpoints: a shuffle buffer of encoded
images would add gigabytes to each), the batches do not depend on how many
workers or input pipelines read them (which bit-identical one-process and
multi-worker training relies on), each worker can read only its own examples,
and a run restarted without its checkpoints (e.g. with more steps) sees the
same data. It needs random access, which every source provides
(data/image_files.py).

Sharding. With `num_shards` > 1 (one shard per input pipeline of a
tf.distribute strategy), every shard computes the same global batch of
indices and reads and decodes only its own consecutive slice of it: shards
never read the same examples, and together they yield exactly the batches of
an unsharded run.

Checked before the first step. `open_data` checks every example of both
splits before any training: the image files of a folder by their headers
(data/image_headers.py: about a hundred bytes each; a file is decoded only when
its header leaves a doubt), the framing of every TFRecord file when it is
indexed, the official files whole. A bad file is refused in one line naming it
(and how many more are bad), so that a bad evaluation image cannot stop a run
at its first evaluation. With `skip_corrupt_images=True`, every image of both
splits is decoded instead (a full pass over the data), unreadable ones are
logged and left out of the example numbering, and `skipped_images` counts them.
The image contents of TFRecords and TFDS are not decoded before training (that
would be a pass over all the data): a record that fails to decode stops the
pipeline, and the iterators of `ImageData` then find it (by decoding the failing
batch's examples one by one) and raise `DatasetUnavailableError` naming it.

Image size. With `image_size` every image is brought to that size
(preprocessing.py). Without it, every image must already have one size: when
the check gives every image's size (folders, the official files, TFDS features
of fixed shape, or with `skip_corrupt_images`), images of several sizes are
refused before training, naming the sizes found; for TFRecords and TFDS features
of unknown shape, the first training image's size is taken and an image of
another size is refused when it is read. No image is ever scaled to a size that
the flags did not ask for, so one very large file cannot blow up every image.

Memory. Every pass over the data streams it: at most a few batches of images
are decoded at a time, and one decoded image is at most
`image_headers.MAX_PIXELS` pixels for image files (checked before decoding).

Data variance. `target_variance` is the variance of the binarized training
pixels, exact (from a histogram of the uint8 pixel values, in one streamed
pass) over the training split, or over `VARIANCE_EXAMPLES` evenly spaced
examples of a larger split.
"""

import itertools
from typing import Iterator, Optional

from absl import logging
import numpy as np
import tensorflow as tf

from tfp_vqvae.configs.data import parse_image_size
from tfp_vqvae.data import image_files as image_readers
from tfp_vqvae.data import image_headers
from tfp_vqvae.data.image_files import DatasetUnavailableError
from tfp_vqvae.data.image_files import first_line
from tfp_vqvae.data import preprocessing
from tfp_vqvae.data import sources as image_sources
from tfp_vqvae.internal import progress
from tfp_vqvae.internal import seeds

BINARIZE_MODES = ("dynamic", "threshold", "none")
# The splits of an `ImageData`.
TRAIN = "train"
EVAL = "eval"
# Training examples `target_variance` reads at most (all of every dataset the
# flagfiles use: 60,000 for the MNIST family, 50,000 for CIFAR-10).
VARIANCE_EXAMPLES = 65536
# Unreadable files named one by one in the log before a summary line.
_LOGGED_BAD_FILES = 20
# Sizes named when images of several sizes are refused.
_NAMED_SIZES = 4
# What to do about an unreadable image, after its name and problem.
_UNREADABLE_HINT = ("Replace or remove it, or pass --skip_corrupt_images to leave "
                    "unreadable images out.")


def _check_binarize_mode(binarize_mode: str) -> None:
  if binarize_mode not in BINARIZE_MODES:
    raise ValueError(f"Unknown binarize mode {binarize_mode!r}; expected one "
                     f"of {', '.join(BINARIZE_MODES)}.")


def binarize(images, mode: str, seed, batch_rows: Optional[tuple[int, int]] = None
             ) -> tf.Tensor:
  """Maps uint8 pixels to float32 values in [0, 1].

  Args:
    images: uint8 tensor of any shape.
    mode: "dynamic": each pixel is 1 with probability pixel / 255, sampled
      with `tf.random.stateless_uniform`; "threshold": 1 where pixel > 127
      (i.e. pixel / 255 > 0.5); "none": pixel / 255.
    seed: Shape [2] integer seed of the "dynamic" sampling; unused otherwise.
    batch_rows: (first row, rows of the whole batch) if `images` [n, ...] are
      rows [first, first + n) of a larger batch: each pixel then gets the
      noise it gets when the whole batch is binarized, so that a shard of a
      batch is binarized exactly as its part of the batch.

  Returns:
    A float32 tensor of the shape of `images`.

  Raises:
    ValueError: If `mode` is not one of `BINARIZE_MODES`.
    TypeError: If `images` is not uint8, which would make pixel / 255 wrong.
  """
  _check_binarize_mode(mode)
  images = tf.convert_to_tensor(images)
  if images.dtype != tf.uint8:
    raise TypeError(f"binarize expects uint8 images, got {images.dtype.name}.")
  if mode == "threshold":
    return tf.cast(images > 127, tf.float32)
  probs = tf.cast(images, tf.float32) / 255.0
  if mode == "none":
    return probs
  shape = tf.shape(probs)
  if batch_rows is None:
    noise = tf.random.stateless_uniform(shape, seed=seed)
  else:
    first, total = batch_rows
    noise = tf.random.stateless_uniform(tf.concat([[total], shape[1:]], 0),
                                        seed=seed)[first:first + shape[0]]
  # uniform is in [0, 1), so pixels 0 and 255 map to exactly 0 and 1.
  return tf.cast(noise < probs, tf.float32)


def pixel_variance(histogram: np.ndarray, binarize_mode: str) -> float:
  """Variance of binarized pixels, pooled, from a histogram of their uint8 values.

  Exact for every mode without sampling: a dynamically binarized pixel is
  Bernoulli(p), so E[x^2] = E[x] = mean(p).

  Args:
    histogram: int [256], the number of pixels of each value.
    binarize_mode: One of `BINARIZE_MODES`.

  Returns:
    The variance, a Python float.
  """
  _check_binarize_mode(binarize_mode)
  values = np.arange(256, dtype=np.float64)
  values = (values > 127).astype(np.float64) if binarize_mode == "threshold" else values / 255
  counts = np.asarray(histogram, np.float64)
  mean = float(np.sum(counts * values) / np.sum(counts))
  if binarize_mode == "dynamic":
    return mean - mean ** 2
  return float(np.sum(counts * (values - mean) ** 2) / np.sum(counts))


def _epoch_order(seed: int, epoch, num_examples: int) -> tf.Tensor:
  """The permutation of example indices that is epoch `epoch`."""
  return tf.argsort(tf.random.stateless_uniform(
      [num_examples], seed=seeds.step_seed(seed, seeds.Stream.EPOCH_ORDER, epoch)))


def _check_batch_size(batch_size: int) -> None:
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}.")


class ImageData:
  """The training and evaluation splits of a dataset, as images of one shape.

  Made by `open_data`. The splits are `TRAIN` and `EVAL`.

  Attributes:
    image_shape: (H, W, C) of every image the pipelines yield.
    skipped_images: Number of unreadable files left out (with
      `skip_corrupt_images`), over both splits.
  """

  def __init__(self, splits: dict[str, image_readers.Examples],
               image_shape: tuple[int, int, int], skipped_images: int = 0,
               same_size: bool = False):
    """Args: the examples of `TRAIN` and `EVAL`; the images' shape; unreadable
    files left out; whether every stored image must already be `image_shape`'s
    height and width (no image_size was given and the sizes could not be checked
    before reading), which each read then checks."""
    self._splits = splits
    self.image_shape = tuple(int(s) for s in image_shape)
    self.skipped_images = skipped_images
    self._same_size = same_size

  def num_examples(self, split: str) -> int:
    """Number of examples of `split` (`TRAIN` or `EVAL`)."""
    return len(self._examples(split))

  def has_labels(self, split: str) -> bool:
    """Whether the examples of `split` have labels."""
    return self._examples(split).has_labels

  def describe(self, split: str) -> str:
    """What `split` holds, e.g. "folder:/data/faces train[:90%]"."""
    return self._examples(split).name

  def _examples(self, split: str) -> image_readers.Examples:
    if split not in self._splits:
      raise ValueError(f"split must be {TRAIN!r} or {EVAL!r}, got {split!r}.")
    return self._splits[split]

  def _load(self, examples: image_readers.Examples, index, crop_seed=None,
            flip_seed=None) -> tuple[tf.Tensor, tf.Tensor]:
    """(uint8 image of `image_shape`, int64 label) of example `index`."""
    image, label = examples.read(tf.cast(index, tf.int64))
    if examples.encoded:
      image = preprocessing.decode(image)
    if self._same_size:
      height, width = self.image_shape[:2]
      with tf.control_dependencies([tf.debugging.assert_equal(
          tf.shape(image)[:2], [height, width],
          message=f"it is not {height}x{width} like the first training image; pass "
          "image_size to bring every image to one size.")]):
        image = tf.identity(image)
    image = preprocessing.preprocess(image, self.image_shape[:2], self.image_shape[2],
                                     crop_seed, flip_seed)
    return image, label

  def train_batches(self, batch_size: int, seed: int, binarize_mode: str,
                    start_step: int = 0, num_shards: int = 1, shard_index: int = 0,
                    random_crop: bool = False, random_flip: bool = False
                    ) -> tf.data.Dataset:
    """Returns the infinite, resumable training pipeline (see the module docstring).

    `batch_size` may exceed the number of examples; batches then span several
    epochs. Iterate it through `name_bad_files` to get a clear error for an
    unreadable file.

    Args:
      batch_size: Number of images per (global) batch.
      seed: Integer seed of the epoch permutations, binarization and
        augmentation.
      binarize_mode: One of `BINARIZE_MODES`.
      start_step: Global step of the first batch; resuming at step s yields
        the same batches as a fresh pipeline from step s on, without replaying
        the first s batches.
      num_shards: Number of slices the global batch is cut into; must divide
        `batch_size`.
      shard_index: Which slice this pipeline yields, in [0, num_shards).
      random_crop: Crop training images at a random place (see
        preprocessing.py) rather than the centre.
      random_flip: Mirror half the training images left-right.

    Returns:
      A dataset of `(step, images)`: an int64 scalar, the global step the
      batch is for, and float32 images [batch_size / num_shards, H, W, C].

    Raises:
      ValueError: If `batch_size`, `start_step` or the sharding is out of
        range, or `binarize_mode` is unknown.
    """
    _check_batch_size(batch_size)
    _check_binarize_mode(binarize_mode)
    if start_step < 0:
      raise ValueError(f"start_step must be non-negative, got {start_step}.")
    if num_shards < 1 or batch_size % num_shards or not 0 <= shard_index < num_shards:
      raise ValueError(f"batch_size {batch_size} cannot be cut into {num_shards} equal "
                       f"shards (shard_index {shard_index}).")
    examples = self._splits[TRAIN]
    num_examples = len(examples)
    shard_size = batch_size // num_shards
    first_row = shard_index * shard_size
    # Python ints, so that huge steps cannot overflow.
    start_epoch, start_offset = divmod(start_step * batch_size, num_examples)

    def epoch_indices(epoch):
      order = _epoch_order(seed, epoch, num_examples)
      # The first epoch starts where batch `start_step` begins.
      first = tf.where(epoch == start_epoch, start_offset, 0)
      return tf.data.Dataset.from_tensor_slices(order[first:])

    def shard_rows(step, indices):
      # This shard's images of the batch: (step, row in the batch, index).
      return tf.data.Dataset.from_tensor_slices(
          (tf.fill([shard_size], step),
           tf.range(first_row, first_row + shard_size, dtype=tf.int64),
           indices[first_row:first_row + shard_size]))

    def load(step, row, index):
      augment_seed = tf.random.experimental.stateless_fold_in(
          seeds.step_seed(seed, seeds.Stream.AUGMENT, step), row)
      crop_seed = (tf.random.experimental.stateless_fold_in(augment_seed, 0)
                   if random_crop else None)
      flip_seed = (tf.random.experimental.stateless_fold_in(augment_seed, 1)
                   if random_flip else None)
      return step, self._load(examples, index, crop_seed, flip_seed)[0]

    def binarize_shard(steps, images):
      step = steps[0]
      return step, binarize(images, binarize_mode,
                            seeds.step_seed(seed, seeds.Stream.TRAIN_BINARIZE, step),
                            batch_rows=(first_row, batch_size))

    index_batches = (
        tf.data.Dataset.counter(start_epoch)
        .flat_map(epoch_indices)
        .batch(batch_size, drop_remainder=True))
    return (
        tf.data.Dataset.zip((tf.data.Dataset.counter(start_step), index_batches))
        .flat_map(shard_rows)
        .map(load, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(shard_size)
        .map(binarize_shard, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE))

  def train_indices(self, step: int, batch_size: int, seed: int) -> np.ndarray:
    """Indices of the training examples of the global batch `step`."""
    num_examples = self.num_examples(TRAIN)
    epoch, offset = divmod(step * batch_size, num_examples)
    rows = []
    while len(rows) < batch_size:
      order = _epoch_order(seed, epoch, num_examples).numpy()
      rows.extend(order[offset:offset + batch_size - len(rows)])
      epoch, offset = epoch + 1, 0
    return np.array(rows, np.int64)

  def name_bad_files(self, batches: Iterator, start_step: int, batch_size: int,
                     seed: int) -> Iterator:
    """Iterates `batches` (of `train_batches` from `start_step`, possibly
    distributed), raising a clear error if a training image cannot be read.

    Raises:
      DatasetUnavailableError: Naming the file of a batch that fails to decode.
    """
    for step in itertools.count(start_step):
      try:
        batch = next(batches)
      except StopIteration:
        return
      except tf.errors.OpError as error:
        self._raise_unreadable(self._splits[TRAIN],
                               self.train_indices(step, batch_size, seed), error)
      yield batch

  def _raise_unreadable(self, examples: image_readers.Examples, indices,
                        error: tf.errors.OpError) -> None:
    """Raises a `DatasetUnavailableError` naming the first of `indices` that
    cannot be read, or `error` if they all can."""
    for index in indices:
      try:
        self._load(examples, int(index))
      except tf.errors.OpError as e:
        raise DatasetUnavailableError(
            f"Cannot read image {examples.describe(int(index))}: {first_line(e)} "
            f"{_UNREADABLE_HINT}") from error
    raise error

  def _ordered(self, split: str, batch_size: int, seed: int,
               binarize_mode: Optional[str], with_labels: bool,
               indices: np.ndarray) -> Iterator:
    """Examples `indices` of `split` in that order, batched, naming bad files."""
    _check_batch_size(batch_size)
    examples = self._examples(split)

    def make_example(index):
      image, label = self._load(examples, index)
      if binarize_mode is not None:
        image = binarize(image, binarize_mode,
                         seeds.step_seed(seed, seeds.Stream.EVAL_BINARIZE, index))
      return (image, label) if with_labels else image

    dataset = (tf.data.Dataset.from_tensor_slices(indices)
               .map(make_example, num_parallel_calls=tf.data.AUTOTUNE)
               .batch(batch_size)
               .prefetch(tf.data.AUTOTUNE))
    iterator = iter(dataset)
    for start in itertools.count(0, batch_size):
      try:
        batch = next(iterator)
      except StopIteration:
        return
      except tf.errors.OpError as error:
        self._raise_unreadable(examples, indices[start:start + batch_size], error)
      yield batch

  def eval_batches(self, split: str, batch_size: int, seed: int, binarize_mode: str,
                   with_labels: bool = False, max_examples: Optional[int] = None
                   ) -> Iterator:
    """The finite, ordered, repeatable evaluation batches of `split`.

    Args:
      split: `TRAIN` or `EVAL`.
      batch_size: Number of images per batch; the last batch holds the rest.
      seed: Integer seed; example i is binarized with a seed derived from
        (seed, i), independent of the training seeds and of `batch_size`.
      binarize_mode: One of `BINARIZE_MODES`.
      with_labels: Also yield the int64 labels (`image_readers.NO_LABEL` for
        examples without one).
      max_examples: Only the first this many examples; None for all.

    Returns:
      An iterator of float32 images [<= batch_size, H, W, C] covering the
      split once, in order, or of (images, labels) with `with_labels`.

    Raises:
      ValueError: If `split`, `batch_size` or `binarize_mode` is invalid.
      DatasetUnavailableError: While iterating, naming an unreadable file.
    """
    _check_binarize_mode(binarize_mode)
    count = self.num_examples(split)
    count = count if max_examples is None else min(count, max_examples)
    return self._ordered(split, batch_size, seed, binarize_mode, with_labels,
                         np.arange(count, dtype=np.int64))

  def uint8_batches(self, split: str, batch_size: int, with_labels: bool = False
                    ) -> Iterator:
    """The preprocessed uint8 images of `split` [<= batch_size, H, W, C], in
    order, with their labels if `with_labels`; naming an unreadable file."""
    return self._ordered(split, batch_size, 0, None, with_labels,
                         np.arange(self.num_examples(split), dtype=np.int64))

  def first_images(self, split: str, count: int) -> np.ndarray:
    """The first `count` images of `split` as the user gave them, not binarized:
    float32 [<= count, H, W, C], pixel / 255 (e.g. the "original" row of a figure)."""
    indices = np.arange(min(count, self.num_examples(split)), dtype=np.int64)
    images = next(self._ordered(split, count, 0, None, False, indices))
    return images.numpy().astype(np.float32) / 255.0

  def target_variance(self, binarize_mode: str,
                      max_examples: int = VARIANCE_EXAMPLES) -> float:
    """Variance of the binarized training pixels (see the module docstring).

    The denominator of the normalised MSE the tutorials report, and the
    Gaussian likelihood's fixed variance.

    Args:
      binarize_mode: One of `BINARIZE_MODES`.
      max_examples: Read at most this many training examples, evenly spaced.

    Returns:
      The variance, a Python float.
    """
    _check_binarize_mode(binarize_mode)
    count = self.num_examples(TRAIN)
    indices = (np.arange(count, dtype=np.int64) if count <= max_examples else
               np.arange(max_examples, dtype=np.int64) * count // max_examples)
    histogram = np.zeros([256], np.int64)
    with progress.Progress(f"Data variance over {len(indices)} training images",
                           len(indices)) as counter:
      for images in self._ordered(TRAIN, 256, 0, None, False, indices):
        histogram += tf.math.bincount(tf.reshape(tf.cast(images, tf.int32), [-1]),
                                      minlength=256, maxlength=256,
                                      dtype=tf.int64).numpy()
        counter.add(len(images))
    return pixel_variance(histogram, binarize_mode)


def num_classes(dataset: str, train_split: str, *, dataset_dir: Optional[str] = None,
                data_dir: Optional[str] = None, image_key: str = "",
                label_key: str = "") -> Optional[int]:
  """Number of label classes of a dataset, for a class-conditional model.

  The source's when it knows it without reading the data (a TFDS ClassLabel, a
  folder's class sub-folders), else the largest label of `train_split` + 1 (the
  official files and TFRecords carry no class list; one pass over the labels,
  which reads but does not decode the images).

  Args:
    dataset, train_split, dataset_dir, data_dir, image_key, label_key: as for
      `open_data`.

  Returns:
    The number of classes, or None if the data has no labels.

  Raises:
    ValueError, DatasetUnavailableError: as `open_data`.
  """
  source = image_sources.open_source(dataset, dataset_dir, data_dir, image_key,
                                     label_key)
  if source.num_classes is not None:
    return source.num_classes or None
  examples = source.examples(train_split)
  if not examples.has_labels or not len(examples):
    return None
  labels = (tf.data.Dataset.range(len(examples))
            .map(lambda index: examples.read(index)[1],
                 num_parallel_calls=tf.data.AUTOTUNE)
            .batch(4096))
  return int(max(batch.max() for batch in labels.as_numpy_iterator())) + 1


def _check(examples: image_readers.Examples) -> Optional[np.ndarray]:
  """Checks every example of a split before training, as cheaply as its storage
  allows (see the module docstring).

  Returns:
    The stored (H, W, C) of each example, int [N, 3], or None where only
    decoding would tell (TFRecords, TFDS features of unknown shape).

  Raises:
    DatasetUnavailableError: Naming the first bad file and how many more are bad.
  """
  paths = examples.files()
  if paths is not None:
    shapes, bad = image_headers.check_files(paths, examples.name)
    if bad:
      index, problem = bad[0]
      more = (f" ({len(bad) - 1} more of the {len(paths)} files of {examples.name} "
              "are bad too)" if len(bad) > 1 else "")
      raise DatasetUnavailableError(
          f"Cannot read image {paths[index]}: {problem.rstrip('.')}{more}. "
          f"{_UNREADABLE_HINT}")
    return shapes
  if examples.stored_shape is not None:
    return np.tile(np.array(examples.stored_shape, np.int64), [len(examples), 1])
  return None


def _readable(examples: image_readers.Examples
              ) -> tuple[np.ndarray, np.ndarray, list[str]]:
  """Decodes every example: (indices of those that decode, their stored
  (H, W, C) [n, 3], descriptions of those that do not)."""
  if not examples.encoded:
    return np.arange(len(examples), dtype=np.int64), _check(examples), []

  def try_decode(index):
    image, _ = examples.read(index)
    return index, tf.shape(preprocessing.decode(image), out_type=tf.int64)

  good = (tf.data.Dataset.range(len(examples))
          .map(try_decode, num_parallel_calls=tf.data.AUTOTUNE)
          .ignore_errors()
          .batch(256))
  readable, shapes = [np.zeros([0], np.int64)], [np.zeros([0, 3], np.int64)]
  with progress.Progress(f"Decoding the {len(examples)} images of {examples.name} "
                         "(skip_corrupt_images)", len(examples)) as counter:
    for indices, batch_shapes in good.as_numpy_iterator():
      readable.append(indices)
      shapes.append(batch_shapes)
      counter.add(len(indices))
  readable = np.concatenate(readable)
  bad = np.setdiff1d(np.arange(len(examples)), readable)
  return readable, np.concatenate(shapes), [examples.describe(int(i)) for i in bad]


def _size_text(height: int, width: int) -> str:
  """A size as image_size spells it: "28" for 28x28, "128,96" otherwise."""
  return str(height) if height == width else f"{height},{width}"


def _check_one_size(splits: dict[str, image_readers.Examples],
                    shapes: dict[str, np.ndarray]) -> None:
  """Raises ValueError, naming the sizes found, unless all images of both splits
  have one height and width."""
  sizes = {}  # (height, width) -> [number of images, one of them]
  for name, split_shapes in shapes.items():
    found, first, counts = np.unique(split_shapes[:, :2], axis=0, return_index=True,
                                     return_counts=True)
    for (height, width), index, count in zip(found, first, counts):
      entry = sizes.setdefault((int(height), int(width)),
                               [0, splits[name].describe(int(index))])
      entry[0] += int(count)
  if len(sizes) == 1:
    return
  ordered = sorted(sizes.items(), key=lambda item: -item[1][0])
  named = ", ".join(f"{height}x{width} ({count}, e.g. {example})"
                    for (height, width), (count, example) in ordered[:_NAMED_SIZES])
  if len(ordered) > _NAMED_SIZES:
    named += f" and {len(ordered) - _NAMED_SIZES} more"
  names = dict.fromkeys(examples.name for examples in splits.values())
  raise ValueError(
      f"image_size: the images of {' and '.join(names)} have {len(sizes)} sizes "
      f"(height x width: images): {named}; pass image_size, e.g. "
      f"{_size_text(*ordered[0][0])} for the most common one, to bring every image "
      "to one size.")


def _image_shape(splits: dict[str, image_readers.Examples],
                 shapes: dict[str, Optional[np.ndarray]],
                 size: Optional[tuple[int, int]], channels: int
                 ) -> tuple[tuple[int, int, int], bool]:
  """The shape of the pipelines' images, and whether each read must check that
  its image has that height and width.

  The flags' size and channels where given. Else the one size of all images
  when the check gave them (several are refused), and the first training
  image's channels; where it did not, the first training image's size and
  channels, which every read then checks.
  """
  examples = splits[TRAIN]
  sizes_known = all(split_shapes is not None for split_shapes in shapes.values())
  if sizes_known:
    first = shapes[TRAIN][0]
    if size is None:
      _check_one_size(splits, shapes)
  elif size is None or not channels:
    try:
      raw, _ = examples.read(tf.constant(0, tf.int64))
      first = preprocessing.decode(raw).shape
    except tf.errors.OpError as e:
      raise DatasetUnavailableError(
          f"Cannot read image {examples.describe(0)}: {first_line(e)} "
          f"{_UNREADABLE_HINT}") from e
  height, width = size or first[:2]
  shape = (int(height), int(width),
           channels or preprocessing.stored_channels(int(first[2])))
  return shape, size is None and not sizes_known


def open_data(dataset: str, train_split: str, eval_split: str, *,
              dataset_dir: Optional[str] = None, data_dir: Optional[str] = None,
              image_size: str = "", channels: int = 0, image_key: str = "",
              label_key: str = "", skip_corrupt_images: bool = False) -> ImageData:
  """Opens the training and evaluation splits of a dataset.

  Lists or indexes the examples (paths, record positions) and checks them
  before any training (see the module docstring: image files by their headers,
  all decoded with `skip_corrupt_images`).

  Args:
    dataset: `--dataset`: a TFDS name, `folder:DIR` or `tfrecord:GLOB`
      (see data/sources.py).
    train_split: TFDS split string of the training examples.
    eval_split: TFDS split string of the evaluation examples.
    dataset_dir: Directory of official idx/npz files (kmnist, mnist,
      fashion_mnist); then TFDS is not used.
    data_dir: TFDS data directory; None for TFDS's default.
    image_size: "N" or "H,W" (see preprocessing.py); "" for the size of the
      stored images, which must all have one (see the module docstring).
    channels: 1 (grey) or 3 (RGB); 0 for the stored images' (the first
      training image's if they differ).
    image_key: Image feature of TFDS or TFRecord data; "" for the default.
    label_key: Label feature of TFDS or TFRecord data; "" for the default.
    skip_corrupt_images: Decode every image once now and leave out (and log)
      those that cannot be decoded, instead of stopping at the first.

  Returns:
    An `ImageData`.

  Raises:
    ValueError: If a flag is malformed or does not fit the data (e.g. no
      image_size for images of several sizes), a split string is malformed,
      unknown or selects no examples.
    DatasetUnavailableError: If the data cannot be found or read, or a file
      is bad (naming it).
  """
  size = parse_image_size(image_size)
  if channels not in (0,) + preprocessing.CHANNELS:
    raise ValueError(f"--channels={channels}: must be 1 (grey), 3 (RGB) or 0 (as "
                     "stored).")
  source = image_sources.open_source(dataset, dataset_dir, data_dir, image_key,
                                     label_key)
  splits, shapes, skipped = {}, {}, set()
  for name, split in ((TRAIN, train_split), (EVAL, eval_split)):
    examples = source.examples(split)
    if skip_corrupt_images:
      readable, shapes[name], bad = _readable(examples)
      for description in bad[:_LOGGED_BAD_FILES]:
        logging.warning("Skipping unreadable image %s.", description)
      if bad:
        logging.warning("Skipped %d unreadable image(s) of %d in %s "
                        "(--skip_corrupt_images).", len(bad), len(examples),
                        examples.name)
      skipped.update(bad)
      examples = examples.take(readable)
    if not len(examples):
      raise ValueError(f"Split {split!r} of {dataset} selects no examples.")
    if not skip_corrupt_images:
      shapes[name] = _check(examples)
    splits[name] = examples
  image_shape, same_size = _image_shape(splits, shapes, size, channels)
  return ImageData(splits, image_shape, skipped_images=len(skipped),
                   same_size=same_size)
