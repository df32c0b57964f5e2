"""The codes of a layout as a sequence of tokens: the Transformer priors' config, inputs and heads.

The Transformer priors (priors/transformer.py, priors/maskgit.py) see an
example's codes as a sequence of N = h * w positions in raster order. A position
holds the codes of its S quantizer stages (S = 1 for a single grid [h, w];
residual codes are [h, w, S]) and is one token:

  * in: the sum of the embeddings of its stage codes (stage s has its own K
    rows), plus a learned embedding of the position (`positions` "learned" or
    "learned_and_rotary"; "rotary" and "learned_and_rotary" turn every
    attention's queries and keys by their row and column on the grid instead or
    as well, nets/transformer.py), plus, for a prior
    conditioned on another grid (VQ-VAE-2's bottom prior given the top codes
    [ht, wt]), that grid's codes embedded, mixed by a 3x3 convolution (so each
    position sees the neighbouring top codes too) and upsampled by repetition
    to h x w, the position's own features added to its input. The class of a
    class-conditional prior is one learned vector per class (`start`);
  * out: the network's feature at the position gives stage 0's logits through a
    head (Linear -> GELU -> Linear); stage s's head also sees the embeddings of
    the stages < s at that position, so the S codes of a position are predicted
    one after another (the spatial/depth split of RQ-Transformer, Lee et al.
    2022, with a sum of embeddings for depth, as the PixelCNN prior does).

`TokenPriorConfig` holds the sizes both priors share; each prior subclasses it so
that its type says which prior a config builds. `TokenPrior` is their common
base: the checked config, the attributes every prior of the package has
(`code_shape`, `num_embeddings`, ...), a `CodeTokens` and the Transformer blocks
(nets/transformer.py) in between.
"""

import dataclasses

import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.nets import layers
from tfp_vqvae.nets import transformer as transformer_lib


@dataclasses.dataclass(frozen=True)
class TokenPriorConfig:
  """The architecture of a Transformer prior over codes [h, w] or [h, w, S]."""
  num_embeddings: int                 # K
  latent_shape: tuple[int, int]       # (h, w) of the grid
  model_dim: int = 128                # D, the width of the residual stream
  num_layers: int = 4                 # Transformer blocks
  num_heads: int = 4                  # attention heads, dividing model_dim
  dropout_rate: float = 0.0           # on each block's two branches, in training
  num_classes: int = 0                # > 0: class-conditional, labels in [0, C)
  seed: int = 0                       # of the initial weights
  num_stages: int = 1                 # S of residual codes [h, w, S]
  condition_shape: tuple[int, ...] = ()  # (ht, wt) of the codes conditioned on, or ()
  positions: str = "learned"          # one of POSITIONS

  @property
  def code_shape(self) -> tuple[int, ...]:
    """Shape of one example's codes: the grid, plus S for S > 1 stages."""
    return tuple(self.latent_shape) + ((self.num_stages,) if self.num_stages > 1 else ())


# How a Transformer prior knows positions: a learned embedding added to its
# inputs, 2-D rotary embeddings in its attention, or both.
POSITIONS = ("learned", "rotary", "learned_and_rotary")


