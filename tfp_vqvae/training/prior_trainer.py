"""Training a prior over a trained VQ-VAE's codes: `train_prior(config, ...)`.

`python -m tfp_vqvae.train_prior` is the command (its flags: tfp_vqvae/train_prior.py).

The prior (--prior: pixelcnn, transformer or maskgit) follows the VQ-VAE's codes
(`code_shape`): a grid [h, w]; N output heads over residual codes [h, w, N]; for
VQ-VAE-2's {"top", "bottom"} grids, a top prior and a bottom prior conditioned on
the top codes (the PixelCNN's with --num_attention_blocks causal self-attention
blocks on top and sized by the bottom_* options below). See priors/pixelcnn.py,
priors/transformer.py, priors/maskgit.py and priors/hierarchical.py.

The PixelCNN and the causal Transformer train on -log p(codes), which is exact, so
their eval NLL is a term of the bound on -log p(x). MaskGIT trains on its masked
NLL (`maskgit.MaskGITPrior.masked_nll`), which is no bound: it is reported as
"masked NLL, not a bound", evaluated with masks of fixed seeds, and never in the
NLL and bound fields of prior_metrics.json.

The VQ-VAE (latest checkpoint of --vqvae_dir) is frozen. It encodes both splits
once, binarised as it was trained, into sharded files in PRIOR_DIR/codes-<key>/
(data/code_shards.py) under a key of the VQ-VAE's weights and the data flags, so another
checkpoint or split encodes afresh, and a prior trained on other codes is never
resumed. The codes are streamed from those files, never held in memory. Training
resumes from PRIOR_DIR's latest checkpoint; the checkpoint with the lowest eval
NLL so far is kept in PRIOR_DIR/best/, which is what sampling and export load.

Batch `s` draws its codes (with replacement), its dropout and MaskGIT's masks from
seeds derived from (--seed, s) only, so a resumed run follows the uninterrupted
trajectory.

At the end PRIOR_DIR/prior_metrics.json reports the best checkpoint on the eval
split: -log p(z_q) under the prior (and per level or stage when there are
several), the VQ-VAE's recon NLL on the same images, and the two bounds on
-log p(x), recon NLL + prior NLL with the learned and with the uniform prior; for
MaskGIT, its masked NLL and the uniform prior's bound, and with --any_order_eval
its any-order NLL (`maskgit.MaskGITPrior.any_order_nll`) and the bound with it.
"""

import hashlib
import json
import math
import os
import time

from absl import logging
import numpy as np
import tensorflow as tf

from tfp_vqvae.configs import fields
from tfp_vqvae.configs.data import DataOptions
from tfp_vqvae.configs.data import parse_image_size
from tfp_vqvae.data import code_shards
from tfp_vqvae.data import pipeline as data
from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.priors import pixelcnn as prior_lib
from tfp_vqvae.training import checkpoints
from tfp_vqvae.training import loop as loop_lib
from tfp_vqvae.training import optimization

METRICS_FILE = "prior_metrics.json"
# Data fields always in the codes key (the others only when not at their defaults).
_KEYED_FIELDS = ("dataset", "dataset_dir", "data_dir", "train_split", "eval_split")


def num_classes(config) -> int:
  """Classes of the labels (`data.num_classes` of the training split), or 0.

  0 unless `config.class_conditional`. Read from the data's metadata or labels,
  not from the codes, so that the architecture is known, and checked against a
  resumed model_dir, before any image is encoded.

  Raises:
    ValueError: with class_conditional, if the data has no labels.
  """
  if not config.class_conditional:
    return 0
  options = config.data
  classes = data.num_classes(options.dataset, options.train_split,
                             dataset_dir=options.dataset_dir, data_dir=options.data_dir,
                             image_key=options.image_key, label_key=options.label_key)
  if not classes:
    raise ValueError(f"class_conditional: {options.dataset} {options.train_split} has "
                     "no labels.")
  return classes


