"""The quantizer contract and what quantizers share: `QuantizerOutput`, nearest codes,
code statistics and the replica-consistent helpers of tf.distribute."""

from typing import NamedTuple

import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib


class QuantizerOutput(NamedTuple):
  """What `VectorQuantizerEMA.__call__` returns.

  Attributes:
    quantized: [..., D] nearest codebook vectors, with the straight-through
      gradient to the inputs; same dtype as the inputs.
    codes: [...] int32 index of the nearest codebook vector.
    commitment_loss: [B] per-example commitment_cost * sum of ||z_e - sg(e)||^2 over
      the latent positions: the paper's term, on the same per-image scale as a
      log-likelihood summed over pixels. (A mean over positions and D, as in the
      tutorials that use a mean-squared reconstruction error, would make it ~3000x
      weaker next to a summed NLL: on KMNIST the encoder outputs then drift to a
      mean squared quantization error of ~24 per dimension.)
    perplexity: scalar exp(entropy) of the code histogram of this batch (the global
      batch under tf.distribute in training).
    usage: scalar fraction of the K codes used at least once in this batch.
    code_counts: [K] float32 number of vectors assigned to each code in this batch.
  """
  quantized: tf.Tensor
  codes: tf.Tensor
  commitment_loss: tf.Tensor
  perplexity: tf.Tensor
  usage: tf.Tensor
  code_counts: tf.Tensor


# Elements of one block of scores [rows, K]: 8 MiB of float32, so that a block stays
# in the last-level cache between the matmul that writes it and the argmax that reads
# it. A single [N, K] block (1 GiB at N=65536, K=4096) is written to and read back from
# DRAM, which made the quantizer memory-bound at 2-3x the time of its matmul.
_BLOCK_ELEMENTS = 1 << 21


