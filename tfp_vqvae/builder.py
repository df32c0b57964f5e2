"""Turns a training `Config` into the parts of a VQ-VAE and composes them.

The one place where the names in flags (`--architecture=conv`, `--quantizer=ema`,
`--likelihood=bernoulli`, ...) become objects; everything else takes the objects.
Library users compose the parts themselves:

    model = tv.VQVAE(tv.Encoder(), tv.VectorQuantizerEMA(512, 64), tv.Decoder(),
                     tv.Bernoulli(), image_shape=(28, 28, 1))

and `build_vqvae(config, image_shape)` builds the same model from a `Config`.
Initial weights are pure functions of `config.seed`: the encoder draws from seed
2 * seed, the decoder from 2 * seed + 1, the quantizer's random choices from seed.
"""

from typing import Sequence

import tensorflow as tf

from tfp_vqvae import architectures
from tfp_vqvae import codebook_init
from tfp_vqvae import layers
from tfp_vqvae import likelihoods
from tfp_vqvae import model as model_lib
from tfp_vqvae import networks
from tfp_vqvae import quantizer as quantizer_lib
from tfp_vqvae import quantizer_loss
from tfp_vqvae import residual_quantizer

ARCHITECTURES = ("conv", "mlp", "global")
QUANTIZERS = ("ema", "loss")
LIKELIHOODS = ("bernoulli", "gaussian", "logistic")
PIXEL_RANGES = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}
# `--codebook_init` names: None starts from K rows of the first batch.
CODEBOOK_INITS = {"data": None, "kmeans": codebook_init.KMeansInit(),
                  "uniform": codebook_init.UniformInit()}


def build_likelihood(config, data_variance: float = 1.0) -> tf.Module:
  """The `config.likelihood` module; `data_variance` is the Gaussian's variance."""
  pixel_range = PIXEL_RANGES[config.pixel_range]
  if config.likelihood == "bernoulli":
    return likelihoods.Bernoulli(name="bernoulli")
  if config.likelihood == "gaussian":
    return likelihoods.Gaussian(pixel_range, data_variance)
  if config.likelihood == "logistic":
    return likelihoods.DiscretizedLogistic(pixel_range)
  raise ValueError(f"Unknown likelihood {config.likelihood!r}; expected one of "
                   f"{', '.join(LIKELIHOODS)}.")


def build_networks(config, image_shape: Sequence[int],
                   out_channels: int) -> tuple[tf.Module, tf.Module]:
  """(encoder, decoder) of `config.architecture` for network inputs `image_shape`.

  Args:
    config: a `Config` (architecture, sizes, seed, dtype).
    image_shape: (H, W, C) the networks see (after any padding).
    out_channels: decoder output channels (C times the likelihood's parameters).

  Raises:
    ValueError: for an unknown architecture or sizes that do not fit.
  """
  height, width, channels = image_shape
  seed, dtype = config.seed, config.dtype
  if config.architecture == "conv":
    factor = 2 ** int(config.num_downsamples)
    if height % factor or width % factor:
      raise ValueError(f"image height and width {height}x{width} must be divisible by "
                       f"2**num_downsamples = {factor}.")
    sizes = dict(num_hiddens=config.num_hiddens,
                 num_residual_hiddens=config.num_residual_hiddens,
                 num_residual_layers=config.num_residual_layers,
                 embedding_dim=config.embedding_dim,
                 num_downsamples=config.num_downsamples, dtype=dtype)
    return (networks.Encoder(in_channels=channels, seed=2 * seed, **sizes),
            networks.Decoder(out_channels=out_channels, seed=2 * seed + 1, **sizes))
  layers.check_positive(num_hiddens=config.num_hiddens, num_latents=config.num_latents,
                        embedding_dim=config.embedding_dim)
  sizes = dict(num_hiddens=config.num_hiddens, num_latents=config.num_latents,
               embedding_dim=config.embedding_dim, dtype=dtype)
  if config.architecture == "mlp":
    encoder_cls, decoder_cls = architectures.MLPEncoder, architectures.MLPDecoder
  elif config.architecture == "global":
    if height % 4 or width % 4:
      raise ValueError(f"The global architecture halves {height}x{width} twice: height "
                       "and width must be divisible by 4.")
    encoder_cls, decoder_cls = architectures.GlobalEncoder, architectures.GlobalDecoder
  else:
    raise ValueError(f"Unknown architecture {config.architecture!r}; expected one of "
                     f"{', '.join(ARCHITECTURES)}.")
  return (encoder_cls(image_shape, seed=2 * seed, **sizes),
          decoder_cls(image_shape, out_channels, seed=2 * seed + 1, **sizes))


def build_quantizer(config) -> tf.Module:
  """The `config.quantizer` quantizer, or a residual stack of `num_quantizers` of them.

  Raises:
    ValueError: for an unknown kind or method, or sizes out of range.
  """
  if config.quantizer not in QUANTIZERS:
    raise ValueError(f"Unknown quantizer {config.quantizer!r}; expected one of "
                     f"{', '.join(QUANTIZERS)}.")
  if config.codebook_init not in CODEBOOK_INITS:
    raise ValueError(f"Unknown codebook_init {config.codebook_init!r}; expected one of "
                     f"{', '.join(CODEBOOK_INITS)}.")
  initializer = CODEBOOK_INITS[config.codebook_init]

  def stage(name):
    if config.quantizer == "ema":
      return quantizer_lib.VectorQuantizerEMA(
          config.num_embeddings, config.embedding_dim,
          commitment_cost=config.commitment_cost, decay=config.decay,
          epsilon=config.epsilon, dead_code_threshold=config.dead_code_threshold,
          initializer=initializer, decay_warmup=config.decay_warmup, seed=config.seed,
          reduction_group_size=config.reduction_group_size, name=name)
    return quantizer_loss.VectorQuantizerLoss(
        config.num_embeddings, config.embedding_dim,
        commitment_cost=config.commitment_cost, initializer=initializer,
        seed=config.seed, name=name)

  if config.num_quantizers == 1:
    return stage("quantizer")
  return residual_quantizer.ResidualQuantizer(
      [stage(f"stage_{i}") for i in range(config.num_quantizers)], seed=config.seed)


def build_vqvae(config, image_shape: Sequence[int],
                data_variance: float = 1.0) -> model_lib.VQVAE:
  """The `VQVAE` a config describes, for images of `image_shape` (H, W, C).

  Args:
    config: a `Config`.
    image_shape: (H, W, C) of the images.
    data_variance: a Gaussian likelihood's variance; a checkpoint restores it.

  Raises:
    ValueError: if the config's parts do not fit the images.
  """
  height, width, channels = (int(s) for s in image_shape)
  pad_to = config.pad_to or None
  if pad_to and pad_to < max(height, width):
    raise ValueError(f"pad_to={pad_to} is smaller than the {height}x{width} images.")
  with tf.name_scope("vqvae"):
    likelihood = build_likelihood(config, data_variance)
    encoder, decoder = build_networks(
        config, (pad_to or height, pad_to or width, channels),
        channels * likelihood.params_per_channel)
    quantizer = build_quantizer(config)
  return model_lib.VQVAE(encoder, quantizer, decoder, likelihood,
                         image_shape=(height, width, channels),
                         pixel_range=PIXEL_RANGES[config.pixel_range], pad_to=pad_to,
                         reduction_group_size=config.reduction_group_size)
