"""Every quantizer of the package behind one interface, for the contract tests.

A `Member` makes a quantizer and reads it the same way whatever its kind: the
tf.Module quantizers (EMA, loss-trained, SimVQ, the grid quantizers FSQ and LFQ,
and residual stacks of each; EMA, SimVQ and residual loss-trained stages with the
rotation trick; low-dimensional cosine codebooks of each) and the Keras layers. Between them the members use each
codebook initialiser (None, UniformInit, KMeansInit). The EMA members sum per-code statistics in reduction groups of
`GROUP` images, so that one device on a global batch of 2 * GROUP computes the same
bits as two replicas with GROUP each (quantizer.EMAQuantization); calls on GROUP
images or fewer are unaffected.
"""

from typing import Callable, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tfp_vqvae.keras import layers as keras_layers
from tfp_vqvae.quantizers import base as quantizer_lib
from tfp_vqvae.quantizers import codebook_init
from tfp_vqvae.quantizers import cosine
from tfp_vqvae.quantizers import ema as ema_lib
from tfp_vqvae.quantizers import fsq
from tfp_vqvae.quantizers import grid
from tfp_vqvae.quantizers import lfq
from tfp_vqvae.quantizers import loss as quantizer_loss
from tfp_vqvae.quantizers import residual as residual_quantizer
from tfp_vqvae.quantizers import simvq

K, D, GROUP = 8, 4, 4
# Options that make every mechanism act within a few small steps: a fast EMA and
# re-seeding of codes unused for a step or two.
_EMA = dict(decay=0.8, dead_code_threshold=0.3, reduction_group_size=GROUP, seed=3)


class Member(NamedTuple):
  """How to make one kind of quantizer and read it.

  Attributes:
    make: builds a ready quantizer (Keras layers built for [..., D] inputs).
    stages: N, the number of residual stages (1 for a plain quantizer).
    trainable: how many of its variables an optimizer trains.
    float32_loss: whether its commitment_loss is float32 whatever the inputs' dtype
      (a residual stack sums its stages' float32 losses), not the inputs' dtype.
  """
  make: Callable[[], object]
  stages: int
  trainable: int
  float32_loss: bool = False


def _residual(stage, initializer):
  return lambda: residual_quantizer.ResidualQuantizer(
      [stage(K, D, initializer=initializer, name=f"stage_{i}") for i in range(2)],
      seed=5)


def _residual_grid(stage):
  """Two grid stages `stage(seed, name)`, seeds 7 and 8."""
  return lambda: residual_quantizer.ResidualQuantizer(
      [stage(7 + i, f"stage_{i}") for i in range(2)], seed=5)


def _fsq(seed, name="quantizer"):
  # K = 2 * 4 = 8 codes; even levels, the case with the half-step offset.
  return fsq.FiniteScalarQuantizer(D, levels=(2, 4), seed=seed, name=name)


def _lfq(seed, name="quantizer"):
  # K = 2^3 = 8 codes; soft enough assignments that the entropy terms are large.
  return lfq.LookupFreeQuantizer(D, code_dim=3, entropy_weight=1.0,
                                 entropy_temperature=0.5, seed=seed, name=name)


def _keras(layer_class, **options):
  def make():
    layer = layer_class(K, D, **options)
    layer.build((None, D))
    return layer
  return make


def _ema_stage(*args, **kwargs):
  return ema_lib.VectorQuantizerEMA(*args, **_EMA, **kwargs)


def _rotated_loss_stage(*args, **kwargs):
  return quantizer_loss.VectorQuantizerLoss(*args, rotation_trick=True, **kwargs)


def _cosine(codebook_class, **options):
  """A cosine codebook of K codes in d = D - 1 = 3 dims (projections' seed 9)."""
  return lambda: cosine.LowDimCosine(
      codebook_class(K, D - 1, cosine=True, name="codebook", **options), D, seed=9)


