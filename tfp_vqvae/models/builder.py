"""Turns a training `Config` into the parts of a VQ-VAE and composes them.

The one place where the names in flags (`--architecture=conv`, `--quantizer=ema`,
`--likelihood=bernoulli`, ...) become objects; everything else takes the objects.
Library users compose the parts themselves:

    model = tv.VQVAE(tv.Encoder(), tv.VectorQuantizerEMA(512, 64), tv.Decoder(),
                     tv.Bernoulli(), image_shape=(28, 28, 1))

and `build_vqvae(config, image_shape)` builds the same model from a `Config`.
Initial weights are pure functions of `config.seed`: the encoder draws from seed
2 * seed, the decoder from 2 * seed + 1, the quantizer's random choices from seed.
VQ-VAE-2's top level (`--top_downsamples`) draws from `TOP_LEVEL_SEED + ...` (see
`build_hierarchy`).
"""

from typing import Sequence

import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.models import likelihoods
from tfp_vqvae.models import vqvae as model_lib
from tfp_vqvae.nets import conv as networks
from tfp_vqvae.nets import dense as architectures
from tfp_vqvae.nets import layers
from tfp_vqvae.quantizers import codebook_init
from tfp_vqvae.quantizers import ema as ema_lib
from tfp_vqvae.quantizers import hierarchical
from tfp_vqvae.quantizers import loss as quantizer_loss
from tfp_vqvae.quantizers import residual as residual_quantizer

ARCHITECTURES = ("conv", "mlp", "global")
QUANTIZERS = ("ema", "loss")
LIKELIHOODS = ("bernoulli", "gaussian", "logistic")
PIXEL_RANGES = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}
# Offset of the seeds of VQ-VAE-2's top-level parts, away from 2 * seed (+ 1).
TOP_LEVEL_SEED = 1 << 20
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


def build_networks(config, image_shape: Sequence[int], out_channels: int,
                   decoder_in_channels: int = 0) -> tuple[tf.Module, tf.Module]:
  """(encoder, decoder) of `config.architecture` for network inputs `image_shape`.

  Args:
    config: a `Config` (architecture, sizes, seed, dtype).
    image_shape: (H, W, C) the networks see (after any padding).
    out_channels: decoder output channels (C times the likelihood's parameters).
    decoder_in_channels: the conv decoder's input channels if not D (VQ-VAE-2's
      decoder takes 2 * D).

  Raises:
    ValueError: for an unknown architecture or sizes that do not fit.
  """
  height, width, channels = image_shape
  seed, dtype = config.seed, config.dtype
  if config.architecture == "conv":
    halvings = int(config.num_downsamples) + int(config.top_downsamples)
    if height % 2 ** halvings or width % 2 ** halvings:
      exponent = ("(num_downsamples + top_downsamples)" if config.top_downsamples
                  else "num_downsamples")
      raise ValueError(f"image height and width {height}x{width} must be divisible by "
                       f"2**{exponent} = {2 ** halvings}.")
    sizes = dict(num_hiddens=config.num_hiddens,
                 num_residual_hiddens=config.num_residual_hiddens,
                 num_residual_layers=config.num_residual_layers,
                 embedding_dim=config.embedding_dim,
                 num_downsamples=config.num_downsamples, dtype=dtype)
    decoder_sizes = dict(sizes, embedding_dim=decoder_in_channels or sizes["embedding_dim"])
    return (networks.Encoder(in_channels=channels, seed=2 * seed, **sizes),
            networks.Decoder(out_channels=out_channels, seed=2 * seed + 1,
                             **decoder_sizes))
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