def codes_key(vqvae, vqvae_config, config):
  """Hex key of the VQ-VAE's weights and of which images, binarised how, it encodes."""
  digest = hashlib.sha256()
  for variable in sorted(vqvae.variables, key=lambda v: v.name):
    digest.update(variable.name.encode())
    digest.update(variable.numpy().tobytes())
  # Fields at their defaults are left out, so that keys made before a field existed
  # (e.g. --image_size) stay valid.
  defaults = DataOptions().to_record()
  facts = {name: value for name, value in config.data.to_record().items()
           if name in _KEYED_FIELDS or value != defaults[name]}
  if facts["dataset_dir"]:
    facts["dataset_dir"] = os.path.abspath(facts["dataset_dir"])
  facts.update(binarize=vqvae_config.training.binarize, seed=vqvae_config.seed)
  if config.train_shifts:
    facts["train_shifts"] = config.train_shifts
  digest.update(json.dumps(facts, sort_keys=True).encode())
  return digest.hexdigest()[:16]


def _data_args(config, image_shape):
  """`data.open_data` arguments giving the images the VQ-VAE takes (H, W, C)."""
  args = config.data.to_record()
  height, width, channels = image_shape
  if args["image_size"] and parse_image_size(args["image_size"]) != (height, width):
    raise fields.InvalidOptionError(
        "image_size", args["image_size"], f"the VQ-VAE takes {height}x{width} images; "
        f"leave it unset or pass {height},{width}")
  if args["channels"] and args["channels"] != channels:
    raise fields.InvalidOptionError(
        "channels", args["channels"],
        f"the VQ-VAE takes images of {channels} channel(s); leave it unset")
  args.update(image_size=f"{height},{width}", channels=channels)
  return args


def shifts(radius):
  """Every (dy, dx) with |dy|, |dx| <= radius, (0, 0) first."""
  offsets = [0] + [sign * step for step in range(1, radius + 1) for sign in (1, -1)]
  return [(dy, dx) for dy in offsets for dx in offsets]


def shifted(images, dy, dx):
  """Images [B, H, W, C] moved down by dy and right by dx pixels (up and left if
  negative), zeros shifted in."""
  height, width = images.shape[1], images.shape[2]
  pad_y, pad_x = abs(dy), abs(dx)
  padded = tf.pad(images, [[0, 0], [pad_y, pad_y], [pad_x, pad_x], [0, 0]])
  return padded[:, pad_y - dy:pad_y - dy + height, pad_x - dx:pad_x - dx + width, :]


def encode_to_shards(vqvae, vqvae_config, config, directory):
  """Encodes both splits with the frozen VQ-VAE into `directory`'s shards.

  Images are binarised as `train_lib.evaluate` does and brought to the VQ-VAE's
  size and colour (--image_size and --channels may be left unset). With
  `config.train_shifts` each training batch is encoded once per shift (`shifts`),
  unshifted first. Batch by batch, so that memory holds one shard at most; the
  index is written last.

  Returns:
    The number of (train, eval) images encoded.
  """

  @tf.function
  def encode(images, with_recon):
    encoded = vqvae.encode(images, training=False)
    if not with_recon:
      return encoded.codes, tf.zeros(tf.shape(images)[:1])
    return encoded.codes, -vqvae.decode(encoded.quantized).log_prob(images)

  image_data = data.open_data(**_data_args(config, vqvae.image_shape))
  entries = {}
  for split, with_recon in ((data.TRAIN, False), (data.EVAL, True)):
    moves = shifts(config.train_shifts) if split == data.TRAIN else [(0, 0)]
    writer = code_shards.ShardWriter(
        directory, split, code_shards.record_dtype(vqvae.code_shape, with_recon),
        total=image_data.num_examples(split) * len(moves))
    for images, labels in image_data.eval_batches(
        split, config.loop.eval_batch_size, vqvae_config.seed,
        vqvae_config.training.binarize, with_labels=True):
      for dy, dx in moves:
        codes, recon = encode(shifted(images, dy, dx), with_recon)
        columns = ({name: level.numpy() for name, level in codes.items()}
                   if isinstance(codes, dict) else {"codes": codes.numpy()})
        columns[code_shards.LABEL] = labels.numpy().astype(np.int32)
        if with_recon:
          columns[code_shards.RECON_NLL] = recon.numpy()
        writer.write(**columns)
    entries[split] = writer.close()
  code_shards.write_index(directory, entries)
  return tuple(sum(entries[split]["rows"]) for split in (data.TRAIN, data.EVAL))