MEMBERS = {
    "ema": Member(lambda: ema_lib.VectorQuantizerEMA(K, D, **_EMA), 1, 0),
    "loss": Member(lambda: quantizer_loss.VectorQuantizerLoss(
        K, D, initializer=codebook_init.UniformInit(), seed=4), 1, 1),
    "residual_ema": Member(_residual(_ema_stage, codebook_init.KMeansInit()), 2, 0,
                           float32_loss=True),
    "residual_loss": Member(_residual(quantizer_loss.VectorQuantizerLoss,
                                      codebook_init.KMeansInit(iterations=3)), 2, 2,
                            float32_loss=True),
    "keras_ema": Member(_keras(keras_layers.VectorQuantizerEMALayer,
                               initializer=codebook_init.KMeansInit(), **_EMA), 1, 0),
    "keras_loss": Member(_keras(keras_layers.VectorQuantizerLossLayer, seed=6), 1, 1),
    # SimVQ trains its linear map's kernel and bias.
    "simvq": Member(lambda: simvq.SimVQQuantizer(K, D, seed=4), 1, 2),
    "residual_simvq_rotation": Member(
        lambda: residual_quantizer.ResidualQuantizer(
            [simvq.SimVQQuantizer(K, D, seed=4 + i, rotation_trick=True,
                                  name=f"stage_{i}") for i in range(2)], seed=5),
        2, 4, float32_loss=True),
    "fsq": Member(lambda: _fsq(7), 1, 4),
    "lfq": Member(lambda: _lfq(8), 1, 4),
    "residual_fsq": Member(_residual_grid(_fsq), 2, 8, float32_loss=True),
    "residual_lfq": Member(_residual_grid(_lfq), 2, 8, float32_loss=True),
    # The rotation trick with dead codes re-seeded (_EMA), and in residual stages.
    "ema_rotation": Member(
        lambda: ema_lib.VectorQuantizerEMA(K, D, rotation_trick=True, **_EMA), 1, 0),
    "residual_loss_rotation": Member(
        _residual(_rotated_loss_stage, codebook_init.UniformInit()), 2, 2,
        float32_loss=True),
    "ema_cosine": Member(_cosine(ema_lib.VectorQuantizerEMA, **_EMA), 1, 4),
    "loss_cosine_rotation": Member(
        _cosine(quantizer_loss.VectorQuantizerLoss, rotation_trick=True,
                initializer=codebook_init.KMeansInit(), seed=4), 1, 5),
}


def is_keras(quantizer) -> bool:
  return isinstance(quantizer, keras.layers.Layer)


def output(quantizer, inputs, training) -> quantizer_lib.QuantizerOutput:
  """The quantizer's `QuantizerOutput` for `inputs` (a training call if `training`)."""
  if is_keras(quantizer):
    return quantizer.quantizer_output(inputs, training=training)
  return quantizer(inputs, training=training)


def state(quantizer) -> list:
  """The quantizer's tf.Variables, in a fixed order (a Keras layer's: its weights')."""
  if is_keras(quantizer):
    return [weight.value for weight in quantizer.weights]
  return list(quantizer.variables)


def trainable(quantizer) -> list:
  if is_keras(quantizer):
    return quantizer.trainable_weights
  return list(quantizer.trainable_variables)


def stages(quantizer) -> list:
  """The stages of a residual stack, or [quantizer]."""
  return getattr(quantizer, "stages", [quantizer])


def is_grid(quantizer) -> bool:
  """Whether the quantizer or its stages are grid quantizers (FSQ, LFQ)."""
  return isinstance(stages(quantizer)[0], grid.GridQuantizer)


def is_cosine(quantizer) -> bool:
  return isinstance(stages(quantizer)[0], cosine.LowDimCosine)


def codebooks(quantizer) -> list:
  """The [K, D] NumPy codebook of each stage (a grid quantizer's implicit one, a
  cosine codebook's projected back)."""
  if is_grid(quantizer) or is_cosine(quantizer):
    return [np.array(codebook) for codebook in quantizer.codebooks]
  return [np.array(stage.codebook.numpy()) for stage in stages(quantizer)]


