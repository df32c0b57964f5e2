"""Quantizer options, registered under their `--quantizer` names.

A new quantizer is its module under `tfp_vqvae/quantizers/` plus one options class
here, registered with `@QUANTIZERS.register(name)`, whose `build` makes it:

    build(embedding_dim, *, seed, name, reduction_group_size) -> quantizers.Quantizer

`embedding_dim` is D, the encoder's output width; `seed` the quantizer's seed;
`name` its module name; `reduction_group_size` the run's `--reduction_group_size`
(a quantizer with batch statistics sums them per group of that many images).
Every quantizer can be a stage of a residual stack (`--num_quantizers`); a class
whose quantizer cannot be a level of VQ-VAE-2 (`--top_downsamples`) sets
`hierarchical_level = False`.
"""

import dataclasses
import math
from typing import ClassVar

from tfp_vqvae.configs import fields
from tfp_vqvae.configs import registry

QUANTIZERS = registry.Registry("quantizer")
CODEBOOK_INITS = ("data", "kmeans", "uniform")


@dataclasses.dataclass(frozen=True)
class QuantizerOptions(fields.Options):
  """Base of the quantizers' options: `build` makes the quantizer (see above)."""
  hierarchical_level: ClassVar[bool] = True

  def build(self, embedding_dim, *, seed, name, reduction_group_size):
    raise NotImplementedError(f"{type(self).__name__} must implement build.")


@dataclasses.dataclass(frozen=True)
class NearestCodeOptions(QuantizerOptions):
  """What every quantizer coding a vector by the nearest of K code vectors is given."""
  num_embeddings: int = fields.field(
      512, fields.POSITIVE_INT, "K, the number of codebook vectors.", architecture=True)
  commitment_cost: float = fields.field(
      0.25, fields.NON_NEGATIVE, "beta, the weight of the commitment loss.")
  rotation_trick: bool = fields.field(
      False, fields.BOOL,
      "Pass the decoder's gradient to the encoder through the rotation trick (Fifty "
      "et al. 2024: each output rotated and scaled onto its code, the rotation a "
      "constant), not straight through. Same outputs and codes.")


@dataclasses.dataclass(frozen=True)
class CodebookOptions(NearestCodeOptions):
  """What every quantizer with a codebook variable of K vectors is given."""
  codebook_init: str = fields.field(
      "data", fields.one_of(CODEBOOK_INITS),
      "First-batch codebook: data (K encoder outputs), kmeans (Lloyd iterations on "
      "encoder outputs) or uniform (+-1/K).")
  cosine_dim: int = fields.field(
      0, fields.NON_NEGATIVE_INT,
      "d > 0: look codes up in d dimensions by cosine similarity (ViT-VQGAN; "
      "LlamaGen: 8): a learned projection D -> d, inputs and codes l2-normalised, "
      "the code projected back to D. 0: the codebook in D, by L2 distance.",
      architecture=True)

  def initializer(self):
    """The `codebook_init` object (None: K rows of the first batch)."""
    from tfp_vqvae.quantizers import codebook_init  # pylint: disable=g-import-not-at-top
    return {"data": None, "kmeans": codebook_init.KMeansInit(),
            "uniform": codebook_init.UniformInit()}[self.codebook_init]

  def _build_codebook(self, make, embedding_dim, seed, name):
    """`make(dim, cosine, name)`'s codebook quantizer: in D, or with `cosine_dim` a
    cosine one of that dim inside `cosine.LowDimCosine`."""
    if not self.cosine_dim:
      return make(embedding_dim, False, name)
    from tfp_vqvae.quantizers import cosine  # pylint: disable=g-import-not-at-top
    return cosine.LowDimCosine(make(self.cosine_dim, True, "codebook"), embedding_dim,
                               seed=seed, name=name)


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
    return self._build_codebook(
        lambda dim, cosine, name: ema.VectorQuantizerEMA(
            self.num_embeddings, dim, commitment_cost=self.commitment_cost,
            decay=self.decay, epsilon=self.epsilon,
            dead_code_threshold=self.dead_code_threshold,
            initializer=self.initializer(), decay_warmup=self.decay_warmup, seed=seed,
            reduction_group_size=reduction_group_size,
            rotation_trick=self.rotation_trick, cosine=cosine, name=name),
        embedding_dim, seed, name)


