"""EMA vector quantizer (van den Oord et al. 2017, sec. 3.2 and appendix A.1).

Each latent vector z_e is replaced by its nearest codebook vector e_k (squared L2).
Gradients pass straight through to the encoder; the codebook is not trained by
gradient but follows exponential moving averages of the vectors assigned to it:

    N_k <- d_t * N_k + (1 - d_t) * n_k          n_k = #{i : code_i = k}
    m_k <- d_t * m_k + (1 - d_t) * sum_{i : code_i = k} z_e_i
    e_k  = m_k / laplace(N)_k

with d_t = decay, or with `decay_warmup` d_t = min(decay, (1 + t) / (10 + t)) at the
t-th update (`tf.train.ExponentialMovingAverage`'s `num_updates` rule).

What this implementation does that the common ones do not:
  * distances use ||x||^2 - 2 x.E + ||E||^2 as one matmul; no [N, K, D] broadcast,
    and the [N, K] scores are made and reduced in cache-sized blocks of rows;
  * per-code counts and sums are segment sums over the codes, never a dense [N, K]
    one-hot matmul;
  * under `tf.distribute`, counts and sums are SUM all-reduced across replicas before
    the moving average, so every replica keeps the same codebook, identical to a
    single-device run on the same global batch;
  * the codebook is initialised from encoder outputs of the first training batch and
    dead codes (EMA count under `dead_code_threshold`) are re-seeded from current
    encoder outputs, drawn from the *global* batch with a stateless seed so that all
    replicas pick the same vectors. A random-normal codebook collapses to a handful of
    codes on KMNIST;
  * the decay warms up (above): early in training the encoder outputs move fast and
    a codebook averaging over ~100 steps trails behind them, so most codes fall out
    of use together. On KMNIST (flags/kmnist.cfg) the warm-up raised the eval
    codebook usage at step 100 from 85% to 99.8%, and it is 100% from step 150 on
    (without it: 91.6% at step 200, 99.8% at step 800);
  * quantizer math runs in float32 whatever the model dtype.
"""

from typing import NamedTuple

import tensorflow as tf
# `assign_moving_average` is TF-internal (tensorflow/python/training/moving_averages.py;
# TF1 exported it as tf.compat.v1.train.assign_moving_average). Unlike a plain assign it
# is distribution-aware: in a replica context it MEAN-reduces `value` across replicas
# before updating the (mirrored) variable, which is why we SUM all-reduce first.
from tensorflow.python.training import moving_averages

from tfp_vqvae import seeds as seeds_lib


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
  [r * b, (r + 1) * b) (see distribute.py).
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


def straight_through_output(inputs, vectors, nearest, codes, loss, code_counts):
  """The `QuantizerOutput` of a quantizer call, with the straight-through estimator.

  Args:
    inputs: the call's [B, ..., D] inputs (for shape and dtype).
    vectors: float32 [N, D], the flattened inputs.
    nearest: float32 [N, D], their codebook vectors.
    codes: int32 [N] codes.
    loss: float32 [B] per-example quantizer loss.
    code_counts: float32 [K] code histogram.
  """
  # Forward value `nearest`, gradient identity to z_e.
  quantized = vectors + tf.stop_gradient(nearest - vectors)
  perplexity, usage = perplexity_and_usage(code_counts)
  return QuantizerOutput(
      quantized=tf.cast(tf.reshape(quantized, tf.shape(inputs)), inputs.dtype),
      codes=tf.reshape(codes, tf.shape(inputs)[:-1]),
      commitment_loss=tf.cast(loss, inputs.dtype),
      perplexity=perplexity,
      usage=usage,
      code_counts=code_counts)


def check_codebook_args(num_embeddings, embedding_dim, commitment_cost):
  """Raises ValueError unless K, D >= 1 are integers and beta >= 0."""
  for arg, value in (("num_embeddings", num_embeddings),
                     ("embedding_dim", embedding_dim)):
    if int(value) != value or value < 1:
      raise ValueError(f"{arg} must be a positive integer, got {value!r}.")
  if commitment_cost < 0:
    raise ValueError(f"commitment_cost must be >= 0, got {commitment_cost!r}.")


