"""Quantizers whose codebook is a fixed grid in a learned projection (FSQ, LFQ).

Finite scalar quantization (fsq.py) and lookup-free quantization (lfq.py) share a
shape: a linear map projects each D-vector to d channels (usually d < D), each is
rounded onto a few fixed values with a straight-through gradient, and a second
linear map projects the grid point back to D channels for the decoder:

    z_e [.., D] --project_in--> h [.., d] --snap--> g [.., d] --project_out--> z_q [.., D]

The K grid points are the codebook, implicitly: no codebook variable, no nearest-code
search, no statistics to keep in step across replicas, no dead codes to re-seed
(a grid point stays where it is while unused). The only variables are the two
projections', trained by the optimizer through the straight-through gradient, and
the count of training calls every quantizer keeps (`num_updates`); the projections'
initial weights come from `seed` (nets/layers.py), so the same seed gives the same
quantizer. Everything runs in float32 whatever the inputs' dtype: rounding a
bfloat16 value next to a rounding boundary picks the wrong grid point (8 bits of
mantissa), which is how FSQ loses codes under bfloat16 (vector-quantize-pytorch
issue #114).

A subclass says how a projected vector snaps to its grid (`_snap`), how a code maps
back to its grid point (`_grid_points`), and optionally adds a loss (`_loss`).
"""

import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.nets import layers
from tfp_vqvae.quantizers import base as quantizer_lib


class ProjectedQuantizer(quantizer_lib.Quantizer):
  """Quantizes in d channels between two learned projections, D -> d and d -> D.

  The base of the grid quantizers and of `cosine.LowDimCosine`: a subclass makes
  the quantized vectors of `_quantize` and says what the d-vectors of codes are
  (`_grid_points`); lookup, the codes' shape and the codebook projected back to D
  are this class's.

  Attributes:
    code_dim: d, the channels of the projection that are quantized.
    project_in: `layers.Linear` D -> d.
    project_out: `layers.Linear` d -> D.
  """

  # The quantized vectors' gradient goes through the projections.
  own_gradient = True

  def __init__(self, embedding_dim: int, code_dim: int, num_embeddings: int,
               seed: int, name: str):
    """Creates the two projections.

    Args:
      embedding_dim: D, the inputs' last dimension; >= 1.
      code_dim: d, the channels that are quantized; >= 1.
      num_embeddings: K, the number of codes.
      seed: integer seed of the projections' initial weights.
      name: module name.

    Raises:
      ValueError: if embedding_dim is not a positive integer.
    """
    super().__init__(name=name)
    layers.check_positive(embedding_dim=embedding_dim)
    self.embedding_dim = int(embedding_dim)
    self.code_dim = int(code_dim)
    self.num_embeddings = int(num_embeddings)
    self.seed = int(seed)
    seeds = seeds_lib.SeedSequence(self.seed)
    with self.name_scope:
      self.project_in = layers.Linear(self.embedding_dim, self.code_dim, seeds=seeds,
                                      name="project_in")
      self.project_out = layers.Linear(self.code_dim, self.embedding_dim, seeds=seeds,
                                       name="project_out")

  def _grid_points(self, codes):
    """The float32 [N, d] vectors of int32 [N] codes (before project_out)."""
    raise NotImplementedError(f"{type(self).__name__} must implement _grid_points.")

  def lookup(self, codes):
    """The quantized vectors float32 [..., D] of int codes [...] in [0, K)."""
    codes = tf.convert_to_tensor(codes, tf.int32)
    vectors = self.project_out(self._grid_points(tf.reshape(codes, [-1])))
    return tf.reshape(vectors, tf.concat([tf.shape(codes), [self.embedding_dim]], 0))

  def code_shape(self, latent_shape):
    """One image's codes for a latent grid: the grid itself."""
    return tuple(latent_shape)

  @property
  def codebooks(self) -> list:
    """The codebook in D: every code's vector projected back, [K, D]."""
    return [self.lookup(tf.range(self.num_embeddings))]


class GridQuantizer(ProjectedQuantizer):
  """Projects D -> d, snaps each d-vector to one of K grid points, projects back.

  Subclasses implement `_snap` and `_grid_points`; see the module docstring.

  Attributes:
    num_updates: int64 variable, the training calls so far.
  """

  def __init__(self, embedding_dim: int, code_dim: int, num_embeddings: int,
               seed: int, name: str):
    """Creates the two projections and the count of training calls.

    Args:
      embedding_dim, code_dim, num_embeddings, seed, name: see
        `ProjectedQuantizer`.

    Raises:
      ValueError: if embedding_dim is not a positive integer.
    """
    super().__init__(embedding_dim, code_dim, num_embeddings, seed, name)
    with self.name_scope:
      self.num_updates = tf.Variable(
          0, dtype=tf.int64, trainable=False, name="num_updates",
          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

  def _snap(self, projected):
    """(grid points float32 [N, d] with the straight-through gradient to
    `projected`, int32 [N] codes) for float32 [N, d] projected vectors."""
    raise NotImplementedError(f"{type(self).__name__} must implement _snap.")

  def _loss(self, projected, grid_points, batch_size, training):
    """float32 [batch_size] per-example loss of a call; none (zeros) by default.

    Args:
      projected: float32 [N, d] projected inputs, N = batch_size * positions.
      grid_points: float32 [N, d], their grid points.
      batch_size: B, a scalar tensor.
      training: whether this is a training call (in a replica context).
    """
    del projected, grid_points, training  # No loss.
    return tf.zeros([batch_size])

  def _quantize(self, inputs, training, seed):
    """Snaps the projected inputs to the grid; `seed` is unused (no randomness).

    In training, the code counts are SUM all-reduced across replicas, so
    `perplexity`, `usage` and `code_counts` are those of the global batch.

    Returns:
      A `QuantizerOutput`.
    """
    del seed  # Deterministic.
    inputs, vectors = quantizer_lib.flatten_inputs(inputs, self.embedding_dim)
    projected = self.project_in(vectors)
    grid_points, codes = self._snap(projected)
    code_counts = tf.math.unsorted_segment_sum(
        tf.ones_like(codes, tf.float32), codes, self.num_embeddings)
    if training:
      self.num_updates.assign_add(1)
      code_counts = quantizer_lib.sum_over_replicas(*quantizer_lib.replica_info(),
                                                    code_counts)
    loss = self._loss(projected, grid_points, tf.shape(inputs)[0], training)
    return quantizer_lib.quantizer_output(inputs, self.project_out(grid_points), codes,
                                          loss, code_counts)
