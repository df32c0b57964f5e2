"""Encoder and decoder networks of the VQ-VAE (van den Oord et al. 2017, sec. 4.1).

Built Sonnet-style from `tf.Variable`s and `tf.nn` ops rather than Keras layers: on
TF 2.21 Keras 3 layers are not tracked as variables of an enclosing `tf.Module`, so
checkpoints and SavedModels would silently miss them. Every variable here is
tracked by `tf.Module` and created from a stateless seed, so the same `seed` always
gives the same initial weights.

Shapes for the default KMNIST model (`num_downsamples=2`, `num_hiddens=128`,
`embedding_dim=64`):

    images [B, 28, 28, 1] -> Encoder -> z_e [B, 7, 7, 64]
    z_q [B, 7, 7, 64] -> Decoder -> logits [B, 28, 28, 1]

All convolutions are NHWC with bias added by `tf.nn.bias_add`, the pattern TF's
grappler remapper fuses into one oneDNN kernel on CPU (conv + bias + relu).
"""

import math

import tensorflow as tf


class SeedSequence:
  """Hands out distinct stateless seeds [seed, i] for successive variables."""

  def __init__(self, seed):
    self._seed = int(seed)
    self._count = 0

  def next(self):
    self._count += 1
    return tf.constant([self._seed, self._count], dtype=tf.int64)


def check_positive(**values):
  """Raises ValueError naming the first argument that is not an integer >= 1."""
  for name, value in values.items():
    if int(value) != value or value < 1:
      raise ValueError(f"{name} must be a positive integer, got {value!r}.")


class _Convolution(tf.Module):
  """Kernel ~ TruncNormal(0, 1/fan_in) and zero bias of a (transposed) convolution.

  Variables are float32; the convolution runs in the dtype of its input, so a
  bfloat16/float16 model keeps float32 master weights (mixed precision).
  """

  def __init__(self, in_channels, out_channels, kernel_size, stride, transposed,
               seeds, name):
    super().__init__(name=name)
    check_positive(in_channels=in_channels, out_channels=out_channels,
                   kernel_size=kernel_size, stride=stride)
    seeds = seeds or SeedSequence(0)
    # conv2d kernels are [h, w, in, out]; conv2d_transpose kernels [h, w, out, in].
    channels = [out_channels, in_channels] if transposed else [in_channels, out_channels]
    stddev = 1.0 / math.sqrt(kernel_size * kernel_size * in_channels)
    with self.name_scope:
      self.kernel = tf.Variable(
          tf.random.stateless_truncated_normal([kernel_size, kernel_size] + channels,
                                               seeds.next(), stddev=stddev),
          name="kernel")
      self.bias = tf.Variable(tf.zeros([out_channels]), name="bias")
    self.stride = stride
    self.out_channels = out_channels


class Conv2D(_Convolution):
  """A 2-D convolution, NHWC, SAME padding."""

  def __init__(self, in_channels, out_channels, kernel_size, stride=1, seeds=None,
               name=None):
    super().__init__(in_channels, out_channels, kernel_size, stride, transposed=False,
                     seeds=seeds, name=name)

  def __call__(self, x):
    y = tf.nn.conv2d(x, tf.cast(self.kernel, x.dtype), strides=self.stride,
                     padding="SAME")
    return tf.nn.bias_add(y, tf.cast(self.bias, x.dtype))


class Conv2DTranspose(_Convolution):
  """A transposed 2-D convolution, NHWC, SAME padding: output is `stride` times larger."""

  def __init__(self, in_channels, out_channels, kernel_size, stride, seeds=None,
               name=None):
    super().__init__(in_channels, out_channels, kernel_size, stride, transposed=True,
                     seeds=seeds, name=name)

  def __call__(self, x):
    # Static spatial sizes keep the graph shape-static for XLA/TPU; only the batch
    # dimension is dynamic.
    _, height, width, _ = x.shape
    output_shape = tf.stack([tf.shape(x)[0], height * self.stride, width * self.stride,
                             self.out_channels])
    y = tf.nn.conv2d_transpose(x, tf.cast(self.kernel, x.dtype), output_shape,
                               strides=self.stride, padding="SAME")
    return tf.nn.bias_add(y, tf.cast(self.bias, x.dtype))


