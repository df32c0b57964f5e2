"""One training loop for every trainer of the package (the VQ-VAE's and the prior's).

`Loop` owns what trainers share: the step counter and training time, the
checkpoint manager and resuming (with a one-line error for a checkpoint this
version cannot restore), the cadence of logging, evaluation and checkpoints,
progress lines with steps/s and ETA (of training alone: the run's first step,
which traces and compiles, and the time spent checkpointing and evaluating are
left out), TensorBoard writers and the results file,
stopping on a non-finite loss or weights (no checkpoint of them is ever written),
and a clean stop on SIGINT or SIGTERM (a checkpoint at the next step where the
trainer's state can be saved, then `Interrupted`),
all written by the process the strategy says saves (`should_checkpoint`: the chief
under MultiWorkerMirroredStrategy; other workers save into a scratch directory
that is deleted at the end, as every worker must take part in a save).

A trainer keeps only what is its own: its compiled step, its evaluation and the
text of its progress line. Each step, in order: the trainer's step; the step
counter; the progress line (every `log_every` steps and at the last), whose
metrics must be finite; a checkpoint (every `checkpoint_every` steps and at the
last), after the trainer's `before_save` has put what must survive a restart into
the checkpoint and the weights were checked finite; evaluation (every
`eval_every` steps and at the last), after the checkpoint, so that a failure in
evaluation or figures loses no training.
"""

import contextlib
import dataclasses
import json
import math
import os
import signal
import threading
import time
from typing import Any, Callable, Optional

from absl import logging
import tensorflow as tf

from tfp_vqvae.internal.errors import Interrupted
from tfp_vqvae.internal import progress
from tfp_vqvae.training import checkpoints


@dataclasses.dataclass(frozen=True)
class Schedule:
  """How many steps, and how often to log, evaluate and checkpoint."""
  num_steps: int
  log_every: int
  eval_every: int
  checkpoint_every: int
  max_checkpoints: int = 3


class TrainingRate:
  """Steps per second of training alone, measured between progress lines.

  Measuring starts when the run's first step is done: that step traces and
  compiles the step function and fills the input pipeline, and on resuming it
  is the first step again. Time spent inside `paused()` (checkpoints,
  evaluation, figures) is left out too, so that steps/s and the ETA say what
  the remaining steps will take.
  """

  def __init__(self, clock: Callable[[], float] = time.perf_counter):
    self._clock = clock
    self._start = None
    self._step = None
    self._paused = 0.0

  def start(self, step: int) -> None:
    """Starts measuring after `step`, the run's first step, is done."""
    self._start, self._step, self._paused = self._clock(), step, 0.0

  @contextlib.contextmanager
  def paused(self):
    """Leaves the time spent in the `with` block out of the rate."""
    start = self._clock()
    try:
      yield
    finally:
      self._paused += self._clock() - start

  def window(self, step: int) -> Optional[float]:
    """Steps/s from the last window (or the first step) to `step`, or None if
    no step was measured (a line at the first step); starts the next window."""
    now = self._clock()
    rate = None
    if step > self._step:
      rate = (step - self._step) / max(now - self._start - self._paused, 1e-9)
    self.start(step)
    return rate


class NonFiniteError(ValueError):
  """Training produced a non-finite loss or weights; nothing of it was saved."""


def _non_finite(values) -> bool:
  """Whether any floating value in the nest `values` is NaN or infinite."""
  for value in tf.nest.flatten(values):
    array = value.numpy() if hasattr(value, "numpy") else value
    try:
      flat = [float(v) for v in (array.reshape(-1) if hasattr(array, "reshape") else [array])]
    except (TypeError, ValueError):
      continue
    if not all(math.isfinite(v) for v in flat):
      return True
  return False


class _StopSignals:
  """Records SIGINT/SIGTERM while installed (main thread only), restoring the old
  handlers on exit; a second signal of the same kind acts as before."""

  def __init__(self):
    self.received = None
    self._previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for number in (signal.SIGINT, signal.SIGTERM):
        self._previous[number] = signal.signal(number, self._handle)
    return self

  def _handle(self, number, frame):
    del frame
    self.received = signal.Signals(number).name
    signal.signal(number, self._previous[number])  # A second one is not deferred.

  def __exit__(self, *unused):
    for number, handler in self._previous.items():
      signal.signal(number, handler)


