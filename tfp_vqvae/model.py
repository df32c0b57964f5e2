"""The VQ-VAE: encoder -> vector quantizer -> decoder likelihood, and its loss.

The per-image loss is

    -log p(x | z_q) + beta * ||z_e - sg(e)||^2 + KL(q(z | x) || p(z))

where the decoder's p(x | z_q) is by default `tfd.Independent(tfd.Bernoulli(logits))`
over the pixels (see likelihoods.py for the others) and p(z) is a uniform
categorical over the K codes at each of the latent positions (h * w, times N for N
residual quantizers). q(z | x) puts all its mass on the nearest codes, so its
entropy is 0 and the KL is -log p(z = codes) = h * w * N * log K: a constant with no
gradient, carried explicitly so that recon NLL + KL is the negative ELBO, an upper
bound on -log p(x). The loss-trained quantizer's codebook loss rides in the
commitment term (see quantizer_loss.py).

Images come in and go out in [0, 1], shape `image_shape`. What the networks see may
differ: `pixel_range="symmetric"` rescales to [-1, 1] and `pad_to` pads with black
(e.g. MNIST 28x28 to 32x32, as the Haiku practical does); the decoder's output is
cropped back, so the likelihood scores the real pixels only.
"""

import math
from typing import NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_vqvae import architectures
from tfp_vqvae import codebook_init
from tfp_vqvae import likelihoods
from tfp_vqvae import quantizer as quantizer_lib
from tfp_vqvae import quantizer_loss
from tfp_vqvae import residual_quantizer

tfd = tfp.distributions

QUANTIZERS = ("ema", "loss")
PIXEL_RANGES = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}


def make_quantizer(kind, num_quantizers, num_embeddings, embedding_dim,
                   commitment_cost=0.25, decay=0.99, epsilon=1e-5,
                   dead_code_threshold=0.5, codebook_init_method="data",
                   decay_warmup=True):
  """An EMA or loss-trained quantizer, or a residual stack of `num_quantizers` of them.

  Raises:
    ValueError: for an unknown kind or method, or sizes out of range.
  """
  if kind not in QUANTIZERS:
    raise ValueError(f"Unknown quantizer {kind!r}; expected one of {', '.join(QUANTIZERS)}.")
  if int(num_quantizers) != num_quantizers or num_quantizers < 1:
    raise ValueError(f"num_quantizers must be a positive integer, got {num_quantizers!r}.")
  initializer = codebook_init.Initializer(codebook_init_method, num_embeddings,
                                          embedding_dim)

  def stage(name):
    if kind == "ema":
      return quantizer_lib.VectorQuantizerEMA(
          num_embeddings, embedding_dim, commitment_cost=commitment_cost, decay=decay,
          epsilon=epsilon, dead_code_threshold=dead_code_threshold,
          initializer=initializer, decay_warmup=decay_warmup, name=name)
    return quantizer_loss.VectorQuantizerLoss(
        num_embeddings, embedding_dim, commitment_cost=commitment_cost,
        initializer=initializer, name=name)

  if num_quantizers == 1:
    return stage("quantizer")
  return residual_quantizer.ResidualQuantizer(
      [stage(f"stage_{i}") for i in range(num_quantizers)])


