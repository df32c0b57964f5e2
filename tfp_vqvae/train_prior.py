r"""Trains a PixelCNN prior over a trained VQ-VAE's codes.

    python -m tfp_vqvae.train_prior --flagfile flags/kmnist_prior.cfg \
      --vqvae_dir DIR --model_dir PRIOR_DIR [data flags as for tfp_vqvae.train]

The VQ-VAE (latest checkpoint of --vqvae_dir) is frozen. It encodes both splits
once, binarised as it was trained; the int codes are cached in PRIOR_DIR under a
key of the VQ-VAE's weights and the data flags, so another checkpoint or split
encodes afresh, and a prior trained on other codes is never resumed. Training
resumes from PRIOR_DIR's latest checkpoint; the checkpoint with the lowest eval
NLL so far is kept in PRIOR_DIR/best/, which is what sampling and export load.

Batch `s` draws its codes (with replacement) and its dropout from seeds derived
from (--seed, s) only, so a resumed run follows the uninterrupted trajectory.

At the end PRIOR_DIR/prior_metrics.json reports the best checkpoint on the eval
split: -log p(z_q) under the prior, the VQ-VAE's recon NLL on the same images,
and the two bounds on -log p(x), recon NLL + prior NLL with the learned and with
the uniform prior.
"""

import dataclasses
import hashlib
import io
import json
import math
import os
import sys
import time
from typing import Optional

# Before anything imports TensorFlow: keeps its C++ start-up lines quiet.
from tfp_vqvae import _cli  # pylint: disable=unused-import

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from tfp_vqvae import checkpoints
from tfp_vqvae import config as config_lib
from tfp_vqvae import data
from tfp_vqvae import loop as loop_lib
from tfp_vqvae import optimization
from tfp_vqvae import preprocessing
from tfp_vqvae import prior as prior_lib
from tfp_vqvae import seeds as seeds_lib

METRICS_FILE = "prior_metrics.json"
# Config fields shared with the VQ-VAE trainer, flags and validation included.
_SHARED_FIELDS = config_lib.field_names(config_lib.DATA, config_lib.LOOP)
# Data fields always in the codes key (the others only when not at their defaults).
_KEYED_FIELDS = ("dataset", "dataset_dir", "data_dir", "train_split", "eval_split")


@dataclasses.dataclass(frozen=True)
class TrainPriorConfig:
  """Data, prior architecture and optimisation of a prior training run."""
  dataset: str = "kmnist"
  dataset_dir: Optional[str] = None
  data_dir: Optional[str] = None
  train_split: str = "train"
  eval_split: str = "test"
  image_size: str = ""
  channels: int = 0
  image_key: str = ""
  label_key: str = ""
  skip_corrupt_images: bool = False
  num_channels: int = 128
  num_layers: int = 6
  kernel_size: int = 3
  dropout_rate: float = 0.0
  class_conditional: bool = False
  batch_size: int = 64
  learning_rate: float = 3e-4
  num_steps: int = 2000
  seed: int = 0
  log_every: int = 100
  eval_every: int = 250
  checkpoint_every: int = 250
  max_checkpoints: int = 3
  eval_batch_size: int = 500

  @classmethod
  def from_flags(cls, flag_values=flags.FLAGS):
    return cls(**{f.name: flag_values[f.name].value for f in dataclasses.fields(cls)})

  def num_classes(self):
    """Classes of the labels (`data.num_classes` of the training split), or 0.

    0 unless --class_conditional. Read from the data's metadata or labels, not
    from the codes, so that the architecture is known, and checked against a
    resumed model_dir, before any image is encoded.

    Raises:
      ValueError: with --class_conditional, if the data has no labels.
    """
    if not self.class_conditional:
      return 0
    classes = data.num_classes(self.dataset, self.train_split,
                               dataset_dir=self.dataset_dir, data_dir=self.data_dir,
                               image_key=self.image_key, label_key=self.label_key)
    if not classes:
      raise ValueError(f"--class_conditional: {self.dataset} {self.train_split} has no "
                       "labels.")
    return classes

  def prior_config(self, num_embeddings, latent_shape, num_classes):
    """The `prior.PriorConfig` of this run for a VQ-VAE's K and latent grid.

    num_classes: 0 for an unconditional prior, else `num_classes()`.
    """
    return prior_lib.PriorConfig(
        num_embeddings=num_embeddings, latent_shape=tuple(latent_shape),
        num_channels=self.num_channels, num_layers=self.num_layers,
        kernel_size=self.kernel_size, dropout_rate=self.dropout_rate,
        num_classes=num_classes, seed=self.seed)


