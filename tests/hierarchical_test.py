"""VQ-VAE-2: the two-level quantizer inside a VQVAE, its loss, builder checks and export."""

import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.configs import priors as prior_configs
from tfp_vqvae.nets import conv as networks
from tfp_vqvae.nets import layers
from tfp_vqvae.quantizers import ema as ema_lib
from tfp_vqvae.quantizers import hierarchical
from tfp_vqvae.serving import client as serving_client
from tfp_vqvae.serving import export as export_lib
from tfp_vqvae.training import checkpoints
from tfp_vqvae.training import prior_trainer as train_prior
import image_files
import prediction_server
import readme_test
import test_util

_K = 5


def _tiny(**overrides):
  """A tiny VQ-VAE-2 on 16x16 images: bottom 4x4 codes, top 2x2."""
  return test_util.tiny_vqvae((16, 16, 1), top_downsamples=1, **overrides)


def _images(count=4, seed=0):
  rng = np.random.default_rng(seed)
  return tf.constant((rng.random((count, 16, 16, 1)) > 0.5).astype(np.float32))


def _knobs(seeds, temperature, top_k=(0, 0, 0), top_p=(1, 1, 1)):
  """The inputs of the sample signature: seeds and one set of knobs per sample."""
  return {"seeds": seeds, "temperature": np.array(temperature, np.float32),
          "top_k": np.array(top_k, np.int32), "top_p": np.array(top_p, np.float32)}


class HierarchicalModelTest(tf.test.TestCase):

  def test_shapes_codes_and_kl(self):
    model = _tiny()
    self.assertEqual(model.code_shape, {"top": (2, 2), "bottom": (4, 4)})
    self.assertEqual(model.stage_names, ("top", "bottom"))
    images = _images()
    terms = model.loss_terms(images, training=True)
    out = terms.quantizer
    self.assertEqual(out.quantized.shape, (4, 4, 4, 6))  # 2 * D channels
    self.assertEqual(out.codes["top"].shape, (4, 2, 2))
    self.assertEqual(out.codes["bottom"].shape, (4, 4, 4))
    self.assertEqual(out.code_counts.shape, (2, _K))
    # Each level's histogram counts its own positions.
    self.assertAllEqual(tf.reduce_sum(out.code_counts, axis=1), [4 * 4, 4 * 16])
    for level, counts in zip(("top", "bottom"), out.code_counts.numpy()):
      self.assertAllEqual(counts, np.bincount(out.codes[level].numpy().ravel(),
                                              minlength=_K))
    # KL = (h_top * w_top + h_bot * w_bot) * log K, as the uniform prior says.
    self.assertAllClose(terms.kl, [20 * math.log(_K)] * 4, rtol=1e-6)
    self.assertAllClose(terms.kl, -model.prior().log_prob(out.codes), rtol=1e-6)
    self.assertAllClose(terms.loss, terms.recon_nll + terms.commitment_loss + terms.kl)

  def test_codes_decode_to_the_quantized_reconstruction(self):
    model = _tiny()
    images = _images()
    model.loss_terms(images, training=True)  # initialises both codebooks
    encoded = model.encode(images)
    self.assertAllClose(model.quantizer.lookup(encoded.codes), encoded.quantized,
                        atol=1e-5)
    self.assertAllClose(model.decode_codes(encoded.codes).mean(),
                        model.decode(encoded.quantized).mean(), atol=1e-5)
    random = model.random_codes(3, seed=[0, 1])
    self.assertEqual(model.decode_codes(random).mean().shape, (3, 16, 16, 1))
    self.assertAllInRange(random["top"], 0, _K - 1)

  def test_every_part_gets_gradients_and_both_codebooks_train(self):
    model = _tiny()
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(model.loss_terms(_images(), training=True).loss)
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.name for v, g in zip(model.trainable_variables, grads)
               if g is None or not np.any(g.numpy())]
    self.assertEmpty(missing)
    names = {v.name for v in model.trainable_variables}
    for part in ("encoder", "top_encoder", "top_decoder", "bottom_conditioner",
                 "upsampler", "decoder"):
      self.assertTrue(any(f"{part}/" in name for name in names), part)
    for quantizer in model.quantizer.stages:
      self.assertTrue(quantizer.initialized.numpy())
      self.assertEqual(int(quantizer.num_updates.numpy()), 1)
    top, bottom = (q.codebook.numpy() for q in model.quantizer.stages)
    self.assertNotAllClose(top, bottom)

  def test_builder_and_constructor_refuse_what_does_not_fit(self):
    with self.assertRaisesRegex(ValueError, r"divisible by 2\*\*\(num_downsamples \+ "
                                r"top_downsamples\) = 8"):
      test_util.tiny_vqvae((12, 12, 1), top_downsamples=1)
    for overrides in (dict(architecture="mlp"), dict(num_quantizers=2)):
      with self.assertRaisesRegex(ValueError, "top_downsamples=1: VQ-VAE-2 needs"):
        config_lib.Config.from_fields(top_downsamples=1, **overrides)
    with self.assertRaisesRegex(ValueError, "same K and D"):
      hierarchical.HierarchicalQuantizer(
          networks.Encoder(in_channels=3, embedding_dim=3, num_downsamples=1),
          ema_lib.VectorQuantizerEMA(5, 3), networks.Decoder(out_channels=3),
          layers.Conv2D(6, 3, 1), ema_lib.VectorQuantizerEMA(7, 3),
          networks.Upsampler(3))