class EMAVariables(NamedTuple):
  """The state of an EMA codebook: the variables `EMAQuantization` reads and writes.

  `VectorQuantizerEMA` makes them with `tf.Variable`, the Keras layer
  (keras_layers.py) with `add_weight`. Under tf.distribute they are mirrored with
  ONLY_FIRST_REPLICA aggregation: every replica computes the same update (the
  statistics are all-reduced first), so a write from the first replica is right.
  """
  codebook: tf.Variable     # float32 [K, D]
  ema_count: tf.Variable    # float32 [K], N_k
  ema_sum: tf.Variable      # float32 [K, D], m_k
  initialized: tf.Variable  # bool [], set by the first training call
  num_updates: tf.Variable  # int64 [], training calls so far (the next seed's index)


class EMAQuantization:
  """The EMA quantizer's options and its math, applied to variables it is given.

  `VectorQuantizerEMA` (a `tf.Module` owning `tf.Variable`s) and the Keras layer
  (owning Keras weights) both quantize with `quantize(variables, inputs, ...)`, so
  the two compute the same bits.
  """

  def __init__(self, num_embeddings: int, embedding_dim: int,
               commitment_cost: float = 0.25, decay: float = 0.99,
               epsilon: float = 1e-5, dead_code_threshold: float = 0.5,
               initializer=None, decay_warmup: bool = True, seed: int = 0,
               reduction_group_size: int = 0):
    """Checks and keeps the options.

    Args:
      num_embeddings: K, the number of codes; >= 1.
      embedding_dim: D, the size of a code vector; >= 1.
      commitment_cost: beta >= 0, weight of the commitment loss.
      decay: EMA decay in [0, 1).
      epsilon: Laplace smoothing of the EMA counts; > 0.
      dead_code_threshold: a code whose EMA count (assignments per step, smoothed)
        falls below this is re-seeded from a current encoder output; 0 disables
        re-seeding. Must be in [0, 1) so a re-seeded code (count 1) is not dead at once.
      initializer: a `codebook_init.CodebookInit` computing the first codebook from
        rows of the first global batch (e.g. `KMeansInit()`); None for K rows of
        that batch.
      decay_warmup: if True, the t-th update (t = 0, 1, ...) uses the decay
        min(decay, (1 + t) / (10 + t)), so the codebook keeps up with the encoder
        early in training; if False, always `decay`.
      seed: integer seed of the random choices (which encoder outputs initialise
        and re-seed codes); see `training_seed`.
      reduction_group_size: 0, or the number of rows (images) of each equal slice
        of a training batch whose per-code sums are made separately and then added
        in slice order, as a SUM all-reduce over replicas holding one slice each
        adds them: one device with a batch of 2b in groups of b then computes the
        same bits as 2 replicas with b each (see `model.VQVAE`).

    Raises:
      ValueError: if an argument is out of range.
    """
    check_codebook_args(num_embeddings, embedding_dim, commitment_cost)
    if not 0.0 <= decay < 1.0:
      raise ValueError(f"decay must be in [0, 1), got {decay!r}.")
    if epsilon <= 0:
      raise ValueError(f"epsilon must be > 0, got {epsilon!r}.")
    if not 0.0 <= dead_code_threshold < 1.0:
      raise ValueError(f"dead_code_threshold must be in [0, 1), got {dead_code_threshold!r}.")
    self.num_embeddings = int(num_embeddings)
    self.embedding_dim = int(embedding_dim)
    self.commitment_cost = float(commitment_cost)
    self.decay = float(decay)
    self.epsilon = float(epsilon)
    self.dead_code_threshold = float(dead_code_threshold)
    self.initializer = initializer
    self.decay_warmup = bool(decay_warmup)
    self.seed = int(seed)
    self.reduction_group_size = int(reduction_group_size)

  def get_config(self) -> dict:
    """The constructor's keyword arguments (`initializer` as the object)."""
    return dict(num_embeddings=self.num_embeddings, embedding_dim=self.embedding_dim,
                commitment_cost=self.commitment_cost, decay=self.decay,
                epsilon=self.epsilon, dead_code_threshold=self.dead_code_threshold,
                initializer=self.initializer, decay_warmup=self.decay_warmup,
                seed=self.seed, reduction_group_size=self.reduction_group_size)

  def quantize(self, variables: EMAVariables, inputs: tf.Tensor, training: bool = False,
               seed=None) -> QuantizerOutput:
    """Quantizes `inputs` [..., D]; in training also updates `variables`.

    Args:
      variables: the codebook's `EMAVariables`.
      inputs: [B, ..., D] encoder outputs, any float dtype.
      training: if True, initialise the codebook on the first call, update the EMA
        statistics and re-seed dead codes (after computing the outputs with the
        codebook as it was).
      seed: optional shape [2] integer stateless seed of this training call,
        overriding `training_seed(self.seed, num_updates)` (a `ResidualQuantizer`
        passes its stages theirs). The same on every replica.

    Returns:
      A `QuantizerOutput`.

    Raises:
      ValueError: if the last dimension of `inputs` is not D, or the batch does not
        split into reduction groups.
    """
    inputs, vectors = flatten_inputs(inputs, self.embedding_dim)
    codebook = variables.codebook
    if training:
      groups = reduction_groups(inputs.shape[0], self.reduction_group_size)
      updates = variables.num_updates.read_value()
      if seed is None:
        seed = training_seed(self.seed, updates)
      context, num_replicas = replica_info()
      candidates = sample_global_rows(context, num_replicas, vectors,
                                      self.num_embeddings, seed)
      if self.initializer is None:
        codebook = self._initialize_once(variables, candidates)
      else:
        codebook = self._initialize_once(variables, self.initializer.first_codebook(
            variables.initialized, context, num_replicas, vectors, seed, candidates))

    codes = nearest_codes(vectors, codebook)
    nearest = tf.gather(codebook, codes)
    code_counts = tf.math.unsorted_segment_sum(
        tf.ones_like(codes, tf.float32), codes, self.num_embeddings)
    if training:
      code_sums = grouped_segment_sum(vectors, codes, self.num_embeddings, groups)
      code_counts, code_sums = sum_over_replicas(context, num_replicas,
                                                  (code_counts, code_sums))
      self._update(variables, code_counts, code_sums, candidates, updates)

    batch_size = tf.shape(inputs)[0]
    squared_error = tf.reshape(tf.square(vectors - tf.stop_gradient(nearest)),
                               [batch_size, -1])
    commitment_loss = self.commitment_cost * tf.reduce_sum(squared_error, axis=1)
    return straight_through_output(inputs, vectors, nearest, codes, commitment_loss,
                                   code_counts)

  def _initialize_once(self, variables, candidates):
    """On the first training call, sets the codebook to `candidates` (count 1 each)."""
    initialized = variables.initialized.read_value()
    variables.codebook.assign(tf.where(initialized, variables.codebook, candidates))
    variables.ema_sum.assign(tf.where(initialized, variables.ema_sum, candidates))
    variables.ema_count.assign(tf.where(initialized, variables.ema_count,
                                        tf.ones_like(variables.ema_count)))
    variables.initialized.assign(True)
    return variables.codebook.read_value()

  def _current_decay(self, updates):
    """The decay of update number `updates` (warmed up if `decay_warmup`)."""
    if not self.decay_warmup:
      return tf.constant(self.decay)
    updates = tf.cast(updates, tf.float32)
    return tf.minimum(self.decay, (1.0 + updates) / (10.0 + updates))

  def _update(self, variables, code_counts, code_sums, candidates, updates):
    """EMA update of counts and sums, dead-code re-seeding, new codebook."""
    decay = self._current_decay(updates)
    variables.num_updates.assign(updates + 1)
    moving_averages.assign_moving_average(variables.ema_count, code_counts, decay,
                                          zero_debias=False)
    moving_averages.assign_moving_average(variables.ema_sum, code_sums, decay,
                                          zero_debias=False)
    ema_count, ema_sum = variables.ema_count, variables.ema_sum
    if self.dead_code_threshold > 0:
      dead = ema_count < self.dead_code_threshold
      # A re-seeded code restarts as one assignment of its new vector.
      ema_count.assign(tf.where(dead, tf.ones_like(ema_count), ema_count))
      ema_sum.assign(tf.where(dead[:, None], candidates, ema_sum))
    counts = ema_count.read_value()
    total = tf.reduce_sum(counts)
    smoothed = (counts + self.epsilon) / (total + self.num_embeddings * self.epsilon) * total
    variables.codebook.assign(ema_sum / smoothed[:, None])


