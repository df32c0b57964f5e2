"""The layers every network of the package is built from: conv, transposed conv, linear.

Built Sonnet-style from `tf.Variable`s and `tf.nn` ops rather than Keras layers: on
TF 2.21 Keras 3 layers are not tracked as variables of an enclosing `tf.Module`, so
checkpoints and SavedModels would silently miss them.

Each layer keeps float32 variables and computes in the dtype of its input (the
variables are cast), so a bfloat16/float16 network keeps float32 master weights
(mixed precision). Initial kernels come from a `KernelInitializer` (by default
TruncNormal(0, 1/fan_in)) called with a stateless seed from a
`seeds.SeedSequence`, so the same seed always gives the same weights; biases start
at zero. Convolutions are NHWC with the bias added by `tf.nn.bias_add`, the pattern
TF's grappler remapper fuses into one oneDNN kernel on CPU (conv + bias + relu).
"""

import math
from typing import Callable, Optional, Sequence, Union

import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib

# (kernel shape, fan-in, int64 [2] stateless seed) -> float32 initial kernel.
KernelInitializer = Callable[[Sequence[int], int, tf.Tensor], tf.Tensor]


def truncated_normal_fan_in(shape: Sequence[int], fan_in: int,
                            seed: tf.Tensor) -> tf.Tensor:
  """TruncNormal(0, stddev = 1/sqrt(fan_in)): unit-variance pre-activations."""
  return tf.random.stateless_truncated_normal(list(shape), seed,
                                              stddev=1.0 / math.sqrt(fan_in))


def activated(stack, x, activation):
  """x through each layer of `stack` in turn, `activation` after each one."""
  for layer in stack:
    x = activation(layer(x))
  return x


def check_positive(**values):
  """Raises ValueError naming the first argument that is not an integer >= 1."""
  for name, value in values.items():
    if int(value) != value or value < 1:
      raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def check_heads(width_name: str, width: int, num_heads: int) -> int:
  """The width of each of `num_heads` attention heads over `width` features.

  Raises:
    ValueError: naming `width_name` or num_heads, unless both are positive and
      num_heads divides width.
  """
  check_positive(**{width_name: width, "num_heads": num_heads})
  if width % num_heads:
    raise ValueError(f"num_heads={num_heads} must divide {width_name}={width}.")
  return width // num_heads


class _Layer(tf.Module):
  """A kernel (shape `kernel_shape`) and a zero bias of `out_features`."""

  def __init__(self, kernel_shape, fan_in, out_features, seeds, kernel_initializer,
               name):
    super().__init__(name=name)
    seeds = seeds or seeds_lib.SeedSequence(0)
    with self.name_scope:
      self.kernel = tf.Variable(kernel_initializer(kernel_shape, fan_in, seeds.next()),
                                name="kernel")
      self.bias = tf.Variable(tf.zeros([out_features]), name="bias")

  def _add_bias(self, y):
    return tf.nn.bias_add(y, tf.cast(self.bias, y.dtype))


def _pair(value):
  return (value, value) if isinstance(value, int) else tuple(value)


class Conv2D(_Layer):
  """A 2-D convolution, NHWC: SAME padding, or explicit zero padding then VALID.

  Explicit padding ((top, bottom), (left, right)) makes causal convolutions (the
  PixelCNN prior pads only above and to the sides).
  """

  def __init__(self, in_channels: int, out_channels: int,
               kernel_size: Union[int, Sequence[int]], stride: int = 1,
               padding: Union[str, Sequence[Sequence[int]]] = "SAME",
               seeds: Optional[seeds_lib.SeedSequence] = None,
               kernel_initializer: KernelInitializer = truncated_normal_fan_in,
               name: Optional[str] = None):
    kernel_height, kernel_width = _pair(kernel_size)
    check_positive(in_channels=in_channels, out_channels=out_channels,
                   kernel_height=kernel_height, kernel_width=kernel_width, stride=stride)
    super().__init__([kernel_height, kernel_width, in_channels, out_channels],
                     kernel_height * kernel_width * in_channels, out_channels, seeds,
                     kernel_initializer, name)
    self.stride = stride
    if padding == "SAME":
      self.paddings = None
    else:
      (top, bottom), (left, right) = padding
      self.paddings = [[0, 0], [top, bottom], [left, right], [0, 0]]

  def __call__(self, x):
    padding = "SAME"
    if self.paddings is not None:
      padding = "VALID"
      if any(any(p) for p in self.paddings):
        x = tf.pad(x, self.paddings)
    y = tf.nn.conv2d(x, tf.cast(self.kernel, x.dtype), strides=self.stride,
                     padding=padding)
    return self._add_bias(y)


class Conv2DTranspose(_Layer):
  """A transposed 2-D convolution, NHWC, SAME padding: output is `stride` times larger."""

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
               seeds: Optional[seeds_lib.SeedSequence] = None,
               kernel_initializer: KernelInitializer = truncated_normal_fan_in,
               name: Optional[str] = None):
    check_positive(in_channels=in_channels, out_channels=out_channels,
                   kernel_size=kernel_size, stride=stride)
    # conv2d_transpose kernels are [h, w, out, in].
    super().__init__([kernel_size, kernel_size, out_channels, in_channels],
                     kernel_size * kernel_size * in_channels, out_channels, seeds,
                     kernel_initializer, name)
    self.stride = stride
    self.out_channels = out_channels

  def __call__(self, x):
    # Static spatial sizes keep the graph shape-static for XLA/TPU; only the batch
    # dimension is dynamic.
    _, height, width, _ = x.shape
    output_shape = tf.stack([tf.shape(x)[0], height * self.stride, width * self.stride,
                             self.out_channels])
    y = tf.nn.conv2d_transpose(x, tf.cast(self.kernel, x.dtype), output_shape,
                               strides=self.stride, padding="SAME")
    return self._add_bias(y)


class Linear(_Layer):
  """x @ W + b for x [B, in_features]."""

  def __init__(self, in_features: int, out_features: int,
               seeds: Optional[seeds_lib.SeedSequence] = None,
               kernel_initializer: KernelInitializer = truncated_normal_fan_in,
               name: Optional[str] = None):
    check_positive(in_features=in_features, out_features=out_features)
    super().__init__([in_features, out_features], in_features, out_features, seeds,
                     kernel_initializer, name)

  def __call__(self, x):
    return self._add_bias(tf.matmul(x, tf.cast(self.kernel, x.dtype)))
