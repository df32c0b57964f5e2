"""How a quantizer's codebook is initialised on its first training call.

A quantizer's `initializer` argument takes one of:
  None            K encoder outputs of the first global batch, drawn with the
                  quantizer's stateless seed (`--codebook_init=data`);
  KMeansInit()    a few Lloyd iterations (k-means) on encoder outputs of the first
                  global batch, started from those K (the SoundStream /
                  vector-quantize-pytorch initialisation; `--codebook_init=kmeans`);
  UniformInit()   Uniform(-1/K, 1/K) entries, independent of the data (the PyTorch
                  tutorial's `VectorQuantizer`; `--codebook_init=uniform`).

An initialiser knows nothing of K and D until it is called (it reads them from the
candidates), so one object serves every quantizer and residual stage.

Replica consistency: the k-means pool is drawn with `quantizer.sample_global_rows`,
so every replica clusters the same vectors of the global batch from the same start
and ends with the same codebook, as a single device would on that batch. The
clustering runs inside a `tf.cond` on the quantizer's `initialized` flag, so later
steps pay only for drawing the pool, not for the Lloyd iterations.
"""

import tensorflow as tf

from tfp_vqvae.quantizers import base as quantizer_lib

# Lloyd iterations of the k-means initialisation: the SoundStream paper's choice is
# 10; the codebook only has to be a good start, the EMA or the loss refines it.
KMEANS_ITERATIONS = 10
# Encoder outputs clustered per code, capped so that a large K stays cheap.
_POOL_ROWS_PER_CODE = 8
_MAX_POOL_ROWS = 16384


def kmeans(points, centroids, iterations):
  """Lloyd's algorithm: `iterations` of assign-to-nearest, then move to the mean.

  A centroid left without points keeps its position.

  Args:
    points: float32 [N, D].
    centroids: float32 [K, D] starting centroids.
    iterations: number of Lloyd iterations, >= 0.

  Returns:
    float32 [K, D] centroids.
  """
  num_centroids = centroids.shape[0]
  for _ in range(iterations):
    codes = quantizer_lib.nearest_codes(points, centroids)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(codes, tf.float32), codes,
                                          num_centroids)
    sums = tf.math.unsorted_segment_sum(points, codes, num_centroids)
    centroids = tf.where(counts[:, None] > 0,
                         sums / tf.maximum(counts, 1.0)[:, None], centroids)
  return centroids


def pool_size(num_embeddings: int) -> int:
  """Rows of the first global batch that `KMeansInit` clusters for K codes."""
  return min(max(_POOL_ROWS_PER_CODE * num_embeddings, 1),
             max(_MAX_POOL_ROWS, num_embeddings))


class CodebookInit:
  """A codebook initialisation, for the quantizers' `initializer` argument.

  Subclasses implement `first_codebook`; `get_config` returns the constructor's
  keyword arguments and `from_config` rebuilds from them (the Keras layers keep an
  initialiser in their config that way).
  """

  def first_codebook(self, initialized: tf.Variable, context, num_replicas: int,
                     vectors: tf.Tensor, seed: tf.Tensor,
                     candidates: tf.Tensor) -> tf.Tensor:
    """The [K, D] codebook to start from, computed only while not `initialized`.

    Args:
      initialized: the quantizer's boolean variable; once True the (cheap)
        `candidates` may be returned instead: the quantizer ignores them.
      context: the replica context, from `quantizer.replica_info()`.
      num_replicas: the number of replicas in sync.
      vectors: float32 [N, D] encoder outputs of this replica.
      seed: the quantizer's stateless seed of this training call.
      candidates: float32 [K, D], the K rows of the global batch a quantizer
        without initialiser starts from.

    Returns:
      float32 [K, D], identical on every replica.
    """
    raise NotImplementedError

  def get_config(self) -> dict:
    return {}

  @classmethod
  def from_config(cls, config: dict) -> "CodebookInit":
    return cls(**config)


class KMeansInit(CodebookInit):
  """k-means on up to 8K encoder outputs of the first batch, from K of them."""

  def __init__(self, iterations: int = KMEANS_ITERATIONS):
    """Sets the number of Lloyd iterations.

    Args:
      iterations: Lloyd iterations, >= 0 (0 keeps the K starting rows).

    Raises:
      ValueError: if `iterations` is not an integer >= 0.
    """
    if int(iterations) != iterations or iterations < 0:
      raise ValueError(f"iterations must be an integer >= 0, got {iterations!r}.")
    self.iterations = int(iterations)

  def first_codebook(self, initialized, context, num_replicas, vectors, seed,
                     candidates):
    # The pool is drawn outside the cond: it may all-reduce, which every replica
    # must reach.
    pool = quantizer_lib.sample_global_rows(
        context, num_replicas, vectors, pool_size(candidates.shape[0]),
        tf.random.experimental.stateless_fold_in(seed, 1))
    return tf.cond(initialized, lambda: candidates,
                   lambda: kmeans(pool, candidates, self.iterations))

  def get_config(self):
    return {"iterations": self.iterations}


class UniformInit(CodebookInit):
  """Uniform(-1/K, 1/K) entries drawn with the quantizer's seed; ignores the data."""

  def first_codebook(self, initialized, context, num_replicas, vectors, seed,
                     candidates):
    num_embeddings, embedding_dim = candidates.shape
    bound = 1.0 / num_embeddings
    uniform = tf.random.stateless_uniform([num_embeddings, embedding_dim], seed=seed,
                                          minval=-bound, maxval=bound)
    return tf.where(initialized, candidates, uniform)
