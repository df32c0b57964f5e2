"""Low-dimensional cosine codebooks (ViT-VQGAN, Yu et al. 2021; LlamaGen uses d = 8).

A learned linear map projects each D-vector to d channels (d much below D); there
a codebook quantizer made with `cosine=True` (EMA or loss-trained) l2-normalises
the projected vector and its codes and picks the code of the largest cosine
similarity; a second linear map projects the unit code vector back to D:

    z_e [.., D] --project_in--> h [.., d] --l2norm, nearest unit code--> e [.., d]
        --project_out--> z_q [.., D]

In a few dimensions on the unit sphere the K codes cover the space the encoder
can reach, so far fewer fall out of use. The decoder's gradient reaches the
encoder through project_out, the codebook quantizer's estimator (straight through
or the rotation trick) and the normalisation, and project_in; the codebook
quantizer's own loss (commitment, and the codebook term of a loss-trained one)
is that of the unit vectors. Its state, seeds and replica consistency are the
codebook quantizer's.
"""

import tensorflow as tf

from tfp_vqvae.quantizers import base as quantizer_lib
from tfp_vqvae.quantizers import grid


class LowDimCosine(grid.ProjectedQuantizer):
  """A cosine codebook quantizer in d channels between projections D -> d -> D.

  Example:
    codebook = VectorQuantizerEMA(512, 8, cosine=True, name="codebook")
    quantizer = LowDimCosine(codebook, embedding_dim=64)
    out = quantizer(z_e, training=True)  # z_e [B, 7, 7, 64]; out.codes [B, 7, 7]

  Attributes:
    codebook_quantizer: the quantizer of the d-dimensional unit vectors.
  """

  def __init__(self, codebook_quantizer, embedding_dim: int, seed: int = 0,
               name: str = "quantizer"):
    """Wraps `codebook_quantizer` between two projections.

    Args:
      codebook_quantizer: a one-codebook quantizer (`VectorQuantizerEMA` or
        `VectorQuantizerLoss`) of d-vectors, made with cosine=True.
      embedding_dim: D, the inputs' last dimension.
      seed: integer seed of the projections' initial weights.
      name: module name.

    Raises:
      ValueError: if `codebook_quantizer` does not normalise (cosine=False), or
        embedding_dim is not a positive integer.
    """
    if not getattr(codebook_quantizer, "cosine", False):
      raise ValueError("codebook_quantizer must be made with cosine=True, got "
                       f"{type(codebook_quantizer).__name__} without.")
    super().__init__(embedding_dim, codebook_quantizer.embedding_dim,
                     codebook_quantizer.num_embeddings, seed, name)
    self.codebook_quantizer = codebook_quantizer

  @property
  def num_updates(self):
    """The codebook quantizer's count of training calls."""
    return self.codebook_quantizer.num_updates

  def _grid_points(self, codes):
    return self.codebook_quantizer.lookup(codes)

  def _quantize(self, inputs, training, seed):
    """Quantizes the projected inputs with the codebook quantizer; `seed` is its.

    Returns:
      A `QuantizerOutput` with the codebook quantizer's codes, loss and statistics.
    """
    inputs, vectors = quantizer_lib.flatten_inputs(inputs, self.embedding_dim)
    projected = tf.reshape(self.project_in(vectors),
                           tf.concat([tf.shape(inputs)[:-1], [self.code_dim]], 0))
    out = self.codebook_quantizer(projected, training=training, seed=seed)
    quantized = self.project_out(tf.reshape(out.quantized, [-1, self.code_dim]))
    return quantizer_lib.quantizer_output(inputs, quantized, tf.reshape(out.codes, [-1]),
                                          out.commitment_loss, out.code_counts)
