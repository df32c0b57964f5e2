"""Keras 3 vector-quantization layers: the package's quantizers inside a `keras.Model`.

    z_e = keras.layers.Conv2D(16, 3, padding="same")(images)
    z_q = VectorQuantizerEMALayer(num_embeddings=32, embedding_dim=16)(z_e)
    logits = keras.layers.Conv2D(1, 3, padding="same")(z_q)

`VectorQuantizerEMALayer` keeps an EMA codebook, `VectorQuantizerLossLayer` a codebook
trained by gradient. Each keeps its state in Keras weights (`add_weight`, so Keras
tracks, saves and distributes them) and quantizes with the objects the tf.Module
quantizers use, `quantizer.EMAQuantization` and `quantizer_loss.LossQuantization`,
applied to the weights' TensorFlow variables: nearest codes, first-batch and
dead-code seeding from the global batch, the grouped per-code sums, the EMA update and
the per-call seeds drawn from (`seed`, `num_updates`) are the same code, so a layer
computes the same bits as `VectorQuantizerEMA` / `VectorQuantizerLoss` with the same
options.

`call` returns the quantized tensor (straight-through gradient to its input) and
adds the quantizer's loss with `add_loss`, as a mean over the batch, the latent
positions and the D channels: the scale of Keras' own losses ("mse",
"binary_crossentropy") and of Sonnet's and the Keras VQ-VAE example's layers, so
`commitment_cost=0.25` weighs it as they do. (`QuantizerOutput.commitment_loss`
sums over positions and channels instead, for a likelihood summed over pixels.)
The loss-trained layer's loss includes the codebook term that trains its codebook.
`quantizer_output` returns the whole `QuantizerOutput` (codes, perplexity, usage).

Under `tf.distribute.MirroredStrategy` (build and compile the model in
`strategy.scope()`), code counts and sums are SUM all-reduced across replicas before
the update, and the weights are mirrored with ONLY_FIRST_REPLICA aggregation, so the
replicas keep one codebook, the one a single device computes on the same global
batch. The layers need the TensorFlow backend of Keras.
"""

import threading
from typing import Union

import keras
import tensorflow as tf

from tfp_vqvae.internal import checks
from tfp_vqvae.quantizers import base as quantizer_lib
from tfp_vqvae.quantizers import codebook_init
from tfp_vqvae.quantizers import ema as ema_lib
from tfp_vqvae.quantizers import loss as quantizer_loss

_PACKAGE = "tfp_vqvae"

# The initialisers travel in a layer's config by their registered Keras names.
for _init_class in (codebook_init.KMeansInit, codebook_init.UniformInit):
  keras.saving.register_keras_serializable(package=_PACKAGE)(_init_class)

# What the codebook state weights are made with: the quantization math assigns them
# itself (never the optimizer), all replicas assign the same values, and mixed
# precision must not cast them.
_STATE = dict(trainable=False, autocast=False, aggregation="only_first_replica")


def _initializer_from_config(initializer):
  """A `CodebookInit` (or None) from itself or its Keras-serialised config."""
  if isinstance(initializer, dict):
    return keras.saving.deserialize_keras_object(initializer)
  return initializer