class PriorTrainer(tf.Module):
  """Prior, optimizer and the best eval NLL so far, and the compiled step."""

  def __init__(self, prior_config, config, train_shards, step):
    """Args: the prior's architecture, the run's config, the `CodeShards` of the
    training codes, and the loop's step counter (batch s is drawn from (seed, s))."""
    super().__init__(name="prior_trainer")
    self.config = config
    self.step = step
    self.prior = prior_lib.build_prior(prior_config)
    self.optimizer = optimization.make_optimizer(
        config.loop.learning_rate, decay_steps=config.loop.decay_steps())
    self.optimizer.build(self.prior.trainable_variables)
    self.best_nll = tf.Variable(math.inf, dtype=tf.float64, trainable=False,
                                name="best_nll")
    self.best_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_step")
    self.best_checkpoint = tf.train.Checkpoint(prior=self.prior, step=self.step,
                                               best_nll=self.best_nll,
                                               best_step=self.best_step)
    self._train_shards = train_shards
    self._batches = None

  def _labels(self, labels):
    return labels if self.prior.num_classes else None

  def train_step(self):
    """One Adam step on the batch of the step counter's value, read from the
    shards; returns its NLL, nats/image. The caller advances the counter."""
    index = int(self.step.numpy())
    if self._batches is None:
      # From where the counter is: where a resumed run left off.
      self._batches = iter(self._train_shards.train_batches(
          self.config.loop.batch_size, self.config.seed, index,
          self.config.loop.num_steps))
    batch_index, codes, labels = next(self._batches)
    if int(batch_index) != index:
      raise RuntimeError(f"Batch {int(batch_index)} read at step counter {index}: "
                         "the counter must advance by one per train_step.")
    return self._train_step(batch_index, codes, labels)

  @tf.function
  def _train_step(self, index, codes, labels):
    seed = seeds_lib.step_seed(self.config.seed, seeds_lib.Stream.PRIOR_BATCHES, index)
    labels = self._labels(labels)

    def loss_fn():
      nll = tf.reduce_mean(training_loss(self.prior, codes, labels, seed))
      return nll, nll

    return optimization.minimize(self.optimizer, loss_fn, self.prior.trainable_variables)


def training_loss(prior, codes, labels, seed):
  """A training step's loss [B] in nats per image: -log p(codes) with dropout, or
  for a prior without an exact log p (MaskGIT) its masked NLL.

  Args:
    prior: a prior of `pixelcnn.build_prior`.
    codes: its codes, a batch.
    labels: int [B] labels, or None for a prior without classes.
    seed: the step's stateless seed [2] (dropout, masks).
  """
  if prior.exact_log_prob:
    dropout_seed = tf.random.experimental.stateless_fold_in(seed, 1)
    return -prior.log_prob(codes, labels, training=True, seed=dropout_seed)
  return prior.masked_nll(codes, seed, labels, training=True)


