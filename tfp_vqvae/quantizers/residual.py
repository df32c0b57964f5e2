"""Residual vector quantization: N quantizers, each coding what the previous missed.

    r_0 = z_e,   e_i = Q_i(r_i),   r_{i+1} = r_i - e_i,   z_q = e_0 + ... + e_{N-1}

(Zeghidour et al. 2021, SoundStream; the `ResidualVQ` of vector-quantize-pytorch).
Each stage is a full quantizer with its own codebook, trained its own way (EMA or
loss) on its own residuals, so under tf.distribute each stage is replica-consistent
exactly as a single quantizer is. A stage's residual input carries the gradient of
z_e (e_i enters r_{i+1} through a stop-gradient), so every stage's commitment term
pulls the encoder. The decoder's gradient reaches z_e through one straight-through
estimator on the sum, unless the stages' outputs carry a gradient of their own
(`own_gradient`: FSQ and LFQ through their projections, the rotation trick): then
z_q is the sum of the stages' outputs, each passing its gradient to its residual
(as vector-quantize-pytorch's `ResidualFSQ`), so the projections are trained too.

Codes gain a trailing quantizer axis: [B, h, w, N]. Perplexity and usage are per
stage ([N]), code counts [N, K].
"""

import tensorflow as tf

from tfp_vqvae.quantizers import base as quantizer_lib


class ResidualQuantizer(quantizer_lib.Quantizer):
  """Sums N quantizer stages applied to successive residuals.

  Example:
    stages = [VectorQuantizerEMA(512, 64, name=f"stage_{i}") for i in range(2)]
    quantizer = ResidualQuantizer(stages)
    out = quantizer(z_e, training=True)  # out.codes [B, 7, 7, 2]
  """

  def __init__(self, stages, seed=0, name="quantizer"):
    """Wraps `stages`, quantizers with equal K and D (at least two).

    Args:
      stages: the quantizers, applied in order.
      seed: integer seed of the stages' random choices: stage i of training call t
        gets `fold_in(quantizer.training_seed(seed, t), i)`, t counted by the
        first stage's `num_updates`.
      name: module name.

    Raises:
      ValueError: for fewer than two stages, unequal sizes, or stages of which
        some have an `own_gradient` and some not.
    """
    super().__init__(name=name)
    if len(stages) < 2:
      raise ValueError(f"A residual quantizer needs >= 2 stages, got {len(stages)}.")
    sizes = {(stage.num_embeddings, stage.embedding_dim) for stage in stages}
    if len(sizes) != 1:
      raise ValueError(f"All stages must have the same K and D, got {sorted(sizes)}.")
    gradients = {stage.own_gradient for stage in stages}
    if len(gradients) != 1:
      raise ValueError("The stages must all pass the gradient straight through or "
                       "all have an own_gradient, got a mix.")
    self.stages = list(stages)
    self.own_gradient = gradients.pop()
    self.seed = int(seed)
    self.num_embeddings, self.embedding_dim = sizes.pop()

  @property
  def num_quantizers(self):
    return len(self.stages)

  @property
  def num_updates(self):
    """The first stage's count of training calls (the seeds' index)."""
    return self.stages[0].num_updates

  @property
  def stage_names(self):
    return tuple(f"stage_{i}" for i in range(self.num_quantizers))

  def code_shape(self, latent_shape):
    """One image's codes for a latent grid: the grid, then the N stages."""
    return tuple(latent_shape) + (self.num_quantizers,)

  def _quantize(self, inputs, training, seed):
    """Quantizes `inputs` [..., D] in N stages; see `VectorQuantizerEMA.__call__`.

    Stage i gets the seed `fold_in(seed, i)`; by default `seed` is this training
    call's (see `__init__`).

    Returns:
      A `quantizer.QuantizerOutput` with codes [..., N], commitment_loss summed
      over the stages, perplexity and usage [N] and code_counts [N, K].
    """
    vectors = tf.cast(inputs, tf.float32)
    residual = vectors
    if training and seed is None:
      seed = quantizer_lib.training_seed(self.seed, self.num_updates)
    outputs = []
    for i, stage in enumerate(self.stages):
      stage_seed = (None if seed is None
                    else tf.random.experimental.stateless_fold_in(seed, i))
      out = stage(residual, training=training, seed=stage_seed)
      outputs.append(out)
      residual = residual - tf.stop_gradient(out.quantized)
    quantized = tf.add_n([out.quantized for out in outputs])
    if not self.own_gradient:
      quantized = vectors + tf.stop_gradient(quantized - vectors)
    return quantizer_lib.QuantizerOutput(
        quantized=tf.cast(quantized, inputs.dtype),
        codes=tf.stack([out.codes for out in outputs], axis=-1),
        commitment_loss=tf.add_n([out.commitment_loss for out in outputs]),
        perplexity=tf.stack([out.perplexity for out in outputs]),
        usage=tf.stack([out.usage for out in outputs]),
        code_counts=tf.stack([out.code_counts for out in outputs]))

  @property
  def codebooks(self):
    return [codebook for stage in self.stages for codebook in stage.codebooks]

  def lookup(self, codes):
    """The summed codebook vectors [..., D] (float32) for int codes [..., N]."""
    return tf.add_n([stage.lookup(codes[..., i]) for i, stage in enumerate(self.stages)])
