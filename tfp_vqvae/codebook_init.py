"""How a quantizer's codebook is initialised on its first training call.

`--codebook_init` picks one of:
  data     K encoder outputs of the first global batch, drawn with the stateless
           seed (what `VectorQuantizerEMA` does without an initializer);
  kmeans   a few Lloyd iterations (k-means) on encoder outputs of the first global
           batch, started from K of them (the SoundStream / vector-quantize-pytorch
           initialisation);
  uniform  Uniform(-1/K, 1/K) entries, independent of the data (the PyTorch
           tutorial's `VectorQuantizer`).

Replica consistency: the k-means pool is drawn with `quantizer.sample_global_rows`,
so every replica clusters the same vectors of the global batch from the same start
and ends with the same codebook, as a single device would on that batch. The
clustering runs inside a `tf.cond` on the quantizer's `initialized` flag, so later
steps pay only for drawing the pool, not for the Lloyd iterations.
"""

import tensorflow as tf

from tfp_vqvae import quantizer as quantizer_lib

INIT_METHODS = ("data", "kmeans", "uniform")
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


class Initializer:
  """A codebook initialisation, for the quantizers' `initializer` argument."""

  def __init__(self, method, num_embeddings, embedding_dim,
               iterations=KMEANS_ITERATIONS):
    """Checks the method; see the module docstring for what each does.

    Raises:
      ValueError: for an unknown method.
    """
    if method not in INIT_METHODS:
      raise ValueError(f"Unknown codebook_init {method!r}; expected one of "
                       f"{', '.join(INIT_METHODS)}.")
    self.method = method
    self.num_embeddings = int(num_embeddings)
    self.embedding_dim = int(embedding_dim)
    self.iterations = int(iterations)
    self.pool_size = min(max(_POOL_ROWS_PER_CODE * self.num_embeddings, 1),
                         max(_MAX_POOL_ROWS, self.num_embeddings))

  def first_codebook(self, initialized, context, num_replicas, vectors, seed,
                     candidates):
    """The [K, D] codebook to start from, computed only while not `initialized`.

    Args:
      initialized: the quantizer's boolean variable; once True the (cheap)
        `candidates` are returned instead and the quantizer ignores them.
      context, num_replicas: from `quantizer.replica_info()`.
      vectors: float32 [N, D] encoder outputs of this replica.
      seed: the quantizer's stateless seed of this step.
      candidates: the K rows of the global batch the `data` method would use.

    Returns:
      float32 [K, D].
    """
    if self.method == "data":
      return candidates
    if self.method == "uniform":
      bound = 1.0 / self.num_embeddings
      uniform = tf.random.stateless_uniform(
          [self.num_embeddings, self.embedding_dim], seed=seed, minval=-bound,
          maxval=bound)
      return tf.where(initialized, candidates, uniform)
    # The pool is drawn outside the cond: it may all-reduce, which every replica
    # must reach.
    pool = quantizer_lib.sample_global_rows(
        context, num_replicas, vectors, self.pool_size,
        tf.random.experimental.stateless_fold_in(seed, 1))
    return tf.cond(initialized, lambda: candidates,
                   lambda: kmeans(pool, candidates, self.iterations))
