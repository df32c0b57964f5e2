"""What a checkpoint carries besides weights, restoring with a clear error, and loading.

A VQ-VAE checkpoint holds, next to the model and optimizer, a `record`: the JSON of
the `Config` the model was built from and the image shape, so a checkpoint alone
says how to rebuild its model (`load_vqvae`), and the export copies it into the
SavedModel's assets. Restoring a checkpoint that does not match the program (one
written before a variable was added, or by another architecture) ends in one
`ValueError` naming what does not match and what to do, not a page of TF errors.
"""

import json
import os
import re
from typing import Optional

import tensorflow as tf

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.configs import fields
from tfp_vqvae.models import builder
from tfp_vqvae.models import vqvae as model_lib

# The checkpoint key of the `record` string variable of a tf.train.Checkpoint.
_RECORD_KEY = "record/.ATTRIBUTES/VARIABLE_VALUE"


def check_output_directory(path: str, argument: str = "model_dir") -> None:
  """Checks that directory `path` is, or can be made, a directory files can be written in.

  Called before the data is read, so a bad path costs seconds, not a run; nothing
  is created (a probe file in the nearest existing directory is written and removed).

  Raises:
    fields.InvalidOptionError: naming `argument`, if `path` or a parent of it is a
      file, or the nearest existing directory cannot be written (read-only, ...).
  """
  existing = path
  while not tf.io.gfile.exists(existing):
    parent = os.path.dirname(existing.rstrip("/")) or "."
    if parent == existing:
      break
    existing = parent
  if not tf.io.gfile.isdir(existing):
    raise fields.InvalidOptionError(
        argument, path, "is a file, not a directory." if existing == path
        else f"cannot be made: {existing} is a file.")
  probe = os.path.join(existing, f".write_check_{os.getpid()}")
  try:
    with tf.io.gfile.GFile(probe, "w") as f:
      f.write("")
    tf.io.gfile.remove(probe)
  except tf.errors.OpError as error:
    raise fields.InvalidOptionError(
        argument, path, f"cannot be written ({error.message}).") from None


def make_record(config: config_lib.Config, image_shape) -> str:
  """The JSON record of a VQ-VAE: its config and image shape."""
  return json.dumps({"config": json.loads(config.to_json()),
                     "image_shape": [int(s) for s in image_shape]}, sort_keys=True)


def parse_record(text: str) -> tuple[config_lib.Config, tuple[int, ...]]:
  """(Config, image shape) of a `make_record` JSON.

  Raises:
    ValueError: if the record is not one.
  """
  try:
    record = json.loads(text)
    config = config_lib.Config.from_json(json.dumps(record["config"]))
    return config, tuple(int(s) for s in record["image_shape"])
  except (KeyError, TypeError, json.JSONDecodeError) as error:
    raise ValueError(f"not a tfp_vqvae model record ({error})") from error


def read_record(path: str) -> Optional[str]:
  """The record stored in the checkpoint `path`, or None if it has none."""
  reader = tf.train.load_checkpoint(path)
  if not reader.has_tensor(_RECORD_KEY):
    return None
  value = reader.get_tensor(_RECORD_KEY)
  return value.decode() if isinstance(value, bytes) else str(value)


def _unmatched_names(message: str) -> list[str]:
  """Variable names quoted in a TF restore error, e.g. 'quantizer/num_updates'."""
  return sorted(set(re.findall(r"'([^':]+):\d+'", message)))


def restore(checkpoint: tf.train.Checkpoint, path: str, model_dir: str,
            partial: bool = False) -> None:
  """Restores `path` into `checkpoint`; every object the program has must match.

  Args:
    checkpoint: the program's checkpoint (model, optimizer, counters).
    path: a checkpoint path, e.g. `tf.train.latest_checkpoint(model_dir)`.
    model_dir: the directory it came from, for the message.
    partial: allow the checkpoint to hold more than `checkpoint` (an exporter
      restores the model without the optimizer).

  Raises:
    ValueError: one line naming the mismatch and what to do.
  """
  try:
    status = checkpoint.read(path) if partial else checkpoint.restore(path)
    status.assert_existing_objects_matched()
    if partial:
      status.expect_partial()
  except (AssertionError, ValueError, tf.errors.OpError) as error:
    names = _unmatched_names(str(error))
    what = (f"it lacks {', '.join(names[:4])}" + (" ..." if len(names) > 4 else "")
            if names else str(error).strip().splitlines()[0])
    raise ValueError(
        f"{model_dir} holds a checkpoint ({os.path.basename(path)}) that this version "
        f"of tfp_vqvae cannot restore: {what}. It was written by another version or "
        "with other architecture flags: train in a new --model_dir, or use the "
        "version and flags that wrote it.") from error


def load_vqvae(model_dir: str) -> tuple[model_lib.VQVAE, config_lib.Config, str]:
  """Rebuilds the VQ-VAE of a model_dir from its latest checkpoint's record.

  The optimizer state, which inference does not need, is not restored.

  Returns:
    (VQVAE, its Config, checkpoint path).

  Raises:
    ValueError: if model_dir holds no checkpoint, one this version cannot use, or
      one with non-finite weights.
  """
  path = tf.train.latest_checkpoint(model_dir)
  if path is None:
    raise ValueError(f"{model_dir} holds no checkpoint to load: is it a tfp_vqvae "
                     "model_dir of a run that reached its first checkpoint?")
  text = read_record(path)
  if text is None:
    raise ValueError(f"{model_dir} holds a checkpoint ({os.path.basename(path)}) "
                     "without a model record: it was written by an older version of "
                     "tfp_vqvae; retrain it with this version or use the old one.")
  config, image_shape = parse_record(text)
  model = builder.build_vqvae(config, image_shape)
  restore(tf.train.Checkpoint(model=model), path, model_dir, partial=True)
  check_finite(model, f"{model_dir} ({os.path.basename(path)})")
  return model, config, path


def non_finite_variable(module: tf.Module) -> Optional[str]:
  """The name of the first floating variable of `module` with a NaN or inf, or None."""
  for variable in module.variables:
    if variable.dtype.is_floating and not bool(tf.reduce_all(tf.math.is_finite(variable))):
      return variable.name
  return None


def check_finite(module: tf.Module, where: str) -> None:
  """Raises ValueError naming the first variable of `module` with a NaN or inf.

  A model that served such weights would answer every request with NaNs; training
  never checkpoints them (training/loop.py), but a checkpoint may come from
  elsewhere.
  """
  name = non_finite_variable(module)
  if name is not None:
    raise ValueError(f"{where} holds non-finite values (NaN or inf) in {name}: the "
                     "model diverged; retrain it (e.g. with a lower learning rate) or "
                     "use an earlier checkpoint.")
