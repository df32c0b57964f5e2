"""The VQ-VAE: encoder -> vector quantizer -> decoder likelihood, and its loss.

The per-image loss is

    -log p(x | z_q) + beta * ||z_e - sg(e)||^2 + KL(q(z | x) || p(z))

where the decoder's p(x | z_q) is by default `tfd.Independent(tfd.Bernoulli(logits))`
over the pixels (see models/likelihoods.py for the others) and p(z) is a uniform
categorical over the K codes at each of the latent positions (h * w, times N for N
residual quantizers). q(z | x) puts all its mass on the nearest codes, so its
entropy is 0 and the KL is -log p(z = codes) = h * w * N * log K: a constant with no
gradient, carried explicitly so that recon NLL + KL is the negative ELBO, an upper
bound on -log p(x). The loss-trained quantizer's codebook loss rides in the
commitment term (see quantizers/loss.py).

Images come in and go out in [0, 1], shape `image_shape`. What the networks see may
differ: `pixel_range=(-1, 1)` rescales to [-1, 1] and `pad_to` pads with black
(e.g. MNIST 28x28 to 32x32, as the Haiku practical does); the decoder's output is
cropped back, so the likelihood scores the real pixels only.
"""

import math
from typing import NamedTuple, Optional, Sequence

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_vqvae.internal import checks
from tfp_vqvae.quantizers import base as quantizer_lib

tfd = tfp.distributions


def in_groups(network, inputs, groups):
  """`network(inputs)`, computed on `groups` equal slices of the batch and concatenated."""
  if groups == 1:
    return network(inputs)
  return tf.concat([network(part) for part in tf.split(inputs, groups)], axis=0)


def output_shape(network, input_shape):
  """The shape network(x) has for x of shape [batch, *input_shape], batch excluded.

  Traced, not computed: no weights are applied and no memory is used for the
  activations.
  """
  spec = tf.TensorSpec((None,) + tuple(input_shape), tf.float32)
  traced = tf.function(network).get_concrete_function(spec)
  return tuple(int(d) for d in traced.structured_outputs.shape[1:])


class LossTerms(NamedTuple):
  """Per-example loss terms (each [B], nats) and the quantizer's batch statistics."""
  loss: tf.Tensor            # recon_nll + commitment_loss + kl: what is minimised.
  recon_nll: tf.Tensor       # -log p(x | z_q)
  squared_error: tf.Tensor   # sum over pixels of (x - E[x | z_q])^2, [0, 1] units
  commitment_loss: tf.Tensor  # beta * sum over latents of ||z_e - sg(e)||^2
  kl: tf.Tensor              # KL(q(z|x) || p(z)) = -log p(codes) for a point-mass q
  neg_elbo: tf.Tensor        # recon_nll + kl
  quantizer: quantizer_lib.QuantizerOutput