def build_quantizer(config, name="quantizer", seed=None) -> tf.Module:
  """The `config.quantizer` quantizer, or a residual stack of `num_quantizers` of them.

  Args:
    config: a `Config`.
    name: module name.
    seed: the quantizer's seed; `config.seed` if None.

  Raises:
    ValueError: for an unknown kind or method, or sizes out of range.
  """
  seed = config.seed if seed is None else seed
  if config.quantizer not in QUANTIZERS:
    raise ValueError(f"Unknown quantizer {config.quantizer!r}; expected one of "
                     f"{', '.join(QUANTIZERS)}.")
  if config.codebook_init not in CODEBOOK_INITS:
    raise ValueError(f"Unknown codebook_init {config.codebook_init!r}; expected one of "
                     f"{', '.join(CODEBOOK_INITS)}.")
  initializer = CODEBOOK_INITS[config.codebook_init]

  def stage(name):
    if config.quantizer == "ema":
      return ema_lib.VectorQuantizerEMA(
          config.num_embeddings, config.embedding_dim,
          commitment_cost=config.commitment_cost, decay=config.decay,
          epsilon=config.epsilon, dead_code_threshold=config.dead_code_threshold,
          initializer=initializer, decay_warmup=config.decay_warmup, seed=seed,
          reduction_group_size=config.reduction_group_size, name=name)
    return quantizer_loss.VectorQuantizerLoss(
        config.num_embeddings, config.embedding_dim,
        commitment_cost=config.commitment_cost, initializer=initializer,
        seed=seed, name=name)

  if config.num_quantizers == 1:
    return stage(name)
  return residual_quantizer.ResidualQuantizer(
      [stage(f"stage_{i}") for i in range(config.num_quantizers)], seed=seed, name=name)


def build_hierarchy(config) -> hierarchical.HierarchicalQuantizer:
  """VQ-VAE-2's two-level quantizer over the bottom encoder's [hb, wb, D] features.

  The top encoder and decoder are the conv networks with `config.top_downsamples`
  halvings and D channels in and out; the top level's parts draw from seeds
  TOP_LEVEL_SEED + 2 * seed + (0 encoder, 1 decoder, 2 upsampler, 3
  conditioner), its quantizer from TOP_LEVEL_SEED + seed.

  Raises:
    ValueError: for an architecture other than conv, with more than one stage,
      or see `build_quantizer`.
  """
  if config.architecture != "conv" or config.num_quantizers != 1:
    raise ValueError("--top_downsamples (VQ-VAE-2) needs --architecture=conv and "
                     f"--num_quantizers=1, got {config.architecture!r} and "
                     f"{config.num_quantizers}.")
  dim, seed = config.embedding_dim, TOP_LEVEL_SEED + 2 * config.seed
  sizes = dict(num_hiddens=config.num_hiddens,
               num_residual_hiddens=config.num_residual_hiddens,
               num_residual_layers=config.num_residual_layers, embedding_dim=dim,
               num_downsamples=config.top_downsamples, dtype=config.dtype)
  return hierarchical.HierarchicalQuantizer(
      top_encoder=networks.Encoder(in_channels=dim, seed=seed, name="top_encoder",
                                   **sizes),
      top_quantizer=build_quantizer(config, "top_quantizer", TOP_LEVEL_SEED + config.seed),
      top_decoder=networks.Decoder(out_channels=dim, seed=seed + 1, name="top_decoder",
                                   **sizes),
      bottom_conditioner=layers.Conv2D(
          2 * dim, dim, 1, seeds=seeds_lib.SeedSequence(seed + 3),
          name="bottom_conditioner"),
      bottom_quantizer=build_quantizer(config, "bottom_quantizer"),
      top_upsampler=networks.Upsampler(dim, config.top_downsamples, seed=seed + 2,
                                       dtype=config.dtype),
      reduction_group_size=config.reduction_group_size)


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
    quantizer = build_hierarchy(config) if config.top_downsamples else build_quantizer(
        config)
    encoder, decoder = build_networks(
        config, (pad_to or height, pad_to or width, channels),
        channels * likelihood.params_per_channel,
        quantizer.output_dim)
  return model_lib.VQVAE(encoder, quantizer, decoder, likelihood,
                         image_shape=(height, width, channels),
                         pixel_range=PIXEL_RANGES[config.pixel_range], pad_to=pad_to,
                         reduction_group_size=config.reduction_group_size)
