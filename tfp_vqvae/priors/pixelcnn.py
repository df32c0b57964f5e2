"""Learned priors p(z) over the VQ-VAE's codes: gated PixelCNNs, one per code layout.

The VQ-VAE's bound -log p(x) <= -log p(x | z_q) - log p(z_q) holds for any prior
over the codes. With the uniform prior the second term is the number of codes times
log K (305.7 nats for 7x7 codes out of 512); an autoregressive prior fitted to the
codes of the training images makes it the prior's cross-entropy, and lets the model
generate new images by ancestral sampling (van den Oord et al. 2017, sec. 4.2).

The network is the gated PixelCNN of van den Oord et al. 2016 ("Conditional Image
Generation with PixelCNN Decoders"): codes are embedded, then each layer updates

  * a vertical stack whose output at row i sees rows <= i (all columns within
    reach). It reaches the horizontal stack only shifted down by one row, so row i
    is predicted from rows < i;
  * a horizontal stack whose output at (i, j) sees columns < j of row i (the first
    layer) or <= j of the previous layer's horizontal stack (later layers).

Together they see every earlier position in raster order once the stacks are deep
enough (no blind spot): `receptive_field_covers` says how deep. Each stack is
gated, tanh(a) * sigmoid(b), with an optional per-layer class bias. Causality comes
from padding and cropping rather than from masked kernels, so no multiply is spent
on weights that are zero.

One `GatedPixelCNN` models one grid of codes; its options cover every layout the
package produces (`model.VQVAE.code_shape`):

  * single level, codes [h, w]: the network above;
  * residual, codes [h, w, N] of N quantizer stages (`num_stages=N`): positions
    in raster order, and at each position its N stage codes one after another.
    The stacks see the sum of the N stage embeddings of each earlier position;
    stage n at a position is then predicted by its own output head from the
    stacks' features plus embeddings of the stages < n at that position (the
    spatial/depth split of RQ-Transformer, Lee et al. 2022, with a PixelCNN for
    space and a sum of embeddings for depth). This keeps the stacks on the h x w
    grid, so their depth and the blind-spot rule are those of a single level,
    where raster order over (h, w, N) as an h x (w N) grid would need N times the
    horizontal reach and mix stages in every kernel;
  * attention (`num_attention_blocks`): causal multi-head self-attention
    (nets/attention.py) updates the horizontal stack after evenly spaced layers, as in
    PixelSNAIL and VQ-VAE-2's top prior;
  * conditioning on another grid of codes (`condition_shape`, VQ-VAE-2's bottom
    prior given the top codes): the conditioning codes are embedded, go through a
    3x3 convolution, are upsampled (nearest neighbour) to this grid and enter every
    gated layer through a 1x1 convolution, like the class bias but per position.

`hierarchical_prior.HierarchicalPrior` composes a top and a bottom prior for
VQ-VAE-2's codes {"top": [ht, wt], "bottom": [hb, wb]}. `build_prior` makes the
prior of any config (this module's, the Transformer priors' of priors/transformer.py
and priors/maskgit.py, or a `HierarchicalPriorConfig` of two of a kind) by its
`build` method, and `load_prior` the trained one of a prior_dir, whose
prior_config.json names the prior (`CONFIG_CLASSES`; a record without a name,
written before there were other priors, is a PixelCNN's). Every prior has
`num_embeddings`, `num_classes`, `code_shape`, `level_sizes`, `exact_log_prob` and
`sample(seeds, temperature, labels)`; those with `exact_log_prob` (all but MaskGIT)
have `log_prob(codes, labels)` and `level_log_probs(codes, labels)`, MaskGIT a
`masked_nll` instead.

Like `networks`, it is built from the layers of nets/layers.py, initialised from
stateless seeds; options left at their defaults create no variables and draw no
seeds, so a single-level prior is the same network, initialised the same, as
before they existed (and restores its checkpoints).
"""

