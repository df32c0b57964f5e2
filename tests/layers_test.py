"""Tests of the layers (against NumPy) and of the named seed streams."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfp_vqvae.internal import seeds
from tfp_vqvae.nets import layers


def _numpy_conv_valid(x, kernel):
  """Cross-correlation of x [B, H, W, I] with kernel [kh, kw, I, O], VALID, stride 1."""
  kh, kw = kernel.shape[:2]
  out_h, out_w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[3]))
  for i in range(out_h):
    for j in range(out_w):
      out[:, i, j] = np.einsum("bhwi,hwio->bo", x[:, i:i + kh, j:j + kw], kernel)
  return out


class LayersTest(tf.test.TestCase, parameterized.TestCase):

  def test_linear_matches_numpy(self):
    linear = layers.Linear(4, 3, seeds=seeds.SeedSequence(2))
    linear.bias.assign([0.5, -1.0, 2.0])
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    expected = x @ linear.kernel.numpy() + linear.bias.numpy()
    self.assertAllClose(linear(x), expected, rtol=1e-5)

  def test_same_conv_matches_numpy(self):
    conv = layers.Conv2D(2, 3, kernel_size=3)
    conv.bias.assign([1.0, 0.0, -1.0])
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 2)).astype(np.float32)
    padded = np.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    expected = _numpy_conv_valid(padded, conv.kernel.numpy()) + conv.bias.numpy()
    self.assertAllClose(conv(x), expected, rtol=1e-5, atol=1e-5)

  def test_explicit_padding_is_causal(self):
    # Padding 2 rows above and nothing below: output row i sees input rows <= i.
    conv = layers.Conv2D(1, 1, (3, 3), padding=((2, 0), (1, 1)))
    x = np.random.default_rng(1).normal(size=(1, 6, 5, 1)).astype(np.float32)
    padded = np.pad(x, [[0, 0], [2, 0], [1, 1], [0, 0]])
    self.assertAllClose(conv(x), _numpy_conv_valid(padded, conv.kernel.numpy()),
                        rtol=1e-5, atol=1e-5)
    changed = x.copy()
    changed[:, 4:] += 10.0
    self.assertAllClose(conv(changed)[:, :4], conv(x)[:, :4])

  def test_transposed_conv_upsamples(self):
    conv = layers.Conv2DTranspose(3, 2, kernel_size=4, stride=2)
    self.assertEqual(conv.kernel.shape, (4, 4, 2, 3))
    self.assertEqual(conv(tf.zeros((2, 7, 5, 3))).shape, (2, 14, 10, 2))

  @parameterized.parameters(tf.bfloat16, tf.float16)
  def test_computes_in_input_dtype_with_float32_weights(self, dtype):
    conv = layers.Conv2D(2, 3, kernel_size=1)
    x = np.random.default_rng(0).normal(size=(1, 4, 4, 2)).astype(np.float32)
    y = conv(tf.cast(x, dtype))
    self.assertEqual(y.dtype, dtype)
    self.assertEqual(conv.kernel.dtype, tf.float32)
    self.assertAllClose(tf.cast(y, tf.float32), conv(x), rtol=5e-2, atol=5e-2)

  def test_initializer_is_injected_and_seeded(self):
    calls = []

    def ones(shape, fan_in, seed):
      calls.append((tuple(shape), fan_in))
      return tf.ones(shape)

    conv = layers.Conv2DTranspose(3, 2, 4, 2, kernel_initializer=ones)
    self.assertAllEqual(conv.kernel, tf.ones((4, 4, 2, 3)))
    self.assertEqual(calls, [((4, 4, 2, 3), 4 * 4 * 3)])
    first, second = (layers.Linear(8, 8, seeds=seeds.SeedSequence(7)) for _ in range(2))
    self.assertAllEqual(first.kernel, second.kernel)
    # Default: TruncNormal(0, 1/sqrt(fan_in)), within 2 stddevs.
    kernel = layers.Linear(400, 50).kernel.numpy()
    self.assertLessEqual(np.abs(kernel).max(), 2.0 / 20.0 + 1e-6)
    self.assertNear(kernel.std(), 0.88 / 20.0, 0.005)

  def test_bad_sizes_raise(self):
    with self.assertRaisesRegex(ValueError, "out_channels must be a positive integer"):
      layers.Conv2D(2, 0, 3)
    with self.assertRaisesRegex(ValueError, "in_features"):
      layers.Linear(0, 3)


class SeedsTest(tf.test.TestCase):

  def test_step_seed_is_fold_in_of_seed_and_stream(self):
    expected = tf.random.experimental.stateless_fold_in(
        tf.constant([3, 0x5EED], tf.int64), tf.constant(17, tf.int64))
    self.assertAllEqual(seeds.step_seed(3, seeds.Stream.QUANTIZER, 17), expected)
    self.assertAllEqual(seeds.stream_seed(tf.constant(3, tf.int64), seeds.Stream.SAMPLES),
                        [3, 0x5EED5])

  def test_streams_are_distinct(self):
    values = [int(stream) for stream in seeds.Stream]
    self.assertLen(set(values), len(values))
    drawn = {tuple(seeds.step_seed(0, stream, 1).numpy()) for stream in seeds.Stream}
    self.assertLen(drawn, len(values))

  def test_seed_sequence_counts_from_one(self):
    sequence = seeds.SeedSequence(5)
    self.assertAllEqual(sequence.next(), [5, 1])
    self.assertAllEqual(sequence.next(), [5, 2])


if __name__ == "__main__":
  tf.test.main()