class _QuantizerLayer(keras.layers.Layer):
  """What both layers share: build checks, `call`, `quantizer_output`, `lookup`, config."""

  # The NamedTuple of variables the quantization reads and writes; its fields name
  # the layer's weights.
  _VARIABLES = None

  def __init__(self, quantization, **kwargs):
    if keras.backend.backend() != "tensorflow":
      raise ValueError(f"{type(self).__name__} needs the TensorFlow backend of Keras "
                       f"(KERAS_BACKEND=tensorflow), not {keras.backend.backend()!r}.")
    super().__init__(**kwargs)
    self._quantization = quantization
    # The loss this layer added last in each thread (see `_get_own_losses`).
    self._thread_loss = threading.local()

  @property
  def num_embeddings(self) -> int:
    return self._quantization.num_embeddings

  @property
  def embedding_dim(self) -> int:
    return self._quantization.embedding_dim

  def build(self, input_shape):
    if input_shape[-1] != self.embedding_dim:
      raise ValueError(f"{self.name} expects inputs with last dimension "
                       f"embedding_dim={self.embedding_dim}, got shape {input_shape}.")
    self._build_weights()

  def _build_weights(self):
    """Adds the weights named in `_VARIABLES`."""
    raise NotImplementedError

  def _add_counters(self):
    """Adds the `initialized` flag and the `num_updates` count of training calls."""
    self.initialized = self.add_weight(shape=(), dtype="bool", initializer="zeros",
                                       name="initialized", **_STATE)
    self.num_updates = self.add_weight(shape=(), dtype="int64", initializer="zeros",
                                       name="num_updates", **_STATE)

  def quantizer_output(self, inputs, training: bool = False) -> quantizer_lib.QuantizerOutput:
    """The `QuantizerOutput` of `inputs` [..., D]; in training, updates the codebook.

    Unlike calling the layer, adds no loss.

    Args:
      inputs: [B, ..., D] float tensor.
      training: if True, initialise the codebook on the first call and update it as
        the quantization does (EMA: statistics; loss: nothing after the first call).

    Returns:
      A `quantizer.QuantizerOutput`.

    Raises:
      ValueError: if `inputs` are not floats (latents, not pixels or codes).
    """
    inputs = tf.convert_to_tensor(inputs)
    if not inputs.dtype.is_floating:
      raise ValueError(f"{self.name}: inputs must be float latents [..., "
                       f"{self.embedding_dim}], got {inputs.dtype.name}.")
    if not self.built:
      self.build(inputs.shape)
    # `.value` of a Keras weight is its tf.Variable (a MirroredVariable under
    # MirroredStrategy), which the shared math assigns and all-reduces into.
    variables = self._VARIABLES(*(getattr(self, name).value
                                  for name in self._VARIABLES._fields))
    return self._quantization.quantize(variables, inputs, training=bool(training))

  def call(self, inputs, training=None):
    out = self.quantizer_output(inputs, training=bool(training))
    per_example = tf.size(inputs) // tf.shape(inputs)[0]
    loss = (tf.reduce_mean(tf.cast(out.commitment_loss, tf.float32))
            / tf.cast(per_example, tf.float32))
    self._thread_loss.value = loss
    self.add_loss(loss)
    return out.quantized

  def _get_own_losses(self):
    # MirroredStrategy traces each replica in its own thread, all sharing this
    # layer's one list of losses, and runs them in turn between all-reduces. A
    # replica resumes from the quantizer's all-reduces after the others have added
    # their losses, so Keras 3 would hand it theirs too: the model's loss and its
    # progress-bar value would count them (the gradients would not, as other
    # replicas' losses do not depend on this replica's weights). With several
    # replicas, keep the loss this replica's thread added.
    losses = super()._get_own_losses()
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
      return losses
    mine = getattr(self._thread_loss, "value", None)
    return [loss for loss in losses if loss is mine]

  def compute_output_shape(self, input_shape):
    return input_shape

  def lookup(self, codes) -> tf.Tensor:
    """Codebook vectors [..., D] (float32) for integer codes [...] in [0, K).

    Raises:
      ValueError: if `codes` are not integers, or (eagerly) one is outside
        [0, K) in its own dtype (`checks.codes`: int64 2**32 + 3 is not code 3).
    """
    return tf.gather(quantizer_lib.code_vectors(self.codebook.value,
                                                self._quantization.cosine),
                     checks.codes(codes, self.num_embeddings))

  def get_config(self) -> dict:
    config = super().get_config()
    options = self._quantization.get_config()
    options["initializer"] = keras.saving.serialize_keras_object(options["initializer"])
    config.update(options)
    return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class VectorQuantizerEMALayer(_QuantizerLayer):
  """A Keras layer quantizing its inputs with an EMA codebook (`VectorQuantizerEMA`).

  Weights: codebook [K, D], ema_count [K], ema_sum [K, D], initialized, num_updates,
  all non-trainable: the codebook follows EMAs of the inputs assigned to it.

  Example:
    z_q = VectorQuantizerEMALayer(num_embeddings=512, embedding_dim=64)(z_e)
  """

  _VARIABLES = ema_lib.EMAVariables

  def __init__(self, num_embeddings: int, embedding_dim: int,
               commitment_cost: float = 0.25, decay: float = 0.99,
               epsilon: float = 1e-5, dead_code_threshold: float = 0.5,
               initializer: Union[None, codebook_init.CodebookInit, dict] = None,
               decay_warmup: bool = True, seed: int = 0, reduction_group_size: int = 0,
               rotation_trick: bool = False, cosine: bool = False, **kwargs):
    """Checks the options; the weights are made when the layer is built.

    Args:
      num_embeddings, embedding_dim, commitment_cost, decay, epsilon,
      dead_code_threshold, decay_warmup, seed, reduction_group_size,
      rotation_trick, cosine: see `quantizer.EMAQuantization`.
      initializer: a `codebook_init.CodebookInit`, its Keras-serialised config, or
        None for K rows of the first training batch.
      **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).

    Raises:
      ValueError: if an option is out of range or Keras does not run on TensorFlow.
    """
    super().__init__(ema_lib.EMAQuantization(
        num_embeddings, embedding_dim, commitment_cost=commitment_cost, decay=decay,
        epsilon=epsilon, dead_code_threshold=dead_code_threshold,
        initializer=_initializer_from_config(initializer), decay_warmup=decay_warmup,
        seed=seed, reduction_group_size=reduction_group_size,
        rotation_trick=rotation_trick, cosine=cosine), **kwargs)

  def _build_weights(self):
    shape = (self.num_embeddings, self.embedding_dim)
    self.codebook = self.add_weight(shape=shape, initializer="zeros", name="codebook",
                                    **_STATE)
    self.ema_count = self.add_weight(shape=shape[:1], initializer="zeros",
                                     name="ema_count", **_STATE)
    self.ema_sum = self.add_weight(shape=shape, initializer="zeros", name="ema_sum",
                                   **_STATE)
    self._add_counters()