class ResidualStack(tf.Module):
  """`num_blocks` x (relu -> 3x3 conv -> relu -> 1x1 conv, added to the input), relu."""

  def __init__(self, num_hiddens, num_residual_hiddens, num_blocks, seeds=None,
               name=None):
    super().__init__(name=name)
    if int(num_blocks) != num_blocks or num_blocks < 0:
      raise ValueError(f"num_residual_layers must be >= 0, got {num_blocks!r}.")
    seeds = seeds or SeedSequence(0)
    with self.name_scope:
      self.blocks = [
          (Conv2D(num_hiddens, num_residual_hiddens, 3, seeds=seeds,
                  name=f"res3x3_{i}"),
           Conv2D(num_residual_hiddens, num_hiddens, 1, seeds=seeds,
                  name=f"res1x1_{i}"))
          for i in range(num_blocks)]

  def __call__(self, x):
    for conv3, conv1 in self.blocks:
      x = x + conv1(tf.nn.relu(conv3(tf.nn.relu(x))))
    return tf.nn.relu(x)


class Encoder(tf.Module):
  """The paper's encoder: strided 4x4 convs, a 3x3 conv, a residual stack, a 1x1 conv.

  Each of the `num_downsamples` strided convs halves the spatial size (28 -> 14 -> 7
  by default); the last one and the rest of the network use `num_hiddens` channels,
  the earlier ones `num_hiddens // 2`. The final 1x1 conv projects to
  `embedding_dim`, the size of a codebook vector.
  """

  def __init__(self, in_channels=1, num_hiddens=128, num_residual_hiddens=32,
               num_residual_layers=2, embedding_dim=64, num_downsamples=2, seed=0,
               dtype=tf.float32, name="encoder"):
    super().__init__(name=name)
    check_positive(in_channels=in_channels, num_hiddens=num_hiddens,
                    num_residual_hiddens=num_residual_hiddens, embedding_dim=embedding_dim,
                    num_downsamples=num_downsamples)
    seeds = SeedSequence(seed)
    channels = [max(num_hiddens // 2, 1)] * (num_downsamples - 1) + [num_hiddens]
    with self.name_scope:
      self.downsample = []
      previous = in_channels
      for i, out in enumerate(channels):
        self.downsample.append(Conv2D(previous, out, 4, stride=2, seeds=seeds,
                                      name=f"down_{i}"))
        previous = out
      self.conv = Conv2D(num_hiddens, num_hiddens, 3, seeds=seeds,
                         name="conv3x3")
      self.residual = ResidualStack(num_hiddens, num_residual_hiddens,
                                    num_residual_layers, seeds=seeds,
                                    name="residual")
      self.pre_quantizer = Conv2D(num_hiddens, embedding_dim, 1, seeds=seeds,
                                  name="pre_quantizer")
    self.dtype = tf.as_dtype(dtype)

  @tf.Module.with_name_scope
  def __call__(self, images):
    """Maps images [B, H, W, C] to latents [B, H / 2^n, W / 2^n, embedding_dim]."""
    x = tf.cast(images, self.dtype)
    for conv in self.downsample:
      x = tf.nn.relu(conv(x))
    x = self.residual(self.conv(x))
    return self.pre_quantizer(x)


class Decoder(tf.Module):
  """The paper's decoder: a 3x3 conv, a residual stack, strided 4x4 transposed convs.

  Mirrors `Encoder`; the last transposed conv outputs `out_channels` logits per pixel.
  """

  def __init__(self, out_channels=1, num_hiddens=128, num_residual_hiddens=32,
               num_residual_layers=2, embedding_dim=64, num_downsamples=2, seed=1,
               dtype=tf.float32, name="decoder"):
    super().__init__(name=name)
    check_positive(out_channels=out_channels, num_hiddens=num_hiddens,
                    num_residual_hiddens=num_residual_hiddens, embedding_dim=embedding_dim,
                    num_downsamples=num_downsamples)
    seeds = SeedSequence(seed)
    channels = [max(num_hiddens // 2, 1)] * (num_downsamples - 1) + [out_channels]
    with self.name_scope:
      self.conv = Conv2D(embedding_dim, num_hiddens, 3, seeds=seeds,
                         name="conv3x3")
      self.residual = ResidualStack(num_hiddens, num_residual_hiddens,
                                    num_residual_layers, seeds=seeds,
                                    name="residual")
      self.upsample = []
      previous = num_hiddens
      for i, out in enumerate(channels):
        self.upsample.append(Conv2DTranspose(previous, out, 4, stride=2, seeds=seeds,
                                             name=f"up_{i}"))
        previous = out
    self.dtype = tf.as_dtype(dtype)

  @tf.Module.with_name_scope
  def __call__(self, latents):
    """Maps latents [B, h, w, embedding_dim] to logits [B, h * 2^n, w * 2^n, C]."""
    x = self.residual(self.conv(tf.cast(latents, self.dtype)))
    for conv in self.upsample[:-1]:
      x = tf.nn.relu(conv(x))
    return self.upsample[-1](x)
