"""A learned prior p(z) over the VQ-VAE's grid of codes: a gated PixelCNN.

The VQ-VAE's bound -log p(x) <= -log p(x | z_q) - log p(z_q) holds for any prior
over the codes. With the uniform prior the second term is h * w * log K (305.7 nats
for 7x7 codes out of 512); an autoregressive prior fitted to the codes of the
training images makes it the prior's cross-entropy, and lets the model generate
new images by ancestral sampling (van den Oord et al. 2017, sec. 4.2).

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

Like `networks`, it is built from the layers of layers.py, initialised from
stateless seeds.
"""

import dataclasses
import json
import os

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_vqvae import layers
from tfp_vqvae import seeds as seeds_lib

tfd = tfp.distributions

PRIOR_CONFIG_FILE = "prior_config.json"
BEST_DIR = "best"


@dataclasses.dataclass(frozen=True)
class PriorConfig:
  """The architecture of a `GatedPixelCNN`, as written to `PRIOR_CONFIG_FILE`."""
  num_embeddings: int
  latent_shape: tuple[int, int]
  num_channels: int = 128
  num_layers: int = 6
  kernel_size: int = 3
  dropout_rate: float = 0.0
  num_classes: int = 0
  seed: int = 0


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


class GatedPixelCNN(tf.Module):
  """p(codes) = prod over raster positions of Categorical(codes_i | codes_<i).

  Example (a prior over the default KMNIST VQ-VAE's 7x7 grid of 512 codes):
    prior = GatedPixelCNN(PriorConfig(num_embeddings=512, latent_shape=(7, 7)))
    prior.log_prob(codes)                   # [B] nats, codes int32 [B, 7, 7]
    prior.sample(seeds, temperature=1.0)    # int32 [B, 7, 7], seeds int64 [B]
  """

  def __init__(self, config, name="prior"):
    """Builds the embedding, the gated layers and the output head.

    Args:
      config: a `PriorConfig`.
      name: module name.

    Raises:
      ValueError: if a size is out of range, the kernel size is even, or the
        layers are too few to see every earlier position of the grid.
    """
    super().__init__(name=name)
    height, width = (int(s) for s in config.latent_shape)
    for arg, minimum in (("num_embeddings", 1), ("num_channels", 1), ("num_layers", 1),
                         ("kernel_size", 3), ("num_classes", 0), ("seed", 0)):
      _check_int(arg, getattr(config, arg), minimum)
    _check_int("latent height", height, 1)
    _check_int("latent width", width, 1)
    if config.kernel_size % 2 == 0:
      raise ValueError(f"kernel_size must be odd, got {config.kernel_size}.")
    if not 0.0 <= config.dropout_rate < 1.0:
      raise ValueError(f"dropout_rate must be in [0, 1), got {config.dropout_rate!r}.")
    if not receptive_field_covers((height, width), config.num_layers,
                                  config.kernel_size):
      raise ValueError(
          f"num_layers={config.num_layers} of kernel_size={config.kernel_size} leave a "
          f"blind spot on a {height}x{width} grid: each layer reaches "
          f"{config.kernel_size // 2} more rows and columns; use more layers.")
    self.config = dataclasses.replace(config, latent_shape=(height, width))
    self.num_embeddings = int(config.num_embeddings)
    self.latent_shape = (height, width)
    self.num_classes = int(config.num_classes)
    channels, half = int(config.num_channels), int(config.kernel_size) // 2
    seeds = seeds_lib.SeedSequence(config.seed)

    def conv(in_channels, out_channels, kernel_shape, padding, name):
      """A causal conv: zero padding (top, left, right), nothing below."""
      top, left, right = padding
      return layers.Conv2D(in_channels, out_channels, kernel_shape,
                           padding=((top, 0), (left, right)), seeds=seeds, name=name)

    with self.name_scope:
      self.embedding = tf.Variable(
          tf.random.stateless_normal([self.num_embeddings, channels], seeds.next()),
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
      self.hidden = conv(channels, channels, (1, 1), (0, 0, 0), name="hidden")
      self.output = conv(channels, self.num_embeddings, (1, 1), (0, 0, 0),
                         name="output")

  def _check_labels(self, labels):
    if bool(self.num_classes) != (labels is not None):
      raise ValueError(f"This prior has num_classes={self.num_classes}: pass labels "
                       "exactly when num_classes > 0.")

  @tf.Module.with_name_scope
  def logits(self, codes, labels=None, training=False, seed=None):
    """Logits [B, h, w, K] of each code given the codes before it in raster order.

    Args:
      codes: int [B, h, w] in [0, K).
      labels: int [B] class labels in [0, num_classes), iff num_classes > 0.
      training: applies dropout (to both stacks' gated outputs) if True.
      seed: shape [2] stateless dropout seed, required when training with dropout.

    Returns:
      float32 logits; those at position i do not depend on codes at positions >= i.

    Raises:
      ValueError: if labels are given to an unconditional prior or missing for a
        conditional one, or no seed is given for dropout.
    """
    self._check_labels(labels)
    rate = self.config.dropout_rate if training else 0.0
    if rate and seed is None:
      raise ValueError("A stateless `seed` is required for dropout when training=True.")
    x = tf.gather(self.embedding, codes)
    vertical, horizontal = x, _shift_right(x)
    for i, layer in enumerate(self.layers):
      vertical_pre = layer["vertical"](vertical)
      horizontal_pre = (layer["horizontal"](horizontal)
                        + layer["vertical_to_horizontal"](_shift_down(vertical_pre)))
      if labels is not None:
        class_bias = tf.gather(layer["class_bias"], labels)[:, None, None]
        vertical_pre += class_bias[..., 0, :]
        horizontal_pre += class_bias[..., 1, :]
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
    return self.output(tf.nn.relu(self.hidden(tf.nn.relu(horizontal))))

  def distribution(self, codes, labels=None, training=False, seed=None):
    """`tfd.Independent(tfd.Categorical)` over [h, w] with the logits given `codes`.

    Its `log_prob(codes)` is the prior's log p(codes); it is a distribution over
    the whole grid only as a scoring rule (each factor conditions on `codes`).
    """
    logits = self.logits(codes, labels, training=training, seed=seed)
    return tfd.Independent(tfd.Categorical(logits=logits), reinterpreted_batch_ndims=2)

  def log_prob(self, codes, labels=None, training=False, seed=None):
    """log p(codes) [B] in nats, for int codes [B, h, w]."""
    return self.distribution(codes, labels, training, seed).log_prob(codes)

  @tf.function
  def sample(self, seeds, temperature=1.0, labels=None):
    """Ancestral samples: code i ~ Categorical(logits_i / temperature | codes < i).

    Each example draws from its own seed (Gumbel-max with stateless noise), so a
    sample depends on its seed only, not on the rest of the batch.

    Args:
      seeds: int64 [B], one seed per sample.
      temperature: scalar > 0; below 1 sharpens, above 1 flattens each factor.
      labels: int [B] class labels, iff num_classes > 0.

    Returns:
      int32 codes [B, h, w] in [0, K).
    """
    self._check_labels(labels)
    height, width = self.latent_shape
    seeds = tf.cast(seeds, tf.int64)
    temperature = tf.convert_to_tensor(temperature, tf.float32)
    tiny = tf.experimental.numpy.finfo(tf.float32).tiny
    uniform = tf.map_fn(
        lambda s: tf.random.stateless_uniform(
            [height, width, self.num_embeddings], seeds_lib.stream_seed(s, seeds_lib.Stream.PRIOR_SAMPLE),
            minval=tiny, maxval=1.0),
        seeds, fn_output_signature=tf.float32)
    gumbel = -tf.math.log(-tf.math.log(uniform))
    codes = tf.zeros(tf.concat([tf.shape(seeds), [height, width]], 0), tf.int32)
    positions = tf.reshape(tf.range(height * width), [height, width])
    for position in tf.range(height * width):
      row, column = position // width, position % width
      logits = self.logits(codes, labels)[:, row, column]
      drawn = tf.argmax(logits / temperature + gumbel[:, row, column], axis=-1,
                        output_type=tf.int32)
      codes = tf.where(positions == position, drawn[:, None, None], codes)
    return codes


def write_config(prior_dir, config, extra):
  """Writes `config` and run facts `extra` (a dict) to prior_dir/PRIOR_CONFIG_FILE."""
  record = dict(dataclasses.asdict(config), **extra)
  with tf.io.gfile.GFile(os.path.join(prior_dir, PRIOR_CONFIG_FILE), "w") as f:
    json.dump(record, f, indent=2, sort_keys=True)


def read_config(prior_dir):
  """(PriorConfig, the other facts recorded with it) of a prior_dir.

  Raises:
    ValueError: if prior_dir has no PRIOR_CONFIG_FILE.
  """
  path = os.path.join(prior_dir, PRIOR_CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    raise ValueError(f"{prior_dir} is not a prior model_dir: it has no "
                     f"{PRIOR_CONFIG_FILE}.")
  with tf.io.gfile.GFile(path) as f:
    record = json.load(f)
  names = {field.name for field in dataclasses.fields(PriorConfig)}
  config = PriorConfig(**{k: v for k, v in record.items() if k in names})
  config = dataclasses.replace(config, latent_shape=tuple(config.latent_shape))
  return config, {k: v for k, v in record.items() if k not in names}


def load_prior(prior_dir, vqvae=None):
  """Rebuilds the prior of a prior_dir from its best-eval checkpoint (best/).

  Args:
    prior_dir: a directory written by `train_prior`.
    vqvae: optional `model.VQVAE` the prior must fit (same K and grid).

  Returns:
    (GatedPixelCNN, checkpoint path).

  Raises:
    ValueError: if prior_dir has no config or best checkpoint, or does not fit
      `vqvae`.
  """
  config, _ = read_config(prior_dir)
  if vqvae is not None and (config.num_embeddings != vqvae.num_embeddings
                            or config.latent_shape != tuple(vqvae.latent_shape)):
    raise ValueError(
        f"{prior_dir} holds a prior over {config.latent_shape} grids of "
        f"{config.num_embeddings} codes, but the VQ-VAE has {tuple(vqvae.latent_shape)} "
        f"grids of {vqvae.num_embeddings}.")
  path = tf.train.latest_checkpoint(os.path.join(prior_dir, BEST_DIR))
  if path is None:
    raise ValueError(f"{prior_dir} holds no {BEST_DIR}/ checkpoint to load.")
  prior = GatedPixelCNN(config)
  status = tf.train.Checkpoint(prior=prior).read(path)
  status.assert_existing_objects_matched().expect_partial()
  return prior, path
