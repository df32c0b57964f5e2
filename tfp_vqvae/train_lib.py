"""Training and evaluation loop: `train_and_evaluate(config, model_dir)`.

One `tf.function` step (GradientTape + Adam, EMA codebook update inside the
quantizer), `tf.train.CheckpointManager` checkpoints with automatic resume, periodic
evaluation, TensorBoard summaries, progress lines, and at the end `metrics.json` and
PNG figures in model_dir: reconstructions, images from random codes, code maps, the
training curves (recorded in metrics.json's `history` too) and a PCA of the codebook.

A run is a pure function of its config: weights are initialised from `seed`, batch
`s` and its binarisation depend only on (`seed`, `s`), and the quantizer's random
choices on (`seed`, `s`) too. So a run stopped and resumed from a checkpoint follows
the same trajectory as one that never stopped.
"""

import dataclasses
import json
import os
import time

from absl import logging
import numpy as np
import tensorflow as tf
import tf_keras

from tfp_vqvae import config as config_lib
from tfp_vqvae import data
from tfp_vqvae import distribute
from tfp_vqvae import figures
from tfp_vqvae import model as model_lib
from tfp_vqvae import quantizer as quantizer_lib

METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.json"
# Fields that change the variables a checkpoint holds: resuming with other values
# would fail to restore or silently train a different model.
_ARCHITECTURE_FIELDS = ("num_hiddens", "num_residual_hiddens", "num_residual_layers",
                        "embedding_dim", "num_embeddings", "num_downsamples",
                        "architecture", "num_latents", "quantizer", "num_quantizers",
                        "likelihood", "pad_to")
# Points of the training curve kept in metrics.json, each the mean of its steps.
_HISTORY_POINTS = 300
# Salt that keeps the quantizer's random stream apart from the data pipeline's.
_QUANTIZER_SALT = 0x5EED


def build_model(config, image_shape, data_variance=1.0):
  """The `model.VQVAE` a config describes, for images of `image_shape` (H, W, C).

  `data_variance` sets a Gaussian likelihood's variance; a checkpoint restores it.
  """
  return model_lib.VQVAE(image_shape=image_shape, data_variance=data_variance,
                         **config.model_kwargs())


def quantizer_seed(seed, step):
  """Stateless seed of the quantizer's random choices at training step `step`."""
  return tf.random.experimental.stateless_fold_in(
      tf.constant([seed, _QUANTIZER_SALT], tf.int64), tf.cast(step, tf.int64))


