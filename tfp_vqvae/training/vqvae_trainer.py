"""Training and evaluation loop: `train_and_evaluate(config, model_dir)`.

What is the VQ-VAE's own: one `tf.function` step (GradientTape + Adam, loss-scaled
for float16, EMA codebook update inside the quantizer), evaluation over a whole
split, TensorBoard summaries, and PNG figures in model_dir: reconstructions, images
from random codes, code maps, the training curves (recorded in metrics.json's
`history` too) and a PCA of the codebook. The shared `loop.Loop` does the rest
(resume, cadence, progress lines, checkpoints, metrics.json).

A run is a pure function of its config: weights are initialised from `seed`, batch
`s` and its binarisation depend only on (`seed`, `s`), and the quantizer's random
choices on (`seed`, its count of training calls = `s`) too. So a run stopped and
resumed from a checkpoint follows the same trajectory as one that never stopped,
and its training curve too (it is checkpointed with the weights).
"""

import json
import os
import time

from absl import logging
import numpy as np
import tensorflow as tf

from tfp_vqvae.data import pipeline as data
from tfp_vqvae.internal import distribute
from tfp_vqvae.internal import precision
from tfp_vqvae.models import builder
from tfp_vqvae.quantizers import base as quantizer_lib
from tfp_vqvae.training import checkpoints
from tfp_vqvae.training import figures
from tfp_vqvae.training import loop as loop_lib
from tfp_vqvae.training import optimization

METRICS_FILE = "metrics.json"
# A copy of the checkpoints' record for people (training/checkpoints.py holds the real one).
CONFIG_FILE = "config.json"
# Points of the training curve kept in metrics.json, each the mean of its steps.
_HISTORY_POINTS = 300