def should_save(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes checkpoints, summaries and results."""
  return bool(strategy.extended.should_checkpoint)


class Loop:
  """Step counter, checkpoints and cadence of one training run in `model_dir`.

  Example:
    loop = Loop(model_dir, Schedule(1000, 100, 500, 250))
    loop.restore(model=model, optimizer=optimizer)
    last_eval = loop.run(train_step, describe, evaluate)
  """

  def __init__(self, model_dir: str, schedule: Schedule,
               strategy: Optional[tf.distribute.Strategy] = None, record: str = ""):
    """Creates the counters (under `strategy`'s scope) and the writers.

    Args:
      model_dir: checkpoints, summaries (train/, eval/) and results go here;
        created if missing (by the saving process).
      schedule: steps and cadence.
      strategy: the trainer's `tf.distribute.Strategy`; the default one if None.
      record: text stored in every checkpoint (e.g. the config the model was
        built from, see training/checkpoints.py).
    """
    self.model_dir = model_dir
    self.schedule = schedule
    self.strategy = strategy or tf.distribute.get_strategy()
    self.is_saver = should_save(self.strategy)
    with self.strategy.scope():
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
      self.train_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                       name="train_seconds")
    # Strings stay host variables, outside the strategy (no string TPU variables).
    self.record = tf.Variable(record, dtype=tf.string, trainable=False, name="record")
    self.history = tf.Variable("", dtype=tf.string, trainable=False, name="history")
    if self.is_saver:
      tf.io.gfile.makedirs(model_dir)
      self.train_writer = tf.summary.create_file_writer(os.path.join(model_dir, "train"))
      self.eval_writer = tf.summary.create_file_writer(os.path.join(model_dir, "eval"))
    else:
      self.train_writer = self.eval_writer = tf.summary.create_noop_writer()
    self.checkpoint = None
    self.manager = None
    self._modules = []

  @property
  def _writer_dir(self):
    """model_dir for the saving process, else this worker's scratch directory."""
    if self.is_saver:
      return self.model_dir
    resolver = self.strategy.cluster_resolver
    return os.path.join(self.model_dir,
                        f"scratch_{resolver.task_type}_{resolver.task_id}")

  def restore(self, **objects: Any) -> int:
    """Tracks `objects` (model, optimizer, ...) and resumes from model_dir.

    Every process restores the saver's latest checkpoint in model_dir.

    Returns:
      The step training resumes from (0 for a new run).

    Raises:
      ValueError: if model_dir holds a checkpoint this program cannot restore.
    """
    self._modules = [obj for obj in objects.values() if isinstance(obj, tf.Module)]
    self.checkpoint = tf.train.Checkpoint(step=self.step, train_seconds=self.train_seconds,
                                          record=self.record, history=self.history,
                                          **objects)
    self.manager = tf.train.CheckpointManager(self.checkpoint, self._writer_dir,
                                              max_to_keep=self.schedule.max_checkpoints)
    latest = tf.train.latest_checkpoint(self.model_dir)
    if latest:
      checkpoints.restore(self.checkpoint, latest, self.model_dir)
      logging.info("Resumed from step %d (%s).", int(self.step.numpy()), latest)
    else:
      logging.info("No checkpoint in %s: training from scratch.", self.model_dir)
    return int(self.step.numpy())

  def run(self, train_step: Callable[[int], Any], describe: Callable[[Any], str],
          evaluate: Callable[[int], Any], on_log: Callable[[int, Any, float], None] = None,
          before_save: Callable[[int], None] = None,
          can_stop: Callable[[int], bool] = None) -> Any:
    """Trains from the current step up to `num_steps`.

    Args:
      train_step: runs step s (given s = 1, 2, ...) and returns its metrics
        (tensors are fine: they are read only for progress lines).
      describe: the trainer's part of a progress line for a step's metrics.
      evaluate: evaluates at a step; its result is returned for the last one.
      on_log: called at each progress line with (step, metrics, steps/s of
        `TrainingRate`, None at a line of the run's first step), e.g. for
        training summaries.
      before_save: called with the step before each checkpoint.
      can_stop: whether the trainer's state can be checkpointed after a step
        (e.g. its training curve's window closes there) so that a run stopped by
        a signal resumes bit-identically; every step if None.

    Returns:
      `evaluate`'s result at the last step, or None if no step was left to run.

    Raises:
      NonFiniteError: if a progress line's metrics or the weights to checkpoint
        are not finite; the latest checkpoint is then the last finite one.
      Interrupted: after SIGINT or SIGTERM, once a checkpoint is saved.
    """
    schedule = self.schedule
    step = int(self.step.numpy())
    first_step = step + 1
    seconds_before = float(self.train_seconds.numpy())
    run_start = time.perf_counter()
    rate_meter = TrainingRate()
    result = None
    with _StopSignals() as signals:
      while step < schedule.num_steps:
        step += 1
        metrics = train_step(step)
        self.step.assign(step)
        self.train_seconds.assign(seconds_before + time.perf_counter() - run_start)
        if step == first_step:
          rate_meter.start(step)
          logging.info("Step %d took %.1f s, mostly tracing and compiling; steps/s "
                       "and the ETA leave it out.", step, time.perf_counter() - run_start)
        last = step == schedule.num_steps
        if step % schedule.log_every == 0 or last:
          if _non_finite(metrics):
            raise NonFiniteError(self._non_finite_message(step, "the loss"))
          rate = rate_meter.window(step)
          speed = ("first step" if rate is None else f"{rate:.1f} steps/s  ETA "
                   f"{progress.format_duration((schedule.num_steps - step) / rate)}")
          logging.info("step %d/%d  %s  %s", step, schedule.num_steps,
                       describe(metrics), speed)
          if rate is not None:
            with self.train_writer.as_default(step=step):
              tf.summary.scalar("steps_per_second", rate)
          if on_log is not None:
            on_log(step, metrics, rate)
        stopping = signals.received and (can_stop is None or can_stop(step))
        if step % schedule.checkpoint_every == 0 or last or stopping:
          with rate_meter.paused():
            self.save(step, before_save)
        if stopping:
          raise Interrupted(
              f"{signals.received} at step {step}/{schedule.num_steps}: saved a "
              f"checkpoint in {self.model_dir}; run the same command to resume.")
        if step % schedule.eval_every == 0 or last:
          with rate_meter.paused():
            result = evaluate(step)
    if not self.is_saver:
      tf.io.gfile.rmtree(self._writer_dir)
    return result

  def save(self, step: int, before_save: Callable[[int], None] = None) -> None:
    """Checkpoints step `step`, unless a weight is not finite (NonFiniteError)."""
    for module in self._modules:
      name = checkpoints.non_finite_variable(module)
      if name is not None:
        raise NonFiniteError(self._non_finite_message(step, f"the weight {name}"))
    if before_save is not None:
      before_save(step)
    self.manager.save(checkpoint_number=step)

  def _non_finite_message(self, step, what):
    latest = tf.train.latest_checkpoint(self.model_dir)
    kept = (f"the latest checkpoint, {os.path.basename(latest)}, is the last finite one"
            if latest else "no checkpoint was written")
    return (f"step {step}: {what} is not finite (NaN or inf; the loss is checked at "
            f"each progress line, every {self.schedule.log_every} steps), so training "
            f"stopped and {kept}. The usual cause is a learning rate too high for the "
            "model (or float16 without enough range): lower learning_rate and train "
            "again.")

  def write_results(self, file_name: str, metrics: dict) -> None:
    """Writes `metrics` as JSON to model_dir/file_name (saving process only)."""
    if self.is_saver:
      path = os.path.join(self.model_dir, file_name)
      with tf.io.gfile.GFile(path, "w") as f:
        json.dump(metrics, f, indent=2, sort_keys=True)
      logging.info("Wrote %s.", path)
    self.train_writer.flush()
    self.eval_writer.flush()