class EncodedSplits:
  """Codes of both splits under a frozen VQ-VAE, and its recon NLL on eval."""

  def __init__(self, train_codes, train_labels, eval_codes, eval_labels,
               eval_recon_nll):
    self.train_codes = train_codes
    self.train_labels = train_labels
    self.eval_codes = eval_codes
    self.eval_labels = eval_labels
    self.eval_recon_nll = eval_recon_nll

  def save(self, path):
    # Through memory: zipfile reads back what it writes, which a GFile cannot.
    buffer = io.BytesIO()
    np.savez(buffer, **vars(self))
    with tf.io.gfile.GFile(path, "wb") as f:
      f.write(buffer.getvalue())

  @classmethod
  def load(cls, path):
    with tf.io.gfile.GFile(path, "rb") as f:
      return cls(**dict(np.load(io.BytesIO(f.read()))))


def codes_key(vqvae, vqvae_config, config):
  """Hex key of the VQ-VAE's weights and of which images, binarised how, it encodes."""
  digest = hashlib.sha256()
  for variable in sorted(vqvae.variables, key=lambda v: v.name):
    digest.update(variable.name.encode())
    digest.update(variable.numpy().tobytes())
  # Fields at their defaults are left out, so that keys made before a field existed
  # (e.g. --image_size) stay valid.
  defaults = TrainPriorConfig()
  facts = {name: getattr(config, name) for name in config_lib.field_names(config_lib.DATA)
           if name in _KEYED_FIELDS or getattr(config, name) != getattr(defaults, name)}
  if facts["dataset_dir"]:
    facts["dataset_dir"] = os.path.abspath(facts["dataset_dir"])
  facts.update(binarize=vqvae_config.binarize, seed=vqvae_config.seed)
  digest.update(json.dumps(facts, sort_keys=True).encode())
  return digest.hexdigest()[:16]


def _data_args(config, image_shape):
  """`data.open_data` arguments giving the images the VQ-VAE takes (H, W, C)."""
  args = config_lib.data_args(config)
  height, width, channels = image_shape
  if args["image_size"] and preprocessing.parse_image_size(args["image_size"]) != (
      height, width):
    raise ValueError(f"--image_size={args['image_size']}: the VQ-VAE takes "
                     f"{height}x{width} images; drop the flag or pass {height},{width}.")
  if args["channels"] and args["channels"] != channels:
    raise ValueError(f"--channels={args['channels']}: the VQ-VAE takes images of "
                     f"{channels} channel(s); drop the flag.")
  args.update(image_size=f"{height},{width}", channels=channels)
  return args


def encode_splits(vqvae, vqvae_config, config):
  """Encodes both splits with the frozen VQ-VAE as `train_lib.evaluate` binarises.

  The images are brought to the VQ-VAE's size and colour (--image_size and
  --channels may be left unset).
  """

  @tf.function
  def encode(images, with_recon):
    encoded = vqvae.encode(images, training=False)
    if not with_recon:
      return encoded.codes, tf.zeros(tf.shape(images)[:1])
    return encoded.codes, -vqvae.decode(encoded.quantized).log_prob(images)

  image_data = data.open_data(**_data_args(config, vqvae.image_shape))
  splits = []
  for split, with_recon in ((data.TRAIN, False), (data.EVAL, True)):
    codes, labels, recon = [], [], []
    for images, batch_labels in image_data.eval_batches(
        split, config.eval_batch_size, vqvae_config.seed, vqvae_config.binarize,
        with_labels=True):
      batch_codes, batch_recon = encode(images, with_recon)
      codes.append(batch_codes.numpy())
      labels.append(batch_labels.numpy().astype(np.int32))
      recon.append(batch_recon.numpy())
    splits.append((np.concatenate(codes), np.concatenate(labels), np.concatenate(recon)))
  (train_codes, train_labels, _), (eval_codes, eval_labels, eval_recon) = splits
  return EncodedSplits(train_codes, train_labels, eval_codes, eval_labels, eval_recon)


