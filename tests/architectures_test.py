"""Tests of the MLP and global-latent networks against NumPy references."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.models import builder
from tfp_vqvae.nets import dense as architectures


def _leaky_relu(x):
  return np.where(x > 0, x, 0.2 * x)


class ArchitecturesTest(tf.test.TestCase, parameterized.TestCase):

  def test_mlp_encoder_matches_numpy(self):
    encoder = architectures.MLPEncoder((4, 4, 1), num_hiddens=5, num_latents=3,
                                       embedding_dim=2)
    images = np.random.default_rng(0).uniform(size=(2, 4, 4, 1)).astype(np.float32)
    x = images.reshape(2, -1)
    for layer in encoder.hidden:
      x = _leaky_relu(x @ layer.kernel.numpy() + layer.bias.numpy())
    expected = (x @ encoder.out.kernel.numpy() + encoder.out.bias.numpy())
    self.assertAllClose(encoder(images), expected.reshape(2, 1, 3, 2), rtol=1e-5)

  @parameterized.parameters(("mlp", (28, 28, 1), 4), ("global", (28, 28, 1), 1),
                            ("global", (32, 32, 3), 2), ("conv", (32, 32, 3), 1))
  def test_shapes(self, architecture, image_shape, num_latents):
    config = config_lib.Config.from_fields(architecture=architecture, num_hiddens=8,
                               num_residual_hiddens=4, num_residual_layers=1,
                               embedding_dim=6, num_downsamples=2, num_latents=num_latents)
    encoder, decoder = builder.build_networks(config, image_shape, 2 * image_shape[-1])
    latents = encoder(tf.zeros((2,) + image_shape))
    latent_shape = ((image_shape[0] // 4, image_shape[1] // 4) if architecture == "conv"
                    else (1, num_latents))
    self.assertEqual(latents.shape, (2,) + latent_shape + (6,))
    self.assertEqual(decoder(latents).shape, (2,) + image_shape[:2] + (2 * image_shape[-1],))

  def test_global_encoder_uses_elu_and_is_seeded(self):
    first, second = (architectures.GlobalEncoder((8, 8, 1), 4, 1, 3, seed=5)
                     for _ in range(2))
    for a, b in zip(first.variables, second.variables):
      self.assertAllEqual(a, b)
    images = -np.ones((1, 8, 8, 1), np.float32) * 50
    # ELU keeps large negative pre-activations at about -1, unlike ReLU's 0.
    hidden = tf.nn.elu(first.convs[0](images))
    self.assertLess(float(tf.reduce_min(hidden)), -0.5)

  def test_bad_sizes_raise(self):
    config = config_lib.Config.from_fields(architecture="global", num_hiddens=8,
                                           embedding_dim=2)
    with self.assertRaisesRegex(ValueError, "divisible by 4"):
      builder.build_networks(config, (30, 30, 1), 1)
    with self.assertRaisesRegex(ValueError, "Unknown architecture 'transformer'; "
                                "registered: conv, mlp, global"):
      config_lib.Config.from_fields(architecture="transformer")
    with self.assertRaisesRegex(ValueError, "num_latents"):
      config_lib.Config.from_fields(architecture="mlp", num_latents=0)


if __name__ == "__main__":
  tf.test.main()
