"""The VQ-VAE: encoder -> EMA vector quantizer -> Bernoulli decoder, and its loss.

The per-image loss is

    -log p(x | z_q) + beta * ||z_e - sg(e)||^2 + KL(q(z | x) || p(z))

where the decoder's p(x | z_q) is `tfd.Independent(tfd.Bernoulli(logits))` over the
pixels and p(z) is a uniform categorical over the K codes at each of the h*w latent
positions. q(z | x) puts all its mass on the nearest codes, so its entropy is 0 and
the KL is -log p(z = codes) = h * w * log K: a constant with no gradient, carried
explicitly so that recon NLL + KL is the negative ELBO, an upper bound on -log p(x).
"""

import math
from typing import NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_vqvae import networks
from tfp_vqvae import quantizer as quantizer_lib

tfd = tfp.distributions


class LossTerms(NamedTuple):
  """Per-example loss terms (each [B], nats) and the quantizer's batch statistics."""
  loss: tf.Tensor            # recon_nll + commitment_loss + kl: what is minimised.
  recon_nll: tf.Tensor       # -log p(x | z_q)
  commitment_loss: tf.Tensor  # beta * sum over latents of ||z_e - sg(e)||^2
  kl: tf.Tensor              # KL(q(z|x) || p(z)) = -log p(codes) for a point-mass q
  neg_elbo: tf.Tensor        # recon_nll + kl
  quantizer: quantizer_lib.QuantizerOutput


class VQVAE(tf.Module):
  """A VQ-VAE whose decoder is a `tfd.Independent(tfd.Bernoulli)` distribution.

  Example (the default KMNIST model):
    model = VQVAE(image_shape=(28, 28, 1))
    terms = model.loss_terms(images, training=True, seed=[0, step])
    tf.reduce_mean(terms.loss)    # minimise this
    model.decode_codes(codes)     # -> tfd.Independent over [B, 28, 28, 1] pixels
  """

  def __init__(self, image_shape=(28, 28, 1), num_hiddens=128, num_residual_hiddens=32,
               num_residual_layers=2, embedding_dim=64, num_embeddings=512,
               num_downsamples=2, commitment_cost=0.25, decay=0.99, epsilon=1e-5,
               dead_code_threshold=0.5, seed=0, dtype=tf.float32, name="vqvae"):
    """Builds the networks; see `networks.Encoder` and `quantizer.VectorQuantizerEMA`.

    Args:
      image_shape: (H, W, C) of the images; H and W divisible by 2**num_downsamples.
      dtype: dtype of the encoder/decoder computation (float32, bfloat16 or float16);
        the quantizer and the likelihood always run in float32.

    Raises:
      ValueError: if a size is out of range or H, W do not divide.
    """
    super().__init__(name=name)
    height, width, channels = (int(s) for s in image_shape)
    factor = 2 ** int(num_downsamples)
    if height % factor or width % factor:
      raise ValueError(f"image height and width {height}x{width} must be divisible by "
                       f"2**num_downsamples = {factor}.")
    self.image_shape = (height, width, channels)
    self.latent_shape = (height // factor, width // factor)
    self.num_embeddings = int(num_embeddings)
    sizes = dict(num_hiddens=num_hiddens, num_residual_hiddens=num_residual_hiddens,
                 num_residual_layers=num_residual_layers, embedding_dim=embedding_dim,
                 num_downsamples=num_downsamples, dtype=dtype)
    with self.name_scope:
      self.encoder = networks.Encoder(in_channels=channels, seed=2 * seed, **sizes)
      self.quantizer = quantizer_lib.VectorQuantizerEMA(
          num_embeddings, embedding_dim, commitment_cost=commitment_cost, decay=decay,
          epsilon=epsilon, dead_code_threshold=dead_code_threshold)
      self.decoder = networks.Decoder(out_channels=channels, seed=2 * seed + 1, **sizes)

  @property
  def num_latents(self):
    return self.latent_shape[0] * self.latent_shape[1]

  @property
  def num_pixels(self):
    return math.prod(self.image_shape)

  def prior(self):
    """p(z): a uniform categorical over the K codes at each latent position."""
    logits = tf.zeros(self.latent_shape + (self.num_embeddings,))
    return tfd.Independent(tfd.Categorical(logits=logits), reinterpreted_batch_ndims=2)

  def kl_divergence(self, codes):
    """KL(q(z|x) || p(z)) [B] for the point-mass posterior at `codes` [B, h, w].

    KL = E_q[log q] - E_q[log p] = -H(q) - log p(codes), and H(q) = 0.
    """
    return -self.prior().log_prob(codes)

  @tf.Module.with_name_scope
  def encode(self, images, training=False, seed=None):
    """Quantizes images [B, H, W, C] (float in [0, 1]); returns a `QuantizerOutput`."""
    return self.quantizer(self.encoder(images), training=training, seed=seed)

  @tf.Module.with_name_scope
  def decode(self, latents):
    """p(x | z_q) for quantized latents [B, h, w, D]: Independent Bernoulli pixels."""
    logits = tf.cast(self.decoder(latents), tf.float32)
    return tfd.Independent(tfd.Bernoulli(logits=logits, dtype=tf.float32),
                           reinterpreted_batch_ndims=3)

  def decode_codes(self, codes):
    """p(x | z_q) for int codes [B, h, w] in [0, K)."""
    return self.decode(self.quantizer.lookup(codes))

  def loss_terms(self, images, training=False, seed=None):
    """All loss terms for float images [B, H, W, C] in [0, 1] (binary for a true NLL).

    Args:
      images: [B, H, W, C] float32 targets, 0/1 after binarisation.
      training: passed to the quantizer (codebook EMA update, re-seeding).
      seed: stateless seed for the quantizer, required in training.

    Returns:
      `LossTerms`, each term per example.
    """
    quantized = self.encode(images, training=training, seed=seed)
    likelihood = self.decode(quantized.quantized)
    recon_nll = -likelihood.log_prob(images)
    kl = self.kl_divergence(quantized.codes)
    commitment = tf.cast(quantized.commitment_loss, tf.float32)
    return LossTerms(loss=recon_nll + commitment + kl, recon_nll=recon_nll,
                     commitment_loss=commitment, kl=kl, neg_elbo=recon_nll + kl,
                     quantizer=quantized)

  def bits_per_dim(self, neg_elbo_nats):
    """Converts nats per image to bits per pixel (dimension)."""
    return neg_elbo_nats / (self.num_pixels * math.log(2.0))