class PriorTrainer(tf.Module):
  """Prior, optimizer and the best eval NLL so far, and the compiled step."""

  def __init__(self, prior_config, config, encoded, step):
    """Args: the prior's architecture, the run's config, the codes to fit, and the
    loop's step counter (batch s is drawn from (seed, s))."""
    super().__init__(name="prior_trainer")
    self.config = config
    self.step = step
    self.prior = prior_lib.GatedPixelCNN(prior_config)
    self.optimizer = optimization.make_optimizer(config.learning_rate)
    self.optimizer.build(self.prior.trainable_variables)
    self.best_nll = tf.Variable(math.inf, dtype=tf.float64, trainable=False,
                                name="best_nll")
    self.best_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_step")
    self.best_checkpoint = tf.train.Checkpoint(prior=self.prior, step=self.step)
    self._train_codes = tf.constant(encoded.train_codes)
    self._train_labels = tf.constant(encoded.train_labels)

  def _labels(self, labels):
    return labels if self.prior.num_classes else None

  @tf.function
  def train_step(self):
    """One Adam step on a batch drawn by (seed, step); returns its NLL, nats/image."""
    seed = seeds_lib.step_seed(self.config.seed, seeds_lib.Stream.PRIOR_BATCHES,
                               self.step)
    rows = tf.random.stateless_uniform(
        [self.config.batch_size], seed, maxval=tf.shape(self._train_codes)[0],
        dtype=tf.int32)
    codes = tf.gather(self._train_codes, rows)
    labels = self._labels(tf.gather(self._train_labels, rows))
    dropout_seed = tf.random.experimental.stateless_fold_in(seed, 1)

    def loss_fn():
      nll = -tf.reduce_mean(self.prior.log_prob(codes, labels, training=True,
                                                seed=dropout_seed))
      return nll, nll

    return optimization.minimize(self.optimizer, loss_fn, self.prior.trainable_variables)


def evaluate_prior(prior, codes, labels, batch_size):
  """Mean -log p(codes) in nats per image over a split, batch by batch."""
  log_prob = tf.function(prior.log_prob)
  total = 0.0
  for start in range(0, len(codes), batch_size):
    batch_labels = labels[start:start + batch_size] if prior.num_classes else None
    total += float(tf.reduce_sum(log_prob(codes[start:start + batch_size],
                                          batch_labels)))
  return -total / len(codes)


def _check_labels(encoded, num_classes):
  """Refuses a label outside [0, num_classes) in either split, in one line."""
  for flag, labels in (("--train_split", encoded.train_labels),
                       ("--eval_split", encoded.eval_labels)):
    outside = labels[(labels < 0) | (labels >= num_classes)]
    if outside.size:
      raise ValueError(f"--class_conditional: {flag} has label {outside[0]}, outside "
                       f"the data's {num_classes} classes [0, {num_classes}).")


def _load_or_encode(vqvae, vqvae_config, config, model_dir, key, num_classes):
  """The splits encoded by the frozen VQ-VAE, from model_dir's cache if there.

  With num_classes > 0 (a class-conditional prior) every label is checked.
  """
  path = os.path.join(model_dir, f"codes-{key}.npz")
  if tf.io.gfile.exists(path):
    logging.info("Codes from the cache %s.", path)
    encoded = EncodedSplits.load(path)
  else:
    start = time.perf_counter()
    encoded = encode_splits(vqvae, vqvae_config, config)
    encoded.save(path)
    logging.info("Encoded %d train and %d eval images in %.1f s; cached in %s.",
                 len(encoded.train_codes), len(encoded.eval_codes),
                 time.perf_counter() - start, path)
  if num_classes:
    _check_labels(encoded, num_classes)
  return encoded


