"""Trains the smoke model with a global batch of 16 under a strategy.

    python tests/programs/train_under_strategy.py MODEL_DIR STRATEGY STEPS GROUP_SIZE \
        [SOURCE [OVERRIDES]]

STRATEGY is default, mirrored (2 logical CPUs of this process) or multi_worker
(TF_CONFIG); GROUP_SIZE is --reduction_group_size; SOURCE is "mock" (the default:
48 examples of TFDS mock data) or a --dataset value, e.g. folder:DIR with train/
and test/ sub-folders; OVERRIDES a JSON object of other config fields (e.g.
{"top_downsamples": 1, "pad_to": 32} for VQ-VAE-2). Logical devices and TF_CONFIG
must be set before the TensorFlow runtime starts, hence a process of its own.
Prints "REPLICAS n USED k" at the end.
"""

import contextlib
import json
import os
import sys

import tensorflow as tf

_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# tests/ for test_util, and this checkout's tfp_vqvae before any installed copy
# (an editable install may point at another worktree).
sys.path[:0] = [_TESTS, os.path.dirname(_TESTS)]


def main(argv):
  model_dir, strategy_name, steps, group_size = argv[1], argv[2], int(argv[3]), int(argv[4])
  source = argv[5] if len(argv) > 5 else "mock"
  overrides = json.loads(argv[6]) if len(argv) > 6 else {}
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds
  import test_util
  from tfp_vqvae.internal import distribute
  from tfp_vqvae.training import vqvae_trainer as train_lib

  if strategy_name == "mirrored":
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  else:
    strategy = distribute.make_strategy(strategy_name)
  data = {} if source == "mock" else dict(dataset=source)
  config = test_util.smoke_config(
      num_steps=steps, batch_size=16, binarize="dynamic", checkpoint_every=3,
      eval_every=1000, dead_code_threshold=0.5, strategy=strategy_name,
      reduction_group_size=group_size, **data, **overrides)
  with (tfds.testing.mock_data(num_examples=48) if source == "mock"
        else contextlib.nullcontext()):
    metrics = train_lib.train_and_evaluate(config, model_dir, strategy)
  print("REPLICAS", strategy.num_replicas_in_sync, "USED", metrics["codes_used"])


if __name__ == "__main__":
  main(sys.argv)
