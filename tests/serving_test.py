"""Serving tests: the exported model behind the stand-in PredictionService.

The real tensorflow_model_server cannot be installed here, so requests go to
tests/prediction_server.py, which follows TF Serving's Predict rules, over real
gRPC (and REST) sockets on 127.0.0.1.
"""

import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tfp_vqvae.serving import client as serving_client
from tfp_vqvae.serving import export as export_lib
import image_files
import prediction_server
import test_util


class ServingTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.temp_dir = tempfile.mkdtemp(prefix="serving_test_")
    model_dir = os.path.join(cls.temp_dir, "model")
    test_util.train_tiny_model(model_dir)
    cls.export_dir = export_lib.export_saved_model(model_dir,
                                                   os.path.join(cls.temp_dir, "export"))
    cls.loaded = tf.saved_model.load(cls.export_dir)
    cls.server = prediction_server.PredictionServer(cls.export_dir, rest_port=0,
                                                    lifetime_seconds=300).start()
    cls.client = serving_client.GrpcClient(cls.server.address, timeout_seconds=60)
    rng = np.random.default_rng(1)
    cls.images = rng.integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    cls.codes = rng.integers(0, 16, (4, 7, 7), dtype=np.int32)

  @classmethod
  def tearDownClass(cls):
    cls.client.close()
    cls.server.stop()
    shutil.rmtree(cls.temp_dir)
    super().tearDownClass()

  def _direct(self, signature, inputs):
    """The signature's outputs computed in this process, without serving."""
    outputs = self.loaded.signatures[signature](
        **{name: tf.constant(value) for name, value in inputs.items()})
    return {name: value.numpy() for name, value in outputs.items()}

  def _assert_outputs_equal(self, actual, expected):
    self.assertCountEqual(actual, expected)
    for name, value in expected.items():
      self.assertEqual(actual[name].dtype, value.dtype, name)
      self.assertAllClose(actual[name], value, atol=1e-6, rtol=1e-6, msg=name)

  def test_every_signature_round_trips_over_grpc_and_rest(self):
    rest = serving_client.RestClient(self.server.rest_url)
    calls = {"encode": {"images": self.images}, "decode": {"codes": self.codes},
             "reconstruct": {"images": self.images}, "neg_elbo": {"images": self.images}}
    for signature, inputs in calls.items():
      expected = self._direct(signature, inputs)
      for client in (self.client, rest):
        with self.subTest(signature=signature, client=type(client).__name__):
          method = getattr(client, signature)
          self._assert_outputs_equal(method(*inputs.values()), expected)
    self._assert_outputs_equal(self.client.predict("serving_default", calls["encode"]),
                               self._direct("reconstruct", calls["encode"]))

  def test_empty_signature_name_means_serving_default(self):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(self.client._channel)  # pylint: disable=protected-access
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="vqvae"))
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(self.images))
    response = stub.Predict(request, timeout=60)
    self.assertEqual(response.model_spec.signature_name, "serving_default")
    self.assertAllEqual(tf.make_ndarray(response.outputs["codes"]),
                        self._direct("reconstruct", {"images": self.images})["codes"])

  def test_eight_concurrent_clients_make_fifty_requests_each(self):
    expected = {"encode": self._direct("encode", {"images": self.images}),
                "decode": self._direct("decode", {"codes": self.codes})}

    def worker(index):
      with serving_client.GrpcClient(self.server.address, timeout_seconds=60) as client:
        for request in range(50):
          if (index + request) % 2:
            outputs = client.decode(self.codes)
            np.testing.assert_allclose(outputs["probs"], expected["decode"]["probs"],
                                       atol=1e-6)
          else:
            outputs = client.encode(self.images)
            np.testing.assert_array_equal(outputs["codes"],
                                          expected["encode"]["codes"])
      return index

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
      done = list(pool.map(worker, range(8)))  # Re-raises a worker's error.
    self.assertEqual(done, list(range(8)))

  def test_bad_inputs_fail_clearly_over_grpc(self):
    rest = serving_client.RestClient(self.server.rest_url)
    images = {"images": self.images}
    cases = [
        # (client, signature, inputs, status, message regex)
        (self.client, "decode", {"codes": np.full((1, 7, 7), 16, np.int32)},
         "INVALID_ARGUMENT", r"decode: codes must be in \[0, 16\)"),
        (self.client, "decode", {"codes": np.full((1, 7, 7), -3, np.int32)},
         "INVALID_ARGUMENT", r"decode: codes must be in \[0, 16\); got min -3 max -3$"),
        (self.client, "decode", {"codes": np.zeros((1, 8, 8), np.int32)},
         "INVALID_ARGUMENT", r"decode: codes must have shape \[batch, 7, 7\]"),
        (self.client, "decode", {"codes": np.zeros((49,), np.int32)},
         "INVALID_ARGUMENT", r"decode: codes must have shape \[batch, 7, 7\]"),
        (self.client, "neg_elbo", {"images": np.zeros((1, 28, 28), np.uint8)},
         "INVALID_ARGUMENT", r"neg_elbo: images must have shape \[batch, 28, 28, 1\]"),
        (self.client, "decode", {"codes": self.codes.astype(np.int64)},
         "INVALID_ARGUMENT", r"decode: input codes must be int32, got int64"),
        (self.client, "encode", {"images": self.images.astype(np.float32)},
         "INVALID_ARGUMENT", r"encode: input images must be uint8, got float32"),
        (self.client, "encode", {"pixels": self.images},
         "INVALID_ARGUMENT", r"input keys \['pixels'\] do not match .*\['images'\]"),
        (self.client, "encode", dict(images, codes=self.codes),
         "INVALID_ARGUMENT", r"input keys \['codes', 'images'\] do not match"),
        (self.client, "sample", images,
         "FAILED_PRECONDITION", r'Serving signature key "sample" not found'),
        (serving_client.GrpcClient(self.server.address, model_name="other"), "encode",
         images, "NOT_FOUND", r"Servable not found for request: other"),
        (rest, "decode", {"codes": np.full((1, 7, 7), 16, np.int32)},
         400, r"decode: codes must be in \[0, 16\)"),
        # JSON carries no dtype, so the REST client checks it before sending.
        (rest, "encode", {"images": self.images.astype(np.int64) + 256},
         "INVALID_ARGUMENT", r"encode: input images must be a NumPy array or tensor "
         r"of dtype uint8, got int64"),
    ]
    for client, signature, inputs, status, message in cases:
      with self.subTest(message=message):
        with self.assertRaisesRegex(serving_client.PredictionError, message) as caught:
          client.predict(signature, inputs)
        self.assertEqual(caught.exception.code, status)

  def test_deadline_is_enforced(self):
    with serving_client.GrpcClient(self.server.address, timeout_seconds=1e-4) as client:
      with self.assertRaises(serving_client.PredictionError) as caught:
        client.encode(np.zeros((512, 28, 28, 1), np.uint8))
    self.assertEqual(caught.exception.code, grpc.StatusCode.DEADLINE_EXCEEDED.name)

  def test_image_shape_comes_from_the_model_metadata(self):
    clients = (self.client, serving_client.RestClient(self.server.rest_url),
               serving_client.LocalClient(self.export_dir))
    for client in clients:
      with self.subTest(client=type(client).__name__):
        self.assertEqual(client.image_shape(), (28, 28, 1))
        self.assertEqual(client.image_shape("neg_elbo"), (28, 28, 1))
        self.assertEqual(client.input_shapes("decode"), {"codes": (None, 7, 7)})
        with self.assertRaisesRegex(serving_client.PredictionError,
                                    'signature key "sample" not found'):
          client.image_shape("sample")

  def _run_client(self, *args):
    """Runs the client CLI from outside the checkout, as a user would."""
    return subprocess.run(
        (sys.executable, "-m", "tfp_vqvae.client", "--server", self.server.address) + args,
        cwd=self.temp_dir, capture_output=True, text=True, timeout=120)

  def test_client_cli_encodes_png_and_jpeg_files_and_decodes_codes(self):
    # An RGB PNG (the grey model takes its luma) and a grey JPEG, named by a glob.
    inputs = os.path.join(self.temp_dir, "inputs")
    rgb = np.random.default_rng(2).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    image_files.write_image(os.path.join(inputs, "image_0.png"), rgb)
    jpeg = image_files.write_image(os.path.join(inputs, "image_1.jpg"), self.images[1])
    expected_images = np.stack([tf.image.rgb_to_grayscale(rgb).numpy(),
                                tf.io.decode_jpeg(tf.io.read_file(jpeg)).numpy()])
    codes_path = os.path.join(self.temp_dir, "codes.npy")
    decoded_dir = os.path.join(self.temp_dir, "decoded")

    encoded = self._run_client("--output", codes_path, "encode",
                               os.path.join(inputs, "image_*"))
    self.assertEqual(encoded.returncode, 0, encoded.stderr[-3000:])
    self.assertAllEqual(np.load(codes_path),
                        self._direct("encode", {"images": expected_images})["codes"])

    decoded = self._run_client("--output", decoded_dir, "decode", codes_path)
    self.assertEqual(decoded.returncode, 0, decoded.stderr[-3000:])
    probs = self._direct("decode", {"codes": np.load(codes_path)})["probs"]
    for i in range(2):
      png = tf.io.decode_png(tf.io.read_file(os.path.join(decoded_dir,
                                                          f"codes_{i:03d}.png")))
      self.assertAllClose(png.numpy() / 255.0, probs[i], atol=0.5 / 255 + 1e-6)

  def test_client_cli_shows_a_server_error_in_one_line(self):
    bad_codes = os.path.join(self.temp_dir, "bad_codes.npy")
    np.save(bad_codes, np.full((1, 7, 7), 16, np.int32))
    failed = self._run_client("--output", os.path.join(self.temp_dir, "bad"), "decode",
                              bad_codes)
    self.assertNotEqual(failed.returncode, 0)
    self.assertEqual(failed.stderr.strip(), "error: the server answered INVALID_ARGUMENT: "
                     "decode: codes must be in [0, 16); got min 16 max 16")

  def test_client_cli_names_outputs_after_inputs_in_a_new_directory(self):
    inputs = os.path.join(self.temp_dir, "named")
    image_files.write_image(os.path.join(inputs, "cat.png"), self.images[0])
    np.save(os.path.join(inputs, "batch.npy"), self.images[1:3])
    out = os.path.join(self.temp_dir, "new", "reconstructed")
    done = self._run_client("--output", out, "reconstruct",
                            os.path.join(inputs, "cat.png"), os.path.join(inputs, "batch.npy"))
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])
    self.assertCountEqual(os.listdir(out), ["cat.png", "batch_000.png", "batch_001.png",
                                            "codes.npy"])
    expected = self._direct("reconstruct", {"images": self.images[:3]})
    self.assertAllEqual(np.load(os.path.join(out, "codes.npy")), expected["codes"])
    png = tf.io.decode_png(tf.io.read_file(os.path.join(out, "batch_001.png")))
    self.assertAllClose(png.numpy() / 255.0, expected["probs"][2], atol=0.5 / 255 + 1e-6)

    scores = self._run_client("neg_elbo", os.path.join(inputs, "cat.png"))
    self.assertEqual(scores.returncode, 0, scores.stderr[-3000:])
    value = self._direct("neg_elbo", {"images": self.images[:1]})["neg_elbo"][0]
    self.assertEqual(scores.stdout.strip(), f"cat  {value:.4f}")

    # Two inputs with one name, and an output that would replace an input.
    image_files.write_image(os.path.join(inputs, "cat.bmp"), np.tile(self.images[0], 3))
    for args, message in [
        ((out, os.path.join(inputs, "cat.png"), os.path.join(inputs, "cat.bmp")),
         f"error: {inputs}/cat.png and {inputs}/cat.bmp would both be written as cat; "
         "rename one."),
        ((inputs, os.path.join(inputs, "cat.png")),
         f"error: --output {inputs}: writing {inputs}/cat.png would replace an input; "
         "choose another directory.")]:
      with self.subTest(message=message):
        failed = self._run_client("--output", args[0], "reconstruct", *args[1:])
        self.assertNotEqual(failed.returncode, 0)
        self.assertEqual(failed.stderr.strip(), message)

  def test_client_cli_checks_codes_before_they_become_int32(self):
    # int64 2**32 + 3 would become the valid code 3.
    codes = os.path.join(self.temp_dir, "wide_codes.npy")
    np.save(codes, np.full((1, 7, 7), 2**32 + 3, np.int64))
    failed = self._run_client("--output", os.path.join(self.temp_dir, "wide"), "decode",
                              codes)
    self.assertNotEqual(failed.returncode, 0)
    self.assertEqual(failed.stderr.strip(),
                     f"error: {codes}: codes must be in [0, the model's codebook size); "
                     "got int64 values from 4294967299 to 4294967299.")
    np.save(codes, np.full((1, 7, 7), 5, np.int64))  # In range: sent as int32.
    done = self._run_client("--output", os.path.join(self.temp_dir, "wide"), "decode", codes)
    self.assertEqual(done.returncode, 0, done.stderr[-3000:])

  def test_client_cli_refuses_an_image_of_another_size_in_one_line(self):
    good = image_files.write_image(os.path.join(self.temp_dir, "good.png"), self.images[0])
    path = image_files.write_image(os.path.join(self.temp_dir, "narrow.png"),
                                   self.images[0][:, :24])
    failed = self._run_client("neg_elbo", good, path)
    self.assertNotEqual(failed.returncode, 0)
    self.assertEqual(failed.stderr.strip().splitlines()[-1],
                     f"error: {path} is 28x24 pixels but the model takes 28x28 images; "
                     "resize or crop it first (the client does not).")


if __name__ == "__main__":
  tf.test.main()