def numpy_codes(vectors, books):
  """[N, stages] codes of residual coding of float [N, D] `vectors` with `books`,
  and the [N, D] sum of the chosen codebook rows: the NumPy reference."""
  residual = vectors.astype(np.float64)
  codes, total = [], np.zeros_like(residual)
  for book in books:
    distances = ((residual[:, None, :] - book[None].astype(np.float64)) ** 2).sum(-1)
    chosen = distances.argmin(1)
    codes.append(chosen)
    total += book[chosen]
    residual = residual - book[chosen]
  return np.stack(codes, axis=-1), total


def numpy_linear(layer, x):
  """x @ kernel + bias of a `layers.Linear`, in float64."""
  return x @ layer.kernel.numpy().astype(np.float64) + layer.bias.numpy()


def numpy_fsq(quantizer, vectors):
  """(codes [N], grid points [N, d] in [-1, 1]) of FSQ for float [N, D] `vectors`:
  the NumPy reference of fsq.FiniteScalarQuantizer, from the paper's formulas."""
  levels = np.array(quantizer.levels)
  half_width = levels // 2
  half_range = (levels - 1) * (1 + 1e-3) / 2
  offset = np.where(levels % 2 == 0, 0.5, 0.0)
  projected = numpy_linear(quantizer.project_in, vectors.astype(np.float64))
  bounded = np.tanh(projected + np.arctanh(offset / half_range)) * half_range - offset
  rounded = np.round(bounded)
  digits = (rounded + half_width).astype(np.int64)
  # Channel 0 is the least significant digit.
  place_values = np.cumprod(np.concatenate([[1], levels[:-1]]))
  return digits @ place_values, rounded / half_width


def numpy_lfq(quantizer, vectors):
  """(codes [N], grid points [N, d] in {-1, 1}) of LFQ for float [N, D] `vectors`:
  the NumPy reference of lfq.LookupFreeQuantizer."""
  projected = numpy_linear(quantizer.project_in, vectors.astype(np.float64))
  bits = (projected > 0).astype(np.int64)
  return bits @ (2 ** np.arange(bits.shape[1])), 2.0 * bits - 1.0


def numpy_cosine(quantizer, vectors):
  """(codes [N], unit code vectors [N, d]) of a `cosine.LowDimCosine` for float
  [N, D] `vectors`: the largest cosine similarity between the projected vector
  and the codebook's rows, in float64."""
  projected = numpy_linear(quantizer.project_in, vectors.astype(np.float64))
  book = quantizer.codebook_quantizer.codebook.numpy().astype(np.float64)
  book /= np.linalg.norm(book, axis=1, keepdims=True)
  codes = (projected @ book.T / np.linalg.norm(projected, axis=1, keepdims=True)
           ).argmax(1)
  return codes, book[codes]


def _numpy_grid(quantizer, vectors):
  if isinstance(quantizer, fsq.FiniteScalarQuantizer):
    return numpy_fsq(quantizer, vectors)
  return numpy_lfq(quantizer, vectors)


def numpy_reference(quantizer, vectors):
  """([N, stages] codes, [N, D] quantized vectors) of float [N, D] `vectors`, as
  NumPy computes them with the quantizer's current state: each stage codes the
  residual the earlier ones left, and the quantized vectors are the stages' sum."""
  if is_cosine(quantizer):
    codes, code_vectors = numpy_cosine(quantizer, vectors)
    return codes[:, None], numpy_linear(quantizer.project_out, code_vectors)
  if not is_grid(quantizer):
    return numpy_codes(vectors, codebooks(quantizer))
  residual = vectors.astype(np.float64)
  codes, total = [], np.zeros_like(residual)
  for stage in stages(quantizer):
    stage_codes, grid_points = _numpy_grid(stage, residual)
    quantized = numpy_linear(stage.project_out, grid_points)
    codes.append(stage_codes)
    total += quantized
    residual = residual - quantized
  return np.stack(codes, axis=-1), total


