"""Vector quantizer whose codebook is learned by gradient (van den Oord et al. 2017, eq. 3).

The codebook is a trainable variable. Besides the commitment term that pulls the
encoder towards its codes, a codebook term pulls each used code towards the encoder
outputs assigned to it:

    codebook loss    ||sg(z_e) - e||^2     (gradient to the codebook only)
    commitment loss  beta * ||z_e - sg(e)||^2   (gradient to the encoder only)

as in Sonnet's and the PyTorch tutorial's `VectorQuantizer` and the Haiku practical.
The two are summed over the latent positions (like the EMA quantizer's commitment
loss; see `QuantizerOutput`) and returned together in `commitment_loss`, the whole
quantizer term of the objective, so the model adds it to the loss unchanged.

Shares with `VectorQuantizerEMA` the nearest-code search, the straight-through
estimator, the outputs, and the replica-consistent first-batch initialisation; the
code counts behind perplexity and usage are SUM all-reduced in training. The
optimizer all-reduces the codebook's gradient like any other, so every replica keeps
the same codebook.
"""

from typing import NamedTuple

import tensorflow as tf

from tfp_vqvae.quantizers import base as quantizer_lib


class LossVariables(NamedTuple):
  """The state of a loss-trained codebook, read and written by `LossQuantization`.

  The codebook is trainable (the optimizer updates it); the first training call
  assigns it on every replica with the same value (see
  `quantizer.sample_global_rows`), so all three are mirrored with
  ONLY_FIRST_REPLICA aggregation under tf.distribute.
  """
  codebook: tf.Variable     # float32 [K, D], trainable
  initialized: tf.Variable  # bool [], set by the first training call
  num_updates: tf.Variable  # int64 [], training calls so far (the next seed's index)