def evaluate_prior(prior, shards, batch_size, seed=0, any_order=False):
  """Mean -log p(codes) in nats per image over a split (for MaskGIT, the masked
  NLL, or with any_order its any-order NLL), batch by batch.

  Args:
    prior: a prior of `pixelcnn.build_prior`.
    shards: the split's `code_shards.CodeShards`.
    batch_size: examples per batch.
    seed: MaskGIT's masks (or orders) of batch i are drawn from (seed, i), the
      same at every evaluation.
    any_order: for MaskGIT, score the codes with `any_order_nll` instead.

  Returns:
    (the NLL, {part: its NLL} over the parts of `prior.level_sizes`, which sum
    to it ({} for the masked NLL), the mean recon NLL of the split's records or
    None if they have none).
  """
  if prior.exact_log_prob:
    def losses(codes, labels, unused_index):
      return {name: -log_prob for name, log_prob
              in prior.level_log_probs(codes, labels).items()}
  elif any_order:
    def losses(codes, labels, index):
      order_seed = seeds_lib.step_seed(seed, seeds_lib.Stream.PRIOR_ORDER, index)
      return {"any_order_nll": prior.any_order_nll(codes, order_seed, labels)}
  else:
    def losses(codes, labels, index):
      mask_seed = seeds_lib.step_seed(seed, seeds_lib.Stream.PRIOR_MASK, index)
      return {"masked_nll": prior.masked_nll(codes, mask_seed, labels)}
  losses = tf.function(losses)
  totals, recon = {}, []
  for index, batch in enumerate(shards.eval_batches(batch_size)):
    codes, labels = batch[:2]
    levels = losses(codes, labels if prior.num_classes else None, tf.constant(index))
    for name, nll in levels.items():
      totals[name] = totals.get(name, 0.0) + float(tf.reduce_sum(nll))
    if len(batch) > 2:
      recon.append(batch[2].numpy())
  level_nll = ({name: total / shards.num_rows for name, total in totals.items()}
               if prior.exact_log_prob else {})
  recon_nll = float(np.mean(np.concatenate(recon))) if recon else None
  return sum(totals.values()) / shards.num_rows, level_nll, recon_nll


def _check_labels(train_shards, eval_shards, num_classes):
  """Refuses a label outside [0, num_classes) in either split, in one line."""
  for flag, shards in (("--train_split", train_shards), ("--eval_split", eval_shards)):
    low, high = shards.label_range
    if high is not None and (low < 0 or high >= num_classes):
      label = high if high >= num_classes else low
      raise ValueError(f"--class_conditional: {flag} has label {label}, outside "
                       f"the data's {num_classes} classes [0, {num_classes}).")


def _load_or_encode(vqvae, vqvae_config, config, model_dir, key, num_classes):
  """The `CodeShards` of the (train, eval) codes of the frozen VQ-VAE, encoded
  into model_dir/codes-<key>/ unless they are there already.

  With num_classes > 0 (a class-conditional prior) every label is checked.
  """
  directory = os.path.join(model_dir, f"codes-{key}")
  if code_shards.is_complete(directory):
    logging.info("Codes from the cache %s.", directory)
  else:
    start = time.perf_counter()
    train_count, eval_count = encode_to_shards(vqvae, vqvae_config, config, directory)
    logging.info("Encoded %d train and %d eval images in %.1f s; cached in %s.",
                 train_count, eval_count, time.perf_counter() - start, directory)
  train_shards = code_shards.CodeShards(directory, data.TRAIN)
  eval_shards = code_shards.CodeShards(directory, data.EVAL)
  if num_classes:
    _check_labels(train_shards, eval_shards, num_classes)
  return train_shards, eval_shards


def _catch_up_with_best(trainer, best_path):
  """Takes the best NLL and its step from best_path when they are newer than the
  restored ones.

  A step's checkpoint is written before its evaluation, so a run stopped (or
  finished) after an evaluation that found a new best resumes with the best before
  it, while best/ holds the new one: without this, a resumed run would report the
  wrong best step and could replace best/ with a worse prior. A best/ checkpoint
  written before it held the best NLL is left as it is.
  """
  if best_path is None:
    return
  reader = tf.train.load_checkpoint(best_path)
  step_key, nll_key = (f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
                       for name in ("best_step", "best_nll"))
  if reader.has_tensor(step_key) and reader.get_tensor(step_key) > trainer.best_step:
    trainer.best_step.assign(reader.get_tensor(step_key))
    trainer.best_nll.assign(reader.get_tensor(nll_key))


