"""tf.distribute plumbing: strategies and per-replica input (training/loop.py: chief-only writes).

`--strategy` picks one of:
  default       one device (the GPU if there is one, else the CPU);
  mirrored      all local GPUs (or CPUs) of one machine, synchronous;
  multi_worker  MirroredStrategy across machines, configured by TF_CONFIG;
  tpu           a Cloud TPU named by --tpu.

The global batch (`--batch_size`) is split evenly across replicas. Each input
pipeline (one per worker) computes the same global batch and keeps its slice; each
replica then takes its consecutive part, so replica r holds global rows
[r * b, (r + 1) * b) of the batch. The quantizer relies on that order to draw its
re-seeding candidates from the global batch identically on every replica.
"""

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name, tpu=None):
  """Creates the `tf.distribute.Strategy` called `name` (one of `STRATEGIES`).

  Args:
    name: strategy name.
    tpu: TPU name or grpc:// address for `name="tpu"` ("" or "local" for a TPU VM).

  Raises:
    ValueError: for an unknown name.
  """
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == "tpu":
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  raise ValueError(f"Unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}.")


def check_batch_size(batch_size, strategy, group_size=0):
  """Raises ValueError unless the global batch splits evenly across replicas, and
  each replica's share, if larger than `group_size` > 0, into groups of that size."""
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise ValueError(f"batch_size={batch_size} must be a multiple of the number of "
                     f"replicas ({replicas}).")
  per_replica = batch_size // replicas
  if per_replica > group_size > 0 and per_replica % group_size:
    raise ValueError(f"The per-replica batch ({per_replica} = batch_size / "
                     f"{replicas} replicas) must be a multiple of "
                     f"reduction_group_size={group_size}.")


def distributed_train_batches(strategy, image_data, batch_size, seed, binarize_mode,
                              start_step, random_crop=False, random_flip=False):
  """Per-replica training batches of the global batch stream, from `start_step` on.

  Args:
    strategy: the `tf.distribute.Strategy`.
    image_data: a `data.ImageData`; each input pipeline reads only its slice of
      every global batch.
    batch_size, seed, binarize_mode, start_step, random_crop, random_flip: as
      for `data.ImageData.train_batches`.
  """
  check_batch_size(batch_size, strategy)

  def dataset_fn(context):
    shard = image_data.train_batches(batch_size, seed, binarize_mode,
                                     start_step=start_step,
                                     num_shards=context.num_input_pipelines,
                                     shard_index=context.input_pipeline_id,
                                     random_crop=random_crop, random_flip=random_flip)
    # One element per local replica, in replica order.
    return (shard.map(lambda step, batch: batch)
            .rebatch(context.get_per_replica_batch_size(batch_size)))

  options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
  return strategy.distribute_datasets_from_function(dataset_fn, options)
