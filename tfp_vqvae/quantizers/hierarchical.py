"""VQ-VAE-2's two code levels (Razavi et al. 2019), as one quantizer of a `VQVAE`.

VQ-VAE-2 is the VQ-VAE of models/vqvae.py with this quantizer between its encoder (the
bottom encoder, images -> [B, hb, wb, D]) and a decoder that takes 2 * D channels:

    bottom features z_b [B, hb, wb, D]
      -> top_encoder (t more halvings)          -> z_t [B, ht, wt, D]
      -> top_quantizer                          -> e_t, top codes [B, ht, wt]
      -> top_decoder (t doublings)              -> d_t [B, hb, wb, D]
    concat(z_b, d_t) -> bottom_conditioner (1x1) -> bottom_quantizer
                                                -> e_b, bottom codes [B, hb, wb]
    output: concat(top_upsampler(e_t), e_b)      [B, hb, wb, 2 * D]

So the top codes carry global structure, the bottom codes what the top ones leave
out, and the decoder sees both; gradients reach both encoders straight through
both quantizers. Each level is any quantizer of the package (EMA or loss-trained,
data-initialised, dead codes re-seeded, statistics all-reduced across replicas),
with the same K at both levels. Codes are a dict {"top": [B, ht, wt], "bottom":
[B, hb, wb]}; the commitment loss is the sum of the levels', and perplexity,
usage [2] and code_counts [2, K] are per level, top first (the order of `stages`).
"""

from typing import Sequence

import tensorflow as tf

from tfp_vqvae.models import vqvae as model_lib
from tfp_vqvae.quantizers import base as quantizer_lib

LEVELS = ("top", "bottom")