class VQVAE(tf.Module):
  """A VQ-VAE composed of an encoder, a quantizer, a decoder and a likelihood.

  Example (the default KMNIST model; `builder.build_vqvae(config, image_shape)`
  makes it from a `Config`):
    model = VQVAE(networks.Encoder(), VectorQuantizerEMA(512, 64),
                  networks.Decoder(), likelihoods.Bernoulli(), image_shape=(28, 28, 1))
    terms = model.loss_terms(images, training=True)
    tf.reduce_mean(terms.loss)    # minimise this
    model.decode_codes(codes)     # -> tfd.Independent over [B, 28, 28, 1] pixels
  """

  def __init__(self, encoder: tf.Module, quantizer: quantizer_lib.Quantizer,
               decoder: tf.Module,
               likelihood: tf.Module, image_shape: Sequence[int],
               pixel_range: tuple[float, float] = (0.0, 1.0),
               pad_to: Optional[int] = None, reduction_group_size: int = 0,
               name: str = "vqvae"):
    """Composes the parts.

    Args:
      encoder: maps network inputs [B, H', W', C] to latents [B, h, w, D].
      quantizer: a `Quantizer` over D-vectors (`VectorQuantizerEMA`,
        `VectorQuantizerLoss`, `ResidualQuantizer`, ...; see its contract).
      decoder: maps quantized latents [B, h, w, D] to [B, H', W', C * P], the
        likelihood's P parameters per channel.
      likelihood: turns the decoder's (cropped) outputs into a distribution over
        [B, H, W, C] images in [0, 1] (models/likelihoods.py).
      image_shape: (H, W, C) of the images.
      pixel_range: (low, high), the pixel values the networks see: images in
        [0, 1] are mapped linearly onto it (the likelihood maps back).
      pad_to: pad images with black to pad_to x pad_to for the networks (the
        decoder's output is cropped back); None for no padding.
      reduction_group_size: 0, or the images per reduction group: a batch larger
        than this goes through the networks in equal groups of it (see
        `loss_terms`); give the quantizer the same value.
      name: module name.

    Raises:
      ValueError: if the quantizer is not a `Quantizer`, pad_to is smaller than
        the images or the networks do not fit the images.
    """
    super().__init__(name=name)
    if not isinstance(quantizer, quantizer_lib.Quantizer):
      raise ValueError("quantizer must implement tfp_vqvae.Quantizer (subclass it; "
                       f"see its docstring), got {type(quantizer).__name__}.")
    height, width, channels = (int(s) for s in image_shape)
    if pad_to and pad_to < max(height, width):
      raise ValueError(f"pad_to={pad_to} is smaller than the {height}x{width} images.")
    self.image_shape = (height, width, channels)
    self.pixel_range = tuple(float(v) for v in pixel_range)
    self.network_size = (pad_to or height, pad_to or width)
    # Padding (top, left): the image sits in the middle of the padded frame.
    self.padding = ((self.network_size[0] - height) // 2,
                    (self.network_size[1] - width) // 2)
    self.reduction_group_size = int(reduction_group_size)
    self.encoder = encoder
    self.quantizer = quantizer
    self.decoder = decoder
    self.likelihood = likelihood
    self.num_embeddings = int(quantizer.num_embeddings)
    latents = output_shape(encoder, self.network_size + (channels,))
    self.latent_shape = latents[:2]
    # A quantizer may hand the decoder other than D channels (VQ-VAE-2's 2 * D).
    quantized = latents[:2] + (quantizer.output_dim,)
    outputs = output_shape(decoder, quantized)
    expected = self.network_size + (channels * likelihood.params_per_channel,)
    if latents[2] != quantizer.embedding_dim or outputs != expected:
      raise ValueError(
          f"The encoder maps {self.network_size + (channels,)} inputs to {latents} "
          f"latents (the quantizer expects D={quantizer.embedding_dim}), and the "
          f"decoder {quantized} quantized latents to {outputs} outputs ({expected} "
          "expected).")
    self.code_shape = quantizer.code_shape(self.latent_shape)

  @property
  def stage_names(self) -> tuple[str, ...]:
    """Names of the quantizer's stages or levels, () for a single quantizer."""
    return tuple(self.quantizer.stage_names)

  @property
  def num_latents(self):
    return self.latent_shape[0] * self.latent_shape[1]

  @property
  def num_pixels(self):
    return math.prod(self.image_shape)

  def reduction_groups(self, batch_size):
    """Number of reduction groups of a batch of `batch_size` (see `loss_terms`)."""
    return quantizer_lib.reduction_groups(batch_size, self.reduction_group_size)

  def prior(self):
    """p(z): a uniform categorical over the K codes at each position of `code_shape`.

    For several code maps (VQ-VAE-2) a `tfd.JointDistributionNamed` of one per map.
    """
    def uniform(shape):
      return tfd.Independent(tfd.Categorical(logits=tf.zeros(shape + (self.num_embeddings,))),
                             reinterpreted_batch_ndims=len(shape))
    if isinstance(self.code_shape, dict):
      return tfd.JointDistributionNamed(
          {level: uniform(shape) for level, shape in self.code_shape.items()})
    return uniform(self.code_shape)

  def kl_divergence(self, codes):
    """KL(q(z|x) || p(z)) [B] for the point-mass posterior at `codes` [B, *code_shape].

    KL = E_q[log q] - E_q[log p] = -H(q) - log p(codes), and H(q) = 0.

    log p(codes) equals `self.prior().log_prob(codes)` (tested), but is read from
    the prior's table of log-probabilities [positions, K], normalised once per call:
    `log_prob` itself broadcasts the logits against the batch and takes a softmax
    over [B, positions, K], 8% of a batch-64 train step for a constant.
    """
    def level_kl(distribution, level_codes):
      log_table = tf.reshape(
          tf.nn.log_softmax(distribution.distribution.logits_parameter()), [-1])
      num_positions = math.prod(distribution.event_shape)
      flat_codes = tf.reshape(tf.cast(level_codes, tf.int32), [-1, num_positions])
      offsets = tf.range(num_positions) * self.num_embeddings
      return -tf.reduce_sum(tf.gather(log_table, flat_codes + offsets), axis=1)

    prior = self.prior()
    if isinstance(codes, dict):
      return tf.add_n([level_kl(prior.model[level], codes[level])
                       for level in self.code_shape])
    return level_kl(prior, codes)

  def random_codes(self, count, seed):
    """Uniformly random int32 codes [count, *code_shape] (a dict for several maps)."""
    def draw(shape, level_seed):
      return tf.random.stateless_uniform((count,) + tuple(shape), seed=level_seed,
                                         maxval=self.num_embeddings, dtype=tf.int32)
    if isinstance(self.code_shape, dict):
      return {level: draw(shape, tf.random.experimental.stateless_fold_in(seed, i))
              for i, (level, shape) in enumerate(self.code_shape.items())}
    return draw(self.code_shape, seed)

  def network_inputs(self, images):
    """Images [B, H, W, C] in [0, 1] as the encoder sees them (range, padding)."""
    height, width, _ = self.image_shape
    if (height, width) != self.network_size:
      top, left = self.padding
      images = tf.pad(images, [[0, 0], [top, self.network_size[0] - height - top],
                               [left, self.network_size[1] - width - left], [0, 0]])
    low, high = self.pixel_range
    if (low, high) != (0.0, 1.0):
      images = images * (high - low) + low
    return images

  def encode(self, images, training=False):
    """Quantizes images [B, H, W, C] (float in [0, 1]); returns a `QuantizerOutput`.

    `images` are checked first (`checks.pixels`): integer pixels, such as uint8
    0..255 read from files, and values outside [0, 1] are refused with a
    ValueError naming `images`, as they would give codes that match nothing. In
    training, a batch of more than `reduction_group_size` images goes through
    the encoder in groups (see `loss_terms`).
    """
    return self._quantize(checks.pixels(images), training)

  @tf.Module.with_name_scope
  def _quantize(self, images, training):
    """`encode` without the checks: the training step's, whose data are in range."""
    groups = self.reduction_groups(images.shape[0]) if training else 1
    latents = in_groups(self.encoder, self.network_inputs(images), groups)
    return self.quantizer(latents, training=training)

  @tf.Module.with_name_scope
  def decode(self, latents, groups=1):
    """p(x | z_q) for quantized latents [B, h, w, D]: a distribution over the pixels.

    Its `log_prob` takes [B, H, W, C] images in [0, 1] and `mean()` returns them.
    `groups` > 1 runs the decoder on that many equal slices of the batch.
    """
    outputs = in_groups(self.decoder, latents, groups)
    height, width, _ = self.image_shape
    if (height, width) != self.network_size:
      top, left = self.padding
      outputs = outputs[:, top:top + height, left:left + width, :]
    return self.likelihood(outputs)

  def decode_codes(self, codes):
    """p(x | z_q) for integer codes [B, *code_shape] in [0, K) (VQ-VAE-2: a dict).

    The codes are range-checked in their own dtype before they become int32
    (`checks.codes`), so int64 2**32 + 3 is refused, not read as code 3.
    """
    return self.decode(self.quantizer.lookup(checks.code_maps(codes, self.num_embeddings)))

  def loss_terms(self, images, training=False):
    """All loss terms for float images [B, H, W, C] in [0, 1] (binary for a true NLL).

    Args:
      images: [B, H, W, C] float32 targets, 0/1 after binarisation.
      training: passed to the quantizer (codebook EMA update, re-seeding).

    In training, a batch of more than `reduction_group_size` images is split into
    equal groups that go through the networks one at a time, and the EMA quantizer
    sums its statistics per group. The gradients of the weights are then sums of
    per-group gradients, computed the way a replica holding just that group
    computes them: a batch of 2b in 2 groups gives the same bits as 2 replicas with
    b each (a + b is exact in either order), where one group of 2b sums in another
    order.

    Returns:
      `LossTerms`, each term per example.
    """
    quantized = self._quantize(images, training)
    groups = self.reduction_groups(images.shape[0]) if training else 1
    likelihood = self.decode(quantized.quantized, groups=groups)
    recon_nll = -likelihood.log_prob(images)
    squared_error = tf.reduce_sum(tf.square(images - likelihood.mean()), axis=[1, 2, 3])
    kl = self.kl_divergence(quantized.codes)
    commitment = tf.cast(quantized.commitment_loss, tf.float32)
    return LossTerms(loss=recon_nll + commitment + kl, recon_nll=recon_nll,
                     squared_error=squared_error, commitment_loss=commitment, kl=kl,
                     neg_elbo=recon_nll + kl, quantizer=quantized)

  def bits_per_dim(self, neg_elbo_nats):
    """Converts nats per image to bits per pixel (dimension)."""
    return neg_elbo_nats / (self.num_pixels * math.log(2.0))
