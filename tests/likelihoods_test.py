"""Tests of the decoder likelihoods against NumPy/SciPy references."""

import numpy as np
from scipy import special
from scipy import stats
import tensorflow as tf

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.models import likelihoods


def _numpy_discretized_logistic(levels, loc, scale):
  """log P(level) of PixelCNN++'s discretized logistic over 0..255 (loc in levels)."""
  upper = special.expit((levels + 0.5 - loc) / scale)
  lower = special.expit((levels - 0.5 - loc) / scale)
  probs = np.where(levels == 0, upper, np.where(levels == 255, 1 - lower, upper - lower))
  return np.log(probs)


class LikelihoodsTest(tf.test.TestCase):

  def test_bernoulli_matches_numpy(self):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 4, 1)).astype(np.float32)
    images = (rng.uniform(size=logits.shape) > 0.5).astype(np.float32)
    likelihood = likelihoods.Bernoulli()(logits)
    expected = images * special.log_expit(logits) + (1 - images) * special.log_expit(-logits)
    self.assertAllClose(likelihood.log_prob(images), expected.reshape(2, -1).sum(1),
                        rtol=1e-5)
    self.assertAllClose(likelihood.mean(), special.expit(logits), rtol=1e-5)

  def test_gaussian_is_variance_normalised_mse(self):
    rng = np.random.default_rng(1)
    outputs = rng.uniform(-1, 1, size=(3, 4, 4, 3)).astype(np.float32)
    images = rng.uniform(size=outputs.shape).astype(np.float32)
    variance = 0.07
    likelihood = likelihoods.Gaussian((-1.0, 1.0), variance)(outputs)
    loc = (outputs + 1) / 2  # [-1, 1] outputs scored against [0, 1] images
    expected = stats.norm.logpdf(images, loc, np.sqrt(variance)).reshape(3, -1).sum(1)
    self.assertAllClose(likelihood.log_prob(images), expected, rtol=1e-5)
    self.assertAllClose(likelihood.mean(), loc)
    # -log p = (H*W*C / 2) * normalised MSE + a constant.
    nmse = ((images - loc) ** 2).reshape(3, -1).mean(1) / variance
    constant = 0.5 * 48 * np.log(2 * np.pi * variance)
    self.assertAllClose(-likelihood.log_prob(images), 24 * nmse + constant, rtol=1e-5)

  def test_discretized_logistic_matches_numpy(self):
    rng = np.random.default_rng(2)
    loc = rng.uniform(-1.2, 1.2, size=(2, 5, 5, 1)).astype(np.float32)
    log_scale = rng.uniform(-4, -1, size=loc.shape).astype(np.float32)
    loc_levels = 255 * (loc + 1) / 2
    scale_levels = 255 * np.exp(log_scale) / 2
    # Levels within a few scales of the location, where float64 SciPy is accurate.
    levels = np.clip(np.round(loc_levels + scale_levels * rng.uniform(-3, 3, loc.shape)),
                     0, 255)
    levels[0, 0, 0, 0], levels[0, 0, 1, 0] = 0, 255  # the folded tails
    loc[0, 0, 0, 0], loc[0, 0, 1, 0] = -0.99, 0.99
    loc_levels = 255 * (loc + 1) / 2
    images = (levels / 255.0).astype(np.float32)
    outputs = np.concatenate([loc, log_scale], axis=-1)
    likelihood = likelihoods.DiscretizedLogistic((-1.0, 1.0))(outputs)
    expected = _numpy_discretized_logistic(levels, loc_levels, scale_levels)
    self.assertAllClose(likelihood.log_prob(images), expected.reshape(2, -1).sum(1),
                        rtol=1e-4)

  def test_discretized_logistic_mean_is_the_sum_over_levels(self):
    rng = np.random.default_rng(4)
    shape = (4, 8, 8, 1)
    # Locations inside and beyond [-1, 1]; log-scales from the floor (0.06 levels)
    # to broad (2600 levels): both regimes of the computation.
    loc = rng.uniform(-1.3, 1.3, shape).astype(np.float32)
    log_scale = rng.uniform(-7, 3, shape).astype(np.float32)
    loc[0, 0, :4, 0] = [-1.0, 1.0, 0.0, 0.5 / 127.5]  # levels 0, 255, 127.5, 128
    log_scale[0, 0, :4, 0] = -7.0
    likelihood = likelihoods.DiscretizedLogistic((-1.0, 1.0))(
        np.concatenate([loc, log_scale], axis=-1))
    # The direct sum of level / 255 * P(level) over the 256 levels, in float64,
    # from the distribution's own float32 location and scale.
    levels = np.arange(256, dtype=np.float64)
    loc_levels = 255 * likelihood.loc.numpy().astype(np.float64)[..., None]
    scale_levels = 255 * likelihood.scale.numpy().astype(np.float64)[..., None]
    probs = np.exp(_numpy_discretized_logistic(levels, loc_levels, scale_levels))
    self.assertAllClose(probs.sum(-1), np.ones(shape), atol=1e-9)
    mean = likelihood.mean().numpy()
    self.assertAllClose(mean, (probs * levels / 255).sum(-1), atol=5e-6, rtol=0)
    # Not the clipped location: the means of broad pixels are pulled towards 1/2.
    self.assertGreater(np.abs(mean - np.clip((loc + 1) / 2, 0, 1)).max(), 0.1)

  def test_discretized_logistic_sums_to_one_over_levels(self):
    outputs = tf.constant([[[[0.3, -3.0]]], [[[0.999, -6.0]]]])
    likelihood = likelihoods.DiscretizedLogistic()(outputs)
    levels = np.arange(256, dtype=np.float32).reshape(256, 1, 1, 1, 1) / 255
    probs = np.exp([likelihood.log_prob(np.broadcast_to(level, (2, 1, 1, 1)))
                    for level in levels])
    self.assertAllClose(probs.sum(0), [1.0, 1.0], rtol=1e-4)

  def test_parameters_per_channel_and_unknown_name(self):
    self.assertEqual(likelihoods.DiscretizedLogistic().params_per_channel, 2)
    self.assertEqual(likelihoods.Gaussian().params_per_channel, 1)
    with self.assertRaisesRegex(ValueError, "Unknown likelihood 'poisson'; "
                                "registered: bernoulli, gaussian, logistic"):
      config_lib.Config.from_fields(likelihood="poisson", binarize="none")


if __name__ == "__main__":
  tf.test.main()