@QUANTIZERS.register("loss")
@dataclasses.dataclass(frozen=True)
class LossOptions(CodebookOptions):
  """The codebook trained by the gradient of ||sg(z_e) - e||^2."""

  def build(self, embedding_dim, *, seed, name, reduction_group_size):
    del reduction_group_size  # The codebook's gradient sums over the batch.
    from tfp_vqvae.quantizers import loss  # pylint: disable=g-import-not-at-top
    return self._build_codebook(
        lambda dim, cosine, name: loss.VectorQuantizerLoss(
            self.num_embeddings, dim, commitment_cost=self.commitment_cost,
            initializer=self.initializer(), seed=seed,
            rotation_trick=self.rotation_trick, cosine=cosine, name=name),
        embedding_dim, seed, name)


@QUANTIZERS.register("simvq")
@dataclasses.dataclass(frozen=True)
class SimVQOptions(NearestCodeOptions):
  """SimVQ (Zhu et al. 2024): a frozen random codebook through one learned linear map."""
  # Not yet: measured as one codebook and residual stages only.
  hierarchical_level: ClassVar[bool] = False

  def build(self, embedding_dim, *, seed, name, reduction_group_size):
    del reduction_group_size  # The map's gradient sums over the batch.
    from tfp_vqvae.quantizers import simvq  # pylint: disable=g-import-not-at-top
    return simvq.SimVQQuantizer(self.num_embeddings, embedding_dim,
                                commitment_cost=self.commitment_cost, seed=seed,
                                rotation_trick=self.rotation_trick, name=name)


def _parse_levels(text) -> tuple:
  """"8,5,5,5" -> (8, 5, 5, 5); () if not comma-separated integers."""
  try:
    return tuple(int(part) for part in str(text).split(","))
  except ValueError:
    return ()


def _valid_levels(text) -> bool:
  levels = _parse_levels(text)
  return bool(levels) and min(levels) >= 2 and math.prod(levels) < 2**31


@QUANTIZERS.register("fsq")
@dataclasses.dataclass(frozen=True)
class FSQOptions(QuantizerOptions):
  """Finite scalar quantization (Mentzer et al. 2023): no codebook to learn."""
  # Not yet: a tiny VQ-VAE-2 of FSQ levels got all-zero gradients at step 1.
  hierarchical_level: ClassVar[bool] = False
  fsq_levels: str = fields.field(
      "8,5,5,5",
      fields.Rule(_valid_levels, "must be comma-separated integers >= 2 whose "
                  "product (K) is below 2**31"),
      "Levels of the d projected channels, comma-separated; K is their product "
      "(8,5,5,5: 1000 codes).", architecture=True)

  def build(self, embedding_dim, *, seed, name, reduction_group_size):
    del reduction_group_size  # FSQ has no batch statistics.
    from tfp_vqvae.quantizers import fsq  # pylint: disable=g-import-not-at-top
    return fsq.FiniteScalarQuantizer(embedding_dim, _parse_levels(self.fsq_levels),
                                     seed=seed, name=name)


@QUANTIZERS.register("lfq")
@dataclasses.dataclass(frozen=True)
class LFQOptions(QuantizerOptions):
  """Lookup-free quantization (MAGVIT-v2): the signs of d projected channels."""
  hierarchical_level: ClassVar[bool] = False
  lfq_code_dim: int = fields.field(
      9, fields.Rule(lambda value: fields.is_int(value) and 1 <= value <= 16,
                     "must be an integer in [1, 16]"),
      "d, the number of sign bits; K = 2**d codes.", architecture=True)
  lfq_entropy_weight: float = fields.field(
      0.1, fields.NON_NEGATIVE, "Weight of the entropy penalty (MAGVIT-v2: 0.1).")
  lfq_entropy_temperature: float = fields.field(
      0.01, fields.POSITIVE,
      "Temperature of the soft assignments behind the entropy penalty.")
  commitment_cost: float = fields.field(
      0.25, fields.NON_NEGATIVE, "beta, the weight of the commitment loss.")

  def build(self, embedding_dim, *, seed, name, reduction_group_size):
    del reduction_group_size  # The entropy is the global batch's.
    from tfp_vqvae.quantizers import lfq  # pylint: disable=g-import-not-at-top
    return lfq.LookupFreeQuantizer(
        embedding_dim, code_dim=self.lfq_code_dim,
        entropy_weight=self.lfq_entropy_weight, commitment_cost=self.commitment_cost,
        entropy_temperature=self.lfq_entropy_temperature, seed=seed, name=name)