def straight_through(quantizer, inputs):
  """What the gradient of the quantized outputs of `inputs` [..., D] should be:
  the gradient of this function of the inputs and the trainable variables, made
  with the quantizer's state before its call.

  A codebook quantizer passes the gradient to its inputs unchanged (the identity),
  or with the rotation trick through sg(lambda R) (`numpy_rotation`); a cosine
  one through its projections and the normalisation, and either. A grid
  quantizer passes it through its projections and through the relaxed
  quantization (FSQ's bound, LFQ's identity) in place of the rounding: here
  project_out(g + relaxed - sg(relaxed)) with g the reference's grid points. A
  residual stack of either sums its stages', each of its residual.
  """
  if not getattr(quantizer, "own_gradient", False):
    return inputs
  stage_function = (_grid_straight_through if is_grid(quantizer) else
                    _cosine_straight_through if is_cosine(quantizer) else
                    _codebook_straight_through)
  residual = tf.reshape(inputs, [-1, D])
  total = tf.zeros_like(residual)
  for stage in stages(quantizer):
    quantized = stage_function(stage, residual)
    total += quantized
    residual = residual - tf.stop_gradient(quantized)
  return tf.reshape(total, tf.shape(inputs))


def numpy_rotation(vectors, nearest):
  """(scale [N, 1], rotations [N, D, D]) of the rotation trick in float64: the
  rotation R of each vector e onto the direction of its code q, I - 2 w w^T +
  2 q^ e^^T with w = (e^ + q^) / ||e^ + q^||, and ||q|| / ||e||, from the paper
  (Fifty et al. 2024, sec. 4.2). Degenerate rows as `base.rotated` documents them:
  a zero vector gets R = I and scale 1, a zero code a zero direction."""
  vectors, nearest = vectors.astype(np.float64), nearest.astype(np.float64)

  def unit(rows):
    norm = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norm, out=np.zeros_like(rows), where=norm > 0), norm

  code_direction, nearest_norm = unit(nearest)
  direction, vectors_norm = unit(vectors)
  direction = np.where(vectors_norm > 0, direction, code_direction)
  scale = np.divide(nearest_norm, vectors_norm, out=np.ones_like(vectors_norm),
                    where=vectors_norm > 0)
  mirror, _ = unit(direction + code_direction)
  rotations = (np.eye(vectors.shape[1])[None]
               - 2 * mirror[:, :, None] * mirror[:, None, :]
               + 2 * code_direction[:, :, None] * direction[:, None, :])
  return scale, rotations


def _rotate(vectors, nearest):
  """The constants scale * R of the rotation trick (NumPy) onto float [N, d]
  `nearest`, applied to [N, d] `vectors`."""
  scale, rotations = numpy_rotation(vectors.numpy(), nearest)
  matrices = tf.constant(scale[:, :, None] * rotations, tf.float32)
  return tf.linalg.matvec(matrices, vectors)


def _codebook_straight_through(quantizer, vectors):
  """The rotation trick of one codebook quantizer on [N, D] `vectors`."""
  codebook = quantizer.codebook.numpy()
  codes, _ = numpy_codes(vectors.numpy(), [codebook])
  return _rotate(vectors, codebook[codes[:, 0]])


def _cosine_straight_through(quantizer, vectors):
  """project_out of the unit code vector, with the gradient of the normalised
  projected `vectors` (straight through, or rotated onto the code)."""
  unit = tf.math.l2_normalize(quantizer.project_in(vectors), axis=-1)
  _, code_vectors = numpy_cosine(quantizer, vectors.numpy())
  if quantizer.codebook_quantizer.rotation_trick:
    snapped = _rotate(unit, code_vectors)
  else:
    snapped = unit + tf.constant(code_vectors, tf.float32) - tf.stop_gradient(unit)
  return quantizer.project_out(snapped)


def _grid_straight_through(quantizer, vectors):
  """The straight-through function of one grid quantizer on [N, D] `vectors`."""
  projected = quantizer.project_in(vectors)
  relaxed = projected
  if isinstance(quantizer, fsq.FiniteScalarQuantizer):
    half_width = np.array(quantizer.levels) // 2
    relaxed = quantizer.bound(projected) / half_width.astype(np.float32)
  _, grid_points = _numpy_grid(quantizer, vectors.numpy())
  snapped = relaxed + tf.constant(grid_points, tf.float32) - tf.stop_gradient(relaxed)
  return quantizer.project_out(snapped)
