"""The client's pieces that need no server: tensors without TensorFlow, image files
decoded as training decodes them, and one-line errors.

The command-line client against a server is in serving_test.py.
"""

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
from PIL import Image
import tensorflow as tf

from tfp_vqvae.serving import client_files
from tfp_vqvae.data import preprocessing
from tfp_vqvae.serving import client as serving_client
from tfp_vqvae.serving import protos
import image_files
import test_util

_GOLDEN_EXPORT = os.path.join(test_util.ROOT, "tests", "goldens", "export_ema",
                              "saved_model.tar.xz")


def _training_pixels(data, channels):
  """What training makes of image bytes: TF's decoding, then the model's channels."""
  return preprocessing.to_channels(preprocessing.decode(data), channels).numpy()


def _pillow_bytes(array, mode, image_format, **options):
  encoded = io.BytesIO()
  Image.fromarray(array, mode).save(encoded, image_format, **options)
  return encoded.getvalue()


class ProtosTest(tf.test.TestCase):

  def test_tensor_protos_round_trip_through_tensorflow(self):
    rng = np.random.default_rng(0)
    for dtype in (np.uint8, np.int32, np.int64, np.float32, np.float16, np.float64,
                  np.bool_):
      with self.subTest(dtype=np.dtype(dtype).name):
        array = rng.integers(0, 2 if dtype is np.bool_ else 200, (2, 3, 4)).astype(dtype)
        # TensorFlow reads ours, and we read TensorFlow's.
        from_ours = tf.make_ndarray(protos.to_tensor_proto(array))
        from_tensorflows = protos.to_ndarray(tf.make_tensor_proto(array))
        for read in (from_ours, from_tensorflows):
          self.assertEqual(read.dtype, array.dtype)
          self.assertAllEqual(read, array)

  def test_values_in_typed_fields_are_read_as_tensorflow_reads_them(self):
    # A reply may list values one by one; the last one fills the rest of the shape.
    cases = [
        tf.make_tensor_proto(np.arange(6, dtype=np.float32).reshape(2, 3)),
        protos.tensor_pb2.TensorProto(dtype=protos.types_pb2.DT_FLOAT,
                                      float_val=[0.5, 1.5, 2.5, 3.5, 4.5, 5.5]),
        protos.tensor_pb2.TensorProto(dtype=protos.types_pb2.DT_INT32, int_val=[7, 8]),
        protos.tensor_pb2.TensorProto(dtype=protos.types_pb2.DT_INT64, int64_val=[]),
        protos.tensor_pb2.TensorProto(dtype=protos.types_pb2.DT_HALF,
                                      half_val=np.float16([0.5, -2, 3]).view(np.uint16)),
    ]
    for proto in cases[1:]:
      proto.tensor_shape.dim.add(size=2)
      proto.tensor_shape.dim.add(size=3)
    for proto in cases:
      with self.subTest(dtype=proto.dtype):
        expected = tf.make_ndarray(proto)
        read = protos.to_ndarray(proto)
        self.assertEqual(read.dtype, expected.dtype)
        self.assertAllEqual(read, expected)

  def test_other_dtypes_are_refused(self):
    with self.assertRaisesRegex(ValueError, "Cannot send an array of dtype <U1"):
      protos.to_tensor_proto(np.array(["a"]))

  def test_the_clients_do_not_import_tensorflow(self):
    # TensorFlow is ~4 s of start-up: a gRPC or REST call needs none of it.
    code = ("import sys; import tfp_vqvae.client, tfp_vqvae.serving.client; "
            "print(sorted(m for m in sys.modules if m.startswith('tensorflow.python')))")
    result = subprocess.run((sys.executable, "-c", code), capture_output=True, text=True,
                            timeout=120, cwd=tempfile.gettempdir(), check=True)
    self.assertEqual(result.stdout.strip(), "[]")


