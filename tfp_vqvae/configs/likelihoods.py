"""Decoder likelihood options, registered under their `--likelihood` names.

An options class here builds p(x | z_q):

    build(pixel_range, data_variance) -> a likelihood module

`pixel_range` is the (low, high) pixel values the networks see and `data_variance`
the variance of the [0, 1] training images (the Gaussian's; a checkpoint restores
it). `models_grey_pixels` is True for a likelihood of grey values, which needs
`--binarize=none`.
"""

import dataclasses

from tfp_vqvae.configs import fields
from tfp_vqvae.configs import registry

LIKELIHOODS = registry.Registry("likelihood")


@LIKELIHOODS.register("bernoulli")
@dataclasses.dataclass(frozen=True)
class BernoulliOptions(fields.Options):
  """Independent Bernoulli pixels with the decoder outputs as logits."""
  models_grey_pixels = False

  def build(self, pixel_range, data_variance):
    del pixel_range, data_variance  # Logits need neither.
    from tfp_vqvae.models import likelihoods  # pylint: disable=g-import-not-at-top
    return likelihoods.Bernoulli(name="bernoulli")


@LIKELIHOODS.register("gaussian")
@dataclasses.dataclass(frozen=True)
class GaussianOptions(fields.Options):
  """Normal pixels with the data's variance: the NLL is a normalised MSE."""
  models_grey_pixels = True

  def build(self, pixel_range, data_variance):
    from tfp_vqvae.models import likelihoods  # pylint: disable=g-import-not-at-top
    return likelihoods.Gaussian(pixel_range, data_variance)


@LIKELIHOODS.register("logistic")
@dataclasses.dataclass(frozen=True)
class LogisticOptions(fields.Options):
  """Discretized logistic pixels over 8-bit levels."""
  models_grey_pixels = True

  def build(self, pixel_range, data_variance):
    del data_variance  # The decoder outputs the scale.
    from tfp_vqvae.models import likelihoods  # pylint: disable=g-import-not-at-top
    return likelihoods.DiscretizedLogistic(pixel_range)
