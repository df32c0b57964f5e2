"""Tests of image preprocessing: size flag, channels, resize and crop, augmentation."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfp_vqvae.configs import data as data_options
from tfp_vqvae.data import preprocessing
import image_files


class ParseImageSizeTest(parameterized.TestCase):

  @parameterized.parameters(("", None), ("64", (64, 64)), ("128,96", (128, 96)),
                            (" 32 , 16 ", (32, 16)))
  def test_valid(self, text, size):
    self.assertEqual(data_options.parse_image_size(text), size)

  @parameterized.parameters("0", "64x64", "1,2,3", "-4", "a")
  def test_invalid_is_one_line(self, text):
    with self.assertRaisesRegex(ValueError, f"image_size='{text}': must be N or H,W"):
      data_options.parse_image_size(text)


class ToChannelsTest(parameterized.TestCase, tf.test.TestCase):

  def _dynamic(self, image, channels):
    """Runs to_channels with the channel count unknown when tracing."""
    function = tf.function(lambda x: preprocessing.to_channels(x, channels),
                           input_signature=[tf.TensorSpec([None, None, None], tf.uint8)])
    return function(image)

  @parameterized.parameters(False, True)
  def test_grey_to_rgb_repeats(self, dynamic):
    grey = image_files.random_images(1, (3, 4, 1))[0]

    rgb = (self._dynamic(grey, 3) if dynamic else preprocessing.to_channels(grey, 3))

    self.assertAllEqual(rgb, np.repeat(grey, 3, axis=-1))

  @parameterized.parameters(False, True)
  def test_rgb_to_grey_is_luma(self, dynamic):
    rgb = image_files.random_images(1, (3, 4, 3))[0]

    grey = (self._dynamic(rgb, 1) if dynamic else preprocessing.to_channels(rgb, 1))

    self.assertAllEqual(grey, tf.image.rgb_to_grayscale(rgb))
    expected = rgb.astype(np.float64) @ [0.2989, 0.587, 0.114]
    self.assertAllClose(grey[..., 0], expected, atol=1)

  @parameterized.parameters((2, 1, 1), (4, 3, 3), (1, 1, 1), (3, 3, 3))
  def test_alpha_is_dropped_and_same_colour_unchanged(self, stored, wanted, kept):
    image = image_files.random_images(1, (2, 2, stored))[0]

    converted = self._dynamic(image, wanted)

    self.assertAllEqual(converted, image[..., :kept])

  def test_bad_channels_raise(self):
    with self.assertRaisesRegex(ValueError, "channels must be 1 or 3"):
      preprocessing.to_channels(np.zeros([1, 1, 1], np.uint8), 2)


def _resize(image, size):
  """What resize_and_crop's resampling gives for `image` at `size`, in uint8."""
  resized = tf.image.resize(image, size, method="bilinear", antialias=True)
  return np.round(np.clip(resized.numpy(), 0, 255)).astype(np.uint8)


class ResizeAndCropTest(parameterized.TestCase, tf.test.TestCase):

  def test_same_size_is_unchanged(self):
    image = image_files.random_images(1, (6, 5, 3))[0]

    self.assertAllEqual(preprocessing.resize_and_crop(tf.constant(image), (6, 5)), image)
    dynamic = tf.function(lambda x: preprocessing.resize_and_crop(x, (6, 5)),
                          input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    self.assertAllEqual(dynamic(image), image)

  @parameterized.named_parameters(
      # 20x40 -> shorter side 10 -> 10x20, centre columns 5..15.
      ("wide", (20, 40), (10, 10), (10, 20), (0, 5)),
      ("tall", (40, 20), (10, 10), (20, 10), (5, 0)),
      # To 8x4: scale max(8/10, 4/10) = 0.8 -> 8x8, centre columns 2..6.
      ("rectangle", (10, 10), (8, 4), (8, 8), (0, 2)),
      # Upscaled: 3x6 -> 6x12, centre columns 3..9.
      ("upscale", (3, 6), (6, 6), (6, 12), (0, 3)))
  def test_shorter_side_then_centre_crop(self, stored, size, resized, offset):
    image = image_files.random_images(1, stored + (3,))[0]

    result = preprocessing.resize_and_crop(tf.constant(image), size)

    expected = _resize(image, resized)[offset[0]:offset[0] + size[0],
                                       offset[1]:offset[1] + size[1]]
    self.assertEqual(result.dtype, tf.uint8)
    self.assertAllEqual(result, expected)

  def test_random_crop_is_a_window_chosen_by_the_seed(self):
    image = image_files.random_images(1, (4, 12, 1))[0]
    windows = [image[:, left:left + 4] for left in range(9)]

    def crop(seed):
      return preprocessing.resize_and_crop(tf.constant(image), (4, 4),
                                           tf.constant(seed, tf.int64)).numpy()

    lefts = set()
    for seed in range(12):
      cropped = crop([seed, 0])
      matches = [i for i, window in enumerate(windows) if np.array_equal(window, cropped)]
      self.assertLen(matches, 1)
      lefts.add(matches[0])
      self.assertAllEqual(crop([seed, 0]), cropped)
    self.assertGreater(len(lefts), 3)


class PreprocessTest(tf.test.TestCase):

  def test_flip_follows_the_seed(self):
    image = image_files.random_images(1, (4, 4, 3))[0]

    flips = [preprocessing.preprocess(tf.constant(image), (4, 4), 3,
                                      flip_seed=tf.constant([seed, 1], tf.int64)).numpy()
             for seed in range(16)]

    for flipped in flips:
      self.assertTrue(np.array_equal(flipped, image)
                      or np.array_equal(flipped, image[:, ::-1]))
    self.assertTrue(any(np.array_equal(f, image[:, ::-1]) for f in flips))
    self.assertTrue(any(np.array_equal(f, image) for f in flips))

  def test_mixed_grey_and_rgb_of_any_size_become_one_shape(self):
    for stored in ((5, 9, 1), (12, 7, 3), (8, 8, 4)):
      image = image_files.random_images(1, stored)[0]

      result = preprocessing.preprocess(tf.constant(image), (6, 6), 3)

      self.assertEqual(result.shape, (6, 6, 3))
      self.assertEqual(result.dtype, tf.uint8)


if __name__ == "__main__":
  tf.test.main()