class ReadmeSnippetTest(tf.test.TestCase):

  def test_the_readme_composition_runs(self):
    namespace = {}
    exec(compile(readme_test.readme_snippet("## VQ-VAE-2"), "README.md", "exec"),  # pylint: disable=exec-used
         namespace)
    model = namespace["model"]
    self.assertEqual(model.code_shape, {"top": (4, 4), "bottom": (8, 8)})
    terms = model.loss_terms(tf.zeros([2, 28, 28, 1]), training=True)
    self.assertAllClose(terms.kl, [80 * math.log(512)] * 2, rtol=1e-6)


class HierarchicalTrainAndExportTest(tf.test.TestCase):
  """A few training steps on 28x28 KMNIST-like mock data, then the export."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    root = tempfile.mkdtemp(prefix="hierarchical_test_")
    cls.model_dir = os.path.join(root, "model")
    cls.metrics = test_util.train_tiny_model(cls.model_dir, top_downsamples=1, pad_to=32)
    cls.prior_dir = prior_dir = os.path.join(root, "prior")
    with tfds.testing.mock_data(num_examples=32):
      train_prior.train_prior(
          prior_configs.TrainPriorConfig.from_fields(
              num_channels=8, num_layers=3, num_attention_blocks=1, num_heads=2,
              bottom_num_layers=7, batch_size=8, num_steps=2, log_every=2,
              eval_every=2, checkpoint_every=2, eval_batch_size=16),
          cls.model_dir, prior_dir)
    cls.export_dir = export_lib.export_saved_model(
        cls.model_dir, os.path.join(root, "export"), warmup_batch_sizes=(1,),
        prior_dir=prior_dir)

  def test_metrics_report_each_level(self):
    self.assertEqual(self.metrics["stages"], ["top", "bottom"])
    for name in ("perplexity_per_stage", "codebook_usage_per_stage",
                 "codes_used_per_stage"):
      self.assertLen(self.metrics[name], 2)
    self.assertEqual(self.metrics["codes_used"], sum(self.metrics["codes_used_per_stage"]))
    self.assertAllClose(self.metrics["kl_nats"], (16 + 64) * math.log(16), rtol=1e-6)
    self.assertTrue(os.path.exists(os.path.join(self.model_dir, "code_map.png")))

  def test_saved_model_cli_lists_both_code_maps(self):
    shown = subprocess.run(["saved_model_cli", "show", "--all", "--dir", self.export_dir],
                           capture_output=True, text=True, check=True).stdout
    for signature in ("encode", "decode", "reconstruct", "neg_elbo", "sample",
                      "log_prob_codes"):
      self.assertIn(f"signature_def['{signature}']", shown)
    self.assertRegex(shown, r"(?s)inputs\['top_codes'\].*DT_INT32.*shape: \(-1, 4, 4\)")
    self.assertRegex(shown, r"(?s)inputs\['bottom_codes'\].*DT_INT32.*shape: \(-1, 8, 8\)")

  def test_decode_of_encode_is_reconstruct_and_bad_codes_name_their_level(self):
    client = serving_client.LocalClient(self.export_dir)
    images = (np.random.default_rng(0).random((3, 28, 28, 1)) * 255).astype(np.uint8)
    encoded = client.encode(images)
    self.assertEqual(encoded["top_codes"].shape, (3, 4, 4))
    self.assertEqual(encoded["bottom_codes"].shape, (3, 8, 8))
    self.assertEqual(encoded["latents"].shape, (3, 8, 8, 16))
    codes = {name: encoded[name] for name in ("top_codes", "bottom_codes")}
    reconstructed = client.reconstruct(images)
    self.assertAllEqual(client.decode(codes)["probs"], reconstructed["probs"])
    self.assertAllEqual(reconstructed["top_codes"], encoded["top_codes"])
    for level in ("top", "bottom"):
      bad = dict(codes)
      bad[f"{level}_codes"] = np.full_like(codes[f"{level}_codes"], 16)
      with self.assertRaisesRegex(serving_client.PredictionError,
                                  rf"(?s)INVALID_ARGUMENT: .*decode: {level}_codes must be "
                                  r"in \[0, 16\)"):
        client.decode(bad)
    with self.assertRaisesRegex(serving_client.PredictionError,
                                r"decode: (top|bottom)_codes must have the batch size of the other code maps"):
      client.decode(dict(codes, bottom_codes=codes["bottom_codes"][:2]))
    self.assertEqual(client.decode({n: c[:0] for n, c in codes.items()})["probs"].shape,
                     (0, 28, 28, 1))

  def test_sample_takes_a_temperature_per_sample_and_log_prob_scores_both_levels(self):
    client = serving_client.LocalClient(self.export_dir)
    seeds = np.array([5, 6, 5], np.int64)
    sampled = client.predict("sample", _knobs(seeds, [1, 1, 1]))
    self.assertEqual(sampled["top_codes"].shape, (3, 4, 4))
    self.assertEqual(sampled["bottom_codes"].shape, (3, 8, 8))
    self.assertEqual(sampled["probs"].shape, (3, 28, 28, 1))
    # A sample is a function of its own seed and temperature.
    self.assertAllEqual(sampled["bottom_codes"][0], sampled["bottom_codes"][2])
    cold = client.predict("sample", _knobs(seeds, [1, 1, 0.05]))
    self.assertAllEqual(cold["top_codes"][:2], sampled["top_codes"][:2])
    codes = {name: sampled[name] for name in ("top_codes", "bottom_codes")}
    log_prob = client.predict("log_prob_codes", codes)["log_prob"]
    self.assertEqual(log_prob.shape, (3,))
    self.assertAllLess(log_prob, 0.0)
    with self.assertRaisesRegex(serving_client.PredictionError,
                                r"(?s)sample: temperature must .* be finite and > 0"):
      client.predict("sample", _knobs(seeds, [0, 0, 0]))
    with self.assertRaisesRegex(serving_client.PredictionError,
                                r"(?s)sample: top_k must .* be an integer in \[0, K=16\]"):
      client.predict("sample", _knobs(seeds, [1, 1, 1], top_k=[0, 17, 0]))
    with self.assertRaisesRegex(serving_client.PredictionError,
                                r"(?s)log_prob_codes: top_codes must be in \[0, 16\)"):
      client.predict("log_prob_codes", dict(codes, top_codes=-codes["top_codes"] - 1))

  def test_benchmark_reports_sampling_speed(self):
    result = subprocess.run(
        [sys.executable, "-m", "tfp_vqvae.benchmark", "--what", "sample", "--quick",
         "--runs", f"vqvae2={self.model_dir},{self.prior_dir}", "--sample-batch", "2"],
        capture_output=True, text=True, timeout=600, check=True)
    line, = [json.loads(text) for text in result.stdout.splitlines()]
    self.assertEqual((line["what"], line["run"], line["batch"]), ("sample", "vqvae2", 2))
    self.assertEqual(line["code_shape"], str({"top": (4, 4), "bottom": (8, 8)}))
    self.assertAllClose(line["images_per_s"], 2000.0 / line["ms_per_step_median"],
                        rtol=1e-3)

  def test_client_cli_writes_and_reads_both_code_maps(self):
    images = (np.random.default_rng(1).random((2, 28, 28, 1)) * 255).astype(np.uint8)
    root = self.get_temp_dir()
    paths = [image_files.write_image(os.path.join(root, f"in_{i}.png"), image)
             for i, image in enumerate(images)]
    expected = serving_client.LocalClient(self.export_dir).reconstruct(images)

    def run_client(*args):
      result = subprocess.run(
          [sys.executable, "-m", "tfp_vqvae.client", "--server", server.address, *args],
          cwd=test_util.ROOT, capture_output=True, text=True, timeout=300)
      self.assertEqual(result.returncode, 0, result.stderr[-3000:])

    with prediction_server.PredictionServer(self.export_dir, lifetime_seconds=300) as server:
      run_client("--output", os.path.join(root, "codes.npy"), "encode", *paths)
      with np.load(os.path.join(root, "codes.npz")) as codes:
        self.assertEqual(sorted(codes), ["bottom_codes", "top_codes"])
        self.assertAllEqual(codes["top_codes"], expected["top_codes"])
      run_client("--output", os.path.join(root, "decoded"), "decode",
                 os.path.join(root, "codes.npz"))
    decoded = tf.io.decode_png(tf.io.read_file(os.path.join(root, "decoded",
                                                            "codes_001.png")))
    self.assertAllClose(decoded.numpy() / 255.0, expected["probs"][1],
                        atol=0.5 / 255 + 1e-6)

  def test_resumed_model_dir_rebuilds_the_hierarchy(self):
    model, config, _ = checkpoints.load_vqvae(self.model_dir)
    self.assertEqual(config.model.top_downsamples, 1)
    self.assertIsInstance(model.quantizer, hierarchical.HierarchicalQuantizer)


if __name__ == "__main__":
  tf.test.main()