def in_groups(network, inputs, groups):
  """`network(inputs)`, computed on `groups` equal slices of the batch and concatenated."""
  if groups == 1:
    return network(inputs)
  return tf.concat([network(part) for part in tf.split(inputs, groups)], axis=0)


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
  """A VQ-VAE whose decoder is a pixel distribution (Bernoulli by default).

  Example (the default KMNIST model):
    model = VQVAE(image_shape=(28, 28, 1))
    terms = model.loss_terms(images, training=True, seed=[0, step])
    tf.reduce_mean(terms.loss)    # minimise this
    model.decode_codes(codes)     # -> tfd.Independent over [B, 28, 28, 1] pixels
  """

  def __init__(self, image_shape=(28, 28, 1), num_hiddens=128, num_residual_hiddens=32,
               num_residual_layers=2, embedding_dim=64, num_embeddings=512,
               num_downsamples=2, commitment_cost=0.25, decay=0.99, decay_warmup=True,
               epsilon=1e-5, dead_code_threshold=0.5, seed=0, dtype=tf.float32,
               architecture="conv", num_latents=1, quantizer="ema", num_quantizers=1,
               codebook_init="data", likelihood="bernoulli", pixel_range="unit", pad_to=0,
               data_variance=1.0, name="vqvae"):
    """Builds the networks; see architectures.py, `make_quantizer` and likelihoods.py.

    Args:
      image_shape: (H, W, C) of the images; for the conv architecture H and W (after
        padding) divisible by 2**num_downsamples.
      dtype: dtype of the encoder/decoder computation (float32, bfloat16 or float16);
        the quantizer and the likelihood always run in float32.
      architecture: "conv" (the paper's), "mlp" or "global" (L = `num_latents`
        latent vectors per image, a 1 x L grid).
      quantizer: "ema" or "loss"; `num_quantizers` > 1 stacks residual stages.
      codebook_init: "data", "kmeans" or "uniform" (codebook_init.py).
      likelihood: "bernoulli", "gaussian" or "logistic".
      pixel_range: "unit" ([0, 1]) or "symmetric" ([-1, 1]): what the networks see.
      pad_to: pad images with black to pad_to x pad_to for the networks; 0 for none.
      data_variance: the Gaussian likelihood's fixed variance ([0, 1] images).

    Raises:
      ValueError: if a size or name is out of range or H, W do not divide.
    """
    super().__init__(name=name)
    height, width, channels = (int(s) for s in image_shape)
    if pad_to and pad_to < max(height, width):
      raise ValueError(f"pad_to={pad_to} is smaller than the {height}x{width} images.")
    if pixel_range not in PIXEL_RANGES:
      raise ValueError(f"Unknown pixel_range {pixel_range!r}; expected one of "
                       f"{', '.join(PIXEL_RANGES)}.")
    self.image_shape = (height, width, channels)
    self.pixel_range = PIXEL_RANGES[pixel_range]
    self.network_size = (pad_to or height, pad_to or width)
    # Padding (top, left): the image sits in the middle of the padded frame.
    self.padding = ((self.network_size[0] - height) // 2,
                    (self.network_size[1] - width) // 2)
    self.num_embeddings = int(num_embeddings)
    with self.name_scope:
      self.likelihood = likelihoods.make_likelihood(likelihood, self.pixel_range,
                                                    data_variance)
      self.encoder, self.decoder, self.latent_shape = architectures.make_networks(
          architecture, self.network_size + (channels,),
          channels * self.likelihood.params_per_channel, num_hiddens,
          num_residual_hiddens, num_residual_layers, embedding_dim, num_downsamples,
          num_latents, seed, dtype)
      self.quantizer = make_quantizer(
          quantizer, num_quantizers, num_embeddings, embedding_dim,
          commitment_cost=commitment_cost, decay=decay, epsilon=epsilon,
          dead_code_threshold=dead_code_threshold, codebook_init_method=codebook_init,
          decay_warmup=decay_warmup)
    self.num_quantizers = int(num_quantizers)

  @property
  def code_shape(self):
    """Shape of one image's codes: the latent grid, plus N for N > 1 quantizers."""
    extra = (self.num_quantizers,) if self.num_quantizers > 1 else ()
    return tuple(self.latent_shape) + extra

  @property
  def num_latents(self):
    return self.latent_shape[0] * self.latent_shape[1]

  @property
  def num_pixels(self):
    return math.prod(self.image_shape)

  def prior(self):
    """p(z): a uniform categorical over the K codes at each position of `code_shape`."""
    logits = tf.zeros(self.code_shape + (self.num_embeddings,))
    return tfd.Independent(tfd.Categorical(logits=logits),
                           reinterpreted_batch_ndims=len(self.code_shape))

  def kl_divergence(self, codes):
    """KL(q(z|x) || p(z)) [B] for the point-mass posterior at `codes` [B, *code_shape].

    KL = E_q[log q] - E_q[log p] = -H(q) - log p(codes), and H(q) = 0.

    log p(codes) equals `self.prior().log_prob(codes)` (tested), but is read from
    the prior's table of log-probabilities [positions, K], normalised once per call:
    `log_prob` itself broadcasts the logits against the batch and takes a softmax
    over [B, positions, K], 8% of a batch-64 train step for a constant.
    """
    prior = self.prior()
    log_table = tf.reshape(tf.nn.log_softmax(prior.distribution.logits_parameter()),
                           [-1])
    num_positions = math.prod(self.code_shape)
    flat_codes = tf.reshape(tf.cast(codes, tf.int32), [-1, num_positions])
    offsets = tf.range(num_positions) * self.num_embeddings
    return -tf.reduce_sum(tf.gather(log_table, flat_codes + offsets), axis=1)

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

  @tf.Module.with_name_scope
  def encode(self, images, training=False, seed=None, groups=1):
    """Quantizes images [B, H, W, C] (float in [0, 1]); returns a `QuantizerOutput`.

    `groups` > 1 runs the encoder on that many equal slices of the batch and has the
    quantizer sum its statistics per slice (see `loss_terms`).
    """
    latents = in_groups(self.encoder, self.network_inputs(images), groups)
    return self.quantizer(latents, training=training, seed=seed, groups=groups)

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
    """p(x | z_q) for int codes [B, *code_shape] in [0, K)."""
    return self.decode(self.quantizer.lookup(codes))

  def loss_terms(self, images, training=False, seed=None, groups=1):
    """All loss terms for float images [B, H, W, C] in [0, 1] (binary for a true NLL).

    Args:
      images: [B, H, W, C] float32 targets, 0/1 after binarisation.
      training: passed to the quantizer (codebook EMA update, re-seeding).
      seed: stateless seed for the quantizer, required in training.
      groups: B is split into this many equal slices that go through the networks
        one at a time, and the EMA quantizer sums its statistics per slice. The
        gradients of the weights are then sums of per-slice gradients, computed the
        way a replica holding just that slice computes them: a batch of 2b in 2
        groups gives the same bits as 2 replicas with b each (a + b is exact in
        either order), where one group of 2b sums in another order.

    Returns:
      `LossTerms`, each term per example.
    """
    quantized = self.encode(images, training=training, seed=seed, groups=groups)
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