class LossQuantization(quantizer_lib.CodebookOptions):
  """The loss-trained quantizer's options and its math, on variables it is given.

  Shared by `VectorQuantizerLoss` (a `tf.Module`) and the Keras layer
  (keras/layers.py).
  """

  def __init__(self, num_embeddings: int, embedding_dim: int,
               commitment_cost: float = 0.25, initializer=None, seed: int = 0,
               rotation_trick: bool = False, cosine: bool = False):
    """Checks and keeps the options.

    Args:
      num_embeddings: K, the number of codes; >= 1.
      embedding_dim: D, the size of a code vector; >= 1.
      commitment_cost: beta >= 0, weight of the commitment loss.
      initializer: a `codebook_init.CodebookInit`; None for K encoder outputs of
        the first global batch.
      seed: integer seed of the initialisation's random choices (see
        `quantizer.training_seed`).
      rotation_trick: pass the decoder's gradient to the inputs through the
        rotation trick (`quantizer.rotated`) instead of straight through (the
        codebook still learns from the codebook loss only).
      cosine: l2-normalise the inputs and the codes (the codebook's rows, when
        used): codes by cosine similarity (ViT-VQGAN; `cosine.LowDimCosine` does
        it in a low dimension).

    Raises:
      ValueError: if an argument is out of range.
    """
    quantizer_lib.CodebookOptions.__init__(
        self, num_embeddings, embedding_dim, commitment_cost, initializer, seed,
        rotation_trick, cosine)

  def get_config(self) -> dict:
    """The constructor's keyword arguments (`initializer` as the object)."""
    return dict(num_embeddings=self.num_embeddings, embedding_dim=self.embedding_dim,
                commitment_cost=self.commitment_cost, initializer=self.initializer,
                seed=self.seed, rotation_trick=self.rotation_trick, cosine=self.cosine)

  def quantize(self, variables: LossVariables, inputs: tf.Tensor,
               training: bool = False, seed=None) -> quantizer_lib.QuantizerOutput:
    """Quantizes `inputs` [..., D]; in training, initialises the codebook once.

    Args:
      variables: the codebook's `LossVariables`.
      inputs: [B, ..., D] encoder outputs, any float dtype.
      training: if True, set the codebook on the first call and all-reduce the code
        counts across replicas.
      seed: optional shape [2] integer stateless seed of this training call,
        overriding `quantizer.training_seed(self.seed, num_updates)`.

    The codebook's gradient is summed by the tape over the whole batch, so
    reduction groups do not make this quantizer's training bit-identical across
    replica counts, unlike `VectorQuantizerEMA`'s.

    Returns:
      A `quantizer.QuantizerOutput` whose `commitment_loss` is the codebook loss
      plus beta times the commitment loss, per example.

    Raises:
      ValueError: if the last dimension of `inputs` is not D.
    """
    inputs, vectors = quantizer_lib.flatten_inputs(inputs, self.embedding_dim)
    vectors = quantizer_lib.code_vectors(vectors, self.cosine)
    codebook = variables.codebook.read_value()
    if training:
      updates = variables.num_updates.read_value()
      if seed is None:
        seed = quantizer_lib.training_seed(self.seed, updates)
      variables.num_updates.assign(updates + 1)
      context, num_replicas = quantizer_lib.replica_info()
      candidates = quantizer_lib.sample_global_rows(context, num_replicas, vectors,
                                                    self.num_embeddings, seed)
      if self.initializer is not None:
        candidates = self.initializer.first_codebook(
            variables.initialized, context, num_replicas, vectors, seed, candidates)
      codebook = _initialize_once(variables, candidates)

    codebook = quantizer_lib.code_vectors(codebook, self.cosine)
    codes = quantizer_lib.nearest_codes(vectors, tf.stop_gradient(codebook))
    nearest = tf.gather(codebook, codes)
    code_counts = tf.math.unsorted_segment_sum(
        tf.ones_like(codes, tf.float32), codes, self.num_embeddings)
    if training:
      code_counts = quantizer_lib.sum_over_replicas(context, num_replicas, code_counts)

    loss = quantizer_lib.codebook_loss(inputs, vectors, nearest, self.commitment_cost)
    return quantizer_lib.straight_through_output(inputs, vectors, nearest, codes, loss,
                                                 code_counts,
                                                 rotation_trick=self.rotation_trick)


def _initialize_once(variables, initial):
  """On the first training call, sets the codebook to `initial`; returns it."""
  variables.codebook.assign(tf.where(variables.initialized, variables.codebook, initial))
  variables.initialized.assign(True)
  return variables.codebook.read_value()


class VectorQuantizerLoss(LossQuantization, quantizer_lib.SingleCodebook):
  """Vector quantizer with a gradient-trained codebook.

  Example:
    quantizer = VectorQuantizerLoss(num_embeddings=16, embedding_dim=32)
    out = quantizer(z_e, training=True)
    loss = recon_nll + out.commitment_loss  # trains encoder, decoder and codebook
  """

  def __init__(self, num_embeddings: int, embedding_dim: int,
               commitment_cost: float = 0.25, initializer=None, seed: int = 0,
               rotation_trick: bool = False, cosine: bool = False,
               name: str = "quantizer"):
    """Creates the codebook, set on the first training call, under the module `name`.

    The other arguments are `LossQuantization`'s, which raises ValueError naming one
    that is out of range.
    """
    tf.Module.__init__(self, name=name)
    LossQuantization.__init__(self, num_embeddings, embedding_dim,
                              commitment_cost=commitment_cost, initializer=initializer,
                              seed=seed, rotation_trick=rotation_trick, cosine=cosine)
    self._create_codebook(trainable=True)

  def _quantize(self, inputs, training, seed):
    """Quantizes `inputs` [..., D]; see `LossQuantization.quantize`.

    Returns:
      A `quantizer.QuantizerOutput`.
    """
    state = LossVariables(self.codebook, self.initialized, self.num_updates)
    return self.quantize(state, inputs, training=training, seed=seed)
