"""Finite scalar quantization (Mentzer et al. 2023, "Finite Scalar Quantization:
VQ-VAE Made Simple").

A learned linear map projects each D-vector to d = len(levels) channels; channel j
is squashed into a bounded interval by tanh and rounded to one of L_j = levels[j]
integers, with a straight-through gradient; the grid point, rescaled to [-1, 1], is
projected back to D channels. The codebook is the grid of prod(levels) points: no
codebook loss, no commitment term, no EMA, no dead codes (see grid.py).

The bound (the paper's appendix A.1) is

    bound(h_j) = tanh(h_j + shift_j) * half_j - offset_j
    half_j = (L_j - 1) * (1 + eps) / 2      eps = 1e-3
    offset_j = 1/2 if L_j is even else 0,  shift_j = atanh(offset_j / half_j)

so that round(bound(h_j)) takes exactly L_j values: {-(L-1)/2, ..., (L-1)/2} for odd
L, and for even L the same range shifted by half a step, {-L/2, ..., L/2 - 1}; the
shift makes bound(0) = 0. The paper's listing has (1 - eps) and tan for the shift:
atanh is what makes bound(0) = 0, and with (1 - eps) atanh(offset / half) is
undefined for L = 2 (offset / half > 1), so this follows vector-quantize-pytorch's
(1 + eps) and atanh. A rounded value r_j is rescaled to r_j / (L_j // 2) in [-1, 1]
before the projection back.

Codes: digit_j = r_j + L_j // 2 in [0, L_j), and the code is the mixed-radix number

    code = sum_j digit_j * prod_{i < j} L_i

so channel 0 is the least significant digit: with levels (8, 5, 5, 5), code =
digit_0 + 8 * digit_1 + 40 * digit_2 + 200 * digit_3.

Example:
  quantizer = FiniteScalarQuantizer(embedding_dim=64, levels=(8, 5, 5, 5))
  out = quantizer(z_e)            # z_e [B, 7, 7, 64]; codes [B, 7, 7] in [0, 1000)
  quantizer.lookup(out.codes)     # == out.quantized
"""

import math
import numbers
from typing import Sequence

import tensorflow as tf

from tfp_vqvae.quantizers import grid

_EPSILON = 1e-3
# Codes are int32.
_MAX_CODES = 2**31 - 1


def check_levels(levels) -> tuple:
  """`levels` as a tuple of ints; ValueError unless a non-empty sequence of integers
  >= 2 whose product (the number of codes) fits int32 codes."""
  try:
    values = () if isinstance(levels, (str, bytes)) else tuple(levels)
  except TypeError:  # Not a sequence.
    values = ()
  if not values or not all(isinstance(level, numbers.Integral) and level >= 2
                           for level in values):
    raise ValueError(f"levels must be a non-empty sequence of integers >= 2, got "
                     f"{levels!r}.")
  levels = tuple(int(level) for level in values)
  if math.prod(levels) > _MAX_CODES:
    raise ValueError(f"levels must have a product (the number of codes) of at most "
                     f"2**31 - 1, got {math.prod(levels)} for {levels}.")
  return levels


class FiniteScalarQuantizer(grid.GridQuantizer):
  """Rounds each channel of a learned projection to a few levels (FSQ).

  K = prod(levels) codes; `commitment_loss` is zeros (FSQ has no loss of its own).
  The only variables are the projections' (`grid.GridQuantizer`).
  """

  def __init__(self, embedding_dim: int, levels: Sequence[int] = (8, 5, 5, 5),
               seed: int = 0, name: str = "quantizer"):
    """Creates the projections D -> len(levels) -> D.

    Args:
      embedding_dim: D, the inputs' last dimension; >= 1.
      levels: L_j >= 2, the number of values of each quantized channel. The
        paper's choices for about 2^8, 2^10, 2^12, 2^14 and 2^16 codes are (8, 6, 5),
        (8, 5, 5, 5), (7, 5, 5, 5, 5), (8, 8, 8, 6, 5) and (8, 8, 8, 5, 5, 5).
      seed: integer seed of the projections' initial weights.
      name: module name.

    Raises:
      ValueError: if an argument is out of range.
    """
    self.levels = check_levels(levels)
    super().__init__(embedding_dim, code_dim=len(self.levels),
                     num_embeddings=math.prod(self.levels), seed=seed, name=name)
    # Per-channel constants, as Python lists (folded into the traced graphs).
    self._half_width = [level // 2 for level in self.levels]
    self._basis = [math.prod(self.levels[:j]) for j in range(len(self.levels))]
    self._half_range = [(level - 1) * (1 + _EPSILON) / 2 for level in self.levels]
    self._offset = [0.5 if level % 2 == 0 else 0.0 for level in self.levels]
    self._shift = [math.atanh(offset / half_range)
                   for offset, half_range in zip(self._offset, self._half_range)]

  def bound(self, projected):
    """Squashes float32 [N, d] projected vectors into the range each channel rounds
    to L_j integers (see the module docstring)."""
    return (tf.tanh(projected + self._shift) * self._half_range
            - tf.constant(self._offset))

  def _snap(self, projected):
    """Rounds the bounded channels (straight-through) and reads their digits."""
    rounded = tf.grad_pass_through(tf.round)(self.bound(projected))
    digits = tf.cast(rounded, tf.int32) + self._half_width
    codes = tf.reduce_sum(digits * self._basis, axis=1)
    return rounded / tf.constant(self._half_width, tf.float32), codes

  def _grid_points(self, codes):
    """Digits of the codes, centred and rescaled to [-1, 1]."""
    digits = codes[:, None] // self._basis % self.levels
    return (tf.cast(digits - self._half_width, tf.float32)
            / tf.constant(self._half_width, tf.float32))