def checked_config(config: TokenPriorConfig) -> TokenPriorConfig:
  """`config` with int tuples for its shapes.

  Raises:
    ValueError: naming the first field out of range: a size below 1 (0 for
      num_classes and seed), num_heads not dividing model_dim, dropout_rate
      outside [0, 1), a condition_shape that is not a 2-D grid dividing the
      latent grid, positions not in POSITIONS, or rotary positions with heads
      whose width model_dim / num_heads is not a multiple of 4.
  """
  for field, minimum in (("num_embeddings", 1), ("model_dim", 1), ("num_layers", 1),
                         ("num_heads", 1), ("num_classes", 0), ("seed", 0),
                         ("num_stages", 1)):
    value = getattr(config, field)
    if int(value) != value or value < minimum:
      raise ValueError(f"{field} must be an integer >= {minimum}, got {value!r}.")
  latent_shape = tuple(int(s) for s in config.latent_shape)
  if len(latent_shape) != 2 or min(latent_shape) < 1:
    raise ValueError(f"latent_shape must be a grid (h, w) of sizes >= 1, got "
                     f"{config.latent_shape!r}.")
  if config.model_dim % config.num_heads:
    raise ValueError(f"num_heads={config.num_heads} must divide model_dim="
                     f"{config.model_dim}.")
  if not 0.0 <= config.dropout_rate < 1.0:
    raise ValueError(f"dropout_rate must be in [0, 1), got {config.dropout_rate!r}.")
  if config.positions not in POSITIONS:
    raise ValueError(f"positions must be one of {', '.join(POSITIONS)}, got "
                     f"{config.positions!r}.")
  if "rotary" in config.positions and (config.model_dim // config.num_heads) % 4:
    raise ValueError(f"positions={config.positions} needs heads of a width "
                     f"model_dim / num_heads = {config.model_dim} / {config.num_heads} "
                     "that is a multiple of 4.")
  condition_shape = tuple(int(s) for s in config.condition_shape)
  if condition_shape and (len(condition_shape) != 2 or min(condition_shape) < 1
                          or latent_shape[0] % condition_shape[0]
                          or latent_shape[1] % condition_shape[1]):
    raise ValueError(f"condition_shape={config.condition_shape!r} must be () or a "
                     f"grid (ht, wt) dividing latent_shape={latent_shape}.")
  return dataclasses.replace(config, latent_shape=latent_shape,
                             condition_shape=condition_shape)


def batch_size(tensor):
  """The size of `tensor`'s first axis: a Python int if static, else a scalar tensor.

  Loop variables made from it keep a static batch size when there is one, like
  those made from the inputs.
  """
  return tensor.shape[0] if tensor.shape[0] is not None else tf.shape(tensor)[0]


def dropout_seed(seed):
  """The dropout stream of a training step's seed [2], or None without one."""
  if seed is None:
    return None
  return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64),
                                                  seeds_lib.Stream.PRIOR_DROPOUT)