class Trainer(tf.Module):
  """Model and optimizer, plus the compiled training and evaluation steps."""

  def __init__(self, config, image_shape, strategy=None, data_variance=1.0):
    super().__init__(name="trainer")
    self.config = config
    self.strategy = strategy or tf.distribute.get_strategy()
    with self.strategy.scope():
      self.model = builder.build_vqvae(config, image_shape, data_variance)
      self.optimizer = optimization.make_optimizer(config.loop.learning_rate,
                                                   config.training.dtype,
                                                   config.loop.decay_steps())
      # Build the slots now so a restore fills them at once (no deferred restore).
      self.optimizer.build(self.model.trainable_variables)
    self.train_step = tf.function(self._train_step,
                                  jit_compile=config.training.jit_compile)

  def _replica_step(self, images):
    groups = self.model.reduction_groups(images.shape[0])

    def loss_fn():
      terms = self.model.loss_terms(images, training=True)
      return tf.nn.compute_average_loss(
          terms.loss, global_batch_size=self.config.loop.batch_size), terms

    terms = optimization.minimize(self.optimizer, loss_fn,
                                  self.model.trainable_variables)
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

    Compiled in __init__ as `train_step`, with XLA if `config.training.jit_compile`.
    """
    per_replica = self.strategy.run(self._replica_step, args=(images,))
    metrics = {}
    for name, value in per_replica.items():
      if name in ("perplexity", "usage"):
        metrics[name] = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
      else:
        metrics[name] = (self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                         / self.config.loop.batch_size)
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


def eval_code_counts(trainer, image_data, config):
  """(Sums of the loss terms over the eval split, code counts [N, K] of each stage)."""
  totals = None
  for images in image_data.eval_batches(data.EVAL, config.loop.eval_batch_size,
                                        config.loop.seed,
                                        config.training.binarize):
    sums = trainer.eval_sums(images)
    totals = sums if totals is None else {k: totals[k] + v for k, v in sums.items()}
  counts = totals.pop("code_counts").numpy()
  return totals, counts.reshape(-1, counts.shape[-1])


def evaluate(trainer, image_data, config, data_variance=1.0, totals_and_counts=None):
  """Metrics over the eval split: per-image means, perplexity, codebook usage.

  Args:
    trainer: a `Trainer`.
    image_data: the run's `data.ImageData`.
    config: the run's `Config`.
    data_variance: variance of the training targets, the denominator of
      `normalized_mse` (the tutorials' recon error).
    totals_and_counts: `eval_code_counts(...)` if already computed.

  Returns:
    A dict of JSON-serialisable metrics. With N > 1 quantizer stages (residual
    stages, or VQ-VAE-2's levels), perplexity and codebook_usage are means over
    the stages and codes_used a sum; the per-stage values are in *_per_stage
    lists, in the order of `stages` (their names).
  """
  totals, counts = totals_and_counts or eval_code_counts(trainer, image_data, config)
  count = float(totals["examples"])
  model = trainer.model
  stages = [quantizer_lib.perplexity_and_usage(c) for c in counts]
  perplexities = [float(p) for p, _ in stages]
  usages = [float(u) for _, u in stages]
  codes_used = [int(np.count_nonzero(c)) for c in counts]
  neg_elbo = float(totals["neg_elbo"]) / count
  metrics = {
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
                   codes_used_per_stage=codes_used, stages=list(model.stage_names))
  return metrics


def _changes(saved: dict, now: dict) -> list[str]:
  """`field=saved (now value)` for each field of `now` whose value differs."""
  return [f"{name}={saved.get(name)} (now {value})" for name, value in now.items()
          if saved.get(name) != value]


def _data_record(config) -> dict:
  """The fields that say which images a run trains on, and how they are made."""
  record = config.data.to_record()
  del record["skip_corrupt_images"]  # Which images are skipped is logged, not chosen.
  training = config.training
  return dict(record, binarize=training.binarize, random_crop=training.random_crop,
              random_flip=training.random_flip)


def _check_or_write_config(config, model_dir, image_shape):
  """Refuses to resume a model_dir trained on other data or with another architecture.

  Compares the architecture and data fields and the image shape recorded in the
  latest checkpoint. Writes model_dir/config.json: the config, the image shape and
  `runs`, a line per start of training in this model_dir (the first, then each
  resume, with the fields that changed, e.g. num_steps).
  """
  latest = tf.train.latest_checkpoint(model_dir)
  text = checkpoints.read_record(latest) if latest else None
  runs = []
  if text:
    saved, saved_shape = checkpoints.parse_record(text)
    changed = _changes(saved.architecture(), config.architecture())
    changed += _changes(_data_record(saved), _data_record(config))
    if tuple(saved_shape) != tuple(image_shape):
      changed.append("images of shape {} (now {}: see image_size, channels)".format(
          "x".join(map(str, saved_shape)), "x".join(map(str, image_shape))))
    if changed:
      raise ValueError(
          f"{model_dir} holds a model trained with {', '.join(changed)}; use another "
          "model_dir, or the same architecture and data options to resume it.")
    path = os.path.join(model_dir, CONFIG_FILE)
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path) as f:
        runs = json.loads(f.read()).get("runs", [])
    runs.append({"resumed_from": os.path.basename(latest),
                 "changed": _changes(saved.to_record(), config.to_record())})
  else:
    runs.append({"resumed_from": None, "changed": []})
  runs[-1]["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
  record = dict(json.loads(checkpoints.make_record(config, image_shape)), runs=runs)
  with tf.io.gfile.GFile(os.path.join(model_dir, CONFIG_FILE), "w") as f:
    f.write(json.dumps(record, indent=2, sort_keys=True))


class History:
  """The training curve: per-step training metrics, averaged over windows of steps.

  Kept as columns (`step`, `loss`, `recon_nll`, `normalized_mse`, `perplexity`,
  `usage`) for metrics.json. Metrics stay tensors until a window closes, so the
  training loop does not wait for every step.
  """

  COLUMNS = ("step", "loss", "recon_nll", "normalized_mse", "perplexity", "usage")

  def __init__(self, every, normalizer, previous=""):
    """Args: steps per point; num_pixels * data variance; `to_json()` of the curve
    up to the step training resumes from ("" for a new run)."""
    self.every = every
    self.normalizer = normalizer
    previous = json.loads(previous) if previous else {}
    self.columns = {name: list(previous.get(name, [])) for name in self.COLUMNS}
    self._window = []

  def to_json(self):
    """The closed points as JSON (close the window first to keep every step)."""
    return json.dumps(self.columns)

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


def _stage_codebooks(quantizer):
  """The [K, D] codebook of each quantizer stage, as NumPy arrays."""
  return [codebook.numpy() for codebook in quantizer.codebooks]


def _figure_inputs(trainer, image_data, config, count=16):
  """The evaluation outputs `figures.write_run_figures` draws (except counts, history).

  The first `count` eval images, their reconstructions and codes, images decoded
  from uniformly random codes, and each stage's codebook.
  """
  images = next(image_data.eval_batches(data.EVAL, count, config.loop.seed,
                                        config.training.binarize,
                                        max_examples=count))
  means, codes = trainer.reconstruct(images)
  model = trainer.model
  random_codes = model.random_codes(count, seed=[config.loop.seed, 1])
  return dict(originals=image_data.first_images(data.EVAL, count), reconstructions=means.numpy(),
              random_decoded=trainer.decode_codes(random_codes).numpy(),
              codes=tf.nest.map_structure(np.asarray, codes),
              codebooks=_stage_codebooks(model.quantizer))


class _Reporter:
  """Summaries, figures and log lines of the VQ-VAE trainer (the loop's writers)."""

  def __init__(self, loop, config, stage_names):
    self.loop = loop
    self.config = config
    self.stage_names = stage_names

  def describe(self, metrics):
    """The trainer's part of a progress line."""
    return (f"loss {float(metrics['loss']):.2f}  recon_nll {float(metrics['recon_nll']):.2f}"
            f"  perplexity {np.mean(metrics['perplexity']):.1f}"
            f"  usage {np.mean(metrics['usage']):.3f}")

  def train_scalars(self, step, metrics, unused_rate):
    """Scalars, and one per stage for per-stage values (residual quantizers)."""
    with self.loop.train_writer.as_default(step=step):
      for name, value in metrics.items():
        value = np.asarray(value)
        tf.summary.scalar(name, float(np.mean(value)))
        if value.size > 1:
          for stage, stage_value in zip(self.stage_names, value):
            tf.summary.scalar(f"{name}/{stage}", stage_value)

  def evaluation(self, trainer, image_data, metrics, code_counts, history):
    """Eval scalars, figures and sample images for TensorBoard and model_dir."""
    logging.info("Eval at step %d on %s: recon_nll %.2f nats, neg_elbo %.2f nats "
                 "(%.4f bits/dim), perplexity %.1f, codebook usage %.3f.",
                 metrics["step"], self.config.data.eval_split, metrics["recon_nll_nats"],
                 metrics["neg_elbo_nats"], metrics["bits_per_dim"], metrics["perplexity"],
                 metrics["codebook_usage"])
    if not self.loop.is_saver:
      return
    with self.loop.eval_writer.as_default(step=metrics["step"]):
      for name, value in metrics.items():
        if name.endswith("_per_stage"):
          for stage, stage_value in zip(self.stage_names, value):
            tf.summary.scalar(f"{name[:-len('_per_stage')]}/{stage}", stage_value)
        elif name not in ("step", "num_embeddings", "eval_examples", "stages"):
          tf.summary.scalar(name, value)
      figures.write_run_figures(self.loop.model_dir, metrics["step"],
                                code_counts=code_counts, history=history.columns,
                                **_figure_inputs(trainer, image_data, self.config))


def train_and_evaluate(config, model_dir, strategy=None):
  """Trains (or resumes) a VQ-VAE in `model_dir` up to `config.loop.num_steps`.

  Args:
    config: a `config.Config`.
    model_dir: directory for checkpoints, summaries, metrics.json and figures;
      created if missing. If it holds a checkpoint, training resumes from it.
    strategy: optional `tf.distribute.Strategy`; by default the one
      `config.distribution.strategy` names. Only the chief writes to model_dir.

  Returns:
    The final evaluation metrics (also written to model_dir/metrics.json).

  Raises:
    data.DatasetUnavailableError: if the data cannot be loaded.
    ValueError: if model_dir is a file or cannot be written, holds a model of
      another architecture or a checkpoint this version cannot restore, or the
      batch does not split evenly across replicas.
  """
  checkpoints.check_output_directory(model_dir)
  image_data = data.open_data(**config.data.to_record())
  image_shape = image_data.image_shape
  logging.info("Data: %s (%d images), eval %s (%d images), images %dx%dx%d.",
               image_data.describe(data.TRAIN), image_data.num_examples(data.TRAIN),
               image_data.describe(data.EVAL), image_data.num_examples(data.EVAL),
               *image_shape)
  loop_options, training = config.loop, config.training
  strategy = strategy or distribute.make_strategy(config.distribution.strategy,
                                                  config.distribution.tpu)
  distribute.check_batch_size(loop_options.batch_size, strategy,
                              training.reduction_group_size)
  warning = precision.slow_dtype_warning(
      training.dtype, (bool(tf.config.list_physical_devices("GPU"))
                       or config.distribution.strategy == "tpu"),
      precision.cpu_flags())
  if warning:
    logging.warning("%s", warning)
  # A pure function of the training split, so a resumed run recomputes the same.
  data_variance = image_data.target_variance(training.binarize)
  schedule = loop_lib.Schedule(loop_options.num_steps, loop_options.log_every,
                               loop_options.eval_every, loop_options.checkpoint_every,
                               loop_options.max_checkpoints)
  loop = loop_lib.Loop(model_dir, schedule, strategy,
                       record=checkpoints.make_record(config, image_shape))
  if loop.is_saver:
    _check_or_write_config(config, model_dir, image_shape)

  trainer = Trainer(config, image_shape, strategy, data_variance)
  start_step = loop.restore(model=trainer.model, optimizer=trainer.optimizer)
  logging.info("Strategy %s: %d replica(s), global batch %d.",
               config.distribution.strategy, strategy.num_replicas_in_sync,
               loop_options.batch_size)

  reporter = _Reporter(loop, config, trainer.model.stage_names)
  history = History(max(loop_options.num_steps // _HISTORY_POINTS, 1),
                    trainer.model.num_pixels * data_variance,
                    loop.history.numpy().decode())
  batches = distribute.distributed_train_batches(
      strategy, image_data, loop_options.batch_size, loop_options.seed,
      training.binarize, start_step, training.random_crop, training.random_flip)
  iterator = image_data.name_bad_files(iter(batches), start_step,
                                       loop_options.batch_size, loop_options.seed)

  def train_step(step):
    metrics = trainer.train_step(next(iterator))
    history.add(step, metrics)
    return metrics

  def run_eval(step):
    totals_and_counts = eval_code_counts(trainer, image_data, config)
    metrics = dict(step=step, **evaluate(trainer, image_data, config,
                                         data_variance, totals_and_counts))
    history.close_window(step)
    reporter.evaluation(trainer, image_data, metrics, totals_and_counts[1], history)
    return metrics

  def before_save(step):
    # The curve survives a restart with the weights: the open window closes here
    # in every run, killed or not, so a resumed run counts no step twice.
    history.close_window(step)
    loop.history.assign(history.to_json())

  # A signal stops training where the curve's window has just closed, so that the
  # resumed run's history equals an uninterrupted run's.
  metrics = loop.run(train_step, reporter.describe, run_eval,
                     on_log=reporter.train_scalars, before_save=before_save,
                     can_stop=lambda step: step % history.every == 0)
  if metrics is None:  # Resumed at its last step: evaluate what it holds.
    metrics = run_eval(start_step)
  metrics["train_seconds"] = float(loop.train_seconds.numpy())
  if config.data.skip_corrupt_images:
    metrics["skipped_images"] = image_data.skipped_images
  metrics["history"] = history.columns
  loop.write_results(METRICS_FILE, metrics)
  return metrics
