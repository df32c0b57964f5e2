"""Named random streams derived from one user seed, and per-variable seed sequences.

Every random choice of the package is a stateless op whose seed is derived from the
user's `--seed` and the name of what it is for, so runs are pure functions of their
flags and unrelated choices never share noise (the permutation of epoch 3 and the
binarisation noise of step 3, say). The streams' numbers are part of that contract:
changing one changes every run that uses it.

    seeds.step_seed(seed, seeds.Stream.QUANTIZER, step)   # int64 [2], a step's seed
    seeds.SeedSequence(seed).next()                       # [seed, 1], [seed, 2], ...
"""

import enum

import tensorflow as tf


class Stream(enum.IntEnum):
  """The random streams of one seed; values fixed (see the module docstring)."""
  EPOCH_ORDER = 0           # data: the permutation of each training epoch
  TRAIN_BINARIZE = 1        # data: dynamic binarisation of training batch s
  EVAL_BINARIZE = 2         # data: dynamic binarisation of eval example i
  AUGMENT = 3               # data: random crop and flip of training batch s
  QUANTIZER = 0x5EED        # quantizer: codebook initialisation and re-seeding
  PRIOR_BATCHES = 0xBA7     # prior training: the rows of batch s
  PRIOR_DROPOUT = 0xD50     # prior: dropout of layer i (folded into a step's seed)
  PRIOR_SAMPLE = 0x5A3      # prior: the Gumbel noise of one sample
  PRIOR_SAMPLE_BOTTOM = 0x5A4  # prior: that of its bottom level (VQ-VAE-2)
  PRIOR_MASK = 0x3A5C       # MaskGIT prior: which codes a training step masks
  PRIOR_ORDER = 0x0D3       # MaskGIT prior: the orders of its any-order NLL
  SAMPLES = 0x5EED5         # sampling CLI: the seed of each sample


def stream_seed(seed, stream: Stream) -> tf.Tensor:
  """The int64 [2] seed [seed, stream] of a stream (seed may be a tensor)."""
  return tf.stack([tf.cast(seed, tf.int64), tf.constant(int(stream), tf.int64)])


def step_seed(seed, stream: Stream, index) -> tf.Tensor:
  """The int64 [2] seed of item `index` (a step, an example, ...) of a stream."""
  return tf.random.experimental.stateless_fold_in(stream_seed(seed, stream),
                                                  tf.cast(index, tf.int64))


class SeedSequence:
  """Hands out distinct stateless seeds [seed, 1], [seed, 2], ... for new variables.

  A network draws its variables in construction order from one sequence, so the
  same seed always gives the same initial weights.
  """

  def __init__(self, seed: int):
    self._seed = int(seed)
    self._count = 0

  def next(self) -> tf.Tensor:
    self._count += 1
    return tf.constant([self._seed, self._count], dtype=tf.int64)
