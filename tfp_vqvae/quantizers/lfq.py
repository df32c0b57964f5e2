"""Lookup-free quantization (Yu et al. 2023, "Language Model Beats Diffusion --
Tokenizer is Key to Visual Generation", MAGVIT-v2, sec. 3.1).

A learned linear map projects each D-vector to d = `code_dim` channels; each channel
is quantized to its sign, -1 or +1, with a straight-through gradient, and the corner
of the hypercube {-1, 1}^d is projected back to D channels (see grid.py). The code
is the sign bits read as a binary number, channel 0 the least significant bit:

    code = sum_j [h_j > 0] * 2^j          K = 2^d codes

(h_j = 0 counts as -1, bit 0).

The loss (returned as `commitment_loss`, per example, summed over the latent
positions like the other quantizers' terms) is

    entropy_weight * (sum_i H(q_i) + positions * KL(mean_i q_i || uniform))
      + commitment_cost * sum_i ||h_i - sg(sign(h_i))||^2

where i runs over the example's latent positions and q_i(k) is proportional to
exp(-||h_i - c_k||^2 / entropy_temperature) over the K corners c_k: the paper's
entropy penalty E[H(q)] - H(E[q]) plus the constant log K, written as the sum of two
non-negative terms with the same gradient. The first makes each position's
assignment confident; the second, KL = log K - H(mean q), spreads the batch's
assignments over the whole codebook. The mean is over every position of the batch
(the global batch under tf.distribute in training: the sums are all-reduced, and so
are their gradients), so the KL is a statistic of the batch that every example
carries once per position; the batch mean of `commitment_loss` is then the penalty
on the per-image scale of a log-likelihood summed over pixels.

Since ||h - c_k||^2 = ||h||^2 - 2 h.c_k + d, q factorises over the bits: bit j is 1
with probability sigmoid(4 h_j / entropy_temperature), so H(q_i) is a sum of d
binary entropies, and log q_i(k) for all k is one [N, d] x [d, K] matmul. All of it
is computed in float32 from log-sigmoids (softplus), never as log(p + eps) of
rounded probabilities, so the loss stays finite and exact for bfloat16 and float16
inputs (vector-quantize-pytorch issues #85 and #145: NaN and wrong entropies in half
precision).

Example:
  quantizer = LookupFreeQuantizer(embedding_dim=64, code_dim=9)
  out = quantizer(z_e, training=True)   # z_e [B, 7, 7, 64]; codes in [0, 512)
  loss = recon_nll + out.commitment_loss
"""

import math

import tensorflow as tf

from tfp_vqvae.quantizers import base as quantizer_lib
from tfp_vqvae.quantizers import grid

# The codebook entropy needs q_i(k) for all K = 2^code_dim codes, [N, K] floats.
MAX_CODE_DIM = 16


def _binary_entropy(logits):
  """Entropy (nats) of Bernoulli(sigmoid(logits)), elementwise, finite for all
  finite logits: p * -log(p) + (1 - p) * -log(1 - p) with -log(p) = softplus(-x)."""
  return (tf.sigmoid(logits) * tf.nn.softplus(-logits)
          + tf.sigmoid(-logits) * tf.nn.softplus(logits))