class HierarchicalQuantizer(quantizer_lib.Quantizer):
  """Quantizes bottom features into a top and a bottom code map (see module doc).

  Example (built by `builder.build_vqvae` for `--top_downsamples=1`):
    quantizer = HierarchicalQuantizer(
        top_encoder=networks.Encoder(in_channels=64, num_downsamples=1),
        top_quantizer=VectorQuantizerEMA(512, 64, name="top_quantizer"),
        top_decoder=networks.Decoder(out_channels=64, num_downsamples=1),
        bottom_conditioner=layers.Conv2D(128, 64, 1),
        bottom_quantizer=VectorQuantizerEMA(512, 64, name="bottom_quantizer"),
        top_upsampler=networks.Upsampler(64, num_upsamples=1))
    model = VQVAE(networks.Encoder(), quantizer, networks.Decoder(embedding_dim=128),
                  likelihoods.Bernoulli(), image_shape=(32, 32, 1))
    model.encode(images).codes   # {"top": [B, 4, 4], "bottom": [B, 8, 8]}
  """

  def __init__(self, top_encoder: tf.Module, top_quantizer: tf.Module,
               top_decoder: tf.Module, bottom_conditioner: tf.Module,
               bottom_quantizer: tf.Module, top_upsampler: tf.Module,
               reduction_group_size: int = 0, name: str = "quantizer"):
    """Composes the levels.

    Args:
      top_encoder: bottom features [B, hb, wb, D] -> top latents [B, ht, wt, D].
      top_quantizer: quantizer of the top latents.
      top_decoder: quantized top latents -> [B, hb, wb, D], the bottom
        quantizer's view of the top codes.
      bottom_conditioner: [B, hb, wb, 2 * D] (bottom features, top decoder
        output) -> the bottom latents [B, hb, wb, D].
      bottom_quantizer: quantizer of the bottom latents.
      top_upsampler: quantized top latents -> [B, hb, wb, D], the decoder's view
        of the top codes.
      reduction_group_size: as `VQVAE`'s: in training, a larger batch goes
        through the networks above in groups of this many images.
      name: module name.

    Raises:
      ValueError: if the two quantizers differ in K or D.
    """
    super().__init__(name=name)
    sizes = {(q.num_embeddings, q.embedding_dim) for q in (top_quantizer, bottom_quantizer)}
    if len(sizes) != 1:
      raise ValueError("The top and bottom quantizers must have the same K and D, got "
                       f"{sorted(sizes)}.")
    self.num_embeddings, self.embedding_dim = sizes.pop()
    self.top_encoder = top_encoder
    self.top_quantizer = top_quantizer
    self.top_decoder = top_decoder
    self.bottom_conditioner = bottom_conditioner
    self.bottom_quantizer = bottom_quantizer
    self.top_upsampler = top_upsampler
    self.reduction_group_size = int(reduction_group_size)

  @property
  def num_updates(self) -> tf.Variable:
    """The top level's count of training calls."""
    return self.top_quantizer.num_updates

  @property
  def output_dim(self) -> int:
    """The decoder takes the upsampled top vectors next to the bottom ones: 2 * D."""
    return 2 * self.embedding_dim

  @property
  def codebooks(self):
    return [codebook for level in self.stages for codebook in level.codebooks]

  @property
  def stages(self) -> tuple[tf.Module, tf.Module]:
    """The quantizers of the levels, top first (their codebooks, statistics)."""
    return (self.top_quantizer, self.bottom_quantizer)

  @property
  def stage_names(self) -> tuple[str, ...]:
    return LEVELS

  def code_shape(self, latent_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """{"top": (ht, wt), "bottom": latent_shape}: one image's code maps.

    Raises:
      ValueError: if the top networks do not map the grid back onto itself.
    """
    bottom = tuple(int(s) for s in latent_shape)
    features = bottom + (self.embedding_dim,)
    top = model_lib.output_shape(self.top_encoder, features)
    for network, name in ((self.top_decoder, "top_decoder"),
                          (self.top_upsampler, "top_upsampler")):
      shape = model_lib.output_shape(network, top)
      if shape != features:
        raise ValueError(f"The top encoder maps {features} features to {top}, and the "
                         f"{name} those to {shape}, not back to {features}.")
    return {"top": top[:2], "bottom": bottom}

  def _quantize(self, inputs, training, seed):
    """Quantizes bottom features [B, hb, wb, D] at both levels (each level's
    quantizer draws its own training seeds, so `seed` is not used).

    Returns:
      A `quantizer.QuantizerOutput`: quantized [B, hb, wb, 2 * D], codes
      {"top", "bottom"}, the summed commitment loss [B], and perplexity, usage
      [2] and code_counts [2, K], top first.
    """
    del seed
    groups = (quantizer_lib.reduction_groups(inputs.shape[0], self.reduction_group_size)
              if training else 1)

    def run(network, x):
      return model_lib.in_groups(network, x, groups)

    top = self.top_quantizer(run(self.top_encoder, inputs), training=training)
    conditioned = tf.concat(
        [inputs, tf.cast(run(self.top_decoder, top.quantized), inputs.dtype)], axis=-1)
    bottom = self.bottom_quantizer(run(self.bottom_conditioner, conditioned),
                                   training=training)
    quantized = tf.concat(
        [tf.cast(run(self.top_upsampler, top.quantized), bottom.quantized.dtype),
         bottom.quantized], axis=-1)
    levels = (top, bottom)
    return quantizer_lib.QuantizerOutput(
        quantized=quantized, codes={"top": top.codes, "bottom": bottom.codes},
        commitment_loss=top.commitment_loss + bottom.commitment_loss,
        perplexity=tf.stack([level.perplexity for level in levels]),
        usage=tf.stack([level.usage for level in levels]),
        code_counts=tf.stack([level.code_counts for level in levels]))

  def lookup(self, codes):
    """The decoder's input [B, hb, wb, 2 * D] (float32) for codes {"top", "bottom"}."""
    top = self.top_upsampler(self.top_quantizer.lookup(codes["top"]))
    return tf.concat([tf.cast(top, tf.float32), self.bottom_quantizer.lookup(codes["bottom"])],
                     axis=-1)
