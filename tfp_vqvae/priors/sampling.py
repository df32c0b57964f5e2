"""Images from a prior and a VQ-VAE: codes sampled from the prior, then decoded.

Sample i is drawn from its own seed, derived from (seed, i), so the result depends
only on the arguments, whatever `batch_size`. Every code layout works: single-level
and residual codes are drawn by their prior (PixelCNN, Transformer or MaskGIT),
VQ-VAE-2's top codes first and then its bottom codes given them.
`python -m tfp_vqvae.sample` is the command.
"""

import numpy as np
import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.priors import categorical_sampling


def sample_seeds(seed, num):
  """int64 [num]: the seed of each of `num` samples drawn with `seed`."""
  return tf.random.stateless_uniform(
      [num], seeds_lib.stream_seed(seed, seeds_lib.Stream.SAMPLES), minval=None,
      maxval=None, dtype=tf.int64)


def sample_images(vqvae, prior, num, temperature=1.0, seed=0, batch_size=64,
                  labels=None, top_k=0, top_p=1.0):
  """Draws `num` codes from `prior` and decodes them with `vqvae`.

  Args:
    vqvae: a `model.VQVAE` (or VQ-VAE-2).
    prior: a prior over its codes (`prior.load_prior`): single-level, residual or
      hierarchical, whose codes are drawn ancestrally (top, then bottom).
    num: number of samples.
    temperature: finite, > 0, divides the prior's logits.
    seed: integer seed of the whole draw.
    batch_size: samples drawn at once; does not change the samples.
    labels: int [num] class labels, iff the prior is class-conditional.
    top_k: int in [0, K]: each code is drawn among the top_k most likely; 0 for all.
    top_p: float in (0, 1]: each code is drawn from the smallest set of most
      likely codes holding probability top_p (nucleus sampling); 1 for all.

  Returns:
    (codes: int32 [num, *code_shape], or a dict of them per level for a
    hierarchical prior; probs: float32 [num, H, W, C], the decoder's means).

  Raises:
    ValueError: naming temperature, top_k or top_p if out of range.
  """
  categorical_sampling.check_knobs(prior.num_embeddings, temperature, top_k, top_p)
  decode = tf.function(lambda codes: vqvae.decode_codes(codes).mean())
  seeds = sample_seeds(seed, num)
  codes, probs = [], []
  for start in range(0, num, batch_size):
    batch_labels = None if labels is None else labels[start:start + batch_size]
    batch_codes = prior.sample(seeds[start:start + batch_size],
                               tf.constant(temperature, tf.float32), batch_labels,
                               top_k=top_k, top_p=top_p)
    codes.append(tf.nest.map_structure(lambda c: c.numpy(), batch_codes))
    probs.append(decode(batch_codes).numpy())
  return (tf.nest.map_structure(lambda *parts: np.concatenate(parts), *codes),
          np.concatenate(probs))