@keras.saving.register_keras_serializable(package=_PACKAGE)
class VectorQuantizerLossLayer(_QuantizerLayer):
  """A Keras layer quantizing with a gradient-trained codebook (`VectorQuantizerLoss`).

  Weights: codebook [K, D] (trainable: the optimizer moves it by the codebook loss
  this layer adds), initialized and num_updates.

  Example:
    z_q = VectorQuantizerLossLayer(num_embeddings=512, embedding_dim=64)(z_e)
  """

  _VARIABLES = quantizer_loss.LossVariables

  def __init__(self, num_embeddings: int, embedding_dim: int,
               commitment_cost: float = 0.25,
               initializer: Union[None, codebook_init.CodebookInit, dict] = None,
               seed: int = 0, rotation_trick: bool = False, cosine: bool = False,
               **kwargs):
    """Checks the options; the weights are made when the layer is built.

    Args:
      num_embeddings, embedding_dim, commitment_cost, seed, rotation_trick, cosine:
        see `quantizer_loss.LossQuantization`.
      initializer: a `codebook_init.CodebookInit`, its Keras-serialised config, or
        None for K rows of the first training batch.
      **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).

    Raises:
      ValueError: if an option is out of range or Keras does not run on TensorFlow.
    """
    super().__init__(quantizer_loss.LossQuantization(
        num_embeddings, embedding_dim, commitment_cost=commitment_cost,
        initializer=_initializer_from_config(initializer), seed=seed,
        rotation_trick=rotation_trick, cosine=cosine), **kwargs)

  def _build_weights(self):
    self.codebook = self.add_weight(
        shape=(self.num_embeddings, self.embedding_dim), initializer="zeros",
        name="codebook", trainable=True, autocast=False,
        aggregation="only_first_replica")
    self._add_counters()
