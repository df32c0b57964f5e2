"""Turns a training `Config` into the parts of a VQ-VAE and composes them.

The chosen components' options build them (`config.network.build(...)`,
`config.quantizer.build(...)`, ...: see tfp_vqvae/configs/); this module composes
them, with the residual stages and VQ-VAE-2's levels; everything else takes the
objects.
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

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.models import vqvae as model_lib
from tfp_vqvae.nets import conv as networks
from tfp_vqvae.nets import layers
from tfp_vqvae.quantizers import hierarchical
from tfp_vqvae.quantizers import residual as residual_quantizer

# Offset of the seeds of VQ-VAE-2's top-level parts, away from 2 * seed (+ 1).
TOP_LEVEL_SEED = 1 << 20


def build_likelihood(config, data_variance: float = 1.0) -> tf.Module:
  """The `config.likelihood` module; `data_variance` is the Gaussian's variance."""
  return config.likelihood.build(config_lib.PIXEL_RANGES[config.model.pixel_range],
                                 data_variance)


def build_networks(config, image_shape: Sequence[int], out_channels: int,
                   decoder_in_channels: int = 0) -> tuple[tf.Module, tf.Module]:
  """(encoder, decoder) of `config.network` for network inputs `image_shape`.

  Args:
    config: a `Config` (network, D, seed, dtype).
    image_shape: (H, W, C) the networks see (after any padding).
    out_channels: decoder output channels (C times the likelihood's parameters).
    decoder_in_channels: the decoder's input channels if not D (VQ-VAE-2's
      decoder takes 2 * D).

  Raises:
    ValueError: for sizes that do not fit.
  """
  height, width, _ = image_shape
  config.network.check_image_shape(height, width, config.model.top_downsamples)
  return config.network.build(
      tuple(image_shape), out_channels, embedding_dim=config.model.embedding_dim,
      decoder_in_channels=decoder_in_channels or config.model.embedding_dim,
      seed=2 * config.seed, dtype=config.training.dtype)


def build_quantizer(config, name="quantizer", seed=None) -> tf.Module:
  """The `config.quantizer` quantizer, or a residual stack of `num_quantizers` of them.

  Args:
    config: a `Config`.
    name: module name.
    seed: the quantizer's seed; `config.seed` if None.
  """
  seed = config.seed if seed is None else seed

  def stage(name):
    return config.quantizer.build(
        config.model.embedding_dim, seed=seed, name=name,
        reduction_group_size=config.training.reduction_group_size)

  if config.model.num_quantizers == 1:
    return stage(name)
  return residual_quantizer.ResidualQuantizer(
      [stage(f"stage_{i}") for i in range(config.model.num_quantizers)], seed=seed,
      name=name)


def build_hierarchy(config) -> hierarchical.HierarchicalQuantizer:
  """VQ-VAE-2's two-level quantizer over the bottom encoder's [hb, wb, D] features.

  The top encoder and decoder are the conv networks with `top_downsamples`
  halvings and D channels in and out; the top level's parts draw from seeds
  TOP_LEVEL_SEED + 2 * seed + (0 encoder, 1 decoder, 2 upsampler, 3
  conditioner), its quantizer from TOP_LEVEL_SEED + seed. (`Config` allows
  `top_downsamples` with the conv network and one stage only.)
  """
  dim, seed = config.model.embedding_dim, TOP_LEVEL_SEED + 2 * config.seed
  top_downsamples, dtype = config.model.top_downsamples, config.training.dtype
  sizes = dict(config.network.sizes(dim, dtype), num_downsamples=top_downsamples)
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
      top_upsampler=networks.Upsampler(dim, top_downsamples, seed=seed + 2, dtype=dtype),
      reduction_group_size=config.training.reduction_group_size)


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
  pad_to = config.model.pad_to or None
  if pad_to and pad_to < max(height, width):
    raise ValueError(f"pad_to={pad_to} is smaller than the {height}x{width} images.")
  with tf.name_scope("vqvae"):
    likelihood = build_likelihood(config, data_variance)
    quantizer = (build_hierarchy(config) if config.model.top_downsamples
                 else build_quantizer(config))
    encoder, decoder = build_networks(
        config, (pad_to or height, pad_to or width, channels),
        channels * likelihood.params_per_channel,
        quantizer.output_dim)
  return model_lib.VQVAE(encoder, quantizer, decoder, likelihood,
                         image_shape=(height, width, channels),
                         pixel_range=config_lib.PIXEL_RANGES[config.model.pixel_range],
                         pad_to=pad_to,
                         reduction_group_size=config.training.reduction_group_size)
