r"""Input pipeline benchmark: images/s of the pipeline vs of the train step, peak RSS.

    python -m tfp_vqvae.data_benchmark --flagfile flags/kmnist.cfg --images 2000 \
      --image_size 28 --channels 1
    python -m tfp_vqvae.data_benchmark --flagfile flags/folder64.cfg --images 2000 \
      --image_size 64 --channels 3 --train_steps 50

writes a folder of `--images` random PNG (or JPEG) images, of the training size or
of --stored_size (in --folder, reused if it already holds them, else a temporary
directory), then measures, one after the other on the
same process: the training pipeline alone (`ImageData.train_batches` of the
flagfile's batch size and --binarize, after `--warmup_batches`), and the train step
alone on one fixed batch (the flagfile's model). With `--train_steps N` it then
trains N steps on the folder with `train_lib.train_and_evaluate` and reports the
process's peak RSS, to compare folders of different sizes. One JSON line on stdout.
"""

import json
import os
import resource
import tempfile
import time

from absl import flags
import numpy as np

from tfp_vqvae.configs import flags as config_flags
from tfp_vqvae.configs.data import parse_image_size
from tfp_vqvae.internal import cli

_IMAGES = flags.DEFINE_integer("images", 2000, "Images in the generated folder.")
_FOLDER = flags.DEFINE_string("folder", "", "Where to write (or find) the images; "
                              "empty: a temporary directory.")
_STORED_SIZE = flags.DEFINE_string("stored_size", "", "H,W of the generated images "
                                   "(empty: --image_size's), e.g. 218,178 for "
                                   "CelebA-sized photos to resize.")
_FORMAT = flags.DEFINE_enum("format", "png", ["png", "jpg"], "File format to write.")
_BATCHES = flags.DEFINE_integer("batches", 100, "Batches to time in the pipeline.")
_WARMUP = flags.DEFINE_integer("warmup_batches", 10, "Batches read before timing.")
_STEPS = flags.DEFINE_integer("steps", 20, "Train steps to time on a fixed batch.")
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 0, "Steps of a full training run "
                                    "on the folder (0: none), for the peak RSS.")


def write_folder(root: str, count: int, height: int, width: int, channels: int,
                 file_format: str = "png") -> str:
  """Writes `count` random uint8 images to root/train (and 64 to root/test) as
  `file_format` (png or jpg)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  encode = tf.io.encode_png if file_format == "png" else tf.io.encode_jpeg
  rng = np.random.default_rng(0)
  for split, number in (("train", count), ("test", 64)):
    directory = os.path.join(root, split)
    if os.path.isdir(directory) and len(os.listdir(directory)) == number:
      continue
    os.makedirs(directory, exist_ok=True)
    for i in range(number):
      image = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
      with open(os.path.join(directory, f"{i:07d}.{file_format}"), "wb") as f:
        f.write(encode(image).numpy())
  return root


def _rate(iterator, count: int, per_item: int) -> float:
  start = time.perf_counter()
  for _ in range(count):
    next(iterator)
  return count * per_item / (time.perf_counter() - start)


def main(argv):
  cli.check_no_arguments(argv)
  config = cli.exit_on_error(config_flags.config_from_flags)
  cli.start_tensorflow("Benchmarking the input pipeline")
  # pylint: disable=g-import-not-at-top
  from tfp_vqvae.data import pipeline as data
  from tfp_vqvae.training import vqvae_trainer as train_lib

  height, width = parse_image_size(config.data.image_size) or (28, 28)
  channels = config.data.channels or 1
  root = _FOLDER.value or tempfile.mkdtemp(prefix="data_benchmark_")
  stored_h, stored_w = (parse_image_size(_STORED_SIZE.value)
                        or (height, width))
  write_folder(root, _IMAGES.value, stored_h, stored_w, channels, _FORMAT.value)
  config = config.override(dataset=f"folder:{root}", dataset_dir=None,
                           train_split="train", eval_split="test",
                           image_size=f"{height},{width}", channels=channels)
  image_data = data.open_data(**config.data.to_record())
  batch_size, training = config.loop.batch_size, config.training
  batches = iter(image_data.train_batches(batch_size, config.seed, training.binarize,
                                          random_crop=training.random_crop,
                                          random_flip=training.random_flip))
  for _ in range(_WARMUP.value):
    next(batches)
  pipeline = _rate(batches, _BATCHES.value, batch_size)
  trainer = train_lib.Trainer(config, image_data.image_shape)
  _, batch = next(batches)
  fixed = iter(lambda: trainer.train_step(batch), None)
  next(fixed)  # Traces the step.
  step = _rate(fixed, _STEPS.value, batch_size)
  result = {"images": _IMAGES.value, "image_shape": list(image_data.image_shape),
            "batch_size": batch_size, "pipeline_images_per_s": round(pipeline, 1),
            "train_step_images_per_s": round(step, 1),
            "pipeline_over_train_step": round(pipeline / step, 2)}
  if _TRAIN_STEPS.value:
    model_dir = tempfile.mkdtemp(prefix="data_benchmark_run_")
    run_config = config.override(num_steps=_TRAIN_STEPS.value,
                                 eval_every=_TRAIN_STEPS.value,
                                 checkpoint_every=_TRAIN_STEPS.value)
    train_lib.train_and_evaluate(run_config, model_dir)
    # ru_maxrss is in KiB on Linux.
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
  print(json.dumps(result))


if __name__ == "__main__":
  config_flags.define_config_flags()
  config_flags.add_help_group("benchmark", ["images", "folder", "stored_size", "format",
                                            "batches", "warmup_batches", "steps",
                                            "train_steps"])
  cli.run(main, __doc__)