def _check_or_write_config(model_dir, prior_config, key, vqvae_dir):
  """Refuses to resume a prior of another architecture or trained on other codes."""
  if tf.io.gfile.exists(os.path.join(model_dir, prior_lib.PRIOR_CONFIG_FILE)):
    saved, facts = prior_lib.read_config(model_dir)
    if saved != prior_config:
      raise ValueError(f"{model_dir} holds a prior with {saved}, not {prior_config}; "
                       "use another model_dir or the same prior options.")
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
    model_dir: directory for the code shards, checkpoints, best/, summaries and
      prior_metrics.json; created if missing.

  Returns:
    The metrics of the best checkpoint (also written to model_dir/prior_metrics.json).

  Raises:
    data.DatasetUnavailableError: if the data cannot be loaded.
    ValueError: if model_dir is a file or cannot be written, vqvae_dir is not a
      trained VQ-VAE, the prior flags do not fit
      its codes, model_dir holds a prior of another architecture or codes, or a
      class-conditional prior meets a label outside the data's classes.
  """
  checkpoints.check_output_directory(model_dir)
  vqvae, vqvae_config, vqvae_path = checkpoints.load_vqvae(vqvae_dir)
  classes = num_classes(config)
  prior_config = config.prior.architecture(vqvae.num_embeddings, vqvae.code_shape,
                                           classes, config.seed)
  # Built once before any work so that a bad architecture fails at once.
  probe = prior_lib.build_prior(prior_config)
  level_sizes, exact = probe.level_sizes, probe.exact_log_prob
  key = codes_key(vqvae, vqvae_config, config)
  logging.info("VQ-VAE %s; codes key %s.", vqvae_path, key)
  tf.io.gfile.makedirs(model_dir)
  _check_or_write_config(model_dir, prior_config, key, vqvae_dir)
  train_shards, eval_shards = _load_or_encode(vqvae, vqvae_config, config, model_dir,
                                              key, classes)

  loop_options = config.loop
  schedule = loop_lib.Schedule(loop_options.num_steps, loop_options.log_every,
                               loop_options.eval_every, loop_options.checkpoint_every,
                               loop_options.max_checkpoints)
  loop = loop_lib.Loop(model_dir, schedule)
  trainer = PriorTrainer(prior_config, config, train_shards, loop.step)
  loop.restore(prior=trainer.prior, optimizer=trainer.optimizer,
               best_nll=trainer.best_nll, best_step=trainer.best_step)
  best_manager = tf.train.CheckpointManager(
      trainer.best_checkpoint, os.path.join(model_dir, prior_lib.BEST_DIR), max_to_keep=1)
  _catch_up_with_best(trainer, best_manager.latest_checkpoint)

  # Bits per latent are per code: of every level, and every stage of residual codes.
  latents = sum(level_sizes.values())
  bits = latents * math.log(2.0)
  parts = level_sizes if len(level_sizes) > 1 and exact else {}
  # What the loss is called in logs and summaries; MaskGIT's is no bound.
  loss_key = "prior_nll" if exact else "masked_nll"

  def describe(nll):
    nll = float(nll)
    if not exact:
      return f"masked NLL {nll:.2f} nats (not a bound)"
    return f"prior NLL {nll:.2f} nats ({nll / bits:.3f} bits/latent)"

  def train_scalars(step, nll, unused_rate):
    with loop.train_writer.as_default(step=step):
      tf.summary.scalar(f"{loss_key}_nats", float(nll))

  def run_eval(step):
    nll, part_nll, _ = evaluate_prior(trainer.prior, eval_shards,
                                      loop_options.eval_batch_size, config.seed)
    if nll < trainer.best_nll.numpy():
      trainer.best_nll.assign(nll)
      trainer.best_step.assign(step)
      best_manager.save(checkpoint_number=step)
    with loop.eval_writer.as_default(step=step):
      tf.summary.scalar(f"{loss_key}_nats", nll)
      tf.summary.scalar(f"best_{loss_key}_nats", trainer.best_nll.numpy())
      if exact:
        tf.summary.scalar("prior_bits_per_latent", nll / bits)
      for name in parts:
        tf.summary.scalar(f"{name}_prior_nll_nats", part_nll[name])
    logging.info("Eval at step %d on %s: %s%s; best %.2f at step %d.", step,
                 config.data.eval_split, describe(nll),
                 "".join(f"; {name} {part_nll[name]:.2f}" for name in parts),
                 trainer.best_nll.numpy(), int(trainer.best_step.numpy()))

  loop.run(lambda step: trainer.train_step(), describe, run_eval, on_log=train_scalars)
  if best_manager.latest_checkpoint is None:
    run_eval(int(loop.step.numpy()))  # A run resumed at its last step, never evaluated.

  best_prior, _ = prior_lib.load_prior(model_dir, vqvae)
  prior_nll, part_nll, recon_nll = evaluate_prior(
      best_prior, eval_shards, loop_options.eval_batch_size, config.seed)
  uniform_nll = latents * math.log(vqvae.num_embeddings)
  metrics = {
      "prior": config.prior.name,
      "step": int(loop.step.numpy()),
      "best_step": int(trainer.best_step.numpy()),
      "uniform_bits_per_latent": math.log2(vqvae.num_embeddings),
      "recon_nll_nats": recon_nll,
      "neg_elbo_uniform_prior_nats": recon_nll + uniform_nll,
      "class_conditional": bool(classes),
      "num_embeddings": vqvae.num_embeddings,
      "eval_examples": eval_shards.num_rows,
      "train_seconds": float(loop.train_seconds.numpy()),
  }
  if not exact:
    metrics["masked_nll_nats_per_image"] = prior_nll
    logging.info("Best prior (step %d): masked NLL %.2f nats, not a bound (the "
                 "uniform prior's bound is %.2f nats).", metrics["best_step"], prior_nll,
                 metrics["neg_elbo_uniform_prior_nats"])
    if config.prior.any_order_eval:
      logging.info("Scoring it in a random order per image on %s (a pass of the "
                   "network per position of the codes, per batch) ...",
                   config.data.eval_split)
      any_order_nll, _, _ = evaluate_prior(best_prior, eval_shards,
                                           loop_options.eval_batch_size, config.seed,
                                           any_order=True)
      metrics.update(any_order_nll_nats_per_image=any_order_nll,
                     neg_elbo_any_order_prior_nats=recon_nll + any_order_nll)
      logging.info("Any-order NLL %.2f nats: a bound for the network read as an "
                   "autoregressive model in random orders, not for MaskGIT's "
                   "sampler; -ELBO %.2f nats with it.", any_order_nll,
                   metrics["neg_elbo_any_order_prior_nats"])
    loop.write_results(METRICS_FILE, metrics)
    return metrics
  metrics.update(prior_nll_nats_per_image=prior_nll,
                 prior_bits_per_latent=prior_nll / bits,
                 neg_elbo_learned_prior_nats=recon_nll + prior_nll)
  if parts:
    # Levels of VQ-VAE-2 or stages of residual codes, summing to the totals above.
    metrics["latents_per_image"] = latents
    for name, size in parts.items():
      metrics[f"{name}_prior_nll_nats_per_image"] = part_nll[name]
      metrics[f"{name}_prior_bits_per_latent"] = part_nll[name] / (size * math.log(2.0))
  logging.info("Best prior (step %d): NLL %.2f nats (%.3f bits/latent, uniform %.3f); "
               "-ELBO %.2f nats with it, %.2f with the uniform prior.",
               metrics["best_step"], prior_nll, metrics["prior_bits_per_latent"],
               metrics["uniform_bits_per_latent"], metrics["neg_elbo_learned_prior_nats"],
               metrics["neg_elbo_uniform_prior_nats"])
  loop.write_results(METRICS_FILE, metrics)
  return metrics
