"""Training on image data end to end: the real-data flagfiles parse and train a few
steps (tiny networks) on mock or generated data at the image shape they ask for, the
64x64 RGB models export and serve, and bad images end the CLI with one line."""

import json
import os
import re
import subprocess
import sys

from absl.testing import parameterized
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae.serving import client as serving_client
from tfp_vqvae.serving import export as export_lib
from tfp_vqvae.training import checkpoints
from tfp_vqvae.training import vqvae_trainer as train_lib
import image_files
import prediction_server
import test_util

# Tiny networks and a short run; the data flags stay the flagfiles'.
_TINY = dict(num_hiddens=8, num_residual_hiddens=4, num_residual_layers=1,
             embedding_dim=4, num_embeddings=8, batch_size=4, reduction_group_size=0,
             num_steps=2, log_every=1, eval_every=2, checkpoint_every=2,
             eval_batch_size=8)


def _write_folder(root, count=6):
  """train/ and test/ of `count` images each, of mixed sizes, grey and RGB."""
  paths = []
  for i in range(count):
    for split in ("train", "test"):
      shape = (70 + 3 * i, 64 + i, 3 if i % 2 else 1)
      paths.append(image_files.write_image(os.path.join(root, split, f"{i}.png"),
                                           image_files.random_images(1, shape, seed=i)[0]))
  return paths


def _run_cli(*args):
  return subprocess.run([sys.executable, "-m", "tfp_vqvae.train", *args], cwd=test_util.ROOT,
                        capture_output=True, text=True, timeout=600, check=False)


class DataFlagfilesTest(parameterized.TestCase, tf.test.TestCase):

  def _train(self, name, **overrides):
    path = os.path.join(test_util.FLAGS_DIR, name)
    with open(path) as f:
      self.assertIn("python -m tfp_vqvae.train --flagfile flags/" + name, f.read())
    config = test_util.flagfile_config(path, **dict(_TINY, **overrides))
    self.model_dir = os.path.join(self.get_temp_dir(), "model")
    metrics = train_lib.train_and_evaluate(config, self.model_dir)
    with open(os.path.join(self.model_dir, "metrics.json")) as f:
      self.assertEqual(json.load(f)["step"], 2)
    model, _, _ = checkpoints.load_vqvae(self.model_dir)
    return config, model, metrics

  def assertExportsAndServes(self, image_shape, code_shape):
    """The export of self.model_dir takes uint8 [-1, *image_shape] images in
    `saved_model_cli show`, decode(encode(x)) == reconstruct(x), and the gRPC
    stand-in serves it."""
    export_dir = export_lib.export_saved_model(
        self.model_dir, os.path.join(self.get_temp_dir(), "export"))
    # Started first: it runs (mostly importing TensorFlow) while this process checks.
    shown = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "saved_model_cli"), "show",
         "--all", "--dir", export_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    self.addCleanup(shown.kill)  # If a check fails before it is waited for.
    images = image_files.random_images(3, image_shape, seed=5)
    loaded = tf.saved_model.load(export_dir)
    codes = loaded.encode(tf.constant(images))["codes"]
    self.assertEqual(codes.shape, (3,) + code_shape)
    reconstructed = loaded.reconstruct(tf.constant(images))
    self.assertAllEqual(loaded.decode(codes)["probs"], reconstructed["probs"])
    self.assertAllEqual(codes, reconstructed["codes"])
    with prediction_server.PredictionServer(export_dir, lifetime_seconds=120) as server, \
        serving_client.GrpcClient(server.address) as client:
      self.assertEqual(client.image_shape(), image_shape)
      self.assertAllEqual(client.encode(images)["codes"], codes)
    stdout, stderr = shown.communicate(timeout=300)
    self.assertEqual(shown.returncode, 0, stderr[-3000:])
    shape = ", ".join(map(str, (-1,) + image_shape))
    for signature in ("encode", "reconstruct", "neg_elbo", "serving_default"):
      self.assertRegex(stdout, rf"signature_def\['{signature}'\]:\n.*\n"
                       rf"    inputs\['images'\] tensor_info:\n"
                       rf"        dtype: DT_UINT8\n        shape: \({re.escape(shape)}\)")

  @parameterized.parameters(("celeba64.cfg", (64, 64, 3), (16, 16), True),
                            ("imagenet128.cfg", (128, 128, 3), (32, 32), False),
                            ("vqvae2_imagenet256.cfg", (256, 256, 3),
                             {"top": (32, 32), "bottom": (64, 64)}, False))
  def test_tfds_flagfile_trains_on_mock_data(self, name, image_shape, code_shape,
                                             serve):
    with tfds.testing.mock_data(num_examples=8):
      config, model, metrics = self._train(name)

    self.assertEqual(model.image_shape, image_shape)
    self.assertEqual(model.code_shape, code_shape)
    self.assertEqual(config.quantizer.num_embeddings, 8)  # Overridden; the flagfile has 512.
    self.assertEqual(metrics["eval_examples"], 8)
    if serve:  # ImageNet's 128x128 export would only take longer.
      self.assertExportsAndServes(image_shape, code_shape)

  def test_folder_flagfile_trains_on_a_generated_folder(self):
    root = self.get_temp_dir()
    _write_folder(root)

    config, model, metrics = self._train("folder64.cfg", dataset=f"folder:{root}")

    self.assertEqual(config.data.image_size, "64")
    self.assertEqual(model.image_shape, (64, 64, 3))
    self.assertEqual(metrics["eval_examples"], 6)
    self.assertExportsAndServes((64, 64, 3), (16, 16))