class CodeTokens(tf.Module):
  """The embeddings into and the per-stage heads out of a Transformer prior."""

  def __init__(self, config: TokenPriorConfig, seeds: seeds_lib.SeedSequence,
               name: str = "tokens"):
    """Builds the variables of the inputs and outputs of `config` (already checked)."""
    super().__init__(name=name)
    self.config = config
    num_embeddings, dim = config.num_embeddings, config.model_dim
    self.num_stages = config.num_stages
    self.num_positions = config.latent_shape[0] * config.latent_shape[1]
    with self.name_scope:
      # Row s * K + k: code k of stage s (a position's stages are summed).
      self.embedding = tf.Variable(
          tf.random.stateless_normal([self.num_stages * num_embeddings, dim],
                                     seeds.next()), name="embedding")
      # Small, as in transformers, so that at first the codes dominate. Drawn
      # (from the seed sequence) whatever `positions`, so that the other
      # variables start the same.
      position_embedding = 0.02 * tf.random.stateless_normal([self.num_positions, dim],
                                                             seeds.next())
      self.position_embedding = None
      if "learned" in config.positions:
        self.position_embedding = tf.Variable(position_embedding,
                                              name="position_embedding")
      # Row c: class c, or the one row of a prior without classes.
      self.start_embedding = tf.Variable(
          tf.random.stateless_normal([max(config.num_classes, 1), dim], seeds.next()),
          name="start_embedding")
      if config.condition_shape:
        self.condition_embedding = tf.Variable(
            tf.random.stateless_normal([num_embeddings, dim], seeds.next()),
            name="condition_embedding")
        self.condition_conv = layers.Conv2D(dim, dim, 3, seeds=seeds,
                                            name="condition_conv")
      if self.num_stages > 1:
        # Row (s - 1) * K + k: code k of stage s - 1, seen by the stages after it.
        self.stage_embedding = tf.Variable(
            tf.random.stateless_normal([(self.num_stages - 1) * num_embeddings, dim],
                                       seeds.next()), name="stage_embedding")
      self.heads = [
          (layers.Linear(dim, dim, seeds=seeds, name=f"hidden_{s}"),
           layers.Linear(dim, num_embeddings, seeds=seeds, name=f"output_{s}"))
          for s in range(self.num_stages)]

  def check_inputs(self, labels, condition):
    """Raises ValueError unless labels and condition come exactly when configured."""
    if bool(self.config.num_classes) != (labels is not None):
      raise ValueError(f"This prior has num_classes={self.config.num_classes}: pass "
                       "labels exactly when num_classes > 0.")
    if bool(self.config.condition_shape) != (condition is not None):
      raise ValueError(f"This prior has condition_shape={self.config.condition_shape}: "
                       "pass condition codes exactly when it is not ().")

  def to_sequence(self, codes):
    """int [B, *code_shape] -> int32 [B, N, S]."""
    return tf.reshape(tf.cast(codes, tf.int32), [-1, self.num_positions, self.num_stages])

  def to_codes(self, sequence):
    """[B, N, S, ...] -> [B, *code_shape, ...] (the inverse of `to_sequence`)."""
    inner = sequence.shape[3:]
    return tf.reshape(sequence, [-1, *self.config.code_shape, *inner])

  def embed(self, sequence):
    """Sum over stages of the embeddings of codes [..., S]: [..., D]."""
    offsets = tf.range(self.num_stages) * self.config.num_embeddings
    return tf.reduce_sum(tf.gather(self.embedding, sequence + offsets), axis=-2)

  def start(self, labels, batch_size):
    """[B, D]: the embedding of each example's class, or the one start vector."""
    if labels is None:
      return tf.repeat(self.start_embedding, batch_size, axis=0)
    return tf.gather(self.start_embedding, tf.cast(labels, tf.int32))

  def context(self, condition):
    """What every input adds at its position: [1 or B, N, D].

    The learned position embedding (zeros without one), plus the features of
    the condition codes [B, ht, wt] at each position when the prior is
    conditioned.
    """
    context = (tf.zeros([1, self.num_positions, self.config.model_dim])
               if self.position_embedding is None else self.position_embedding[None])
    if condition is None:
      return context
    height, width = self.config.latent_shape
    top_height, top_width = self.config.condition_shape
    x = tf.gather(self.condition_embedding, tf.cast(condition, tf.int32))
    x = tf.nn.gelu(self.condition_conv(x))
    x = tf.repeat(tf.repeat(x, height // top_height, axis=1), width // top_width, axis=2)
    return context + tf.reshape(x, [-1, self.num_positions, self.config.model_dim])

  def stage_logits(self, features, sequence, stage):
    """Logits [..., K] of stage `stage` from features [..., D] and codes [..., S].

    Only the codes of stages < `stage` are read.
    """
    if stage:
      offsets = tf.range(stage) * self.config.num_embeddings
      features += tf.reduce_sum(
          tf.gather(self.stage_embedding, sequence[..., :stage] + offsets), axis=-2)
    hidden, output = self.heads[stage]
    return output(tf.nn.gelu(hidden(features)))

  def logits(self, features, sequence):
    """Logits [..., S, K] of every stage, stage s given the codes of stages < s."""
    return tf.stack([self.stage_logits(features, sequence, s)
                     for s in range(self.num_stages)], axis=-2)


class TokenPrior(tf.Module):
  """What the Transformer priors share: their config, tokens and blocks.

  Attributes: `config` (checked), `num_embeddings`, `latent_shape`,
  `code_shape`, `num_stages`, `num_classes`, `condition_shape` (as
  `pixelcnn.GatedPixelCNN` has them), `tokens` (a `CodeTokens`) and
  `transformer` (a `nets.transformer.TransformerStack`).
  """

  def __init__(self, config: TokenPriorConfig, name: str = "prior"):
    """Builds the tokens' embeddings and heads, then the Transformer blocks.

    Raises:
      ValueError: naming a field of `config` out of range (`checked_config`).
    """
    super().__init__(name=name)
    self.config = checked_config(config)
    self.num_embeddings = self.config.num_embeddings
    self.latent_shape = self.config.latent_shape
    self.code_shape = self.config.code_shape
    self.num_stages = self.config.num_stages
    self.num_classes = self.config.num_classes
    self.condition_shape = self.config.condition_shape
    self._seeds = seeds_lib.SeedSequence(self.config.seed)
    with self.name_scope:
      self.tokens = CodeTokens(self.config, self._seeds)
      self.transformer = transformer_lib.TransformerStack(
          self.config.model_dim, self.config.num_layers, self.config.num_heads,
          self.config.dropout_rate, seeds=self._seeds, name="transformer",
          rotary_grid=(self.latent_shape if "rotary" in self.config.positions
                       else None))

  @property
  def level_sizes(self) -> dict[str, int]:
    """Codes per example of each part of the log-likelihood: the grid, or each stage."""
    num_positions = self.tokens.num_positions
    if self.num_stages == 1:
      return {"codes": num_positions}
    return {f"stage_{s}": num_positions for s in range(self.num_stages)}
