"""Tests of the SavedModel export: signatures, validation, layout, CLI.

One tiny model is trained (a few steps on mock data) and exported once per test
class; the exported model is checked against the in-memory model, in a separate
Python process that imports only TensorFlow, as TF Serving would load it.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

from google.protobuf import text_format
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from tfp_vqvae.priors import pixelcnn as prior_lib
from tfp_vqvae.serving import client as serving_client
from tfp_vqvae.serving import export as export_lib
from tfp_vqvae.training import checkpoints
import test_util

_ROOT = test_util.ROOT
_SIGNATURES = ("encode", "decode", "reconstruct", "neg_elbo", "serving_default")
_PROGRAMS = os.path.join(_ROOT, "tests", "programs")


def _tool(name):
  """A console script of the running venv, e.g. saved_model_cli."""
  return os.path.join(os.path.dirname(sys.executable), name)


def _run(*args, env=None):
  return subprocess.run(args, cwd=_ROOT, capture_output=True, text=True, timeout=300,
                        env=env)


class ExportTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.temp_dir = tempfile.mkdtemp(prefix="export_test_")
    cls.model_dir = os.path.join(cls.temp_dir, "model")
    test_util.train_tiny_model(cls.model_dir)
    cls.export_base = os.path.join(cls.temp_dir, "export")
    cls.export_dir = export_lib.export_saved_model(cls.model_dir, cls.export_base)
    cls.model, cls.config, _ = checkpoints.load_vqvae(cls.model_dir)
    cls.loaded = tf.saved_model.load(cls.export_dir)
    rng = np.random.default_rng(0)
    cls.images = rng.integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    cls.codes = rng.integers(0, cls.model.num_embeddings, (5, 7, 7), dtype=np.int32)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.temp_dir)
    super().tearDownClass()

  def _expected(self):
    """Every signature's outputs computed with the in-memory model."""
    model = self.model
    self.assertEqual(self.config.training.binarize, "threshold")
    binary = (self.images > 127).astype(np.float32)
    encoded = model.encode(binary)
    decoded = model.decode_codes(self.codes)
    reconstruction = {"probs": model.decode(encoded.quantized).mean(),
                      "codes": encoded.codes}
    expected = {
        "encode": {"codes": encoded.codes, "latents": encoded.quantized},
        "decode": {"probs": decoded.mean(), "logits": decoded.distribution.logits},
        "reconstruct": reconstruction,
        "serving_default": reconstruction,
        "neg_elbo": {"neg_elbo": model.loss_terms(binary).neg_elbo},
    }
    return {key: {name: np.asarray(value) for name, value in outputs.items()}
            for key, outputs in expected.items()}

  def test_separate_process_matches_in_memory_model(self):
    inputs = os.path.join(self.temp_dir, "inputs.npz")
    outputs = os.path.join(self.temp_dir, "outputs.npz")
    np.savez(inputs, images=self.images, codes=self.codes)
    result = _run(sys.executable, os.path.join(_PROGRAMS, "run_export_signatures.py"),
                  self.export_dir, inputs, outputs)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    got = dict(np.load(outputs))
    expected = self._expected()
    # Threshold-binarised random pixels: images differ, so codes are not constant.
    self.assertGreater(len(np.unique(expected["encode"]["codes"])), 1)
    checked = set()
    for key, outputs_of_key in expected.items():
      for name, value in outputs_of_key.items():
        kinds = ("signature", "attribute") if key != "serving_default" else ("signature",)
        for kind in kinds:
          actual = got[f"{kind}/{key}/{name}"]
          checked.add(f"{kind}/{key}/{name}")
          self.assertEqual(actual.dtype, value.dtype, f"{kind}/{key}/{name}")
          if value.dtype == np.int32:
            self.assertAllEqual(actual, value, msg=f"{kind}/{key}/{name}")
          else:
            self.assertAllClose(actual, value, atol=1e-6, rtol=1e-6,
                                msg=f"{kind}/{key}/{name}")
    self.assertCountEqual(checked, got)  # Nothing unexpected was returned.

  def test_reconstruct_equals_decode_of_encode_exactly(self):
    images = tf.constant(self.images)
    encoded = self.loaded.encode(images)
    reconstructed = self.loaded.reconstruct(images)
    self.assertAllEqual(reconstructed["codes"], encoded["codes"])
    self.assertAllEqual(reconstructed["probs"],
                        self.loaded.decode(encoded["codes"])["probs"])
    self.assertAllEqual(encoded["latents"],
                        tf.gather(self.model.quantizer.codebook, encoded["codes"]))

  def test_saved_model_cli_show_lists_documented_signatures(self):
    result = _run(_tool("saved_model_cli"), "show", "--all", "--dir", self.export_dir)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    blocks = {}
    for block in result.stdout.split("signature_def['")[1:]:
      blocks[block.split("'")[0]] = block
    self.assertContainsSubset(_SIGNATURES, blocks)
    documented = {
        "encode": [("inputs", "images", "DT_UINT8", "(-1, 28, 28, 1)"),
                   ("outputs", "codes", "DT_INT32", "(-1, 7, 7)"),
                   ("outputs", "latents", "DT_FLOAT", "(-1, 7, 7, 8)")],
        "decode": [("inputs", "codes", "DT_INT32", "(-1, 7, 7)"),
                   ("outputs", "probs", "DT_FLOAT", "(-1, 28, 28, 1)"),
                   ("outputs", "logits", "DT_FLOAT", "(-1, 28, 28, 1)")],
        "reconstruct": [("inputs", "images", "DT_UINT8", "(-1, 28, 28, 1)"),
                        ("outputs", "probs", "DT_FLOAT", "(-1, 28, 28, 1)"),
                        ("outputs", "codes", "DT_INT32", "(-1, 7, 7)")],
        "neg_elbo": [("inputs", "images", "DT_UINT8", "(-1, 28, 28, 1)"),
                     ("outputs", "neg_elbo", "DT_FLOAT", "(-1)")],
    }
    documented["serving_default"] = documented["reconstruct"]
    for key, tensors in documented.items():
      block = blocks[key]
      self.assertIn("Method name is: tensorflow/serving/predict", block)
      self.assertLen(tensors, block.count("tensor_info:"), key)
      for kind, name, dtype, shape in tensors:
        self.assertRegex(block, rf"{kind}\['{name}'\] tensor_info:\s+dtype: {dtype}\s+"
                         rf"shape: {re.escape(shape)}", f"{key}/{name}")

  def test_saved_model_cli_run_rejects_code_k(self):
    codes = os.path.join(self.temp_dir, "code_k.npy")
    np.save(codes, np.full((1, 7, 7), self.model.num_embeddings, np.int32))
    result = _run(_tool("saved_model_cli"), "run", "--dir", self.export_dir,
                  "--tag_set", "serve", "--signature_def", "decode",
                  "--inputs", f"codes={codes}")
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("InvalidArgumentError", result.stderr)
    self.assertIn("decode: codes must be in [0, 16)", result.stderr)

  def test_bad_inputs_fail_clearly_through_loaded_saved_model(self):
    decode = self.loaded.signatures["decode"]
    encode = self.loaded.signatures["encode"]
    cases = [
        (decode, "codes", np.full((2, 7, 7), 16, np.int32),
         r"decode: codes must be in \[0, 16\); got min\] \[16\]"),
        (decode, "codes", np.full((2, 7, 7), -1, np.int32),
         r"decode: codes must be in \[0, 16\); got min\] \[-1\]"),
        (decode, "codes", np.zeros((2, 8, 8), np.int32),
         r"decode: codes must have shape \[batch, 7, 7\]; got shape\] \[2 8 8\]"),
        (decode, "codes", np.zeros((7, 7), np.int32),
         r"decode: codes must have shape \[batch, 7, 7\]; got shape\] \[7 7\]"),
        (encode, "images", np.zeros((1, 32, 32, 1), np.uint8),
         r"encode: images must have shape \[batch, 28, 28, 1\]; got shape\] \[1 32 32 1\]"),
        (decode, "codes", np.zeros((2, 7, 7), np.float32),
         r"expected to be a int32 tensor but is a float tensor"),
    ]
    for function, name, value, message in cases:
      with self.subTest(message=message):
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, message):
          function(**{name: tf.constant(value)})
    # The attribute functions only accept their traced input specs.
    for value in (np.zeros((2, 7, 7), np.float32), np.zeros((2, 8, 8), np.int32)):
      with self.assertRaisesRegex(
          ValueError, r"(?s)Could not find matching concrete function.*Expected.*"
          r"TensorSpec\(shape=\(None, 7, 7\), dtype=tf.int32, name='codes'\)"):
        self.loaded.decode(tf.constant(value))

  def test_empty_batches_give_empty_outputs_with_onednn_on_and_off(self):
    # A class-conditional prior adds sample and log_prob_codes (and labels); its
    # weights do not matter for shapes.
    prior = prior_lib.GatedPixelCNN(prior_lib.PriorConfig(
        num_embeddings=self.model.num_embeddings, latent_shape=(7, 7), num_channels=4,
        num_classes=3))
    module = export_lib.PriorServingModule(self.model, prior, "threshold")
    export_dir = export_lib.save_module(module, os.path.join(self.temp_dir, "empty"),
                                        warmup_batch_sizes=(1,))
    signatures = tf.saved_model.load(export_dir).signatures
    self.assertContainsSubset(list(_SIGNATURES) + ["sample", "log_prob_codes"], signatures)
    expected = {}
    for key, function in signatures.items():
      for name, spec in function.structured_outputs.items():
        shape = [0] + spec.shape[1:].as_list()
        expected[f"signature/{key}/{name}"] = [shape, spec.dtype.name]
        expected[f"grpc/{key}/{name}"] = [shape, spec.dtype.name]
    # TF reads TF_ENABLE_ONEDNN_OPTS when it is imported: one process per setting.
    for onednn in ("0", "1"):
      with self.subTest(onednn=onednn):
        result = _run(sys.executable, os.path.join(_PROGRAMS, "empty_batches.py"), export_dir,
                      env=dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn))
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        got = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertEqual(got.pop("onednn"), onednn == "1")
        self.assertEqual(got, expected)

  def test_python_callers_get_converted_values_unless_they_use_local_client(self):
    signatures = self.loaded.signatures
    encode, decode = signatures["encode"], signatures["decode"]
    black = encode(images=tf.zeros([2, 28, 28, 1], tf.uint8))["codes"]
    white = encode(images=tf.fill([2, 28, 28, 1], tf.constant(255, tf.uint8)))["codes"]
    self.assertNotAllEqual(black, white)
    code_3 = decode(codes=tf.fill([2, 7, 7], 3))["probs"]
    self.assertNotAllClose(code_3, decode(codes=tf.fill([2, 7, 7], 4))["probs"])
    big = 2**32 + 3
    pixels = np.random.default_rng(3).uniform(0, 1, [2, 28, 28, 1]).astype(np.float32)
    pixels[0, 0, 0, 0] = 1.0
    # (signature, input, value, what TF converts the value to, its dtype as named)
    cases = [
        (encode, "images", np.full([2, 28, 28, 1], 256, np.int64), black, "int64"),
        (encode, "images", np.full([2, 28, 28, 1], -1, np.int8), white, "int8"),
        (encode, "images", pixels, black, "float32"),
        (decode, "codes", np.full([2, 7, 7], big, np.int64), code_3, "int64"),
        (decode, "codes", np.full([2, 7, 7], 3.7), code_3, "float64"),
        (decode, "codes", [[[big] * 7] * 7] * 2, code_3, "list"),
    ]
    client = serving_client.LocalClient(self.export_dir)
    for function, name, value, converted, got in cases:
      with self.subTest(name=name, got=got):
        # What the README says TF does on this path: convert before the graph runs.
        output = "codes" if name == "images" else "probs"
        self.assertAllClose(function(**{name: value})[output], converted)
        signature = "encode" if name == "images" else "decode"
        dtype = "uint8" if name == "images" else "int32"
        with self.assertRaisesRegex(
            serving_client.PredictionError,
            rf"^INVALID_ARGUMENT: {signature}: input {name} must be a NumPy array or "
            rf"tensor of dtype {dtype}, got {got}\.$"):
          client.predict(signature, {name: value})
    # The attribute functions refuse arrays of another dtype but convert lists.
    self.assertAllClose(self.loaded.decode([[[big] * 7] * 7] * 2)["probs"], code_3)
    with self.assertRaisesRegex(ValueError, "Could not find matching concrete function"):
      self.loaded.decode(np.full([2, 7, 7], 3, np.int64))
    # Exact dtypes pass, as arrays and tensors, and the graph still checks values.
    self.assertAllEqual(client.encode(np.zeros([2, 28, 28, 1], np.uint8))["codes"], black)
    self.assertAllClose(client.decode(tf.fill([2, 7, 7], 3))["probs"], code_3)
    with self.assertRaisesRegex(serving_client.PredictionError,
                                r"(?s)^INVALID_ARGUMENT: .*decode: codes must be in \[0, 16\)"):
      client.decode(np.full([2, 7, 7], 16, np.int32))
    with self.assertRaisesRegex(serving_client.PredictionError,
                                r"input keys \['pixels'\] do not match"):
      client.predict("encode", {"pixels": np.zeros([1, 28, 28, 1], np.uint8)})
    with self.assertRaisesRegex(serving_client.PredictionError, "FAILED_PRECONDITION"):
      client.predict("sample", {"seeds": np.zeros([1], np.int64)})

  def test_jit_compiled_wrappers_compile_and_match(self):
    for key in ("encode", "decode", "reconstruct", "neg_elbo"):
      function = getattr(self.loaded, key)
      argument = tf.constant(self.codes if key == "decode" else self.images)
      compiled = tf.function(function, jit_compile=True)
      # The compiled graph is XLA's, not the plain one (it would fail otherwise).
      self.assertIn("HloModule", compiled.experimental_get_compiler_ir(argument)())
      plain, jitted = function(argument), compiled(argument)
      for name in plain:
        self.assertAllClose(jitted[name], plain[name], atol=1e-5, rtol=1e-5,
                            msg=f"{key}/{name}")

  def test_warmup_records_cover_every_signature_and_run(self):
    path = os.path.join(self.export_dir, export_lib.WARMUP_FILE)
    seen = set()
    count = 0
    for record in tf.data.TFRecordDataset(path):
      count += 1
      log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
      request = log.predict_log.request
      self.assertEqual(request.model_spec.name, "vqvae")
      function = self.loaded.signatures[request.model_spec.signature_name]
      inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
      self.assertCountEqual(inputs, function.structured_input_signature[1])
      outputs = function(**{name: tf.constant(v) for name, v in inputs.items()})
      batch = next(iter(inputs.values())).shape[0]
      for value in outputs.values():
        self.assertEqual(value.shape[0], batch)
      seen.add((request.model_spec.signature_name, batch))
    self.assertLessEqual(count, 1000)
    self.assertCountEqual(seen, [(key, batch) for key in _SIGNATURES
                                 for batch in export_lib.WARMUP_BATCH_SIZES])

  def test_tpu_function_aliases_are_saved(self):
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(self.export_dir, "saved_model.pb"), "rb") as f:
      proto.ParseFromString(f.read())
    aliases = proto.meta_graphs[0].meta_info_def.function_aliases
    self.assertCountEqual(set(aliases.values()),
                          ["encode", "decode", "reconstruct", "neg_elbo"])

  def test_serving_config_templates_agree_with_the_export(self):
    with open(os.path.join(_ROOT, "export", "models.config")) as f:
      config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    self.assertEqual(model.name, export_lib.DEFAULT_MODEL_NAME)
    self.assertEqual(model.model_platform, "tensorflow")
    # BatchingParameters is not in the tensorflow-serving-api wheel: read the fields.
    with open(os.path.join(_ROOT, "export", "batching_parameters.txt")) as f:
      text = f.read()
    allowed = [int(v) for v in re.findall(r"^allowed_batch_sizes: (\d+)", text, re.M)]
    maximum = int(re.search(r"^max_batch_size { value: (\d+) }", text, re.M).group(1))
    self.assertEqual(allowed[-1], maximum)
    self.assertContainsSubset(allowed, export_lib.WARMUP_BATCH_SIZES)

  def test_versions_increment_and_existing_version_is_refused(self):
    base = os.path.join(self.temp_dir, "versions")
    os.makedirs(os.path.join(base, "7"))
    os.makedirs(os.path.join(base, "notes"))  # Not a version: ignored.
    module = export_lib.ServingModule(self.model, "threshold")
    self.assertEqual(export_lib.save_module(module, base, warmup_batch_sizes=(1,)),
                     os.path.join(base, "8"))
    with self.assertRaisesRegex(ValueError, "version 8 already exists"):
      export_lib.save_module(module, base, version=8)
    self.assertEqual(export_lib.integer_versions(base), [7, 8])

  def test_failed_export_leaves_no_version_and_no_temporary_directory(self):
    base = os.path.join(self.temp_dir, "failing")
    module = export_lib.ServingModule(self.model, "threshold")
    with mock.patch.object(export_lib, "_warmup_requests",
                           side_effect=OSError("disk full")):
      with self.assertRaisesRegex(OSError, "disk full"):
        export_lib.save_module(module, base)
    self.assertEmpty(os.listdir(base))

  def test_grey_models_see_pixel_over_255(self):
    self.assertEqual(export_lib.serving_binarize_mode("threshold"), "threshold")
    self.assertEqual(export_lib.serving_binarize_mode("dynamic"), "none")
    self.assertEqual(export_lib.serving_binarize_mode("none"), "none")
    with self.assertRaisesRegex(ValueError, "binarize_mode"):
      export_lib.ServingModule(self.model, "dynamic")
    module = export_lib.ServingModule(self.model, "none")
    grey = self.model.encode(self.images.astype(np.float32) / 255.0)
    self.assertAllEqual(module.encode(self.images)["codes"], grey.codes)
  def test_cli_exports_a_model_dir_and_fails_clearly_without_checkpoint(self):
    model_dir = os.path.join(self.get_temp_dir(), "model")
    shutil.copytree(self.model_dir, model_dir)
    base = os.path.join(self.get_temp_dir(), "base")
    command = (sys.executable, "-m", "export.export_saved_model", "--model_dir",
               model_dir, "--export_base", base)
    result = _run(*command, "--version", "3")
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertEqual(result.stdout.strip(), os.path.join(base, "3"))
    self.assertIn("decode", tf.saved_model.load(os.path.join(base, "3")).signatures)

    again = _run(*command, "--version", "3")
    self.assertNotEqual(again.returncode, 0)
    self.assertIn("error: version 3 already exists", again.stderr)
    self.assertNotIn("Traceback", again.stderr)

    for name in os.listdir(model_dir):
      if name.startswith("ckpt-") or name == "checkpoint":
        os.remove(os.path.join(model_dir, name))
    missing = _run(*command)
    self.assertNotEqual(missing.returncode, 0)
    self.assertIn(f"error: {model_dir} holds no checkpoint to load", missing.stderr)
    self.assertNotIn("Traceback", missing.stderr)
    self.assertEqual(export_lib.integer_versions(base), [3])


if __name__ == "__main__":
  tf.test.main()
