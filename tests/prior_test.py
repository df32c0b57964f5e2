"""Tests of the PixelCNN prior: causality, likelihood, sampling, training, CLIs, export."""

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_serving.apis import prediction_log_pb2

from tfp_vqvae.configs import priors as prior_configs
from tfp_vqvae.data import code_shards
from tfp_vqvae.data import pipeline
from tfp_vqvae.priors import pixelcnn as prior_lib
from tfp_vqvae.priors import sampling as sample_lib
from tfp_vqvae.serving import export as export_lib
from tfp_vqvae.training import checkpoints
from tfp_vqvae.training import figures
from tfp_vqvae.training import prior_trainer as train_prior
import test_util

_PRIOR_FLAGS = ("--num_channels=8", "--num_layers=6", "--dropout_rate=0.1",
                "--batch_size=16", "--learning_rate=3e-3", "--log_every=5",
                "--eval_every=5", "--checkpoint_every=5", "--eval_batch_size=64")
_TINY_PRIOR = prior_configs.TrainPriorConfig.from_fields(
    num_channels=8, dropout_rate=0.1, batch_size=16, learning_rate=3e-3, num_steps=10,
    log_every=5, eval_every=5, checkpoint_every=5, eval_batch_size=64)


def _prior(latent_shape=(4, 4), num_embeddings=5, num_layers=3, **kwargs):
  """A small prior whose biases are random too (they start at 0, which ties logits)."""
  prior = prior_lib.GatedPixelCNN(prior_lib.PriorConfig(
      num_embeddings=num_embeddings, latent_shape=latent_shape, num_channels=8,
      num_layers=num_layers, **kwargs))
  rng = np.random.default_rng(len(prior.variables))
  for variable in prior.variables:
    if "bias" in variable.name:
      variable.assign(rng.normal(size=variable.shape))
  return prior


def _run(*args):
  return subprocess.run([sys.executable, *args], cwd=test_util.ROOT, capture_output=True,
                        text=True, timeout=300)


def _np_conv(x, kernel, bias, top, left):
  """Reference of `_Conv`: out[i, j] = sum kernel[a, b] . x[i - top + a, j - left + b]."""
  height, width, _ = x.shape
  out = np.tile(bias, (height, width, 1)).astype(np.float64)
  for i, j in itertools.product(range(height), range(width)):
    for a, b in itertools.product(range(kernel.shape[0]), range(kernel.shape[1])):
      row, column = i - top + a, j - left + b
      if 0 <= row < height and 0 <= column < width:
        out[i, j] += x[row, column] @ kernel[a, b]
  return out