import dataclasses
import json
import os
from typing import Union

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.nets import attention as attention_lib
from tfp_vqvae.nets import layers
from tfp_vqvae.priors import categorical_sampling
from tfp_vqvae.priors import hierarchical as hierarchical_prior
from tfp_vqvae.priors import maskgit
from tfp_vqvae.priors import tokens
from tfp_vqvae.priors import transformer

tfd = tfp.distributions

PRIOR_CONFIG_FILE = "prior_config.json"
BEST_DIR = "best"


@dataclasses.dataclass(frozen=True)
class PriorConfig:
  """The architecture of a `GatedPixelCNN`, as written to `PRIOR_CONFIG_FILE`.

  Fields after `seed` were added later; a config file without them reads as
  their defaults (a single-level prior without attention or conditioning).
  """
  num_embeddings: int
  latent_shape: tuple[int, int]
  num_channels: int = 128
  num_layers: int = 6
  kernel_size: int = 3
  dropout_rate: float = 0.0
  num_classes: int = 0
  seed: int = 0
  num_stages: int = 1                 # N of residual codes [h, w, N]
  num_attention_blocks: int = 0       # causal self-attention blocks
  num_heads: int = 1                  # heads of each attention block
  condition_shape: tuple[int, ...] = ()  # (h, w) of the codes conditioned on, or ()

  @property
  def code_shape(self) -> tuple[int, ...]:
    """Shape of one example's codes: the grid, plus N for N > 1 stages."""
    return tuple(self.latent_shape) + ((self.num_stages,) if self.num_stages > 1 else ())

  def build(self, name: str = "prior") -> "GatedPixelCNN":
    return GatedPixelCNN(self, name=name)


@dataclasses.dataclass(frozen=True)
class HierarchicalPriorConfig:
  """The two priors of VQ-VAE-2's codes: the top's, and the bottom's given the top.

  Both are configs of one kind of prior (`PriorConfig`s, or the Transformer
  priors' configs).
  """
  top: Union[PriorConfig, tokens.TokenPriorConfig]
  bottom: Union[PriorConfig, tokens.TokenPriorConfig]

  def build(self, name: str = "prior") -> hierarchical_prior.HierarchicalPrior:
    return hierarchical_prior.HierarchicalPrior(self.top.build("top_prior"),
                                                self.bottom.build("bottom_prior"),
                                                name=name)


AnyPriorConfig = Union[PriorConfig, tokens.TokenPriorConfig, HierarchicalPriorConfig]
# The config class of each prior by the name it is registered under (`--prior`,
# configs/priors.py), as prior_config.json names it.
CONFIG_CLASSES = {"pixelcnn": PriorConfig,
                  "transformer": transformer.TransformerPriorConfig,
                  "maskgit": maskgit.MaskGITPriorConfig}


