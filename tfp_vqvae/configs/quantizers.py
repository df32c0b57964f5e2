"""Quantizer options, registered under their `--quantizer` names.

A new quantizer is its module under `tfp_vqvae/quantizers/` plus one options class
here, registered with `@QUANTIZERS.register(name)`, whose `build` makes it:

    build(embedding_dim, *, seed, name, reduction_group_size) -> quantizers.Quantizer

`embedding_dim` is D, the encoder's output width; `seed` the quantizer's seed;
`name` its module name; `reduction_group_size` the run's `--reduction_group_size`
(a quantizer with batch statistics sums them per group of that many images).
A class whose quantizer cannot be a stage of a residual stack or a level of
VQ-VAE-2 sets `stackable = False`.
"""

import dataclasses
from typing import ClassVar

from tfp_vqvae.configs import fields
from tfp_vqvae.configs import registry

QUANTIZERS = registry.Registry("quantizer")
CODEBOOK_INITS = ("data", "kmeans", "uniform")


@dataclasses.dataclass(frozen=True)
class QuantizerOptions(fields.Options):
  """Base of the quantizers' options: `build` makes the quantizer (see above)."""
  stackable: ClassVar[bool] = True

  def build(self, embedding_dim, *, seed, name, reduction_group_size):
    raise NotImplementedError(f"{type(self).__name__} must implement build.")


@dataclasses.dataclass(frozen=True)
class CodebookOptions(QuantizerOptions):
  """What every quantizer with a codebook of K vectors is given."""
  num_embeddings: int = fields.field(
      512, fields.POSITIVE_INT, "K, the number of codebook vectors.", architecture=True)
  commitment_cost: float = fields.field(
      0.25, fields.NON_NEGATIVE, "beta, the weight of the commitment loss.")
  codebook_init: str = fields.field(
      "data", fields.one_of(CODEBOOK_INITS),
      "First-batch codebook: data (K encoder outputs), kmeans (Lloyd iterations on "
      "encoder outputs) or uniform (+-1/K).")

  def initializer(self):
    """The `codebook_init` object (None: K rows of the first batch)."""
    from tfp_vqvae.quantizers import codebook_init  # pylint: disable=g-import-not-at-top
    return {"data": None, "kmeans": codebook_init.KMeansInit(),
            "uniform": codebook_init.UniformInit()}[self.codebook_init]


@QUANTIZERS.register("ema")
@dataclasses.dataclass(frozen=True)
class EMAOptions(CodebookOptions):
  """The codebook trained by exponential moving averages (van den Oord et al. 2017)."""
  decay: float = fields.field(
      0.99, fields.UNIT_INTERVAL, "EMA decay of the codebook statistics.")
  decay_warmup: bool = fields.field(
      True, fields.BOOL,
      "Warm the EMA decay up as min(decay, (1 + t) / (10 + t)) at update t, so the "
      "codebook keeps up with the encoder early on.")
  epsilon: float = fields.field(
      1e-5, fields.POSITIVE, "Laplace smoothing of the EMA code counts.")
  dead_code_threshold: float = fields.field(
      0.5, fields.UNIT_INTERVAL,
      "Re-seed a code from an encoder output when its EMA count falls below this (0 "
      "disables).")

  def build(self, embedding_dim, *, seed, name, reduction_group_size):
    from tfp_vqvae.quantizers import ema  # pylint: disable=g-import-not-at-top
    return ema.VectorQuantizerEMA(
        self.num_embeddings, embedding_dim, commitment_cost=self.commitment_cost,
        decay=self.decay, epsilon=self.epsilon,
        dead_code_threshold=self.dead_code_threshold, initializer=self.initializer(),
        decay_warmup=self.decay_warmup, seed=seed,
        reduction_group_size=reduction_group_size, name=name)


@QUANTIZERS.register("loss")
@dataclasses.dataclass(frozen=True)
class LossOptions(CodebookOptions):
  """The codebook trained by the gradient of ||sg(z_e) - e||^2."""

  def build(self, embedding_dim, *, seed, name, reduction_group_size):
    del reduction_group_size  # The codebook's gradient sums over the batch.
    from tfp_vqvae.quantizers import loss  # pylint: disable=g-import-not-at-top
    return loss.VectorQuantizerLoss(
        self.num_embeddings, embedding_dim, commitment_cost=self.commitment_cost,
        initializer=self.initializer(), seed=seed, name=name)