def _check_or_write_config(model_dir, prior_config, key, vqvae_dir):
  """Refuses to resume a prior of another architecture or trained on other codes."""
  if tf.io.gfile.exists(os.path.join(model_dir, prior_lib.PRIOR_CONFIG_FILE)):
    saved, facts = prior_lib.read_config(model_dir)
    if saved != prior_config:
      raise ValueError(f"{model_dir} holds a prior with {saved}, not {prior_config}; "
                       "use another --model_dir or the same prior flags.")
    if facts.get("codes_key") != key:
      raise ValueError(
          f"{model_dir} holds a prior trained on the codes of another VQ-VAE "
          f"checkpoint or split (key {facts.get('codes_key')}, now {key}); use "
          "another --model_dir.")
  prior_lib.write_config(model_dir, prior_config,
                         {"codes_key": key, "vqvae_dir": os.path.abspath(vqvae_dir)})


def train_prior(config, vqvae_dir, model_dir):
  """Trains (or resumes) a prior over the codes of `vqvae_dir` up to config.num_steps.

  Args:
    config: a `TrainPriorConfig`.
    vqvae_dir: a model_dir written by `train_lib.train_and_evaluate`.
    model_dir: directory for the code cache, checkpoints, best/, summaries and
      prior_metrics.json; created if missing.

  Returns:
    The metrics of the best checkpoint (also written to model_dir/prior_metrics.json).

  Raises:
    data.DatasetUnavailableError: if the data cannot be loaded.
    ValueError: if vqvae_dir is not a trained VQ-VAE, the prior flags do not fit
      its grid, model_dir holds a prior of another architecture or codes, or a
      class-conditional prior meets a label outside the data's classes.
  """
  vqvae, vqvae_config, vqvae_path = checkpoints.load_vqvae(vqvae_dir)
  prior_config = config.prior_config(vqvae.num_embeddings, vqvae.latent_shape,
                                     config.num_classes())
  # Built once before any work so that a bad architecture fails at once.
  prior_lib.GatedPixelCNN(prior_config)
  key = codes_key(vqvae, vqvae_config, config)
  logging.info("VQ-VAE %s; codes key %s.", vqvae_path, key)
  tf.io.gfile.makedirs(model_dir)
  _check_or_write_config(model_dir, prior_config, key, vqvae_dir)
  encoded = _load_or_encode(vqvae, vqvae_config, config, model_dir, key,
                            prior_config.num_classes)

  schedule = loop_lib.Schedule(config.num_steps, config.log_every, config.eval_every,
                               config.checkpoint_every, config.max_checkpoints)
  loop = loop_lib.Loop(model_dir, schedule)
  trainer = PriorTrainer(prior_config, config, encoded, loop.step)
  loop.restore(prior=trainer.prior, optimizer=trainer.optimizer,
               best_nll=trainer.best_nll, best_step=trainer.best_step)
  best_manager = tf.train.CheckpointManager(
      trainer.best_checkpoint, os.path.join(model_dir, prior_lib.BEST_DIR), max_to_keep=1)

  latents = math.prod(vqvae.latent_shape)
  bits = latents * math.log(2.0)

  def describe(nll):
    nll = float(nll)
    return f"prior NLL {nll:.2f} nats ({nll / bits:.3f} bits/latent)"

  def train_scalars(step, nll, unused_rate):
    with loop.train_writer.as_default(step=step):
      tf.summary.scalar("prior_nll_nats", float(nll))

  def run_eval(step):
    nll = evaluate_prior(trainer.prior, encoded.eval_codes, encoded.eval_labels,
                         config.eval_batch_size)
    if nll < trainer.best_nll.numpy():
      trainer.best_nll.assign(nll)
      trainer.best_step.assign(step)
      best_manager.save(checkpoint_number=step)
    with loop.eval_writer.as_default(step=step):
      tf.summary.scalar("prior_nll_nats", nll)
      tf.summary.scalar("prior_bits_per_latent", nll / bits)
      tf.summary.scalar("best_prior_nll_nats", trainer.best_nll.numpy())
    logging.info("Eval at step %d on %s: prior NLL %.2f nats (%.3f bits/latent); best "
                 "%.2f at step %d.", step, config.eval_split, nll, nll / bits,
                 trainer.best_nll.numpy(), int(trainer.best_step.numpy()))

  loop.run(lambda step: trainer.train_step(), describe, run_eval, on_log=train_scalars)
  if best_manager.latest_checkpoint is None:
    run_eval(int(loop.step.numpy()))  # A run resumed at its last step, never evaluated.

  best_prior, _ = prior_lib.load_prior(model_dir, vqvae)
  prior_nll = evaluate_prior(best_prior, encoded.eval_codes, encoded.eval_labels,
                             config.eval_batch_size)
  recon_nll = float(np.mean(encoded.eval_recon_nll))
  uniform_nll = latents * math.log(vqvae.num_embeddings)
  metrics = {
      "step": int(loop.step.numpy()),
      "best_step": int(trainer.best_step.numpy()),
      "prior_nll_nats_per_image": prior_nll,
      "prior_bits_per_latent": prior_nll / bits,
      "uniform_bits_per_latent": math.log2(vqvae.num_embeddings),
      "recon_nll_nats": recon_nll,
      "neg_elbo_learned_prior_nats": recon_nll + prior_nll,
      "neg_elbo_uniform_prior_nats": recon_nll + uniform_nll,
      "class_conditional": bool(prior_config.num_classes),
      "num_embeddings": vqvae.num_embeddings,
      "eval_examples": len(encoded.eval_codes),
      "train_seconds": float(loop.train_seconds.numpy()),
  }
  logging.info("Best prior (step %d): NLL %.2f nats (%.3f bits/latent, uniform %.3f); "
               "-ELBO %.2f nats with it, %.2f with the uniform prior.",
               metrics["best_step"], prior_nll, metrics["prior_bits_per_latent"],
               metrics["uniform_bits_per_latent"], metrics["neg_elbo_learned_prior_nats"],
               metrics["neg_elbo_uniform_prior_nats"])
  loop.write_results(METRICS_FILE, metrics)
  return metrics


