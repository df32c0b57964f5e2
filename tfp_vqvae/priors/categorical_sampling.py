"""Drawing codes from logits: temperature, top-k and nucleus (top-p) truncation, Gumbel-max.

The sequence priors draw every code the same way, with the knobs a caller sets
per request:

  * temperature T > 0 divides the logits: below 1 sharpens, above 1 flattens;
  * top_k = k keeps the k largest logits (0 keeps all K); codes tied with the
    k-th largest are kept too;
  * top_p = p keeps the smallest set of most likely codes whose probability
    (after the temperature) reaches p (nucleus sampling, Holtzman et al. 2020);
    1 keeps all.

The draw is Gumbel-max: argmax(truncated logits + Gumbel noise) is a sample of
the truncated, renormalised categorical. The noise of each example comes from its
own stateless seed, so a sample depends on its seed only, not on the batch, and
two samplers that use the same noise and logits draw the same codes (the cached,
uncached and XLA-compiled Transformer samplers do).
"""

import math

import numpy as np
import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib


def knob_rules(num_embeddings):
  """(name, valid, allowed) of each knob: `valid(value)` is a bool array, True where
  `value` (a NumPy array or a float tensor) is in range; `allowed` says what is.

  Written with operators only, to apply to NumPy values and tensors alike (a
  comparison with NaN is False, so NaN fails every check).
  """
  return (
      ("temperature", lambda t: (t > 0) & (t < math.inf), "finite and > 0"),
      ("top_k", lambda k: (k >= 0) & (k <= num_embeddings) & (k % 1 == 0),
       f"an integer in [0, K={num_embeddings}]"),
      ("top_p", lambda p: (p > 0) & (p <= 1), "in (0, 1]"),
  )


def check_knobs(num_embeddings, temperature, top_k, top_p):
  """Validates the sampling knobs: ValueError now if known, else a graph assertion.

  A knob only known when the graph runs (a tensor argument of a `tf.function`)
  gets a `tf.debugging.Assert`, which the function runs (InvalidArgumentError)
  and XLA compiles away.

  Args:
    num_embeddings: K.
    temperature: scalar or per-example float; must be finite and > 0.
    top_k: scalar or per-example int; must be in [0, K].
    top_p: scalar or per-example float; must be in (0, 1].

  Raises:
    ValueError: naming the first known knob out of range.
  """
  values = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
  for name, valid, allowed in knob_rules(num_embeddings):
    value = values[name]
    known = tf.get_static_value(value)
    if known is None:
      tf.debugging.Assert(tf.reduce_all(valid(tf.cast(value, tf.float32))),
                          [f"{name} must be {allowed}, got", value])
    elif not np.all(valid(np.asarray(known, np.float64))):
      raise ValueError(f"{name} must be {allowed}, got {known!r}.")


def _per_example(value, dtype, rank):
  """A scalar or [B]/[B, 1] knob shaped [1 or B, 1, ...] to broadcast over rank-`rank` logits."""
  return tf.reshape(tf.cast(value, dtype), [-1] + [1] * (rank - 1))


def _known_to_be(value, constant):
  """Whether every element of `value` is known now (not only when a graph runs) to be `constant`."""
  known = tf.get_static_value(value)
  return known is not None and bool(np.all(known == constant))


def truncate(logits, temperature=1.0, top_k=0, top_p=1.0):
  """Tempered logits with the codes outside top-k and the nucleus set to -inf.

  Args:
    logits: float [B, ..., K].
    temperature, top_k, top_p: the knobs (module docstring), scalars or one per
      example ([B] or [B, 1]), already validated (`check_knobs`).

  Returns:
    float [B, ..., K]; each row keeps at least its largest logit.
  """
  rank = len(logits.shape)
  logits = logits / _per_example(temperature, logits.dtype, rank)
  if _known_to_be(top_k, 0) and _known_to_be(top_p, 1):
    return logits
  num_embeddings = logits.shape[-1]
  descending = tf.sort(logits, axis=-1, direction="DESCENDING")
  # Top-k: the number of codes kept (k, or all for 0).
  k = _per_example(top_k, tf.int32, rank)
  k = tf.where(k == 0, num_embeddings, k)
  # Nucleus: codes whose more likely codes hold less than p keep their place;
  # p = 1 keeps every code, even those after the float32 sum has reached 1.
  p = _per_example(top_p, logits.dtype, rank)
  before = tf.math.cumsum(tf.nn.softmax(descending, axis=-1), axis=-1, exclusive=True)
  in_nucleus = tf.reduce_sum(tf.cast(before < p, tf.int32), axis=-1, keepdims=True)
  kept = tf.where(p >= 1, k, tf.minimum(k, in_nucleus))
  smallest_kept = tf.experimental.numpy.take_along_axis(
      descending, tf.broadcast_to(kept - 1, tf.shape(descending[..., :1])), axis=-1)
  return tf.where(logits >= smallest_kept, logits,
                  tf.constant(-math.inf, logits.dtype))


def gumbel_noise(seeds, stream, shape, index=None):
  """Standard Gumbel noise [B, *shape]: row i from seeds[i]'s `stream` (and `index`).

  Args:
    seeds: int64 [B], one per example.
    stream: the `seeds.Stream` of the noise.
    shape: the static shape of one example's noise.
    index: optional int scalar folded into each seed (a decoding step, say), so
      that each index draws fresh noise.
  """

  def one(seed):
    seed = seeds_lib.stream_seed(seed, stream)
    if index is not None:
      seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(index, tf.int64))
    tiny = tf.experimental.numpy.finfo(tf.float32).tiny
    # Philox by name, the generator of the CPU and GPU kernels. Under XLA a seed
    # known only at run time gives other numbers, so compiled samplers take
    # their noise from outside the compiled loop.
    uniform = tf.random.stateless_uniform(shape, seed, minval=tiny, maxval=1.0,
                                          alg="philox")
    return -tf.math.log(-tf.math.log(uniform))

  return tf.map_fn(one, tf.cast(seeds, tf.int64), fn_output_signature=tf.float32)


def draw(logits, noise):
  """int32 argmax(logits + noise) over the last axis: a Gumbel-max sample."""
  return tf.argmax(logits + noise, axis=-1, output_type=tf.int32)