class Trainer(tf.Module):
  """Model, optimizer, step counter and their checkpoint, plus the compiled steps."""

  def __init__(self, config, image_shape, strategy=None, data_variance=1.0):
    super().__init__(name="trainer")
    self.config = config
    self.strategy = strategy or tf.distribute.get_strategy()
    with self.strategy.scope():
      self.model = build_model(config, image_shape, data_variance)
      self.optimizer = tf_keras.optimizers.Adam(config.learning_rate)
      # Build the slots now so a restore fills them at once (no deferred restore).
      self.optimizer.build(self.model.trainable_variables)
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
      self.train_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                       name="train_seconds")
    self.checkpoint = tf.train.Checkpoint(step=self.step, model=self.model,
                                          optimizer=self.optimizer,
                                          train_seconds=self.train_seconds)
    self.train_step = tf.function(self._train_step, jit_compile=config.jit_compile)

  def _replica_step(self, images):
    seed = quantizer_seed(self.config.seed, self.step)
    groups = distribute.reduction_groups(images.shape[0], self.config.reduction_group_size)
    with tf.GradientTape() as tape:
      terms = self.model.loss_terms(images, training=True, seed=seed, groups=groups)
      loss = tf.nn.compute_average_loss(terms.loss,
                                        global_batch_size=self.config.batch_size)
    variables = self.model.trainable_variables
    gradients = tape.gradient(loss, variables)
    self.optimizer.apply_gradients(zip(gradients, variables))
    # Summed per reduction group, then across groups (as across replicas), so the
    # reported training curve is bit-identical too.
    sums = {name: tf.add_n([tf.reduce_sum(part)
                            for part in tf.split(getattr(terms, name), groups)])
            for name in ("loss", "recon_nll", "squared_error", "commitment_loss", "kl")}
    # Under tf.distribute these two already come from the all-reduced code counts
    # (one value per stage for residual quantizers).
    sums["perplexity"] = terms.quantizer.perplexity
    sums["usage"] = terms.quantizer.usage
    return sums

  def _train_step(self, images):
    """One optimisation step on a (distributed) batch; returns scalar metrics.

    Compiled in __init__ as `train_step`, with XLA if `config.jit_compile`.
    """
    per_replica = self.strategy.run(self._replica_step, args=(images,))
    metrics = {}
    for name, value in per_replica.items():
      if name in ("perplexity", "usage"):
        metrics[name] = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
      else:
        metrics[name] = (self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                         / self.config.batch_size)
    self.step.assign_add(1)
    return metrics

  @tf.function
  def eval_sums(self, images):
    """Per-batch sums of the loss terms and the code histogram (no state changes)."""
    terms = self.model.loss_terms(images, training=False)
    sums = {name: tf.reduce_sum(getattr(terms, name))
            for name in ("recon_nll", "squared_error", "commitment_loss", "kl",
                         "neg_elbo")}
    sums["examples"] = tf.cast(tf.shape(images)[0], tf.float32)
    sums["code_counts"] = terms.quantizer.code_counts
    return sums

  @tf.function
  def reconstruct(self, images):
    """Means of the reconstructions and the codes of float images."""
    encoded = self.model.encode(images, training=False)
    return self.model.decode(encoded.quantized).mean(), encoded.codes

  @tf.function
  def decode_codes(self, codes):
    return self.model.decode_codes(codes).mean()


def eval_code_counts(trainer, eval_images, config):
  """(Sums of the loss terms over a whole split, code counts [N, K] of each stage)."""
  totals = None
  for images in data.eval_dataset(eval_images, config.eval_batch_size, config.seed,
                                  config.binarize):
    sums = trainer.eval_sums(images)
    totals = sums if totals is None else {k: totals[k] + v for k, v in sums.items()}
  counts = totals.pop("code_counts").numpy()
  return totals, counts.reshape(-1, counts.shape[-1])


def evaluate(trainer, eval_images, config, data_variance=1.0, totals_and_counts=None):
  """Metrics over a whole split: per-image means, perplexity, codebook usage.

  Args:
    trainer: a `Trainer`.
    eval_images: uint8 images [N, H, W, C].
    config: the run's `Config`.
    data_variance: variance of the training targets, the denominator of
      `normalized_mse` (the tutorials' recon error).
    totals_and_counts: `eval_code_counts(...)` if already computed.

  Returns:
    A dict of JSON-serialisable metrics. With N > 1 quantizer stages, perplexity
    and codebook_usage are means over the stages and codes_used a sum; the
    per-stage values are in *_per_stage lists.
  """
  totals, counts = totals_and_counts or eval_code_counts(trainer, eval_images, config)
  count = float(totals["examples"])
  model = trainer.model
  stages = [quantizer_lib.perplexity_and_usage(c) for c in counts]
  perplexities = [float(p) for p, _ in stages]
  usages = [float(u) for _, u in stages]
  codes_used = [int(np.count_nonzero(c)) for c in counts]
  neg_elbo = float(totals["neg_elbo"]) / count
  metrics = {
      "step": int(trainer.step.numpy()),
      "recon_nll_nats": float(totals["recon_nll"]) / count,
      "recon_bits_per_dim": model.bits_per_dim(float(totals["recon_nll"]) / count),
      "normalized_mse": float(totals["squared_error"]) / (count * model.num_pixels
                                                           * data_variance),
      "kl_nats": float(totals["kl"]) / count,
      "neg_elbo_nats": neg_elbo,
      "bits_per_dim": model.bits_per_dim(neg_elbo),
      "commitment_loss": float(totals["commitment_loss"]) / count,
      "perplexity": float(np.mean(perplexities)),
      "codebook_usage": float(np.mean(usages)),
      "codes_used": int(np.sum(codes_used)),
      "num_embeddings": model.num_embeddings,
      "eval_examples": int(count),
  }
  if len(counts) > 1:
    metrics.update(perplexity_per_stage=perplexities, codebook_usage_per_stage=usages,
                   codes_used_per_stage=codes_used)
  return metrics


