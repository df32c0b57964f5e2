"""tfp_vqvae: VQ-VAE with TensorFlow Probability, built for TF Serving.

    import tfp_vqvae as tv

    quantizer = tv.VectorQuantizerEMA(num_embeddings=512, embedding_dim=64)
    model = tv.VQVAE(tv.Encoder(), quantizer, tv.Decoder(), tv.Bernoulli(),
                     image_shape=(28, 28, 1))
    model, config, _ = tv.load_vqvae("runs/kmnist")   # a trained model_dir

The names below are the public API (`__all__`); everything else is internal.
They are loaded on first use, so `import tfp_vqvae` is cheap and imports no
TensorFlow until a name is used (the command-line programs rely on that to set up
TF's logging before TF starts).
"""

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Public name -> the module (in tfp_vqvae) that defines it.
_EXPORTS = {
    # The model and its parts.
    "VQVAE": "models.vqvae",
    "LossTerms": "models.vqvae",
    "Encoder": "nets.conv",
    "Decoder": "nets.conv",
    "ResidualStack": "nets.conv",
    "Upsampler": "nets.conv",
    "MLPEncoder": "nets.dense",
    "MLPDecoder": "nets.dense",
    "GlobalEncoder": "nets.dense",
    "GlobalDecoder": "nets.dense",
    "Conv2D": "nets.layers",
    "Conv2DTranspose": "nets.layers",
    "Linear": "nets.layers",
    "SeedSequence": "internal.seeds",
    # Quantizers.
    "VectorQuantizerEMA": "quantizers.ema",
    "VectorQuantizerLoss": "quantizers.loss",
    "ResidualQuantizer": "quantizers.residual",
    "HierarchicalQuantizer": "quantizers.hierarchical",
    "FiniteScalarQuantizer": "quantizers.fsq",
    "LookupFreeQuantizer": "quantizers.lfq",
    "SimVQQuantizer": "quantizers.simvq",
    "Quantizer": "quantizers.base",
    "QuantizerOutput": "quantizers.base",
    "nearest_codes": "quantizers.base",
    "EMAQuantization": "quantizers.ema",
    "EMAVariables": "quantizers.ema",
    "LossQuantization": "quantizers.loss",
    "LossVariables": "quantizers.loss",
    "CodebookInit": "quantizers.codebook_init",
    "KMeansInit": "quantizers.codebook_init",
    "UniformInit": "quantizers.codebook_init",
    # Keras 3 layers (importing them imports keras).
    "VectorQuantizerEMALayer": "keras.layers",
    "VectorQuantizerLossLayer": "keras.layers",
    # Likelihoods p(x | z_q).
    "Bernoulli": "models.likelihoods",
    "Gaussian": "models.likelihoods",
    "DiscretizedLogistic": "models.likelihoods",
    # The learned prior.
    "GatedPixelCNN": "priors.pixelcnn",
    "PriorConfig": "priors.pixelcnn",
    "HierarchicalPriorConfig": "priors.pixelcnn",
    "HierarchicalPrior": "priors.hierarchical",
    "CausalSelfAttention": "nets.attention",
    "build_prior": "priors.pixelcnn",
    "load_prior": "priors.pixelcnn",
    "sample_images": "priors.sampling",
    # Configuration, building and training.
    "Config": "configs.config",
    "build_vqvae": "models.builder",
    "train_and_evaluate": "training.vqvae_trainer",
    # Loading and export.
    "load_vqvae": "training.checkpoints",
    "export_saved_model": "serving.export",
    "save_module": "serving.export",
    "ServingModule": "serving.export",
    "PriorServingModule": "serving.export",
    "GrpcClient": "serving.client",
    "RestClient": "serving.client",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name not in _EXPORTS:
    raise AttributeError(f"module 'tfp_vqvae' has no attribute {name!r}")
  value = getattr(importlib.import_module(f"tfp_vqvae.{_EXPORTS[name]}"), name)
  globals()[name] = value  # Later lookups skip __getattr__.
  return value


def __dir__():
  return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # Static analysers and IDEs see the real names.
  # pylint: disable=g-bad-import-order,g-import-not-at-top
  from tfp_vqvae.configs.config import Config
  from tfp_vqvae.internal.seeds import SeedSequence
  from tfp_vqvae.keras.layers import VectorQuantizerEMALayer, VectorQuantizerLossLayer
  from tfp_vqvae.models.builder import build_vqvae
  from tfp_vqvae.models.likelihoods import Bernoulli, DiscretizedLogistic, Gaussian
  from tfp_vqvae.models.vqvae import LossTerms, VQVAE
  from tfp_vqvae.nets.attention import CausalSelfAttention
  from tfp_vqvae.nets.conv import Decoder, Encoder, ResidualStack, Upsampler
  from tfp_vqvae.nets.dense import GlobalDecoder, GlobalEncoder, MLPDecoder, MLPEncoder
  from tfp_vqvae.nets.layers import Conv2D, Conv2DTranspose, Linear
  from tfp_vqvae.priors.hierarchical import HierarchicalPrior
  from tfp_vqvae.priors.pixelcnn import (GatedPixelCNN, HierarchicalPriorConfig,
                                         PriorConfig, build_prior, load_prior)
  from tfp_vqvae.priors.sampling import sample_images
  from tfp_vqvae.quantizers.base import Quantizer, QuantizerOutput, nearest_codes
  from tfp_vqvae.quantizers.codebook_init import CodebookInit, KMeansInit, UniformInit
  from tfp_vqvae.quantizers.ema import EMAQuantization, EMAVariables, VectorQuantizerEMA
  from tfp_vqvae.quantizers.fsq import FiniteScalarQuantizer
  from tfp_vqvae.quantizers.hierarchical import HierarchicalQuantizer
  from tfp_vqvae.quantizers.lfq import LookupFreeQuantizer
  from tfp_vqvae.quantizers.loss import (LossQuantization, LossVariables,
                                         VectorQuantizerLoss)
  from tfp_vqvae.quantizers.residual import ResidualQuantizer
  from tfp_vqvae.quantizers.simvq import SimVQQuantizer
  from tfp_vqvae.serving.client import GrpcClient, RestClient
  from tfp_vqvae.serving.export import (PriorServingModule, ServingModule,
                                        export_saved_model, save_module)
  from tfp_vqvae.training.checkpoints import load_vqvae
  from tfp_vqvae.training.vqvae_trainer import train_and_evaluate