def _np_log_prob(prior, codes):
  """log p(codes) of one grid, from the prior's weights, with loops over positions."""
  weights = lambda conv: (conv.kernel.numpy(), conv.bias.numpy())
  sigmoid = lambda v: 1 / (1 + np.exp(-v))
  gate = lambda v: np.tanh(v[..., :v.shape[-1] // 2]) * sigmoid(v[..., v.shape[-1] // 2:])
  half = prior.config.kernel_size // 2
  x = prior.embedding.numpy()[codes]
  vertical = x
  horizontal = np.zeros_like(x)
  horizontal[:, 1:] = x[:, :-1]
  for i, layer in enumerate(prior.layers):
    vertical_pre = _np_conv(vertical, *weights(layer["vertical"]), half, half)
    above = np.zeros_like(vertical_pre)
    above[1:] = vertical_pre[:-1]
    horizontal_pre = (_np_conv(horizontal, *weights(layer["horizontal"]), 0, half)
                      + _np_conv(above, *weights(layer["vertical_to_horizontal"]), 0, 0))
    vertical = gate(vertical_pre)
    update = _np_conv(gate(horizontal_pre), *weights(layer["horizontal_out"]), 0, 0)
    horizontal = update if i == 0 else horizontal + update
  hidden = _np_conv(np.maximum(horizontal, 0), *weights(prior.hidden), 0, 0)
  logits = _np_conv(np.maximum(hidden, 0), *weights(prior.output), 0, 0)
  log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  rows, columns = np.indices(codes.shape)
  return log_softmax[rows, columns, codes].sum()


class PriorModelTest(tf.test.TestCase):

  def _assert_causal_without_blind_spot(self, prior, labels=None, condition=None):
    """Code q (in raster order, then stages) moves exactly the logits after q."""
    count = int(np.prod(prior.code_shape))
    base = np.random.default_rng(0).integers(0, prior.num_embeddings, prior.code_shape)
    # Row 0 is the base grid; row 1 + q changes only the code at position q.
    grids = np.repeat(base[None], count + 1, axis=0)
    for q in range(count):
      grids[1 + q].flat[q] = (base.flat[q] + 1) % prior.num_embeddings
    batch_labels = None if labels is None else np.full([1], labels, np.int32)
    # One grid per call: every grid then takes the same kernels, so a position that
    # does not depend on the changed code gets the same bits (in one batch, oneDNN
    # may sum some grids in another order).
    logits = np.concatenate([
        prior.logits(grid[None], batch_labels, condition=condition).numpy()
        for grid in grids]).reshape(count + 1, count, -1)
    for q in range(count):
      changed = np.abs(logits[1 + q] - logits[0]).max(axis=-1) > 0
      self.assertFalse(changed[:q + 1].any(), f"position {q} leaks into <= {q}")
      self.assertTrue(changed[q + 1:].all(), f"a later position ignores {q}")

  def test_causal_and_sees_every_earlier_position(self):
    self._assert_causal_without_blind_spot(_prior())
    self._assert_causal_without_blind_spot(_prior((7, 7), 16, num_layers=6))
    self._assert_causal_without_blind_spot(_prior((3, 5), 4, num_layers=2,
                                                  kernel_size=5, num_classes=3), 2)

  def test_residual_stages_are_causal_in_raster_then_stage_order(self):
    # Stage n at a position sees the earlier positions and the stages < n there.
    self._assert_causal_without_blind_spot(_prior((2, 3), 4, num_layers=2,
                                                  num_stages=3))
    self._assert_causal_without_blind_spot(
        _prior((3, 3), 4, num_layers=2, num_stages=2, num_classes=2), 1)

  def test_attention_keeps_causality(self):
    self._assert_causal_without_blind_spot(
        _prior((3, 4), 5, num_layers=3, num_attention_blocks=2, num_heads=2))
    self._assert_causal_without_blind_spot(
        _prior((2, 2), 4, num_layers=1, num_attention_blocks=1, num_stages=2))

  def test_condition_is_seen_everywhere_and_keeps_causality(self):
    prior = _prior((4, 4), 4, num_layers=3, condition_shape=(2, 2),
                   num_attention_blocks=1)
    condition = np.array([[[0, 1], [2, 3]]], np.int32)
    self._assert_causal_without_blind_spot(prior, condition=condition)
    codes = np.random.default_rng(4).integers(0, 4, (1, 4, 4))
    logits = prior.logits(codes, condition=condition).numpy()
    # A change of one top code reaches every bottom position (3x3 conv on 2x2).
    other = prior.logits(codes, condition=np.array([[[0, 1], [2, 0]]])).numpy()
    self.assertTrue((np.abs(logits - other).max(-1) > 0).all())
    with self.assertRaisesRegex(ValueError, "pass condition codes exactly when"):
      prior.log_prob(codes)
    with self.assertRaisesRegex(ValueError, "cannot be conditioned on a grid of shape"):
      _prior((4, 4), condition_shape=(3, 2))

  def test_configs_written_before_the_layout_options_read_as_today(self):
    # The prior_config.json of a single-level prior before residual stages,
    # attention and conditioning existed: a run with today's flags resumes it.
    prior_dir = self.get_temp_dir()
    old = {"num_embeddings": 16, "latent_shape": [7, 7], "num_channels": 8,
           "num_layers": 6, "kernel_size": 3, "dropout_rate": 0.1, "num_classes": 0,
           "seed": 0, "codes_key": "abc", "vqvae_dir": "/runs/k16"}
    with open(os.path.join(prior_dir, prior_lib.PRIOR_CONFIG_FILE), "w") as f:
      json.dump(old, f)
    config, facts = prior_lib.read_config(prior_dir)
    self.assertEqual(config,
                     _TINY_PRIOR.prior.architecture(16, (7, 7), 0, _TINY_PRIOR.seed))
    self.assertEqual(facts, {"codes_key": "abc", "vqvae_dir": "/runs/k16"})
    self.assertEqual(prior_lib.build_prior(config).code_shape, (7, 7))

  def test_too_few_layers_for_the_grid_are_refused(self):
    with self.assertRaisesRegex(ValueError, "blind spot on a 7x7 grid"):
      _prior((7, 7), num_layers=5)
    with self.assertRaisesRegex(ValueError, "kernel_size must be odd"):
      _prior(kernel_size=4)
    with self.assertRaisesRegex(ValueError, "labels exactly when num_classes > 0"):
      _prior().log_prob(np.zeros([1, 4, 4], np.int32), labels=[0])

  def test_log_prob_matches_numpy_reference(self):
    prior = _prior((2, 3), 4, num_layers=2, seed=3)
    codes = np.random.default_rng(1).integers(0, 4, (3, 2, 3))
    expected = [_np_log_prob(prior, grid) for grid in codes]
    self.assertAllClose(prior.log_prob(codes), expected, rtol=1e-5)

  def test_probabilities_of_all_grids_sum_to_one(self):
    prior = _prior((2, 2), 3, num_layers=1, num_classes=2)
    grids = np.array(list(itertools.product(range(3), repeat=4))).reshape(-1, 2, 2)
    for label in range(2):
      log_probs = prior.log_prob(grids, np.full([len(grids)], label))
      self.assertAllClose(tf.reduce_logsumexp(log_probs), 0.0, atol=1e-5)

  def test_residual_probabilities_sum_to_one_and_split_by_stage(self):
    prior = _prior((2, 1), 3, num_layers=1, num_stages=2, num_classes=2)
    grids = np.array(list(itertools.product(range(3), repeat=4))).reshape(-1, 2, 1, 2)
    for label in range(2):
      labels = np.full([len(grids)], label)
      log_probs = prior.log_prob(grids, labels)
      self.assertAllClose(tf.reduce_logsumexp(log_probs), 0.0, atol=1e-5)
      stages = prior.level_log_probs(grids, labels)
      self.assertEqual(sorted(stages), ["stage_0", "stage_1"])
      self.assertAllClose(stages["stage_0"] + stages["stage_1"], log_probs, atol=1e-5)
    self.assertEqual(prior.level_sizes, {"stage_0": 2, "stage_1": 2})

  def test_conditional_probabilities_sum_to_one_for_each_condition(self):
    prior = _prior((2, 2), 2, num_layers=1, condition_shape=(1, 1))
    grids = np.array(list(itertools.product(range(2), repeat=4))).reshape(-1, 2, 2)
    totals = [tf.reduce_logsumexp(prior.log_prob(
        grids, condition=np.full([len(grids), 1, 1], top))) for top in range(2)]
    self.assertAllClose(totals, [0.0, 0.0], atol=1e-5)

  def _assert_samples_follow_the_distribution(self, prior, grids, **kwargs):
    seeds = tf.range(4000, dtype=tf.int64)
    codes = prior.sample(seeds, **kwargs).numpy()
    self.assertAllEqual(codes, prior.sample(seeds, **kwargs))
    self.assertNotAllEqual(codes, prior.sample(seeds + 4000, **kwargs))
    self.assertEqual(codes.dtype, np.int32)
    self.assertAllInRange(codes, 0, prior.num_embeddings - 1)
    condition = kwargs.get("condition")
    if condition is not None:
      condition = np.repeat(condition[:1], len(grids), axis=0)
    expected = np.exp(prior.log_prob(grids, condition=condition).numpy())
    axes = tuple(range(1, codes.ndim))
    observed = [np.mean(np.all(codes == grid, axis=axes)) for grid in grids]
    # 4000 draws: each frequency is within ~4 standard errors of its probability.
    self.assertAllClose(observed, expected, atol=4 * np.sqrt(expected.max() / 4000))
    return codes

  def test_sampling_is_seeded_per_example_and_matches_the_distribution(self):
    prior = _prior((2, 2), 3, num_layers=1)
    grids = np.array(list(itertools.product(range(3), repeat=4))).reshape(-1, 2, 2)
    codes = self._assert_samples_follow_the_distribution(prior, grids)
    self.assertAllEqual(codes[7:9], prior.sample(tf.constant([7, 8], tf.int64)))

  def test_residual_and_conditional_sampling_match_the_distribution(self):
    residual = _prior((2, 1), 2, num_layers=1, num_stages=2)
    grids = np.array(list(itertools.product(range(2), repeat=4))).reshape(-1, 2, 1, 2)
    codes = self._assert_samples_follow_the_distribution(residual, grids)
    self.assertAllEqual(codes[7:9], residual.sample(tf.constant([7, 8], tf.int64)))
    conditional = _prior((2, 2), 2, num_layers=1, condition_shape=(1, 1))
    grids = np.array(list(itertools.product(range(2), repeat=4))).reshape(-1, 2, 2)
    self._assert_samples_follow_the_distribution(
        conditional, grids, condition=np.ones([4000, 1, 1], np.int32))

  def test_low_temperature_samples_are_greedy_decodes(self):
    prior = _prior()
    greedy = np.zeros([2, 4, 4], np.int32)
    for row, column in itertools.product(range(4), range(4)):
      greedy[:, row, column] = np.argmax(prior.logits(greedy)[:, row, column], axis=-1)
    self.assertAllEqual(prior.sample(tf.constant([5, 6], tf.int64), 1e-4), greedy)
    residual = _prior((2, 2), num_stages=2, num_layers=1, num_attention_blocks=1)
    greedy = np.zeros([2, 2, 2, 2], np.int32)
    for row, column, stage in itertools.product(range(2), range(2), range(2)):
      greedy[:, row, column, stage] = np.argmax(
          residual.logits(greedy)[:, row, column, stage], axis=-1)
    self.assertAllEqual(residual.sample(tf.constant([5, 6], tf.int64), 1e-4), greedy)

  def test_top_k_and_top_p_truncate_each_draw_per_sample(self):
    prior = _prior()
    seeds = tf.range(100, dtype=tf.int64)
    codes = prior.sample(seeds, top_k=2).numpy()
    # Each code is one of the two most likely given the codes before it, and the
    # second one is drawn too.
    ranks = np.argsort(np.argsort(-prior.logits(codes).numpy(), axis=-1), axis=-1)
    drawn_ranks = np.take_along_axis(ranks, codes[..., None], axis=-1)
    self.assertAllInSet(drawn_ranks, [0, 1])
    self.assertIn(1, drawn_ranks)
    # Knobs per sample: top_k 1 and a tiny nucleus are the greedy decode, top_k 0
    # and top_p 1 leave the draw as it was.
    greedy = prior.sample(seeds[:1], 1e-4)[0]
    mixed = prior.sample(seeds[:3], top_k=tf.constant([1, 0, 0]),
                         top_p=tf.constant([1.0, 1.0, 1e-6]))
    self.assertAllEqual(mixed[0], greedy)
    self.assertAllEqual(mixed[1], prior.sample(seeds[1:2])[0])
    self.assertAllEqual(mixed[2], greedy)
    self.assertNotAllEqual(mixed[1], greedy)
    with self.assertRaisesRegex(ValueError, r"top_k must be an integer in \[0, K=5\]"):
      prior.sample(seeds[:1], top_k=6)

  def test_dropout_only_in_training_and_seeded(self):
    prior = _prior(dropout_rate=0.5)
    codes = np.random.default_rng(2).integers(0, 5, (2, 4, 4))
    self.assertAllEqual(prior.logits(codes), prior.logits(codes))
    trained = [prior.logits(codes, training=True, seed=[0, s]) for s in (1, 1, 2)]
    self.assertAllEqual(trained[0], trained[1])
    self.assertNotAllClose(trained[0], trained[2])
    self.assertNotAllClose(trained[0], prior.logits(codes))

  def test_trains_on_mock_codes_below_log_k(self):
    rng = np.random.default_rng(3)
    # Each code repeats the one to its left, or is a fresh draw at column 0.
    first = rng.integers(0, 8, (600, 4, 1))
    codes = np.repeat(first, 4, axis=2).astype(np.int32)
    train, evaluation = test_util.write_code_shards(
        self.get_temp_dir(), {"train": codes[:500], "eval": codes[500:]},
        rows_per_shard=128)
    config = _TINY_PRIOR.override(dropout_rate=0.0, learning_rate=1e-2,
                                 num_steps=60)
    step = tf.Variable(0, dtype=tf.int64)
    trainer = train_prior.PriorTrainer(
        config.prior.architecture(8, (4, 4), 0, config.seed), config, train, step)
    before, _, _ = train_prior.evaluate_prior(trainer.prior, evaluation, 64)
    for _ in range(60):
      trainer.train_step()
      step.assign_add(1)
    after, _, _ = train_prior.evaluate_prior(trainer.prior, evaluation, 64)
    self.assertGreater(before, 16 * np.log(8) - 2)
    # The entropy is 4 log 8 nats (the first column); uniform is 16 log 8.
    self.assertLess(after, 8 * np.log(8))


class PriorPipelineTest(tf.test.TestCase):
  """Tiny VQ-VAE -> prior CLI -> sample CLI -> export with prior."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.temp_dir = tempfile.mkdtemp(prefix="prior_test_")
    cls.vqvae_dir = os.path.join(cls.temp_dir, "vqvae")
    test_util.train_tiny_model(cls.vqvae_dir)
    cls.prior_dir = os.path.join(cls.temp_dir, "prior")
    with tfds.testing.mock_data(num_examples=32):
      cls.first = train_prior.train_prior(
          _TINY_PRIOR.override(num_steps=5), cls.vqvae_dir, cls.prior_dir)
      cls.metrics = train_prior.train_prior(_TINY_PRIOR, cls.vqvae_dir, cls.prior_dir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.temp_dir)
    super().tearDownClass()

  def test_train_resumes_and_writes_metrics_of_the_best_checkpoint(self):
    self.assertEqual(self.first["step"], 5)
    self.assertEqual(self.metrics["step"], 10)
    self.assertIn(self.metrics["best_step"], (5, 10))
    with open(os.path.join(self.prior_dir, train_prior.METRICS_FILE)) as f:
      written = json.load(f)
    self.assertEqual(written, self.metrics)
    log_k = np.log(16)
    self.assertAllClose(written["uniform_bits_per_latent"], 4.0)
    self.assertAllClose(written["prior_bits_per_latent"],
                        written["prior_nll_nats_per_image"] / (49 * np.log(2)))
    self.assertAllClose(written["neg_elbo_learned_prior_nats"],
                        written["recon_nll_nats"] + written["prior_nll_nats_per_image"])
    self.assertAllClose(written["neg_elbo_uniform_prior_nats"],
                        written["recon_nll_nats"] + 49 * log_k)
    # recon NLL is the VQ-VAE's own on the same (mock) eval split.
    with open(os.path.join(self.vqvae_dir, "metrics.json")) as f:
      self.assertAllClose(written["recon_nll_nats"], json.load(f)["recon_nll_nats"],
                          rtol=1e-5)
    # The best checkpoint is the one the metrics describe.
    prior, path = prior_lib.load_prior(self.prior_dir)
    self.assertEndsWith(path, f"ckpt-{written['best_step']}")
    (codes_dir,) = tf.io.gfile.glob(os.path.join(self.prior_dir, "codes-*"))
    evaluation = code_shards.CodeShards(codes_dir, "eval")
    records = evaluation.read(np.arange(evaluation.num_rows))
    self.assertAllClose(
        -np.mean(prior.log_prob(records["codes"])), written["prior_nll_nats_per_image"],
        rtol=1e-5)
    self.assertAllClose(np.mean(records["recon_nll"]), written["recon_nll_nats"])
    self.assertNotEmpty(tf.io.gfile.glob(os.path.join(self.prior_dir, "eval", "events.*")))

  def test_other_codes_are_not_resumed(self):
    with tfds.testing.mock_data(num_examples=32):
      with self.assertRaisesRegex(ValueError, "codes of another VQ-VAE checkpoint"):
        train_prior.train_prior(_TINY_PRIOR.override(eval_split="test[:50%]"),
                                self.vqvae_dir, self.prior_dir)
      with self.assertRaisesRegex(ValueError, "holds a prior with"):
        train_prior.train_prior(_TINY_PRIOR.override(num_channels=4),
                                self.vqvae_dir, self.prior_dir)

  def test_train_shifts_encode_each_training_image_at_every_shift(self):
    self.assertEqual(train_prior.shifts(0), [(0, 0)])
    self.assertEqual(train_prior.shifts(1)[0], (0, 0))
    self.assertCountEqual(train_prior.shifts(1), itertools.product((-1, 0, 1), repeat=2))
    images = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6, 1) + 1
    want = np.zeros_like(images)
    want[:, 1:, :4] = images[:, :-1, 2:]  # down 1, left 2
    self.assertAllEqual(train_prior.shifted(tf.constant(images), 1, -2), want)
    with self.assertRaisesRegex(ValueError, "train_shifts=-1: must be an integer >= 0"):
      _TINY_PRIOR.override(train_shifts=-1)

    vqvae, vqvae_config, _ = checkpoints.load_vqvae(self.vqvae_dir)
    plain, moved = _TINY_PRIOR, _TINY_PRIOR.override(train_shifts=1)
    # A cache keyed before the option existed keeps its key.
    self.assertEqual(train_prior.codes_key(vqvae, vqvae_config, plain),
                     train_prior.codes_key(vqvae, vqvae_config,
                                           plain.override(train_shifts=0)))
    self.assertNotEqual(train_prior.codes_key(vqvae, vqvae_config, plain),
                        train_prior.codes_key(vqvae, vqvae_config, moved))
    shards = {}
    with tfds.testing.mock_data(num_examples=32):
      for name, config in (("plain", plain), ("moved", moved)):
        directory = os.path.join(self.get_temp_dir(), name)
        train_prior.encode_to_shards(vqvae, vqvae_config, config, directory)
        shards[name] = {split: code_shards.CodeShards(directory, split)
                        for split in ("train", "eval")}
      (images,) = pipeline.open_data(**plain.data.to_record()).eval_batches(
          pipeline.TRAIN, 64, vqvae_config.seed, vqvae_config.training.binarize)
    read = lambda shard: shard.read(np.arange(shard.num_rows))["codes"]
    plain_train, moved_train = read(shards["plain"]["train"]), read(shards["moved"]["train"])
    self.assertLen(moved_train, 9 * len(plain_train))
    self.assertAllEqual(read(shards["moved"]["eval"]), read(shards["plain"]["eval"]))
    # One batch here: its 32 images at each shift in turn, unshifted first.
    for index, (dy, dx) in enumerate(train_prior.shifts(1)):
      self.assertAllEqual(moved_train[32 * index:32 * (index + 1)],
                          vqvae.encode(train_prior.shifted(images, dy, dx)).codes)
    self.assertAllEqual(moved_train[:32], plain_train)

  def test_class_count_comes_from_the_data(self):
    # TFDS knows its datasets' classes without reading them.
    conditional = _TINY_PRIOR.override(class_conditional=True)
    self.assertEqual(train_prior.num_classes(conditional), 10)
    self.assertEqual(train_prior.num_classes(_TINY_PRIOR), 0)
    # Official files carry no class list: the training split's largest label + 1.
    dataset_dir = os.path.join(self.get_temp_dir(), "five_classes")
    os.makedirs(dataset_dir)
    rng = np.random.default_rng(5)
    for split, count in (("train", 40), ("test", 20)):
      np.savez(os.path.join(dataset_dir, f"kmnist-{split}-imgs.npz"),
               rng.integers(0, 256, (count, 28, 28), np.uint8))
      np.savez(os.path.join(dataset_dir, f"kmnist-{split}-labels.npz"),
               np.arange(count, dtype=np.uint8) % 5)
    local = conditional.override(dataset_dir=dataset_dir, num_steps=2,
                                eval_every=2, checkpoint_every=2)
    prior_dir = os.path.join(self.get_temp_dir(), "five_class_prior")
    metrics = train_prior.train_prior(local, self.vqvae_dir, prior_dir)
    self.assertTrue(metrics["class_conditional"])
    # Recorded in the prior's config, which sampling and export read.
    prior, _ = prior_lib.load_prior(prior_dir)
    self.assertEqual(prior.num_classes, 5)
    self.assertEqual(prior.sample(np.array([1, 2], np.int64), labels=[4, 0]).shape,
                     (2, 7, 7))
    # A label outside the training split's classes is refused in one line.
    np.savez(os.path.join(dataset_dir, "kmnist-test-labels.npz"),
             np.full([20], 7, np.uint8))
    with self.assertRaisesRegex(
        ValueError, r"^--class_conditional: --eval_split has label 7, outside the "
        r"data's 5 classes \[0, 5\)\.$"):
      train_prior.train_prior(local, self.vqvae_dir,
                              os.path.join(self.get_temp_dir(), "refused"))

  def test_cli_bad_flags_fail_before_any_work(self):
    prior_dir = os.path.join(self.get_temp_dir(), "prior")
    result = _run("-m", "tfp_vqvae.train_prior", "--vqvae_dir", self.vqvae_dir,
                  "--model_dir", prior_dir, *_PRIOR_FLAGS, "--num_layers=2")
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("error: num_layers=2 of kernel_size=3 leave a blind spot on a 7x7 "
                  "grid", result.stderr)
    self.assertNotIn("Traceback", result.stderr)
    self.assertFalse(os.path.exists(prior_dir))

  def test_sample_cli_refuses_knobs_out_of_range_naming_the_flag(self):
    out = os.path.join(self.get_temp_dir(), "refused.png")
    for flag, message in (("--top_p=0", "flag --top_p=0.0: must be in (0, 1]"),
                          ("--top_k=17", "error: --top_k must be at most the prior's "
                           "K=16, got 17.")):
      result = _run("-m", "tfp_vqvae.sample", "--vqvae_dir", self.vqvae_dir,
                    "--prior_dir", self.prior_dir, "--out", out, flag)
      self.assertNotEqual(result.returncode, 0)
      self.assertIn(message, result.stderr)
      self.assertNotIn("Traceback", result.stderr)
      self.assertFalse(os.path.exists(out))

  def test_cli_trains_on_real_files(self):
    if not os.path.isdir(test_util.KMNIST_DIR):
      self.skipTest(f"{test_util.KMNIST_DIR} is absent")
    prior_dir = os.path.join(self.get_temp_dir(), "prior")
    result = _run("-m", "tfp_vqvae.train_prior", "--vqvae_dir", self.vqvae_dir,
                  "--model_dir", prior_dir, *_PRIOR_FLAGS, "--num_steps=5",
                  "--dataset_dir", test_util.KMNIST_DIR, "--train_split=test[:200]",
                  "--eval_split=test[200:300]")
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertRegex(result.stderr, r"step 5/5  prior NLL [\d.]+ nats .* ETA")
    with open(os.path.join(prior_dir, train_prior.METRICS_FILE)) as f:
      self.assertEqual(json.load(f)["eval_examples"], 100)

  def test_sample_cli_writes_the_same_png_for_a_seed(self):
    out = os.path.join(self.get_temp_dir(), "samples.png")
    result = _run("-m", "tfp_vqvae.sample", "--vqvae_dir", self.vqvae_dir, "--prior_dir",
                  self.prior_dir, "--num", "12", "--columns", "4", "--seed", "3",
                  "--batch_size", "5", "--out", out)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    image = tf.io.decode_png(tf.io.read_file(out)).numpy()
    vqvae, _, _ = checkpoints.load_vqvae(self.vqvae_dir)
    prior, _ = prior_lib.load_prior(self.prior_dir, vqvae)
    codes, probs = sample_lib.sample_images(vqvae, prior, 12, seed=3)
    self.assertAllInRange(codes, 0, 15)
    # In-process, one batch of 12 instead of 5 + 5 + 2: the same figure, titled.
    title = f"12 samples of the prior {self.prior_dir}, temperature 1, seed 3"
    self.assertAllClose(image, figures.samples_figure(probs, 4, title), atol=2)
    other, _ = sample_lib.sample_images(vqvae, prior, 12, seed=4)
    self.assertNotAllEqual(codes, other)

  def test_export_with_prior_adds_sample_and_log_prob_codes(self):
    base = os.path.join(self.get_temp_dir(), "export")
    export_dir = export_lib.export_saved_model(self.vqvae_dir, base,
                                               warmup_batch_sizes=(1, 3),
                                               prior_dir=self.prior_dir)
    vqvae, _, _ = checkpoints.load_vqvae(self.vqvae_dir)
    prior, _ = prior_lib.load_prior(self.prior_dir, vqvae)
    seeds = np.array([3, 1, 4], np.int64)
    # The program asks for temperatures 1, 0.5, 1, top_k 0, 0, 3 and top_p 1, 1,
    # 0.9: one of each per sample.
    codes = prior.sample(seeds, np.array([[1.0], [0.5], [1.0]], np.float32),
                         top_k=np.array([0, 0, 3]), top_p=np.array([1.0, 1.0, 0.9])).numpy()
    self.assertAllEqual(codes[1], prior.sample(seeds[1:2], 0.5)[0])
    self.assertAllEqual(codes[2], prior.sample(seeds[2:], top_k=3, top_p=0.9)[0])
    outputs = os.path.join(self.get_temp_dir(), "outputs.npz")
    result = _run(os.path.join(test_util.ROOT, "tests", "programs", "sample_from_export.py"),
                  export_dir, outputs)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn("REFUSED", result.stdout)
    self.assertIn("log_prob_codes: codes must be in [0, 16); got min] [16]", result.stdout)
    got = dict(np.load(outputs))
    self.assertAllEqual(got["codes"], codes)
    self.assertAllClose(got["probs"], vqvae.decode_codes(codes).mean(), atol=1e-6)
    self.assertAllClose(got["log_prob"], prior.log_prob(codes), atol=1e-5)
    loaded = tf.saved_model.load(export_dir)
    self.assertContainsSubset(["sample", "log_prob_codes", "decode"], loaded.signatures)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                r"sample: seeds must have shape \[batch\]"):
      loaded.signatures["sample"](seeds=tf.zeros([2, 2], tf.int64),
                                  temperature=tf.ones([2]), top_k=tf.zeros([2], tf.int32),
                                  top_p=tf.ones([2]))
    # The warm-up requests TF Serving replays at load run (temperature and top_p
    # 1, not the refused 0).
    warmup = os.path.join(export_dir, export_lib.WARMUP_FILE)
    signatures = []
    for record in tf.data.TFRecordDataset(warmup):
      request = prediction_log_pb2.PredictionLog.FromString(
          record.numpy()).predict_log.request
      signatures.append(request.model_spec.signature_name)
      inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
      self.assertLen(next(iter(loaded.signatures[signatures[-1]](**inputs).values())),
                     len(next(iter(inputs.values()))))
    self.assertContainsSubset(["sample", "log_prob_codes"], signatures)


if __name__ == "__main__":
  tf.test.main()