class BadImagesCliTest(tf.test.TestCase):

  def _args(self, root, model_dir, *extra):
    tiny = [f"--{name}={value}" for name, value in _TINY.items()]
    return ["--flagfile", os.path.join(test_util.FLAGS_DIR, "folder64.cfg"), *tiny,
            "--model_dir", model_dir, f"--dataset=folder:{root}", *extra]

  def test_corrupt_eval_image_is_named_before_training(self):
    root = os.path.join(self.get_temp_dir(), "images")
    paths = _write_folder(root)
    # An evaluation image: it used to surface at the first evaluation.
    bad = paths[5]
    image_files.write_file(bad, b"\xff\xd8\xff\xe0 truncated JPEG")
    model_dir = os.path.join(self.get_temp_dir(), "run")

    failed = _run_cli(*self._args(root, model_dir, "--num_steps=6"))
    skipped = _run_cli(*self._args(root, model_dir + "_skip", "--skip_corrupt_images"))

    self.assertNotEqual(failed.returncode, 0)
    last = failed.stderr.strip().splitlines()[-1]
    self.assertStartsWith(last, f"error: Cannot read image {bad}: ")
    self.assertIn(", and decoding it fails: ", last)
    self.assertNotIn("Step 1 took", failed.stderr)
    self.assertNotIn("Traceback", failed.stderr)
    self.assertEqual(skipped.returncode, 0, skipped.stderr[-3000:])
    self.assertIn(f"Skipping unreadable image {bad}", skipped.stderr)
    with open(os.path.join(model_dir + "_skip", "metrics.json")) as f:
      self.assertEqual(json.load(f)["skipped_images"], 1)

  def test_images_of_several_sizes_without_image_size_are_one_line(self):
    root = os.path.join(self.get_temp_dir(), "images")
    _write_folder(root, count=2)
    model_dir = os.path.join(self.get_temp_dir(), "run")

    result = _run_cli(*self._args(root, model_dir, "--image_size="))

    self.assertNotEqual(result.returncode, 0)
    self.assertRegex(result.stderr.strip().splitlines()[-1],
                     r"^error: image_size: the images of folder:.* have 2 sizes \(height x "
                     r"width: images\): 70x64 \(2, e\.g\. .*/train/0\.png\), 73x65 \(2, "
                     r"e\.g\. .*/train/1\.png\); pass image_size, e\.g\. 70,64 ")
    self.assertNotIn("Step 1 took", result.stderr)

  def test_size_the_network_cannot_take_is_one_line_before_training(self):
    root = os.path.join(self.get_temp_dir(), "images")
    _write_folder(root, count=2)
    model_dir = os.path.join(self.get_temp_dir(), "run")

    result = _run_cli(*self._args(root, model_dir, "--image_size=30"))

    self.assertNotEqual(result.returncode, 0)
    self.assertRegex(result.stderr.strip().splitlines()[-1],
                     r"^error: .*30x30 must be divisible by 2\*\*num_downsamples = 4")
    self.assertNotIn("step 1/", result.stderr)


if __name__ == "__main__":
  tf.test.main()