class OneLineTest(tf.test.TestCase):

  def test_a_failed_graph_check_is_one_line(self):
    temp_dir = tempfile.mkdtemp(prefix="client_test_")
    self.addCleanup(shutil.rmtree, temp_dir)
    with tarfile.open(_GOLDEN_EXPORT) as tar:
      tar.extractall(temp_dir, filter="data")
    client = serving_client.LocalClient(os.path.join(temp_dir, "saved_model"))
    cases = [
        (np.full((1, 4, 4), 16, np.int32), "decode: codes must be in [0, 16); got min 16 max 16"),
        (np.zeros((2, 5, 5), np.int32),
         "decode: codes must have shape [batch, 4, 4]; got shape [2 5 5]"),
    ]
    for codes, message in cases:
      with self.subTest(message=message):
        with self.assertRaises(serving_client.PredictionError) as caught:
          client.decode(codes)
        self.assertEqual(caught.exception.message, message)
        self.assertEqual(str(caught.exception), f"INVALID_ARGUMENT: {message}")

  def test_other_messages_lose_only_tensorflows_wrapping(self):
    self.assertEqual(
        serving_client.one_line("Graph execution error:\n\nDetected at node x defined at "
                                "(most recent call last):\n<stack traces unavailable>\n"
                                "Matrix size-incompatible: In[0]: [1,2]\n\t [[{{node x}}]] "
                                "[Op:__inference_f_12]"),
        "Matrix size-incompatible: In[0]: [1,2]")
    self.assertEqual(
        serving_client.one_line("{{function_node __inference_f_845}} assertion failed: "
                                "[codes must be in [0, 16); got min] [-1] [max] [3]\n\t "
                                "[[{{function_node Assert_AssertGuard_false_768}}{{node "
                                "Assert/AssertGuard/Assert}}]] [Op:__inference_f_845]"),
        "codes must be in [0, 16); got min -1 max 3")
    self.assertEqual(serving_client.one_line("Servable not found for request: other"),
                     "Servable not found for request: other")


class ImageFilesTest(tf.test.TestCase):
  """The client decodes files without TensorFlow, to the pixels training sees."""

  def test_every_format_gives_the_pixels_training_sees(self):
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (12, 10, 4), dtype=np.uint8)
    smooth = np.cumsum(rng.integers(-6, 7, (12, 10, 3)), axis=1).clip(0, 255).astype(np.uint8)
    files = {
        "grey png": _pillow_bytes(rgba[..., 0], "L", "PNG"),
        "grey+alpha png": _pillow_bytes(rgba[..., :2], "LA", "PNG"),
        "rgb png": _pillow_bytes(rgba[..., :3], "RGB", "PNG"),
        "rgba png": _pillow_bytes(rgba, "RGBA", "PNG"),
        "palette png": _pillow_bytes(rgba[..., :3], "RGB", "PNG", bits=4),
        "16-bit png": tf.io.encode_png(np.array(
            [[0, 255, 256, 65280, 65535, 33011]] * 2, np.uint16)[..., None]).numpy(),
        "bmp": image_files.bmp_bytes(rgba[..., :3]),
        "gif": _pillow_bytes(rgba[..., :3], "RGB", "GIF"),
        "gif 1x1": image_files.GIF_1X1,
        "webp lossy": _pillow_bytes(rgba[..., :3], "RGB", "WEBP", quality=70),
        "webp lossless": _pillow_bytes(rgba, "RGBA", "WEBP", lossless=True),
        # TensorFlow decodes these: Pillow's JPEG decoding differs from TF's.
        "jpeg 4:2:0": _pillow_bytes(smooth, "RGB", "JPEG", quality=90, subsampling=2),
        "grey jpeg": tf.io.encode_jpeg(smooth[..., :1], quality=95).numpy(),
    }
    for name, data in files.items():
      for channels in (1, 3):
        with self.subTest(file=name, channels=channels):
          got = client_files.decode_image(name, data, channels)
          self.assertEqual(got.dtype, np.uint8)
          self.assertAllEqual(got, _training_pixels(data, channels))

  def test_luma_is_tensorflows_for_every_colour(self):
    every = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([every >> 16, (every >> 8) & 255, every & 255], -1).astype(np.uint8)
    rgb = rgb.reshape(4096, 4096, 3)
    self.assertAllEqual(client_files.luma(rgb), tf.image.rgb_to_grayscale(rgb).numpy())

  def test_a_file_that_is_no_image_is_refused_in_one_line(self):
    with self.assertRaisesRegex(ValueError, r"^Cannot read image notes.png: cannot "
                                r"identify image file"):
      client_files.decode_image("notes.png", b"not an image", 1)


if __name__ == "__main__":
  tf.test.main()
