"""Trains every quantizer of tests/quantizer_family.py on one device and on two
replicas (MirroredStrategy over 2 logical CPUs) and prints one JSON line comparing them.

Run by tests/quantizer_contract_test.py in a fresh process: logical devices must be
configured before the TensorFlow runtime starts. Each member makes three training
calls on global batches of 2 * GROUP images, split GROUP per replica (replica r holds
rows [r * GROUP, (r + 1) * GROUP), as distribute.py lays them out). With the EMA
members summing in reduction groups of GROUP images, and the loss members' state set
only from rows of the global batch, one device and two replicas should compute the
same bits (the grid members' only state, their projections, is not changed by a
quantizer call; their code counts are all-reduced), so the report holds exact
equalities:

  {member: {"replicas_equal": ..., "codes_equal": ..., "counts_equal": ...,
            "state_equal": ..., "max_difference": ..., "loss_difference": ...,
            "updates": ...}}
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf

_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

# The package of this checkout, not an installed one.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import quantizer_family as family  # pylint: disable=g-import-not-at-top,wrong-import-position

_STEPS = 3


def _batches():
  rng = np.random.default_rng(0)
  return [rng.normal(size=(2 * family.GROUP, 3, 3, family.D)).astype(np.float32)
          for _ in range(_STEPS)]


def _train(strategy, member):
  """The quantizer after one training call per global batch, and for each call the
  global batch's codes and per-example losses, and each replica's code counts (of
  the global batch)."""
  with strategy.scope():
    quantizer = member.make()

  @tf.function
  def step(inputs):
    def replica_step(x):
      out = family.output(quantizer, x, training=True)
      return out.codes, out.commitment_loss, out.code_counts
    return strategy.run(replica_step, args=(inputs,))

  # Each element is one global batch, split across the replicas.
  dataset = tf.data.Dataset.from_tensor_slices(np.stack(_batches()))
  codes, losses, counts = [], [], []
  for batch in strategy.experimental_distribute_dataset(dataset):
    batch_codes, batch_losses, batch_counts = step(batch)
    codes.append(np.concatenate(strategy.experimental_local_results(batch_codes)))
    losses.append(np.concatenate(strategy.experimental_local_results(batch_losses)))
    counts.append(strategy.experimental_local_results(batch_counts))
  return quantizer, codes, losses, counts


def _compare(member, mirrored_strategy):
  single, single_codes, single_losses, single_counts = _train(
      tf.distribute.OneDeviceStrategy("/cpu:0"), member)
  mirrored, mirrored_codes, mirrored_losses, mirrored_counts = _train(mirrored_strategy,
                                                                      member)
  replicas_equal, state_equal, max_difference = True, True, 0.0
  for one, two in zip(family.state(single), family.state(mirrored)):
    replicas = [value.numpy() for value in two.values]
    assert len(replicas) == 2, two
    replicas_equal &= bool(np.array_equal(replicas[0], replicas[1]))
    state_equal &= bool(np.array_equal(replicas[0], one.numpy()))
    if one.dtype.is_floating:
      max_difference = max(max_difference,
                           float(np.abs(replicas[0] - one.numpy()).max()))
  updates = int(single.num_updates.numpy())
  return dict(replicas_equal=replicas_equal, state_equal=state_equal,
              codes_equal=all(np.array_equal(a, b)
                              for a, b in zip(single_codes, mirrored_codes)),
              counts_equal=all(np.array_equal(one[0], replica)
                               for one, two in zip(single_counts, mirrored_counts)
                               for replica in two),
              max_difference=max_difference,
              # Close, not equal: LFQ's loss has sums over the global batch.
              loss_difference=max(float(np.abs(a - b).max())
                                  for a, b in zip(single_losses, mirrored_losses)),
              updates=updates)


def main():
  # One MirroredStrategy for all members: several in one process can mismatch
  # their collective keys.
  strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  report = {name: _compare(member, strategy)
            for name, member in family.MEMBERS.items()}
  print(json.dumps(report))


if __name__ == "__main__":
  main()
