"""Encoder/decoder options, registered under their `--architecture` names.

An options class here builds its (encoder, decoder) pair:

    build(image_shape, out_channels, *, embedding_dim, decoder_in_channels, seed,
          dtype) -> (encoder, decoder)

for network inputs `image_shape` (H, W, C) and `out_channels` decoder outputs (C
times the likelihood's parameters per pixel); `decoder_in_channels` is the width of
the quantized vectors the decoder gets (D, or VQ-VAE-2's 2 * D); the encoder draws
its initial weights from `seed`, the decoder from `seed + 1`; and

    check_image_shape(height, width, top_downsamples)

raises ValueError if the networks (with VQ-VAE-2's `top_downsamples` more halvings,
which only `conv` allows) cannot take images of that size.
"""

import dataclasses

from tfp_vqvae.configs import fields
from tfp_vqvae.configs import registry

NETWORKS = registry.Registry("architecture")


@dataclasses.dataclass(frozen=True)
class NetworkOptions(fields.Options):
  """What every architecture is given."""
  num_hiddens: int = fields.field(
      128, fields.POSITIVE_INT,
      "Channels of the encoder/decoder convolutions (mlp: units of its hidden layers).")


@NETWORKS.register("conv")
@dataclasses.dataclass(frozen=True)
class ConvOptions(NetworkOptions):
  """The paper's convolutional encoder and decoder: a grid of codes."""
  num_residual_hiddens: int = fields.field(
      32, fields.POSITIVE_INT, "Channels inside each residual block.")
  num_residual_layers: int = fields.field(
      2, fields.NON_NEGATIVE_INT, "Number of residual blocks in encoder and decoder.")
  num_downsamples: int = fields.field(
      2, fields.POSITIVE_INT, "Strided convolutions; the latent grid is image size / 2**n.")

  def check_image_shape(self, height, width, top_downsamples):
    halvings = self.num_downsamples + top_downsamples
    if height % 2 ** halvings or width % 2 ** halvings:
      exponent = ("(num_downsamples + top_downsamples)" if top_downsamples
                  else "num_downsamples")
      raise ValueError(f"image height and width {height}x{width} must be divisible by "
                       f"2**{exponent} = {2 ** halvings}.")

  def sizes(self, embedding_dim, dtype):
    """The conv `Encoder`/`Decoder` size arguments."""
    return dict(num_hiddens=self.num_hiddens,
                num_residual_hiddens=self.num_residual_hiddens,
                num_residual_layers=self.num_residual_layers,
                embedding_dim=embedding_dim, num_downsamples=self.num_downsamples,
                dtype=dtype)

  def build(self, image_shape, out_channels, *, embedding_dim, decoder_in_channels,
            seed, dtype):
    from tfp_vqvae.nets import conv  # pylint: disable=g-import-not-at-top
    sizes = self.sizes(embedding_dim, dtype)
    return (conv.Encoder(in_channels=image_shape[2], seed=seed, **sizes),
            conv.Decoder(out_channels=out_channels, seed=seed + 1,
                         **dict(sizes, embedding_dim=decoder_in_channels)))


@dataclasses.dataclass(frozen=True)
class LatentVectorsOptions(NetworkOptions):
  """An architecture that codes an image as `num_latents` vectors, not a grid."""
  num_latents: int = fields.field(
      1, fields.POSITIVE_INT, "Latent vectors per image for --architecture=mlp|global.")

  def _networks(self):
    """(encoder class, decoder class)."""
    raise NotImplementedError

  def build(self, image_shape, out_channels, *, embedding_dim, decoder_in_channels,
            seed, dtype):
    del decoder_in_channels  # Always D: these networks have no VQ-VAE-2 form.
    sizes = dict(num_hiddens=self.num_hiddens, num_latents=self.num_latents,
                 embedding_dim=embedding_dim, dtype=dtype)
    encoder_cls, decoder_cls = self._networks()
    return (encoder_cls(image_shape, seed=seed, **sizes),
            decoder_cls(image_shape, out_channels, seed=seed + 1, **sizes))


@NETWORKS.register("mlp")
@dataclasses.dataclass(frozen=True)
class MLPOptions(LatentVectorsOptions):
  """Two hidden layers of num_hiddens units each way."""

  def check_image_shape(self, height, width, top_downsamples):
    del height, width, top_downsamples  # Any size.

  def _networks(self):
    from tfp_vqvae.nets import dense  # pylint: disable=g-import-not-at-top
    return dense.MLPEncoder, dense.MLPDecoder


@NETWORKS.register("global")
@dataclasses.dataclass(frozen=True)
class GlobalOptions(LatentVectorsOptions):
  """The TFP blog's ELU conv net, which halves the images twice."""

  def check_image_shape(self, height, width, top_downsamples):
    del top_downsamples  # Config allows VQ-VAE-2 with conv only.
    if height % 4 or width % 4:
      raise ValueError(f"The global architecture halves {height}x{width} twice: height "
                       "and width must be divisible by 4.")

  def _networks(self):
    from tfp_vqvae.nets import dense  # pylint: disable=g-import-not-at-top
    return dense.GlobalEncoder, dense.GlobalDecoder
