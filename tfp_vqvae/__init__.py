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
    "VQVAE": "model",
    "LossTerms": "model",
    "Encoder": "networks",
    "Decoder": "networks",
    "ResidualStack": "networks",
    "Upsampler": "networks",
    "MLPEncoder": "architectures",
    "MLPDecoder": "architectures",
    "GlobalEncoder": "architectures",
    "GlobalDecoder": "architectures",
    "Conv2D": "layers",
    "Conv2DTranspose": "layers",
    "Linear": "layers",
    "SeedSequence": "seeds",
    # Quantizers.
    "VectorQuantizerEMA": "quantizer",
    "VectorQuantizerLoss": "quantizer_loss",
    "ResidualQuantizer": "residual_quantizer",
    "HierarchicalQuantizer": "hierarchical",
    "QuantizerOutput": "quantizer",
    "nearest_codes": "quantizer",
    "EMAQuantization": "quantizer",
    "EMAVariables": "quantizer",
    "LossQuantization": "quantizer_loss",
    "LossVariables": "quantizer_loss",
    "CodebookInit": "codebook_init",
    "KMeansInit": "codebook_init",
    "UniformInit": "codebook_init",
    # Keras 3 layers (importing them imports keras).
    "VectorQuantizerEMALayer": "keras_layers",
    "VectorQuantizerLossLayer": "keras_layers",
    # Likelihoods p(x | z_q).
    "Bernoulli": "likelihoods",
    "Gaussian": "likelihoods",
    "DiscretizedLogistic": "likelihoods",
    # The learned prior.
    "GatedPixelCNN": "prior",
    "PriorConfig": "prior",
    "HierarchicalPriorConfig": "prior",
    "HierarchicalPrior": "hierarchical_prior",
    "CausalSelfAttention": "attention",
    "build_prior": "prior",
    "load_prior": "prior",
    "sample_images": "sample",
    # Configuration, building and training.
    "Config": "config",
    "build_vqvae": "builder",
    "train_and_evaluate": "train_lib",
    # Loading and export.
    "load_vqvae": "checkpoints",
    "export_saved_model": "export_lib",
    "save_module": "export_lib",
    "ServingModule": "export_lib",
    "PriorServingModule": "export_lib",
    "GrpcClient": "serving_client",
    "RestClient": "serving_client",
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
  from tfp_vqvae.architectures import GlobalDecoder, GlobalEncoder, MLPDecoder, MLPEncoder
  from tfp_vqvae.attention import CausalSelfAttention
  from tfp_vqvae.builder import build_vqvae
  from tfp_vqvae.checkpoints import load_vqvae
  from tfp_vqvae.codebook_init import CodebookInit, KMeansInit, UniformInit
  from tfp_vqvae.keras_layers import VectorQuantizerEMALayer, VectorQuantizerLossLayer
  from tfp_vqvae.config import Config
  from tfp_vqvae.export_lib import (PriorServingModule, ServingModule,
                                    export_saved_model, save_module)
  from tfp_vqvae.hierarchical_prior import HierarchicalPrior
  from tfp_vqvae.layers import Conv2D, Conv2DTranspose, Linear
  from tfp_vqvae.likelihoods import Bernoulli, DiscretizedLogistic, Gaussian
  from tfp_vqvae.model import VQVAE, LossTerms
  from tfp_vqvae.hierarchical import HierarchicalQuantizer
  from tfp_vqvae.networks import Decoder, Encoder, ResidualStack, Upsampler
  from tfp_vqvae.prior import (GatedPixelCNN, HierarchicalPriorConfig, PriorConfig,
                               build_prior, load_prior)
  from tfp_vqvae.quantizer import (EMAQuantization, EMAVariables, QuantizerOutput,
                                   VectorQuantizerEMA, nearest_codes)
  from tfp_vqvae.quantizer_loss import LossQuantization, LossVariables, VectorQuantizerLoss
  from tfp_vqvae.residual_quantizer import ResidualQuantizer
  from tfp_vqvae.sample import sample_images
  from tfp_vqvae.seeds import SeedSequence
  from tfp_vqvae.serving_client import GrpcClient, RestClient
  from tfp_vqvae.train_lib import train_and_evaluate
