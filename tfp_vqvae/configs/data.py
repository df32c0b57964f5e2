"""Which images a run reads (`DataOptions`) and how its loop runs (`LoopOptions`):
the options the VQ-VAE trainer and the prior trainer share."""

import dataclasses
from typing import Optional

from tfp_vqvae.configs import fields

# The data options that say which images to read and how to shape them.
SOURCE_FIELDS = ("dataset", "dataset_dir", "data_dir", "image_size", "channels",
                 "image_key", "label_key")
FOLDER_PREFIX = "folder:"
TFRECORD_PREFIX = "tfrecord:"


def check_dataset(value: str) -> Optional[str]:
  """The problem with a `dataset` value as a sentence, or None if well formed.

  Only the spelling is checked here; whether the data exists is checked when it
  is opened.
  """
  if not isinstance(value, str) or not value.strip():
    return "must be a TFDS name, folder:DIR or tfrecord:GLOB"
  for prefix, what in ((FOLDER_PREFIX, "directory"), (TFRECORD_PREFIX, "glob")):
    if value.startswith(prefix) and not value[len(prefix):].strip():
      return f"{prefix} must be followed by a {what}"
  return None


def parse_image_size(text: str) -> Optional[tuple[int, int]]:
  """Parses `image_size`: "" -> None (as stored), "64" -> (64, 64), "128,96" -> (128, 96).

  Raises:
    InvalidOptionError: if `text` is not one or two positive integers.
  """
  text = (text or "").strip()
  if not text:
    return None
  parts = [part.strip() for part in text.split(",")]
  if len(parts) in (1, 2) and all(part.isdigit() and int(part) > 0 for part in parts):
    return int(parts[0]), int(parts[-1])
  raise fields.InvalidOptionError("image_size", text, _IMAGE_SIZE.message)


def _is_image_size(value):
  try:
    parse_image_size(value)
  except (ValueError, AttributeError):
    return False
  return isinstance(value, str)


_DATASET = fields.Rule(lambda v: check_dataset(v) is None,
                       "must be a TFDS name, folder:DIR or tfrecord:GLOB")
_SPLIT = fields.Rule(lambda v: isinstance(v, str) and bool(v.strip()),
                     "must be a non-empty TFDS split, e.g. test[:9000]")
_CHANNELS = fields.Rule(lambda v: fields.is_int(v) and v in (0, 1, 3),
                        "must be 1 (grey), 3 (RGB) or 0 (as stored)")
_IMAGE_SIZE = fields.Rule(_is_image_size, "must be N or H,W with positive integers, "
                          "e.g. 64 or 128,96, or empty")


@dataclasses.dataclass(frozen=True)
class DataOptions(fields.Options):
  """The images of a run: the dataset, its splits and how they are read."""
  dataset: str = fields.field(
      "kmnist", _DATASET,
      "Images to train on: a TFDS name[/config] (kmnist, celeb_a, "
      "imagenet_resized/64x64, ...), folder:DIR (image files; splits are DIR's "
      "train/test/validation sub-folders, else DIR is train) or tfrecord:GLOB "
      "(tf.train.Examples with encoded images; {split} in GLOB names splits). "
      "kmnist, mnist and fashion_mnist read --dataset_dir if set.")
  dataset_dir: Optional[str] = fields.field(
      None, fields.EXISTING_DIR_OR_UNSET,
      "Directory with the official dataset files (idx/idx.gz, or the KMNIST npz). "
      "If unset, the data comes from TFDS.")
  data_dir: Optional[str] = fields.field(
      None, None, "TFDS data directory (where TFDS downloads and prepares datasets).")
  train_split: str = fields.field(
      "train", _SPLIT, "Training split, TFDS slicing syntax, e.g. train or test[:9000].")
  eval_split: str = fields.field(
      "test", _SPLIT, "Evaluation split, TFDS slicing syntax, e.g. test or test[9000:].")
  image_size: str = fields.field(
      "", _IMAGE_SIZE,
      "N or H,W: scale each image to cover H x W (shorter side first), then crop the "
      "centre. Empty: as stored (the first training image's size if they differ).")
  channels: int = fields.field(
      0, _CHANNELS,
      "1 (grey) or 3 (RGB), converting images that differ; 0: as stored (the first "
      "training image's).")
  image_key: str = fields.field(
      "", None,
      "Image feature of TFDS or TFRecord data; empty: image for TFDS, image/encoded "
      "or else image for TFRecords.")
  label_key: str = fields.field(
      "", None,
      "Int label feature of TFDS or TFRecord data; empty: label for TFDS, "
      "image/class/label or else label for TFRecords, if present.")
  skip_corrupt_images: bool = fields.field(
      False, fields.BOOL,
      "Decode every image once at start and leave out (and count) those that cannot "
      "be decoded, instead of stopping at the first with its file name.")


@dataclasses.dataclass(frozen=True)
class LoopOptions(fields.Options):
  """Steps, cadence, batch and optimiser of a training loop."""
  batch_size: int = fields.field(64, fields.POSITIVE_INT, "Global training batch size.")
  learning_rate: float = fields.field(3e-4, fields.POSITIVE, "Adam learning rate.")
  cosine_decay: bool = fields.field(
      False, fields.BOOL,
      "Decay the learning rate along a half cosine from --learning_rate at step 0 to 0 "
      "at --num_steps (Loshchilov & Hutter 2017); off: constant.")
  num_steps: int = fields.field(
      30000, fields.POSITIVE_INT,
      "Total training steps (a resumed run continues up to this).")
  seed: int = fields.field(
      0, fields.NON_NEGATIVE_INT,
      "Seed of initialisation, data order, binarisation and code re-seeding.")
  log_every: int = fields.field(
      100, fields.POSITIVE_INT, "Steps between progress lines and training summaries.")
  eval_every: int = fields.field(
      2000, fields.POSITIVE_INT, "Steps between evaluations on --eval_split.")
  checkpoint_every: int = fields.field(
      500, fields.POSITIVE_INT, "Steps between checkpoints.")
  max_checkpoints: int = fields.field(3, fields.POSITIVE_INT, "Checkpoints to keep.")
  eval_batch_size: int = fields.field(
      500, fields.POSITIVE_INT, "Batch size for evaluation.")

  def decay_steps(self) -> int:
    """Steps of the learning rate's cosine decay; 0: constant."""
    return self.num_steps if self.cosine_decay else 0
