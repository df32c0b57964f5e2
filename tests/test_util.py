"""Shared test helpers: paths, the smoke config, a tiny trained model_dir."""

import functools
import json
import os
import subprocess
import sys

from absl import flags
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.configs import flags as config_flags
from tfp_vqvae.data import code_shards
from tfp_vqvae.models import builder
from tfp_vqvae.training import vqvae_trainer as train_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS_DIR = os.path.join(ROOT, "flags")
SMOKE_FLAGS = os.path.join(FLAGS_DIR, "smoke.cfg")
# The official KMNIST test split shipped beside the repository (absent elsewhere).
KMNIST_DIR = os.path.join(ROOT, "..", "shared", "data", "kmnist")


@functools.lru_cache(maxsize=None)
def run_json_program(name: str) -> dict:
  """What the program tests/`name` prints as its last line (JSON), run once per
  test process in a fresh Python (e.g. to configure logical devices first).

  Raises:
    AssertionError: with the end of its stderr, if the program fails.
  """
  result = subprocess.run([sys.executable, os.path.join(ROOT, "tests", name)],
                          capture_output=True, text=True, timeout=900)
  if result.returncode:
    raise AssertionError(f"{name} failed:\n{result.stderr[-4000:]}")
  return json.loads(result.stdout.strip().splitlines()[-1])


def tiny_vqvae(image_shape, data_variance=1.0, **overrides):
  """A tiny `VQVAE` (8 hidden channels, K=5 codes of D=3) built from a `Config`."""
  sizes = dict(num_hiddens=8, num_residual_hiddens=4, num_residual_layers=1,
               embedding_dim=3, num_embeddings=5, num_downsamples=2)
  sizes.update(overrides)
  if sizes.get("likelihood", "bernoulli") != "bernoulli":
    sizes.setdefault("binarize", "none")
  return builder.build_vqvae(config_lib.Config.from_fields(**sizes), image_shape,
                             data_variance)


def variables_without_gradient(model, images) -> list:
  """Names of `model`'s trainable variables whose gradient of the mean training
  loss on `images` is missing or all zero."""
  with tf.GradientTape() as tape:
    loss = tf.reduce_mean(model.loss_terms(images, training=True).loss)
  gradients = tape.gradient(loss, model.trainable_variables)
  return [variable.name for variable, gradient in zip(model.trainable_variables, gradients)
          if gradient is None or not np.any(tf.convert_to_tensor(gradient))]


def flagfile_config(path, **overrides):
  """The Config the training CLI parses from the flagfile `path`, with `overrides`."""
  flag_values = flags.FlagValues()
  config_flags.define_config_flags(flag_values)
  flag_values(["train", "--flagfile", path])
  return config_flags.config_from_flags(flag_values).override(**overrides)


def smoke_config(**overrides):
  """The Config that flags/smoke.cfg (which the CLI tests use too) parses to."""
  return flagfile_config(SMOKE_FLAGS, **overrides)


def train_tiny_model(model_dir, **overrides):
  """Trains flags/smoke.cfg's model for a few steps on mock KMNIST into model_dir;
  returns its metrics."""
  config = smoke_config(**dict(dict(num_steps=4, eval_every=4, checkpoint_every=4),
                               **overrides))
  with tfds.testing.mock_data(num_examples=32):
    return train_lib.train_and_evaluate(config, model_dir)


def write_code_shards(directory, splits, rows_per_shard=None, labels=None):
  """Writes {split: codes} (an array [n, ...], or a dict of them per level) as
  `code_shards` with labels `labels[split]` (default 0) and recon NLLs i / 2 on
  "eval"; returns the `CodeShards` of "train" and "eval"."""
  entries = {}
  for split, codes in splits.items():
    with_recon = split == "eval"
    shape = ({name: level.shape[1:] for name, level in codes.items()}
             if isinstance(codes, dict) else codes.shape[1:])
    columns = dict(codes) if isinstance(codes, dict) else {"codes": codes}
    count = len(next(iter(columns.values())))
    columns[code_shards.LABEL] = (np.zeros(count, np.int32) if labels is None
                                  else labels[split])
    if with_recon:
      columns[code_shards.RECON_NLL] = np.arange(count, dtype=np.float32) / 2
    writer = code_shards.ShardWriter(directory, split,
                                     code_shards.record_dtype(shape, with_recon),
                                     rows_per_shard)
    writer.write(**columns)
    entries[split] = writer.close()
  code_shards.write_index(directory, entries)
  return tuple(code_shards.CodeShards(directory, split) for split in ("train", "eval"))