def nearest_codes(vectors, codebook):
  """Index of the nearest codebook row for each vector, by squared L2 distance.

  ||x - e||^2 = ||x||^2 - 2 x.e + ||e||^2, and ||x||^2 is the same for every code,
  so argmin_k ||x - e_k||^2 = argmax_k (x.e_k - ||e_k||^2 / 2): one matmul with a
  bias (fused into one oneDNN kernel by grappler) and no [N, K, D] tensor. The rows
  are processed in blocks of about `_BLOCK_ELEMENTS / K` vectors, so only one small
  [rows, K] score block exists at a time whatever N. Halving and negating are exact
  in floating point, so the codes equal those of argmin(||e||^2 - 2 x.e), ties
  included (both pick the lowest index).

  Args:
    vectors: float32 [N, D].
    codebook: float32 [K, D].

  Returns:
    int32 [N] codes.
  """
  vectors = tf.convert_to_tensor(vectors)
  codebook = tf.convert_to_tensor(codebook)
  neg_half_norms = -0.5 * tf.reduce_sum(tf.square(codebook), axis=1)

  def block_codes(block):
    scores = tf.nn.bias_add(tf.matmul(block, codebook, transpose_b=True), neg_half_norms)
    return tf.argmax(scores, axis=1, output_type=tf.int32)

  rows = max(_BLOCK_ELEMENTS // codebook.shape[0], 1)
  num_vectors = vectors.shape[0]
  if num_vectors is not None:
    if num_vectors <= rows:
      return block_codes(vectors)
    # Equal blocks: N=12544 (batch 256) in 4 blocks of 3136 rows, not 4 of 4096
    # with 30% zero padding.
    rows = -(-num_vectors // -(-num_vectors // rows))
  # Zero rows pad N to a multiple of `rows`; their codes are dropped at the end.
  count = tf.shape(vectors)[0]
  padded = tf.pad(vectors, [[0, -count % rows], [0, 0]])
  blocks = tf.reshape(padded, [-1, rows, vectors.shape[1]])
  codes = tf.map_fn(block_codes, blocks, fn_output_signature=tf.int32)
  return tf.reshape(codes, [-1])[:count]


def perplexity_and_usage(code_counts):
  """exp(entropy) of a code histogram and the fraction of codes it uses."""
  code_counts = tf.convert_to_tensor(code_counts, tf.float32)
  probs = code_counts / tf.maximum(tf.reduce_sum(code_counts), 1.0)
  entropy = -tf.reduce_sum(tf.math.multiply_no_nan(tf.math.log(probs), probs))
  usage = tf.reduce_mean(tf.cast(code_counts > 0, tf.float32))
  return tf.exp(entropy), usage


def replica_info():
  """(replica context, number of replicas) of a quantizer call in training."""
  context = tf.distribute.get_replica_context()
  if context is None:
    raise RuntimeError(
        "A quantizer must be called in a replica context (inside strategy.run "
        "under tf.distribute), not in a cross-replica context.")
  return context, context.num_replicas_in_sync


def sum_over_replicas(context, num_replicas, values):
  """`values` SUM all-reduced across replicas (unchanged with one replica)."""
  if num_replicas == 1:
    return values
  return context.all_reduce(tf.distribute.ReduceOp.SUM, values)


def sample_global_rows(context, num_replicas, vectors, count, seed):
  """`count` rows drawn from the global batch of `vectors`, identical on all replicas.

  Every replica draws the same `count` global row indices (with replacement, from
  the stateless `seed`); each fills in the rows it holds (zeros elsewhere) and a SUM
  all-reduce assembles the [count, D] sample. With one replica this is the same draw
  from the same global batch. Relies on replica r holding global rows
  [r * b, (r + 1) * b) (see internal/distribute.py).
  """
  local_size = tf.shape(vectors)[0]
  global_rows = tf.random.stateless_uniform(
      [count], seed=seed, minval=0, maxval=local_size * num_replicas, dtype=tf.int32)
  if num_replicas == 1:
    return tf.gather(vectors, global_rows)
  local_rows = global_rows - context.replica_id_in_sync_group * local_size
  mine = (local_rows >= 0) & (local_rows < local_size)
  picked = tf.gather(vectors, tf.clip_by_value(local_rows, 0, local_size - 1))
  picked = tf.where(mine[:, None], picked, tf.zeros_like(picked))
  return context.all_reduce(tf.distribute.ReduceOp.SUM, picked)


def training_seed(seed, num_updates):
  """The stateless seed of a quantizer's training call number `num_updates`.

  Derived from the quantizer's `seed` and the count of its earlier training calls
  (a checkpointed variable), so each step draws fresh noise, identical on every
  replica, and a restored quantizer continues the same stream.
  """
  return seeds_lib.step_seed(seed, seeds_lib.Stream.QUANTIZER, num_updates)


def reduction_groups(batch_size, group_size):
  """Number of reduction groups of a batch of `batch_size` (<= group_size: one).

  Raises:
    ValueError: if the batch is larger than `group_size` > 0 but not a multiple of
      it, or unknown (None) while `group_size` > 0.
  """
  if not group_size:
    return 1
  if batch_size is None:
    raise ValueError("reduction_group_size > 0 needs a static batch size.")
  if batch_size > group_size and batch_size % group_size:
    raise ValueError(f"A batch of {batch_size} cannot be cut into groups of "
                     f"reduction_group_size={group_size}.")
  return max(batch_size // group_size, 1)


def grouped_segment_sum(vectors, codes, num_embeddings, groups):
  """[K, D] sums of the `vectors` of each code: one sum per equal slice of rows,
  then the slices' sums added in order (with `groups` = 1 a plain segment sum)."""
  if groups == 1:
    return tf.math.unsorted_segment_sum(vectors, codes, num_embeddings)
  slice_of_row = tf.repeat(tf.range(groups), tf.shape(codes)[0] // groups)
  sums = tf.math.unsorted_segment_sum(vectors, codes + num_embeddings * slice_of_row,
                                      num_embeddings * groups)
  return tf.add_n(tf.split(sums, groups))


def flatten_inputs(inputs, embedding_dim):
  """(inputs as a tensor, float32 [N, D] vectors); ValueError if the last dim is not D."""
  inputs = tf.convert_to_tensor(inputs)
  if inputs.shape[-1] != embedding_dim:
    raise ValueError(f"inputs must have last dimension embedding_dim="
                     f"{embedding_dim}, got shape {inputs.shape}.")
  return inputs, tf.reshape(tf.cast(inputs, tf.float32), [-1, embedding_dim])


def rotated(vectors, nearest):
  """The rotation trick's map of `vectors` onto `nearest` (Fifty et al. 2024, eq. 4.2).

  Each vector e is turned onto the direction of its code q and rescaled to the
  code's length, by a rotation and a scale that are constants of the gradient:

      q~ = sg(||q|| / ||e||) * sg(R) e,     R = I - 2 w w^T + 2 q^ e^^T,

  with e^ = e / ||e||, q^ = q / ||q|| and w = (e^ + q^) / ||e^ + q^|| (R e^ = q^:
  a Householder reflection through w composed with one through q^). Its value is
  q up to rounding; the gradient to e is sg(||q|| / ||e||) R^T times the incoming
  one, which keeps the angle between the gradient and e, where straight-through
  copies the gradient unchanged. Never builds R: R e = e - 2 (e.w) w + 2 (e.e^) q^.

  Degenerate vectors: a zero e gets the identity (straight-through's gradient; its
  value is then 0, never used by `straight_through_output`), a zero code a
  zero gradient (its q~ is 0 whatever e); an antipodal pair (q^ = -e^) has w = 0
  and R e^ = e^ - 2 e^ = q^ still.

  Args:
    vectors: float32 [N, D], with the gradient.
    nearest: float32 [N, D], their codebook vectors (their gradient is not used).

  Returns:
    float32 [N, D], about `nearest`, with the rotation's gradient to `vectors`.
  """
  vectors_norm = tf.norm(vectors, axis=-1, keepdims=True)
  nearest_norm = tf.norm(nearest, axis=-1, keepdims=True)
  code_direction = tf.math.divide_no_nan(nearest, nearest_norm)
  # A zero vector gets its code's direction, so R = I.
  direction = tf.where(vectors_norm > 0, tf.math.divide_no_nan(vectors, vectors_norm),
                       code_direction)
  scale = tf.where(vectors_norm > 0, tf.math.divide_no_nan(nearest_norm, vectors_norm),
                   tf.ones_like(vectors_norm))
  mirror = unit_vectors(direction + code_direction)
  scale, direction, code_direction, mirror = (
      tf.stop_gradient(t) for t in (scale, direction, code_direction, mirror))
  dot = lambda a, b: tf.reduce_sum(a * b, axis=-1, keepdims=True)
  return scale * (vectors - 2.0 * dot(vectors, mirror) * mirror
                  + 2.0 * dot(vectors, direction) * code_direction)


def straight_through_output(inputs, vectors, nearest, codes, loss, code_counts,
                            rotation_trick=False):
  """The `QuantizerOutput` of a quantizer call, with the straight-through estimator
  or the rotation trick.

  Args:
    inputs: the call's [B, ..., D] inputs (for shape and dtype).
    vectors: float32 [N, D], the flattened inputs.
    nearest: float32 [N, D], their codebook vectors.
    codes: int32 [N] codes.
    loss: float32 [B] per-example quantizer loss.
    code_counts: float32 [K] code histogram.
    rotation_trick: pass the gradient through `rotated(vectors, nearest)`, not
      unchanged. The forward value is the straight-through one, bit for bit.
  """
  # Forward value `nearest`, gradient identity to z_e.
  quantized = vectors + tf.stop_gradient(nearest - vectors)
  if rotation_trick:
    # rotation - sg(rotation) is 0 in value: only the gradient changes.
    rotation = rotated(vectors, nearest)
    quantized = tf.stop_gradient(quantized) + (rotation - tf.stop_gradient(rotation))
  return quantizer_output(inputs, quantized, codes, loss, code_counts)


def codebook_loss(inputs, vectors, nearest, commitment_cost):
  """Per-example [B] loss of a codebook trained by gradient: ||sg(z_e) - e||^2 (to
  the codebook) plus beta ||z_e - sg(e)||^2 (to the encoder), summed over positions.

  Args:
    inputs: the call's [B, ..., D] inputs (for the batch size).
    vectors: float32 [N, D], the flattened inputs.
    nearest: float32 [N, D], their code vectors, with the codebook's gradient.
    commitment_cost: beta.
  """
  batch_size = tf.shape(inputs)[0]
  commitment = tf.reshape(tf.square(vectors - tf.stop_gradient(nearest)),
                          [batch_size, -1])
  codebook_error = tf.reshape(tf.square(tf.stop_gradient(vectors) - nearest),
                              [batch_size, -1])
  return (tf.reduce_sum(codebook_error, axis=1)
          + commitment_cost * tf.reduce_sum(commitment, axis=1))


def quantizer_output(inputs, quantized, codes, loss, code_counts):
  """The `QuantizerOutput` of a call on `inputs` [B, ..., D], in the inputs' dtype.

  Args:
    inputs: the call's inputs (for shape and dtype).
    quantized: float32 [N, D] quantized vectors (N = B * positions), with the
      gradient they pass back to the inputs.
    codes: int32 [N] codes.
    loss: float32 [B] per-example quantizer loss.
    code_counts: float32 [K] code histogram.
  """
  perplexity, usage = perplexity_and_usage(code_counts)
  return QuantizerOutput(
      quantized=tf.cast(tf.reshape(quantized, tf.shape(inputs)), inputs.dtype),
      codes=tf.reshape(codes, tf.shape(inputs)[:-1]),
      commitment_loss=tf.cast(loss, inputs.dtype),
      perplexity=perplexity,
      usage=usage,
      code_counts=code_counts)


def unit_vectors(x):
  """x [..., D] with each vector divided by its l2 norm (zeros stay zero).

  As `tf.math.l2_normalize` (the same epsilon), but with a correctly rounded sqrt
  and division instead of a reciprocal square root: a vector's result then does
  not depend on where it sits in the batch. (The AVX2 kernels compute the rsqrt
  of the batch's tail elements otherwise than the rest, so the rows a replica
  holds would round differently from the same rows of the global batch.)
  """
  norm = tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(x), axis=-1, keepdims=True), 1e-12))
  # Never 0 here: divide_no_nan only because grappler turns x / sqrt(y) back into
  # x * rsqrt(y).
  return tf.math.divide_no_nan(x, norm)


def code_vectors(codebook, cosine):
  """The vectors codes stand for: the codebook's rows, l2-normalised if `cosine`."""
  return unit_vectors(codebook) if cosine else codebook


def check_codebook_args(num_embeddings, embedding_dim, commitment_cost):
  """Raises ValueError unless K, D >= 1 are integers and beta >= 0."""
  for arg, value in (("num_embeddings", num_embeddings),
                     ("embedding_dim", embedding_dim)):
    if int(value) != value or value < 1:
      raise ValueError(f"{arg} must be a positive integer, got {value!r}.")
  if commitment_cost < 0:
    raise ValueError(f"commitment_cost must be >= 0, got {commitment_cost!r}.")


class CodebookOptions:
  """The options every codebook quantization (EMA, loss-trained) keeps, checked.

  `own_gradient` is True when the rotation trick or the cosine normalisation makes
  the outputs' gradient the quantizer's own rather than straight through.
  """

  def __init__(self, num_embeddings, embedding_dim, commitment_cost, initializer, seed,
               rotation_trick, cosine):
    check_codebook_args(num_embeddings, embedding_dim, commitment_cost)
    self.num_embeddings = int(num_embeddings)
    self.embedding_dim = int(embedding_dim)
    self.commitment_cost = float(commitment_cost)
    self.initializer = initializer
    self.seed = int(seed)
    self.rotation_trick = bool(rotation_trick)
    self.cosine = bool(cosine)
    self.own_gradient = self.rotation_trick or self.cosine


class Quantizer(tf.Module):
  """The quantizer contract: what every quantizer of the package implements.

  A quantizer maps encoder outputs [B, ..., D] to quantized vectors and integer
  codes. `VQVAE`, the trainers, the figures, the priors and the export use only
  what this class declares, so a new quantizer is a subclass (plus its options
  registered in `tfp_vqvae.configs`), not an edit of its callers.

  Subclassing (the pattern of TFP's `Distribution`: the public method checks, then
  calls the method a subclass implements):

    * set `num_embeddings` (K, codes per map) and `embedding_dim` (D, the input's
      last dimension) in `__init__`; set `output_dim` too if the quantized vectors
      the decoder gets are not D wide (VQ-VAE-2's 2 * D);
    * `_quantize(inputs, training, seed)` -> `QuantizerOutput`. In training it
      updates the quantizer's state (codebook statistics, counters) and must be
      replica-consistent under tf.distribute (see `sum_over_replicas`);
      `code_counts` is [K] for one codebook, [S, K] for S stages or levels, and
      `perplexity` / `usage` scalars or [S];
    * `lookup(codes)` -> the quantized vectors [..., output_dim] (float32) of codes
      as `_quantize` returns them;
    * `code_shape(latent_shape)` -> one image's codes for a latent grid (h, w): a
      tuple, or {level: tuple} for several code maps;
    * `codebooks` -> the [K, D] codebook of each stage or level (for the figures);
    * `stage_names` -> names of the stages or levels, () for one codebook;
    * `num_updates`: an int64 variable counting the training calls (the index of
      the next call's seed; a residual stack draws its stages' seeds from its
      first stage's count);
    * `own_gradient`: False if `quantized` passes the gradient to the inputs
      unchanged (straight through), True if it carries a gradient of its own
      (through projections, or the rotation trick) that a residual stack must
      keep.

  Example:
    quantizer = VectorQuantizerEMA(num_embeddings=512, embedding_dim=64)
    out = quantizer(z_e, training=True)   # z_e [B, 7, 7, 64]
    out.codes                             # [B, 7, 7] int32
    quantizer.lookup(out.codes)           # [B, 7, 7, 64] == out.quantized
  """

  num_embeddings: int
  embedding_dim: int
  num_updates: tf.Variable
  stage_names: tuple = ()
  own_gradient: bool = False

  @property
  def output_dim(self) -> int:
    """Width of the quantized vectors the decoder gets (D unless overridden)."""
    return self.embedding_dim

  @tf.Module.with_name_scope
  def __call__(self, inputs, training=False, seed=None):
    """Quantizes `inputs` [B, ..., D] (any float dtype).

    Args:
      inputs: encoder outputs.
      training: update the quantizer's state (codebook, statistics).
      seed: optional shape [2] stateless seed of this training call, identical on
        every replica; by default the quantizer derives one from its own seed and
        its count of training calls.

    Returns:
      A `QuantizerOutput`.

    Raises:
      ValueError: if `inputs` are not floating point or their last dimension is
        not `embedding_dim`.
    """
    inputs = tf.convert_to_tensor(inputs)
    if not inputs.dtype.is_floating:
      raise ValueError(f"inputs must be floating point, got {inputs.dtype.name}.")
    if inputs.shape[-1] != self.embedding_dim:
      raise ValueError(f"inputs must have last dimension embedding_dim="
                       f"{self.embedding_dim}, got shape {inputs.shape}.")
    return self._quantize(inputs, training=training, seed=seed)

  def _quantize(self, inputs, training, seed) -> QuantizerOutput:
    raise NotImplementedError(f"{type(self).__name__} must implement _quantize.")

  def lookup(self, codes):
    raise NotImplementedError(f"{type(self).__name__} must implement lookup.")

  def code_shape(self, latent_shape):
    raise NotImplementedError(f"{type(self).__name__} must implement code_shape.")

  @property
  def codebooks(self) -> list:
    raise NotImplementedError(f"{type(self).__name__} must implement codebooks.")


class SingleCodebook(Quantizer):
  """A quantizer with one `codebook` variable [K, D]: lookup, code shape, codebooks.

  With `cosine` its codes stand for the codebook's rows l2-normalised.
  """

  cosine: bool = False

  def _create_codebook(self, trainable):
    """Creates `codebook` [K, D] (zeros until the first training call sets it),
    `initialized` and `num_updates`, each kept as the first replica's value."""
    first = dict(aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    with self.name_scope:
      self.codebook = tf.Variable(tf.zeros([self.num_embeddings, self.embedding_dim]),
                                  trainable=trainable, name="codebook", **first)
      self.initialized = tf.Variable(False, trainable=False, name="initialized", **first)
      self.num_updates = tf.Variable(0, dtype=tf.int64, trainable=False,
                                     name="num_updates", **first)

  def lookup(self, codes):
    """Codebook vectors [..., D] (float32) for int codes [...] in [0, K)."""
    return tf.gather(code_vectors(self.codebook, self.cosine), codes)

  def code_shape(self, latent_shape):
    """One image's codes for a latent grid: the grid itself."""
    return tuple(latent_shape)

  @property
  def codebooks(self) -> list:
    return [code_vectors(self.codebook, self.cosine)]