def define_flags(flag_values=flags.FLAGS):
  """The data and optimisation flags of `config`, plus the prior's architecture."""
  config_lib.define_flags(flag_values, fields=_SHARED_FIELDS)
  defaults = TrainPriorConfig()
  for name in _SHARED_FIELDS:
    flag_values.set_default(name, getattr(defaults, name))
  flags.DEFINE_string("vqvae_dir", None, "model_dir of the trained VQ-VAE to encode with.",
                      flag_values=flag_values)
  flags.DEFINE_string("model_dir", None, "Directory for the prior's checkpoints, code "
                      "cache, summaries and prior_metrics.json.", flag_values=flag_values)
  flags.DEFINE_integer("num_channels", defaults.num_channels,
                       "Channels of each PixelCNN stack.", lower_bound=1,
                       flag_values=flag_values)
  flags.DEFINE_integer("num_layers", defaults.num_layers, "Gated PixelCNN layers; enough "
                       "to see the whole grid (6 for 7x7 with kernel 3).", lower_bound=1,
                       flag_values=flag_values)
  flags.DEFINE_integer("kernel_size", defaults.kernel_size,
                       "Odd kernel size of the stacks' convolutions.", lower_bound=3,
                       flag_values=flag_values)
  flags.DEFINE_float("dropout_rate", defaults.dropout_rate,
                     "Dropout on the gated outputs of both stacks, in [0, 1).",
                     flag_values=flag_values)
  flags.register_validator("dropout_rate", lambda value: 0.0 <= value < 1.0,
                           message="must be in [0, 1)", flag_values=flag_values)
  flags.DEFINE_bool("class_conditional", defaults.class_conditional,
                    "Condition the prior on the class label: it then bounds "
                    "-log p(x | label), not -log p(x).", flag_values=flag_values)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  try:
    train_prior(TrainPriorConfig.from_flags(), flags.FLAGS.vqvae_dir,
                flags.FLAGS.model_dir)
  except (data.DatasetUnavailableError, ValueError) as error:
    sys.exit(f"error: {error}")


def run():
  """The console entry point, tfp-vqvae-train-prior."""
  define_flags()
  flags.mark_flags_as_required(["vqvae_dir", "model_dir"])
  app.run(main)


if __name__ == "__main__":
  run()
