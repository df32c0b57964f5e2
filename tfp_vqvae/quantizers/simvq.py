"""SimVQ (Zhu et al. 2024, "Addressing Representation Collapse in Vector Quantized
Models with One Linear Layer"): a frozen random codebook seen through one learned
linear map.

The codes are the rows of C W + b, where C [K, D] is drawn once from N(0, 1/D)
(the std the authors give in vector-quantize-pytorch issue #170) and never
trained, and the linear map (W [D, D], b [D]) is the only trainable variable.
The losses are the loss-trained codebook's (loss.py):

    codebook loss    ||sg(z_e) - q||^2        (gradient to W and b only)
    commitment loss  beta * ||z_e - sg(q)||^2 (gradient to the encoder only)

with q the nearest row of C W + b. A code's gradient moves W, and W moves every
code at once, so codes an encoder never picks still follow the ones it does: the
paper's remedy for codebook collapse, without EMA statistics, re-seeding or a
first-batch initialisation. The decoder's gradient goes to the encoder straight
through, or through the rotation trick (`base.rotated`).

Example:
  quantizer = SimVQQuantizer(num_embeddings=512, embedding_dim=64)
  out = quantizer(z_e, training=True)   # z_e [B, 7, 7, 64]; codes [B, 7, 7]
  loss = recon_nll + out.commitment_loss  # trains encoder, decoder and W, b
"""

import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.nets import layers
from tfp_vqvae.quantizers import base as quantizer_lib


class SimVQQuantizer(quantizer_lib.SingleCodebook):
  """Vector quantizer whose codebook is a learned linear map of a frozen one.

  Attributes:
    frozen_codebook: float32 [K, D] variable, C, never trained.
    transform: `layers.Linear` D -> D, the learned map.
    codebook: float32 [K, D] tensor, C W + b: the vectors the codes stand for.
  """

  def __init__(self, num_embeddings: int, embedding_dim: int,
               commitment_cost: float = 0.25, seed: int = 0,
               rotation_trick: bool = False, name: str = "quantizer"):
    """Draws the frozen codebook and creates the linear map.

    Args:
      num_embeddings: K, the number of codes; >= 1.
      embedding_dim: D, the inputs' last dimension; >= 1.
      commitment_cost: beta >= 0, weight of the commitment loss.
      seed: integer seed of the frozen codebook and the map's initial weights.
      rotation_trick: pass the decoder's gradient to the inputs through the
        rotation trick instead of straight through.
      name: module name.

    Raises:
      ValueError: if an argument is out of range.
    """
    super().__init__(name=name)
    quantizer_lib.check_codebook_args(num_embeddings, embedding_dim, commitment_cost)
    self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
    self.commitment_cost = float(commitment_cost)
    self.rotation_trick = bool(rotation_trick)
    self.own_gradient = self.rotation_trick
    seeds = seeds_lib.SeedSequence(seed)
    frozen = tf.random.stateless_normal([self.num_embeddings, self.embedding_dim],
                                        seeds.next(), stddev=self.embedding_dim**-0.5)
    first = tf.VariableAggregation.ONLY_FIRST_REPLICA
    with self.name_scope:
      self.frozen_codebook = tf.Variable(frozen, trainable=False,
                                         name="frozen_codebook", aggregation=first)
      self.transform = layers.Linear(self.embedding_dim, self.embedding_dim,
                                     seeds=seeds, name="transform")
      self.num_updates = tf.Variable(0, dtype=tf.int64, trainable=False,
                                     name="num_updates", aggregation=first)

  @property
  def codebook(self):
    return self.transform(self.frozen_codebook)

  def _quantize(self, inputs, training, seed):
    """Codes `inputs` [..., D] by the nearest row of C W + b (`seed` unused: SimVQ
    draws nothing in training)."""
    del seed
    inputs, vectors = quantizer_lib.flatten_inputs(inputs, self.embedding_dim)
    codebook = self.codebook
    codes = quantizer_lib.nearest_codes(vectors, tf.stop_gradient(codebook))
    nearest = tf.gather(codebook, codes)
    code_counts = tf.math.unsorted_segment_sum(
        tf.ones_like(codes, tf.float32), codes, self.num_embeddings)
    if training:
      self.num_updates.assign_add(1)
      context, num_replicas = quantizer_lib.replica_info()
      code_counts = quantizer_lib.sum_over_replicas(context, num_replicas, code_counts)
    loss = quantizer_lib.codebook_loss(inputs, vectors, nearest, self.commitment_cost)
    return quantizer_lib.straight_through_output(
        inputs, vectors, nearest, codes, loss, code_counts,
        rotation_trick=self.rotation_trick)
