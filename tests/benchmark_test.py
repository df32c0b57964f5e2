"""Tests of the benchmark CLI contract the peer bench's run_peers.sh relies on."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.internal import benchmarks as benchmark
from tfp_vqvae.priors import pixelcnn as prior_lib
from tfp_vqvae.training import vqvae_trainer as train_lib

# The keys README "Adding tfp_vqvae" of the peer bench requires on every line.
_REQUIRED = ("peer", "what", "num_embeddings", "embedding_dim", "ms_per_step_median",
             "ms_min", "ms_max", "peak_rss_mb", "malloc")
# One warm-up step and two one-step windows: the contract, not a measurement.
_TINY = ["--quick", "--warmup", "1", "--windows", "2", "--steps-per-window", "1"]


def _run(*args):
  """The benchmark's JSON lines for `args`, run as run_peers.sh runs it."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run([sys.executable, "-m", "tfp_vqvae.benchmark", *_TINY, *args],
                          capture_output=True, text=True, timeout=600, env=env)
  if result.returncode:
    raise AssertionError(result.stderr[-3000:])
  return [json.loads(line) for line in result.stdout.splitlines()]


class BenchmarkCliTest(tf.test.TestCase):

  def test_train_step_and_quantizer_lines(self):
    train, = _run("--what", "train_step", "--batch", "2", "--malloc", "keep")
    for key in _REQUIRED + ("batch", "images_per_s", "n_params", "final_loss"):
      self.assertIn(key, train)
    self.assertEqual((train["peer"], train["what"], train["batch"]),
                     ("tfp_vqvae", "train_step", 2))
    self.assertEqual(train["n_params"], 658625)
    self.assertEqual(train["n_vectors"], 2 * 49)
    self.assertEqual(train["malloc"], "keep")
    self.assertEqual(train["glibc_tunables"], benchmark.MALLOC_KEEP_TUNABLES)
    self.assertLen(train["ms_windows"], 2)
    self.assertBetween(train["ms_per_step_median"], train["ms_min"], train["ms_max"])
    self.assertAllClose(train["images_per_s"], 2000.0 / train["ms_per_step_median"],
                        rtol=1e-3)
    # The step is traced once: warm-up and timed steps reuse that graph.
    self.assertEqual(train["traces"], 1)

    # By default EMA (the peers' comparison), FSQ and LFQ; options on request.
    lines = _run("--what", "quantizer", "--n", "100", "--k", "8", "16",
                 "--malloc", "default")
    lines += _run("--what", "quantizer", "--n", "100", "--k", "8", "--malloc", "default",
                  "--quantizers", "ema-rotation", "ema-cosine8", "loss-rotation", "simvq")
    self.assertEqual(
        [(r["quantizer"], r["peer"], r["n_vectors"], r["num_embeddings"]) for r in lines],
        [("ema", "tfp_vqvae", 100, 8), ("ema", "tfp_vqvae", 100, 16),
         ("fsq", "tfp_vqvae-fsq", 100, 8), ("fsq", "tfp_vqvae-fsq", 100, 16),
         ("lfq", "tfp_vqvae-lfq", 100, 8), ("lfq", "tfp_vqvae-lfq", 100, 16),
         ("ema-rotation", "tfp_vqvae-ema-rotation", 100, 8),
         ("ema-cosine8", "tfp_vqvae-ema-cosine8", 100, 8),
         ("loss-rotation", "tfp_vqvae-loss-rotation", 100, 8),
         ("simvq", "tfp_vqvae-simvq", 100, 8)])
    for line in lines:
      for key in _REQUIRED + ("n_vectors", "vectors_per_s"):
        self.assertIn(key, line)
      self.assertEqual((line["what"], line["malloc"], line["glibc_tunables"]),
                       ("quantizer", "default", ""))
      self.assertIsNone(line["batch"])
    # The grid quantizers' K: FSQ levels of 8 and a remainder, LFQ's bits.
    self.assertEqual(benchmark.quantizer_options("fsq", 16384).fsq_levels, "8,8,8,8,4")
    self.assertEqual(benchmark.quantizer_options("lfq", 4096).lfq_code_dim, 12)
    self.assertEqual(benchmark.quantizer_options("ema-cosine8", 64).cosine_dim, 8)
    with self.assertRaisesRegex(ValueError, "--k 1000: fsq needs K a power of 2"):
      benchmark.quantizer_options("fsq", 1000)

  def test_sample_lines_of_untrained_priors_over_any_layout(self):
    tiny = "model_dim=16,num_blocks=1,num_heads=2"
    lines = _run("--what", "sample", "--num-embeddings", "8", "--sample-batch", "2",
                 "--runs", "p=pixelcnn@3x3:num_channels=8,num_layers=2",
                 f"t=transformer@2x2+4x4:{tiny},batch=3", f"m=maskgit@3x3x2:{tiny}")
    self.assertEqual([(r["run"], r["prior"], r["batch"], r["code_shape"]) for r in lines],
                     [("p", "pixelcnn", 2, "(3, 3)"),
                      ("t", "transformer", 3, str({"top": (2, 2), "bottom": (4, 4)})),
                      ("m", "maskgit", 2, "(3, 3, 2)")])
    for line in lines:
      for key in _REQUIRED + ("images_per_s", "n_params", "options"):
        self.assertIn(key, line)
      self.assertEqual((line["what"], line["num_embeddings"], line["decoded"]),
                       ("sample", 8, False))
      self.assertAllClose(line["images_per_s"],
                          line["batch"] * 1000.0 / line["ms_per_step_median"], rtol=1e-3)
    self.assertEqual(lines[0]["options"]["num_channels"], 8)
    pixel_cnn = prior_lib.GatedPixelCNN(prior_lib.PriorConfig(
        num_embeddings=8, latent_shape=(3, 3), num_channels=8, num_layers=2))
    self.assertEqual(lines[0]["n_params"],
                     sum(int(tf.size(v)) for v in pixel_cnn.trainable_variables))
    result = subprocess.run(
        [sys.executable, "-m", "tfp_vqvae.benchmark", "--what", "sample", "--runs",
         "q=transformer@7x7:num_heads=3"], capture_output=True, text=True)
    self.assertEqual(result.returncode, 1)
    self.assertEqual(result.stdout, "")
    self.assertIn("error: --runs q=transformer@7x7:num_heads=3: num_heads=3: must divide "
                  "model_dim=128", result.stderr)

  def test_mixed_precision_lines_are_a_separate_peer(self):
    configs = benchmark.build_configs(benchmark.parse_args(
        ["--what", "train_step", "--batch", "64", "--dtypes", "float32", "bfloat16"]))
    self.assertEqual([(c["peer"], c["dtype"]) for c in configs],
                     [("tfp_vqvae", "float32"), ("tfp_vqvae-bfloat16", "bfloat16")])


class TrainStepVariantsTest(tf.test.TestCase):
  """The benchmark's other train-step lines (bfloat16, XLA) compute the same step."""

  def _losses(self, steps=2, **config):
    trainer = train_lib.Trainer(config_lib.Config.from_fields(batch_size=8, **config), (28, 28, 1))
    rng = np.random.default_rng(0)
    images = tf.constant((rng.random((8, 28, 28, 1)) < 0.5).astype(np.float32))
    return np.array([float(trainer.train_step(images)["recon_nll"])
                     for _ in range(steps)])

  def test_bfloat16_step_is_close_to_float32(self):
    # Same float32 master weights and codebook init; bfloat16 has an 8-bit
    # mantissa, so the recon NLL (~550 nats) agrees to about 1%.
    self.assertAllClose(self._losses(dtype="bfloat16"), self._losses(), rtol=1e-2)

  def test_xla_step_equals_graph_step(self):
    self.assertAllClose(self._losses(jit_compile=True), self._losses(), rtol=1e-4)


if __name__ == "__main__":
  tf.test.main()