def read_config(model_dir):
  """The `Config` and image shape (H, W, C) a model_dir was trained with."""
  path = os.path.join(model_dir, CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    raise ValueError(f"{model_dir} is not a tfp_vqvae model_dir: it has no {CONFIG_FILE}.")
  with tf.io.gfile.GFile(path) as f:
    saved = json.load(f)
  image_shape = tuple(saved.pop("image_shape"))
  return config_lib.Config(**saved), image_shape


def load_model(model_dir):
  """Rebuilds the model of a model_dir and restores its latest checkpoint.

  Every variable of the model must be matched by the checkpoint (the optimizer
  state, which inference does not need, is left out).

  Returns:
    (model.VQVAE, config.Config, checkpoint path).

  Raises:
    ValueError: if model_dir has no config or no checkpoint.
  """
  config, image_shape = read_config(model_dir)
  path = tf.train.latest_checkpoint(model_dir)
  if path is None:
    raise ValueError(f"{model_dir} holds no checkpoint to load.")
  model = build_model(config, image_shape)
  status = tf.train.Checkpoint(model=model).read(path)
  status.assert_existing_objects_matched().expect_partial()
  return model, config, path


def _check_or_write_config(config, model_dir, image_shape):
  """Refuses to resume a model_dir trained with another architecture."""
  path = os.path.join(model_dir, CONFIG_FILE)
  if tf.io.gfile.exists(path):
    saved, _ = read_config(model_dir)
    saved = dataclasses.asdict(saved)
    changed = [f"--{name}={saved.get(name)} (now {getattr(config, name)})"
               for name in _ARCHITECTURE_FIELDS if saved.get(name) != getattr(config, name)]
    if changed:
      raise ValueError(
          f"{model_dir} holds a model trained with {', '.join(changed)}; use another "
          "--model_dir or the same architecture flags.")
  record = dict(dataclasses.asdict(config), image_shape=[int(s) for s in image_shape])
  with tf.io.gfile.GFile(path, "w") as f:
    json.dump(record, f, indent=2, sort_keys=True)


class History:
  """The training curve: per-step training metrics, averaged over windows of steps.

  Kept as columns (`step`, `loss`, `recon_nll`, `normalized_mse`, `perplexity`,
  `usage`) for metrics.json. Metrics stay tensors until a window closes, so the
  training loop does not wait for every step.
  """

  COLUMNS = ("step", "loss", "recon_nll", "normalized_mse", "perplexity", "usage")

  def __init__(self, every, normalizer, previous=None):
    """Args: steps per point; num_pixels * data variance; columns of an earlier run."""
    self.every = every
    self.normalizer = normalizer
    self.columns = {name: list((previous or {}).get(name, [])) for name in self.COLUMNS}
    self._window = []

  def add(self, step, metrics):
    self._window.append(metrics)
    if step % self.every == 0:
      self.close_window(step)

  def close_window(self, step):
    if not self._window:
      return
    means = {name: np.mean([np.mean(m[name]) for m in self._window])
             for name in ("loss", "recon_nll", "squared_error", "perplexity", "usage")}
    self._window = []
    means["normalized_mse"] = means.pop("squared_error") / self.normalizer
    self.columns["step"].append(int(step))
    for name in self.COLUMNS[1:]:
      self.columns[name].append(float(means[name]))


def _previous_history(model_dir, start_step):
  """The history of an earlier run in model_dir up to `start_step`, or None."""
  path = os.path.join(model_dir, METRICS_FILE)
  if not start_step or not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    history = json.load(f).get("history")
  if not history:
    return None
  keep = sum(step <= start_step for step in history["step"])
  return {name: values[:keep] for name, values in history.items()}


def _stage_codebooks(quantizer):
  """The [K, D] codebook of each quantizer stage, as NumPy arrays."""
  return [stage.codebook.numpy() for stage in getattr(quantizer, "stages", [quantizer])]


def _figure_inputs(trainer, eval_images, config, count=16):
  """The evaluation outputs `figures.write_run_figures` draws (except counts, history).

  The first `count` eval images, their reconstructions and codes, images decoded
  from uniformly random codes, and each stage's codebook.
  """
  images = next(iter(data.eval_dataset(eval_images[:count], count, config.seed,
                                       config.binarize)))
  means, codes = trainer.reconstruct(images)
  model = trainer.model
  random_codes = tf.random.stateless_uniform(
      (count,) + model.code_shape, seed=[config.seed, 1], maxval=model.num_embeddings,
      dtype=tf.int32)
  return dict(originals=images.numpy(), reconstructions=means.numpy(),
              random_decoded=trainer.decode_codes(random_codes).numpy(),
              codes=codes.numpy(), codebooks=_stage_codebooks(model.quantizer))


def format_duration(seconds):
  """`seconds` as e.g. 7m05s or 1h02m, for ETAs in progress lines."""
  seconds = int(max(seconds, 0))
  hours, rest = divmod(seconds, 3600)
  return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class _Reporter:
  """Summaries, figures and result files: written by the chief only."""

  def __init__(self, model_dir, config, strategy):
    self.model_dir = model_dir
    self.config = config
    self.enabled = distribute.is_chief(strategy)
    if self.enabled:
      self.train_writer = tf.summary.create_file_writer(os.path.join(model_dir, "train"))
      self.eval_writer = tf.summary.create_file_writer(os.path.join(model_dir, "eval"))
    else:
      self.train_writer = self.eval_writer = tf.summary.create_noop_writer()

  def train_scalars(self, step, values):
    """Scalars, and one per stage for per-stage values (residual quantizers)."""
    with self.train_writer.as_default(step=step):
      for name, value in values.items():
        value = np.asarray(value)
        tf.summary.scalar(name, float(np.mean(value)))
        if value.size > 1:
          for stage, stage_value in enumerate(value):
            tf.summary.scalar(f"{name}/stage_{stage}", stage_value)

  def evaluation(self, trainer, eval_images, metrics, code_counts, history):
    """Eval scalars, figures and sample images for TensorBoard and model_dir."""
    logging.info("Eval at step %d on %s: recon_nll %.2f nats, neg_elbo %.2f nats "
                 "(%.4f bits/dim), perplexity %.1f, codebook usage %.3f.",
                 metrics["step"], self.config.eval_split, metrics["recon_nll_nats"],
                 metrics["neg_elbo_nats"], metrics["bits_per_dim"], metrics["perplexity"],
                 metrics["codebook_usage"])
    if not self.enabled:
      return
    with self.eval_writer.as_default(step=metrics["step"]):
      for name, value in metrics.items():
        if name.endswith("_per_stage"):
          for stage, stage_value in enumerate(value):
            tf.summary.scalar(f"{name[:-len('_per_stage')]}/stage_{stage}", stage_value)
        elif name not in ("step", "num_embeddings", "eval_examples"):
          tf.summary.scalar(name, value)
      figures.write_run_figures(self.model_dir, metrics["step"], code_counts=code_counts,
                                history=history.columns,
                                **_figure_inputs(trainer, eval_images, self.config))

  def final(self, metrics):
    if self.enabled:
      path = os.path.join(self.model_dir, METRICS_FILE)
      with tf.io.gfile.GFile(path, "w") as f:
        json.dump(metrics, f, indent=2, sort_keys=True)
      logging.info("Wrote %s.", path)
    self.train_writer.flush()
    self.eval_writer.flush()


def train_and_evaluate(config, model_dir, strategy=None):
  """Trains (or resumes) a VQ-VAE in `model_dir` up to `config.num_steps`.

  Args:
    config: a `config.Config`.
    model_dir: directory for checkpoints, summaries, metrics.json and figures;
      created if missing. If it holds a checkpoint, training resumes from it.
    strategy: optional `tf.distribute.Strategy`; by default the one
      `config.strategy` names. Only the chief writes to model_dir.

  Returns:
    The final evaluation metrics (also written to model_dir/metrics.json).

  Raises:
    data.DatasetUnavailableError: if the data cannot be loaded.
    ValueError: if model_dir holds a model of another architecture, or the batch
      does not split evenly across replicas.
  """
  train_set = data.load_images(config.dataset, config.train_split, config.dataset_dir,
                               config.data_dir)
  eval_set = data.load_images(config.dataset, config.eval_split, config.dataset_dir,
                              config.data_dir)
  logging.info("Data: %s %s (%d images), eval %s (%d images).", config.dataset,
               config.train_split, len(train_set.images), config.eval_split,
               len(eval_set.images))
  strategy = strategy or distribute.make_strategy(config.strategy, config.tpu)
  distribute.check_batch_size(config.batch_size, strategy, config.reduction_group_size)
  image_shape = train_set.images.shape[1:]
  # A pure function of the training split, so a resumed run recomputes the same.
  data_variance = data.target_variance(train_set.images, config.binarize)
  if distribute.is_chief(strategy):
    tf.io.gfile.makedirs(model_dir)
    _check_or_write_config(config, model_dir, image_shape)

  trainer = Trainer(config, image_shape, strategy, data_variance)
  manager = tf.train.CheckpointManager(trainer.checkpoint,
                                       distribute.writer_dir(model_dir, strategy),
                                       max_to_keep=config.max_checkpoints)
  # Every worker restores the chief's checkpoint (model_dir), whatever the number of
  # replicas it was written with.
  latest = tf.train.latest_checkpoint(model_dir)
  if latest:
    trainer.checkpoint.restore(latest).assert_existing_objects_matched()
    logging.info("Resumed from step %d (%s).", int(trainer.step.numpy()), latest)
  else:
    logging.info("No checkpoint in %s: training from scratch.", model_dir)
  logging.info("Strategy %s: %d replica(s), global batch %d.", config.strategy,
               strategy.num_replicas_in_sync, config.batch_size)

  reporter = _Reporter(model_dir, config, strategy)
  start_step = int(trainer.step.numpy())
  history = History(max(config.num_steps // _HISTORY_POINTS, 1),
                    trainer.model.num_pixels * data_variance,
                    _previous_history(model_dir, start_step))
  iterator = iter(distribute.distributed_train_batches(
      strategy, train_set.images, config.batch_size, config.seed, config.binarize,
      start_step))

  def run_eval():
    totals_and_counts = eval_code_counts(trainer, eval_set.images, config)
    metrics = evaluate(trainer, eval_set.images, config, data_variance,
                       totals_and_counts)
    history.close_window(int(trainer.step.numpy()))
    reporter.evaluation(trainer, eval_set.images, metrics, totals_and_counts[1], history)
    return metrics

  window_start, window_step = time.perf_counter(), start_step
  seconds_before = float(trainer.train_seconds.numpy())
  run_start = time.perf_counter()
  step = start_step
  while step < config.num_steps:
    metrics = trainer.train_step(next(iterator))
    step += 1
    history.add(step, metrics)
    trainer.train_seconds.assign(seconds_before + time.perf_counter() - run_start)
    if step % config.log_every == 0 or step == config.num_steps:
      now = time.perf_counter()
      rate = (step - window_step) / max(now - window_start, 1e-9)
      window_start, window_step = now, step
      values = {name: np.asarray(value) for name, value in metrics.items()}
      logging.info("step %d/%d  loss %.2f  recon_nll %.2f  perplexity %.1f  usage %.3f  "
                   "%.1f steps/s  ETA %s", step, config.num_steps, values["loss"],
                   values["recon_nll"], np.mean(values["perplexity"]),
                   np.mean(values["usage"]), rate,
                   format_duration((config.num_steps - step) / rate))
      reporter.train_scalars(step, dict(values, steps_per_second=rate))
    if step % config.checkpoint_every == 0 or step == config.num_steps:
      manager.save(checkpoint_number=step)
    if step % config.eval_every == 0 and step < config.num_steps:
      run_eval()
  distribute.remove_scratch_dir(model_dir, strategy)

  metrics = run_eval()
  metrics["train_seconds"] = float(trainer.train_seconds.numpy())
  metrics["history"] = history.columns
  reporter.final(metrics)
  return metrics