class SingleCodebook:
  """What a quantizer with one `codebook` variable [K, D] offers beyond its call."""

  def lookup(self, codes):
    """Codebook vectors [..., D] (float32) for int codes [...] in [0, K)."""
    return tf.gather(self.codebook, codes)

  def code_shape(self, latent_shape):
    """One image's codes for a latent grid: the grid itself."""
    return tuple(latent_shape)


class VectorQuantizerEMA(SingleCodebook, EMAQuantization, tf.Module):
  """Vector quantizer whose codebook follows EMAs of its assigned encoder outputs.

  Example:
    quantizer = VectorQuantizerEMA(num_embeddings=512, embedding_dim=64)
    out = quantizer(z_e, training=True)  # z_e [B, 7, 7, 64]
    out.quantized  # [B, 7, 7, 64]; out.codes [B, 7, 7] int32
  """

  def __init__(self, num_embeddings: int, embedding_dim: int,
               commitment_cost: float = 0.25, decay: float = 0.99,
               epsilon: float = 1e-5, dead_code_threshold: float = 0.5,
               initializer=None, decay_warmup: bool = True, seed: int = 0,
               reduction_group_size: int = 0, name: str = "quantizer"):
    """Creates the codebook and its EMA state.

    Args:
      num_embeddings, embedding_dim, commitment_cost, decay, epsilon,
      dead_code_threshold, initializer, decay_warmup, seed, reduction_group_size:
        see `EMAQuantization`.
      name: module name.

    Raises:
      ValueError: if an argument is out of range.
    """
    tf.Module.__init__(self, name=name)
    EMAQuantization.__init__(
        self, num_embeddings, embedding_dim, commitment_cost=commitment_cost,
        decay=decay, epsilon=epsilon, dead_code_threshold=dead_code_threshold,
        initializer=initializer, decay_warmup=decay_warmup, seed=seed,
        reduction_group_size=reduction_group_size)
    shape = [self.num_embeddings, self.embedding_dim]
    state = dict(trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    with self.name_scope:
      self.codebook = tf.Variable(tf.zeros(shape), name="codebook", **state)
      self.ema_count = tf.Variable(tf.zeros(shape[:1]), name="ema_count", **state)
      self.ema_sum = tf.Variable(tf.zeros(shape), name="ema_sum", **state)
      self.initialized = tf.Variable(False, name="initialized", **state)
      self.num_updates = tf.Variable(0, dtype=tf.int64, name="num_updates", **state)

  @tf.Module.with_name_scope
  def __call__(self, inputs, training=False, seed=None):
    """Quantizes `inputs` [..., D]; see `EMAQuantization.quantize`.

    Returns:
      A `QuantizerOutput`.
    """
    state = EMAVariables(self.codebook, self.ema_count, self.ema_sum, self.initialized,
                         self.num_updates)
    return self.quantize(state, inputs, training=training, seed=seed)