def _check_int(name, value, minimum):
  if int(value) != value or value < minimum:
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def receptive_field_covers(latent_shape, num_layers, kernel_size):
  """Whether the last layer at every position sees every earlier position.

  The vertical stack grows by kernel_size // 2 rows up and columns each way per
  layer; after the one-row shift, layer L at row i sees rows i - 1 - L*c .. i - 1
  and columns j - L*c .. j + L*c (c = kernel_size // 2). The horizontal stack sees
  columns j - 1 - L*c .. j - 1 of row i.

  Returns:
    True if the rows above and the columns of the grid are all within reach.
  """
  reach = num_layers * (kernel_size // 2)
  height, width = latent_shape
  return reach + 1 >= height - 1 and reach >= width - 1


def _shift_down(x):
  """Row i of the result is row i - 1 of x (zeros in row 0)."""
  return tf.pad(x, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]


def _shift_right(x):
  """Column j of the result is column j - 1 of x (zeros in column 0)."""
  return tf.pad(x, [[0, 0], [0, 0], [1, 0], [0, 0]])[:, :, :-1]


def _gate(x):
  a, b = tf.split(x, 2, axis=-1)
  return tf.tanh(a) * tf.sigmoid(b)


def _attention_layers(num_layers, num_blocks):
  """Indices of the layers an attention block follows: evenly spaced, the last last."""
  return [(k + 1) * num_layers // num_blocks - 1 for k in range(num_blocks)]


def _check_config(config, height, width):
  """Raises ValueError naming the first field of `config` that is out of range."""
  for arg, minimum in (("num_embeddings", 1), ("num_channels", 1), ("num_layers", 1),
                       ("kernel_size", 3), ("num_classes", 0), ("seed", 0),
                       ("num_stages", 1), ("num_attention_blocks", 0),
                       ("num_heads", 1)):
    _check_int(arg, getattr(config, arg), minimum)
  _check_int("latent height", height, 1)
  _check_int("latent width", width, 1)
  if config.kernel_size % 2 == 0:
    raise ValueError(f"kernel_size must be odd, got {config.kernel_size}.")
  if not 0.0 <= config.dropout_rate < 1.0:
    raise ValueError(f"dropout_rate must be in [0, 1), got {config.dropout_rate!r}.")
  if config.num_attention_blocks > config.num_layers:
    raise ValueError(f"num_attention_blocks={config.num_attention_blocks} exceeds "
                     f"num_layers={config.num_layers}: a block follows a layer.")
  if config.num_attention_blocks and config.num_channels % config.num_heads:
    raise ValueError(f"num_heads={config.num_heads} must divide num_channels="
                     f"{config.num_channels}.")
  if config.condition_shape:
    top = tuple(config.condition_shape)
    if len(top) != 2 or height % top[0] or width % top[1]:
      raise ValueError(f"A {height}x{width} grid cannot be conditioned on a grid of "
                       f"shape {top}: it must be 2-D and divide it.")
  if not receptive_field_covers((height, width), config.num_layers,
                                config.kernel_size):
    raise ValueError(
        f"num_layers={config.num_layers} of kernel_size={config.kernel_size} leave a "
        f"blind spot on a {height}x{width} grid: each layer reaches "
        f"{config.kernel_size // 2} more rows and columns; use more layers.")


class GatedPixelCNN(tf.Module):
  """p(codes) = prod over raster positions (and stages) of Categorical(code | earlier).

  Example (a prior over the default KMNIST VQ-VAE's 7x7 grid of 512 codes):
    prior = GatedPixelCNN(PriorConfig(num_embeddings=512, latent_shape=(7, 7)))
    prior.log_prob(codes)                   # [B] nats, codes int32 [B, 7, 7]
    prior.sample(seeds, temperature=1.0)    # int32 [B, 7, 7], seeds int64 [B]
  With `num_stages=N` codes are [B, 7, 7, N]; with `condition_shape` every call
  also takes the `condition` codes (see the module docstring).
  """
  exact_log_prob = True  # `log_prob` is log p(codes) (see the module docstring).

  def __init__(self, config: PriorConfig, name: str = "prior"):
    """Builds the embedding, the gated layers and the output head(s).

    Args:
      config: a `PriorConfig`.
      name: module name.

    Raises:
      ValueError: if a size is out of range, the kernel size is even, the
        layers are too few to see every earlier position of the grid, or the
        condition grid does not divide this one.
    """
    super().__init__(name=name)
    height, width = (int(s) for s in config.latent_shape)
    _check_config(config, height, width)
    self.config = dataclasses.replace(
        config, latent_shape=(height, width),
        condition_shape=tuple(int(s) for s in config.condition_shape))
    self.num_embeddings = int(config.num_embeddings)
    self.latent_shape = (height, width)
    self.code_shape = self.config.code_shape
    self.num_stages = int(config.num_stages)
    self.condition_shape = self.config.condition_shape
    self.num_classes = int(config.num_classes)
    channels, half = int(config.num_channels), int(config.kernel_size) // 2
    seeds = seeds_lib.SeedSequence(config.seed)

    def conv(in_channels, out_channels, kernel_shape, padding, name):
      """A causal conv: zero padding (top, left, right), nothing below."""
      top, left, right = padding
      return layers.Conv2D(in_channels, out_channels, kernel_shape,
                           padding=((top, 0), (left, right)), seeds=seeds, name=name)

    def head(name_suffix=""):
      return {"hidden": conv(channels, channels, (1, 1), (0, 0, 0),
                             name="hidden" + name_suffix),
              "output": conv(channels, self.num_embeddings, (1, 1), (0, 0, 0),
                             name="output" + name_suffix)}

    with self.name_scope:
      # Row n * K + k: code k of stage n (the stages' embeddings are summed).
      self.embedding = tf.Variable(
          tf.random.stateless_normal([self.num_stages * self.num_embeddings, channels],
                                     seeds.next()),
          name="embedding")
      self.layers = []
      for i in range(config.num_layers):
        layer = {
            # Rows i - c .. i, columns j - c .. j + c.
            "vertical": conv(channels, 2 * channels, (half + 1, 2 * half + 1),
                             (half, half, half), name=f"vertical_{i}"),
            "vertical_to_horizontal": conv(2 * channels, 2 * channels, (1, 1),
                                           (0, 0, 0), name=f"v_to_h_{i}"),
            # Columns j - c .. j of the horizontal input.
            "horizontal": conv(channels, 2 * channels, (1, half + 1), (0, half, 0),
                               name=f"horizontal_{i}"),
            "horizontal_out": conv(channels, channels, (1, 1), (0, 0, 0),
                                   name=f"horizontal_out_{i}"),
        }
        if self.num_classes:
          layer["class_bias"] = tf.Variable(
              tf.zeros([self.num_classes, 2, 2 * channels]), name=f"class_bias_{i}")
        self.layers.append(layer)
      stage_0 = head()
      self.hidden, self.output = stage_0["hidden"], stage_0["output"]
      # The options' variables come after, so that a prior without them is the
      # same network from the same seeds as before they existed.
      for k, i in enumerate(_attention_layers(config.num_layers,
                                              config.num_attention_blocks)):
        self.layers[i]["attention"] = attention_lib.CausalSelfAttention(
            channels, config.num_heads, (height, width), seeds=seeds,
            name=f"attention_{k}")
      if self.condition_shape:
        self.condition_embedding = tf.Variable(
            tf.random.stateless_normal([self.num_embeddings, channels], seeds.next()),
            name="condition_embedding")
        self.condition_conv = layers.Conv2D(channels, channels, 3, seeds=seeds,
                                            name="condition_conv")
        for i, layer in enumerate(self.layers):
          # Biases of the vertical and horizontal stacks' pre-activations.
          layer["condition"] = conv(channels, 4 * channels, (1, 1), (0, 0, 0),
                                    name=f"condition_{i}")
      if self.num_stages > 1:
        # Row (n - 1) * K + k: code k of stage n - 1, seen by the stages after it.
        self.stage_embedding = tf.Variable(
            tf.random.stateless_normal(
                [(self.num_stages - 1) * self.num_embeddings, channels], seeds.next()),
            name="stage_embedding")
        self.stage_heads = [head(f"_stage_{n}") for n in range(1, self.num_stages)]

  @property
  def level_sizes(self) -> dict[str, int]:
    """Codes per example of each part `level_log_probs` reports."""
    height, width = self.latent_shape
    if self.num_stages == 1:
      return {"codes": height * width}
    return {f"stage_{n}": height * width for n in range(self.num_stages)}

  def _check_labels(self, labels):
    if bool(self.num_classes) != (labels is not None):
      raise ValueError(f"This prior has num_classes={self.num_classes}: pass labels "
                       "exactly when num_classes > 0.")

  def _check_condition(self, condition):
    if bool(self.condition_shape) != (condition is not None):
      raise ValueError(f"This prior has condition_shape={self.condition_shape}: pass "
                       "condition codes exactly when it is not ().")

  def _condition_features(self, condition):
    """The conditioning codes [B, ht, wt] as features [B, h, w, C] of this grid."""
    if condition is None:
      return None
    x = tf.nn.relu(self.condition_conv(tf.gather(self.condition_embedding, condition)))
    rows = self.latent_shape[0] // self.condition_shape[0]
    columns = self.latent_shape[1] // self.condition_shape[1]
    return tf.repeat(tf.repeat(x, rows, axis=1), columns, axis=2)

  def _embed(self, codes):
    """Sum over stages of the embeddings of codes [B, h, w] or [B, h, w, N]."""
    if self.num_stages == 1:
      return tf.gather(self.embedding, codes)
    offsets = tf.range(self.num_stages) * self.num_embeddings
    return tf.reduce_sum(tf.gather(self.embedding, codes + offsets), axis=-2)

  def _features(self, codes, labels, condition_features, training, seed):
    """The horizontal stack's last output [B, h, w, C]: position p sees codes < p."""
    rate = self.config.dropout_rate if training else 0.0
    if rate and seed is None:
      raise ValueError("A stateless `seed` is required for dropout when training=True.")
    x = self._embed(codes)
    vertical, horizontal = x, _shift_right(x)
    for i, layer in enumerate(self.layers):
      vertical_pre = layer["vertical"](vertical)
      horizontal_pre = (layer["horizontal"](horizontal)
                        + layer["vertical_to_horizontal"](_shift_down(vertical_pre)))
      if labels is not None:
        class_bias = tf.gather(layer["class_bias"], labels)[:, None, None]
        vertical_pre += class_bias[..., 0, :]
        horizontal_pre += class_bias[..., 1, :]
      if condition_features is not None:
        # Not causal in the condition, which is given whole.
        vertical_bias, horizontal_bias = tf.split(
            layer["condition"](condition_features), 2, axis=-1)
        vertical_pre += vertical_bias
        horizontal_pre += horizontal_bias
      vertical, gated = _gate(vertical_pre), _gate(horizontal_pre)
      if rate:
        layer_seed = tf.random.experimental.stateless_fold_in(
            tf.cast(seed, tf.int64), seeds_lib.Stream.PRIOR_DROPOUT + i)
        vertical = tf.nn.experimental.stateless_dropout(
            vertical, rate, seed=layer_seed)
        gated = tf.nn.experimental.stateless_dropout(
            gated, rate, seed=tf.random.experimental.stateless_fold_in(layer_seed, 1))
      update = layer["horizontal_out"](gated)
      # The first layer's input is shifted: (i, j) holds code (i, j - 1). The
      # embedding of code (i, j) itself never enters, so no residual around it.
      horizontal = update if i == 0 else horizontal + update
      if "attention" in layer:
        # Position p attends to positions <= p, whose features see codes < p.
        horizontal += layer["attention"](horizontal)
    return horizontal

  def _stage_logits(self, features, codes, stage):
    """Logits [B, h, w, K] of stage `stage` given the features and stages < stage."""
    if stage == 0:
      hidden, output = self.hidden, self.output
    else:
      hidden, output = (self.stage_heads[stage - 1][k] for k in ("hidden", "output"))
      offsets = tf.range(stage) * self.num_embeddings
      features += tf.reduce_sum(
          tf.gather(self.stage_embedding, codes[..., :stage] + offsets), axis=-2)
    return output(tf.nn.relu(hidden(tf.nn.relu(features))))

  def _logits_of_features(self, features, codes):
    if self.num_stages == 1:
      return self._stage_logits(features, codes, 0)
    return tf.stack([self._stage_logits(features, codes, n)
                     for n in range(self.num_stages)], axis=-2)

  @tf.Module.with_name_scope
  def logits(self, codes, labels=None, training=False, seed=None, condition=None):
    """Logits [B, *code_shape, K] of each code given the codes before it.

    Args:
      codes: int [B, *code_shape] in [0, K).
      labels: int [B] class labels in [0, num_classes), iff num_classes > 0.
      training: applies dropout (to both stacks' gated outputs) if True.
      seed: shape [2] stateless dropout seed, required when training with dropout.
      condition: int [B, *condition_shape] codes in [0, K), iff condition_shape.

    Returns:
      float32 logits; those at raster position p (and stage n) do not depend on
      codes at positions after p, nor on stages >= n at p.

    Raises:
      ValueError: if labels or condition are given to a prior without them or
        missing for one with them, or no seed is given for dropout.
    """
    self._check_labels(labels)
    self._check_condition(condition)
    features = self._features(codes, labels, self._condition_features(condition),
                              training, seed)
    return self._logits_of_features(features, codes)

  def distribution(self, codes, labels=None, training=False, seed=None, condition=None):
    """`tfd.Independent(tfd.Categorical)` over `code_shape` with the logits given `codes`.

    Its `log_prob(codes)` is the prior's log p(codes); it is a distribution over
    the whole grid only as a scoring rule (each factor conditions on `codes`).
    """
    logits = self.logits(codes, labels, training=training, seed=seed,
                         condition=condition)
    return tfd.Independent(tfd.Categorical(logits=logits),
                           reinterpreted_batch_ndims=len(self.code_shape))

  def log_prob(self, codes, labels=None, training=False, seed=None, condition=None):
    """log p(codes) [B] in nats, for int codes [B, *code_shape]."""
    return self.distribution(codes, labels, training, seed, condition).log_prob(codes)

  def level_log_probs(self, codes, labels=None, condition=None):
    """log p of each part of `level_sizes` [B]: the whole grid, or each stage."""
    if self.num_stages == 1:
      return {"codes": self.log_prob(codes, labels, condition=condition)}
    per_code = tfd.Categorical(logits=self.logits(codes, labels, condition=condition)
                               ).log_prob(codes)
    return {f"stage_{n}": tf.reduce_sum(per_code[..., n], axis=[1, 2])
            for n in range(self.num_stages)}

  @tf.function
  def sample(self, seeds, temperature=1.0, labels=None, condition=None, top_k=0,
             top_p=1.0, stream=seeds_lib.Stream.PRIOR_SAMPLE):
    """Ancestral samples: code i ~ Categorical(logits_i / temperature | codes < i).

    The whole network runs once per code. The arguments, return value and errors
    are those of `transformer.CausalTransformerPrior.sample`: one seed per sample
    (int64 [B]), which alone decides its Gumbel noise, so a sample depends on its
    seed and knobs, not on the rest of the batch; the knobs temperature, top_k
    and top_p of `categorical_sampling`, each a scalar or one per sample; labels
    iff num_classes > 0, condition codes iff condition_shape; the noise's
    `stream`. Returns int32 codes [B, *code_shape] in [0, K).
    """
    self._check_labels(labels)
    self._check_condition(condition)
    categorical_sampling.check_knobs(self.num_embeddings, temperature, top_k, top_p)
    height, width = self.latent_shape
    stages = self.num_stages
    gumbel = categorical_sampling.gumbel_noise(
        seeds, stream, [height, width, stages, self.num_embeddings])
    condition_features = self._condition_features(condition)
    codes = tf.zeros(tf.concat([tf.shape(seeds), self.code_shape], 0), tf.int32)
    positions = tf.reshape(tf.range(height * width), [height, width])
    if stages > 1:
      positions = positions[..., None] * stages + tf.range(stages)
    for position in tf.range(height * width):
      row, column = position // width, position % width
      features = self._features(codes, labels, condition_features, False, None)
      for stage in range(stages):
        logits = categorical_sampling.truncate(
            self._stage_logits(features, codes, stage)[:, row, column], temperature,
            top_k, top_p)
        drawn = categorical_sampling.draw(logits, gumbel[:, row, column, stage])
        target = position * stages + stage
        drawn = tf.reshape(drawn, [-1] + [1] * len(self.code_shape))
        codes = tf.where(positions == target, drawn, codes)
    return codes


def build_prior(config: AnyPriorConfig) -> tf.Module:
  """The prior of a config (its `build`): a `GatedPixelCNN`, a Transformer prior, or
  a `HierarchicalPrior` of two.

  Raises:
    ValueError: see the prior's class and `HierarchicalPrior`.
  """
  return config.build()


def prior_name(config: AnyPriorConfig) -> str:
  """The name of a config's prior in `CONFIG_CLASSES`.

  Raises:
    ValueError: if no prior there has configs of its class.
  """
  level = config.top if isinstance(config, HierarchicalPriorConfig) else config
  for name, config_class in CONFIG_CLASSES.items():
    if config_class is type(level):
      return name
  raise ValueError(f"No prior has configs of class {type(level).__name__}.")


def write_config(prior_dir: str, config: AnyPriorConfig, extra: dict) -> None:
  """Writes `config`, its prior's name and run facts `extra` (a dict) to
  prior_dir/PRIOR_CONFIG_FILE."""
  record = dict(dataclasses.asdict(config), prior=prior_name(config), **extra)
  with tf.io.gfile.GFile(os.path.join(prior_dir, PRIOR_CONFIG_FILE), "w") as f:
    json.dump(record, f, indent=2, sort_keys=True)


def _level_config(config_class, record):
  """The config of class `config_class` of a JSON record's fields (other keys are
  left out), with tuples for its shapes."""
  names = {field.name for field in dataclasses.fields(config_class)}
  config = config_class(**{k: v for k, v in record.items() if k in names})
  return dataclasses.replace(config, latent_shape=tuple(config.latent_shape),
                             condition_shape=tuple(config.condition_shape))


def read_config(prior_dir: str) -> tuple[AnyPriorConfig, dict]:
  """(the prior's config, the other facts recorded with it).

  The config is of the class of the prior the record names (a PixelCNN's if it
  names none), or a `HierarchicalPriorConfig` of two.

  Raises:
    ValueError: if prior_dir has no PRIOR_CONFIG_FILE, or it names an unknown prior.
  """
  path = os.path.join(prior_dir, PRIOR_CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    raise ValueError(f"{prior_dir} is not a prior model_dir: it has no "
                     f"{PRIOR_CONFIG_FILE}.")
  with tf.io.gfile.GFile(path) as f:
    record = json.load(f)
  name = record.pop("prior", "pixelcnn")
  if name not in CONFIG_CLASSES:
    raise ValueError(f"{path} names an unknown prior {name!r}; known: "
                     f"{', '.join(CONFIG_CLASSES)}.")
  config_class = CONFIG_CLASSES[name]
  if "top" in record:
    config = HierarchicalPriorConfig(top=_level_config(config_class, record.pop("top")),
                                     bottom=_level_config(config_class,
                                                          record.pop("bottom")))
    return config, record
  names = {field.name for field in dataclasses.fields(config_class)}
  return (_level_config(config_class, record),
          {k: v for k, v in record.items() if k not in names})


def code_shape_of(vqvae):
  """A VQ-VAE's `code_shape` with tuples for shapes (a dict for VQ-VAE-2)."""
  shape = vqvae.code_shape
  if isinstance(shape, dict):
    return {name: tuple(level) for name, level in shape.items()}
  return tuple(shape)


def load_prior(prior_dir: str, vqvae=None) -> tuple[tf.Module, str]:
  """Rebuilds the prior of a prior_dir from its best-eval checkpoint (best/).

  Args:
    prior_dir: a directory written by `train_prior`.
    vqvae: optional VQ-VAE the prior must fit (same K and `code_shape`).

  Returns:
    (the prior, of the class its config names (`build_prior`); checkpoint path).

  Raises:
    ValueError: if prior_dir has no config or best checkpoint, or does not fit
      `vqvae`.
  """
  config, _ = read_config(prior_dir)
  prior = build_prior(config)
  if vqvae is not None and (prior.num_embeddings != vqvae.num_embeddings
                            or prior.code_shape != code_shape_of(vqvae)):
    raise ValueError(
        f"{prior_dir} holds a prior over codes of shape {prior.code_shape} out of "
        f"{prior.num_embeddings}, but the VQ-VAE's are {code_shape_of(vqvae)} out of "
        f"{vqvae.num_embeddings}.")
  path = tf.train.latest_checkpoint(os.path.join(prior_dir, BEST_DIR))
  if path is None:
    raise ValueError(f"{prior_dir} holds no {BEST_DIR}/ checkpoint to load.")
  status = tf.train.Checkpoint(prior=prior).read(path)
  status.assert_existing_objects_matched().expect_partial()
  return prior, path