class LookupFreeQuantizer(grid.GridQuantizer):
  """Quantizes each channel of a learned projection to its sign (LFQ).

  K = 2^code_dim codes; `commitment_loss` is the entropy penalty plus the
  commitment term (see the module docstring). The only variables are the
  projections' (`grid.GridQuantizer`).
  """

  def __init__(self, embedding_dim: int, code_dim: int = 9,
               entropy_weight: float = 0.1, commitment_cost: float = 0.25,
               entropy_temperature: float = 0.01, seed: int = 0,
               name: str = "quantizer"):
    """Creates the projections D -> code_dim -> D.

    Args:
      embedding_dim: D, the inputs' last dimension; >= 1.
      code_dim: d, the number of sign bits, 1 <= d <= MAX_CODE_DIM (the entropy
        penalty computes [N, 2^d] probabilities).
      entropy_weight: >= 0, weight of the entropy penalty (MAGVIT-v2: 0.1).
      commitment_cost: beta >= 0, weight of the commitment term.
      entropy_temperature: > 0, the temperature of the soft assignments q behind
        the entropy penalty; vector-quantize-pytorch's inverse temperature 100 is
        0.01. Lower is closer to the hard codes.
      seed: integer seed of the projections' initial weights.
      name: module name.

    Raises:
      ValueError: if an argument is out of range.
    """
    if int(code_dim) != code_dim or not 1 <= code_dim <= MAX_CODE_DIM:
      raise ValueError(f"code_dim must be an integer in [1, {MAX_CODE_DIM}] (K = "
                       f"2**code_dim codes), got {code_dim!r}.")
    for arg, value in (("entropy_weight", entropy_weight),
                       ("commitment_cost", commitment_cost)):
      if value < 0:
        raise ValueError(f"{arg} must be >= 0, got {value!r}.")
    if entropy_temperature <= 0:
      raise ValueError(f"entropy_temperature must be > 0, got {entropy_temperature!r}.")
    super().__init__(embedding_dim, code_dim=int(code_dim),
                     num_embeddings=2**int(code_dim), seed=seed, name=name)
    self.entropy_weight = float(entropy_weight)
    self.commitment_cost = float(commitment_cost)
    self.entropy_temperature = float(entropy_temperature)
    self._bit_values = [2**j for j in range(self.code_dim)]

  def _snap(self, projected):
    """Signs of the channels (straight-through) and their bits as a number."""
    signs = tf.grad_pass_through(lambda h: tf.where(h > 0, 1.0, -1.0))(projected)
    codes = tf.reduce_sum(tf.cast(projected > 0, tf.int32) * self._bit_values, axis=1)
    return signs, codes

  def _grid_points(self, codes):
    """The corners c_k in {-1, 1}^d of the codes' bits."""
    bits = codes[:, None] // self._bit_values % 2
    return tf.cast(2 * bits - 1, tf.float32)

  def entropy_terms(self, projected, training):
    """(H(q_i) float32 [N], KL(mean_i q_i || uniform) float32 scalar), in nats.

    Args:
      projected: float32 [N, d] projected vectors h_i.
      training: if True the mean is over the global batch (SUM all-reduced
        across replicas, with the gradient); else over `projected`.
    """
    # Log-odds of bit j being 1; log q_i(k) sums log-sigmoids of +-logits.
    logits = (4.0 / self.entropy_temperature) * projected
    sample_entropy = tf.reduce_sum(_binary_entropy(logits), axis=1)
    bits = (self._grid_points(tf.range(self.num_embeddings)) + 1.0) / 2.0  # [K, d]
    log_q = -(tf.matmul(tf.nn.softplus(-logits), bits, transpose_b=True)
              + tf.matmul(tf.nn.softplus(logits), 1.0 - bits, transpose_b=True))
    q_sums = tf.reduce_sum(tf.exp(log_q), axis=0)
    count = tf.cast(tf.shape(projected)[0], tf.float32)
    if training:
      q_sums, count = quantizer_lib.sum_over_replicas(*quantizer_lib.replica_info(),
                                                      (q_sums, count))
    mean_q = q_sums / count
    # xlogy(0, 0) = 0 with zero gradients: a code no position comes near (q
    # underflows to 0) contributes nothing, not log(0) and a NaN gradient.
    codebook_entropy = -tf.reduce_sum(tf.math.xlogy(mean_q, mean_q))
    # log K - H >= 0; the clip only removes rounding below 0 at the uniform optimum.
    divergence = tf.maximum(self.code_dim * math.log(2.0) - codebook_entropy, 0.0)
    return sample_entropy, divergence

  def _loss(self, projected, grid_points, batch_size, training):
    """Per example: the entropy penalty and the commitment term (module docstring)."""
    sample_entropy, divergence = self.entropy_terms(projected, training)
    positions = tf.shape(projected)[0] // batch_size
    per_example = lambda values: tf.reduce_sum(tf.reshape(values, [batch_size, -1]), 1)
    entropy = per_example(sample_entropy) + tf.cast(positions, tf.float32) * divergence
    commitment = per_example(tf.square(projected - tf.stop_gradient(grid_points)))
    return self.entropy_weight * entropy + self.commitment_cost * commitment
