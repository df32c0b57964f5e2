"""The library's entry points check what they are given in its own dtype, before
any cast: pixels out of [0, 1] and integer pixels, codes out of [0, K) however
wide their integers, each refused with a message naming the argument."""

import os

import numpy as np
import tensorflow as tf

import tfp_vqvae as tv
from tfp_vqvae.internal import checks
import test_util

_GOLDENS = os.path.join(test_util.ROOT, "tests", "goldens")
# 2**32 + 3 becomes the valid code 3 when cast to int32.
_WRAPS_TO_3 = 2**32 + 3


class ModelInputsTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model, _, _ = tv.load_vqvae(os.path.join(_GOLDENS, "ema"))  # K = 16, 16x16x1.
    rng = np.random.default_rng(0)
    cls.pixels = rng.integers(0, 256, (3, 16, 16, 1), dtype=np.uint8)

  def test_encode_refuses_pixels_that_are_not_floats_in_0_1(self):
    nan = np.full((1, 16, 16, 1), np.nan, np.float32)
    cases = [
        (self.pixels, "images must be float pixels in [0, 1], got uint8 (for uint8 "
         "0..255: images / 255, or images > 127 for a --binarize=threshold model, as "
         "its export does)."),
        (self.pixels.astype(np.float32),
         f"images must be in [0, 1]; got values from 0.0 to {self.pixels.max():.1f}."),
        (self.pixels / 255.0 - 0.5, "images must be in [0, 1]; got values from -0.5"),
        (nan, "images must be in [0, 1]; got values from nan to nan."),
    ]
    for images, message in cases:
      with self.subTest(message=message):
        with self.assertRaises(ValueError) as caught:
          self.model.encode(images)
        self.assertStartsWith(str(caught.exception), message)

  def test_encode_takes_floats_in_0_1_as_before(self):
    images = (self.pixels / 255.0).astype(np.float32)
    codes = self.model.encode(images).codes
    # The unchecked path the training step takes gives the same codes.
    self.assertAllEqual(codes, self.model._quantize(tf.constant(images), False).codes)
    self.assertAllEqual(self.model.encode(images.astype(np.float64)).codes, codes)

  def test_decode_codes_checks_codes_in_their_own_dtype(self):
    cases = [
        (np.full((1, 4, 4), _WRAPS_TO_3, np.int64),
         "codes must be in [0, 16); got values from 4294967299 to 4294967299."),
        (np.full((1, 4, 4), -1, np.int8), "codes must be in [0, 16); got values from -1"),
        (np.full((1, 4, 4), 16, np.uint8), "codes must be in [0, 16); got values from 16"),
        (np.full((1, 4, 4), 3.0), "codes must be integer codes in [0, 16), got float64."),
    ]
    for codes, message in cases:
      with self.subTest(message=message):
        with self.assertRaises(ValueError) as caught:
          self.model.decode_codes(codes)
        self.assertStartsWith(str(caught.exception), message)

  def test_decode_codes_of_any_integer_dtype_in_range_are_the_same(self):
    codes = np.arange(16).reshape(1, 4, 4)
    expected = self.model.decode_codes(codes.astype(np.int32)).mean()
    for dtype in (np.int64, np.uint8, np.uint64, np.int16):
      with self.subTest(dtype=np.dtype(dtype).name):
        self.assertAllEqual(self.model.decode_codes(codes.astype(dtype)).mean(), expected)

  def test_inside_a_function_the_checks_fail_when_it_runs(self):
    decode = tf.function(lambda codes: self.model.decode_codes(codes).mean())
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                r"codes must be in \[0, 16\); got min\] \[4294967299\]"):
      decode(tf.constant(np.full((1, 4, 4), _WRAPS_TO_3, np.int64)))
    encode = tf.function(lambda images: self.model.encode(images).codes)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                r"images must be in \[0, 1\]; got min\] \[0\] \[max\] \[255\]"):
      encode(tf.constant(self.pixels, tf.float32))

  def test_vqvae2_codes_are_checked_map_by_map(self):
    model, _, _ = tv.load_vqvae(os.path.join(_GOLDENS, "vqvae2"))
    codes = model.random_codes(2, seed=tf.constant([1, 2]))
    self.assertAllEqual(
        model.decode_codes({level: tf.cast(value, tf.int64) for level, value in codes.items()}
                          ).mean(),
        model.decode_codes(codes).mean())
    codes["top"] = np.full(codes["top"].shape, _WRAPS_TO_3, np.int64)
    with self.assertRaisesRegex(ValueError, r'^codes\["top"\] must be in \[0, '):
      model.decode_codes(codes)


class KerasLayerInputsTest(tf.test.TestCase):

  def test_lookup_checks_codes_in_their_own_dtype(self):
    layer = tv.VectorQuantizerEMALayer(num_embeddings=8, embedding_dim=4)
    layer.build((None, 4))
    self.assertAllEqual(layer.lookup(np.array([7, 0], np.int64)),
                        tf.gather(layer.codebook.value, [7, 0]))
    with self.assertRaisesRegex(ValueError, r"^codes must be in \[0, 8\); got values from "
                                r"0 to 4294967299\.$"):
      layer.lookup(np.array([0, _WRAPS_TO_3], np.int64))
    with self.assertRaisesRegex(ValueError, r"^codes must be integer codes in \[0, 8\), "
                                "got float32"):
      layer.lookup(np.array([1.0], np.float32))

  def test_integer_inputs_are_refused(self):
    layer = tv.VectorQuantizerLossLayer(num_embeddings=8, embedding_dim=4, name="vq")
    # Keras wraps the message of an error raised in `call`.
    with self.assertRaisesRegex(ValueError, r"vq: inputs must be float latents "
                                r"\[\.\.\., 4\], got int32\."):
      layer(np.ones((2, 3, 4), np.int32))
    with self.assertRaisesRegex(ValueError, r"^vq: inputs must be float latents"):
      layer.quantizer_output(np.ones((2, 3, 4), np.uint8))


class ChecksTest(tf.test.TestCase):

  def test_the_upper_bound_is_compared_in_the_codes_dtype_only_when_it_fits(self):
    # K = 300 does not fit in uint8: every uint8 value is a valid code.
    self.assertAllEqual(checks.codes(np.array([0, 255], np.uint8), 300), [0, 255])
    self.assertEqual(checks.codes(np.array([0, 255], np.uint8), 300).dtype, tf.int32)
    with self.assertRaisesRegex(ValueError, r"got values from 0 to 255\.$"):
      checks.codes(np.array([0, 255], np.uint8), 200)

  def test_empty_batches_pass(self):
    self.assertEqual(checks.codes(np.zeros((0, 4), np.int64), 8).shape, (0, 4))
    self.assertEqual(checks.pixels(np.zeros((0, 2), np.float32)).shape, (0, 2))


if __name__ == "__main__":
  tf.test.main()
