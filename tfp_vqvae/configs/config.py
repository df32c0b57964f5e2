"""Training configuration: the `Config` dataclass and the command-line flags behind it.

Every field of `Config` is a flag of the same name. A field is declared once, with
its default, its group, the rule its values obey and its help text; the flags,
their validators, `Config.__post_init__` (so library users get the same
`ValueError` a bad flag gives) and the lists of fields other programs share all
follow from that one declaration. No flag is required at import time.

Groups: `DATA` (which images; shared with the prior trainer), `ARCHITECTURE` (what
a checkpoint's variables mean: a run resumes only with the same values),
`TRAINING` (how the VQ-VAE is trained), `LOOP` (steps, cadence, batch, optimiser;
shared with the prior trainer) and `DISTRIBUTION`.
"""

import dataclasses
import json
import os
from typing import Any, Callable, NamedTuple, Optional

from absl import flags

from tfp_vqvae.data import pipeline as data
from tfp_vqvae.data import preprocessing
from tfp_vqvae.data import sources as image_sources
from tfp_vqvae.internal import distribute
from tfp_vqvae.models import builder

DTYPES = ("float32", "bfloat16", "float16")
DATA = "data"
ARCHITECTURE = "architecture"
TRAINING = "training"
LOOP = "loop"
DISTRIBUTION = "distribution"


class _Rule(NamedTuple):
  accepts: Callable[[object], bool]
  message: str
  choices: Optional[tuple] = None  # set for enums, which become DEFINE_enum flags


def _is_int(value):
  return isinstance(value, int) and not isinstance(value, bool)


_POSITIVE_INT = _Rule(lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
_NON_NEGATIVE_INT = _Rule(lambda v: _is_int(v) and v >= 0, "must be an integer >= 0")
_NON_NEGATIVE = _Rule(lambda v: isinstance(v, (int, float)) and v >= 0, "must be >= 0")
_POSITIVE = _Rule(lambda v: isinstance(v, (int, float)) and v > 0, "must be > 0")
_UNIT_INTERVAL = _Rule(lambda v: isinstance(v, (int, float)) and 0 <= v < 1,
                       "must be in [0, 1)")
_BOOL = _Rule(lambda v: isinstance(v, bool), "must be true or false")
_SPLIT = _Rule(lambda v: isinstance(v, str) and bool(v.strip()),
               "must be a non-empty TFDS split, e.g. test[:9000]")
_EXISTING_DIR_OR_UNSET = _Rule(lambda v: v is None or os.path.isdir(v),
                               "no such directory")
_DATASET = _Rule(lambda v: image_sources.check_dataset(v) is None,
                 "must be a TFDS name, folder:DIR or tfrecord:GLOB")
_CHANNELS = _Rule(lambda v: v in (0, 1, 3) and _is_int(v),
                  "must be 1 (grey), 3 (RGB) or 0 (as stored)")


def _is_image_size(value):
  try:
    preprocessing.parse_image_size(value)
  except (ValueError, AttributeError):
    return False
  return isinstance(value, str)


_IMAGE_SIZE = _Rule(_is_image_size, "must be N or H,W with positive integers, e.g. 64 "
                    "or 128,96, or empty")


def _one_of(choices):
  choices = tuple(choices)
  return _Rule(lambda v: v in choices, f"must be one of {', '.join(choices)}", choices)


def _field(default: Any, group: str, rule: Optional[_Rule], help_text: str):
  """A `Config` field: its default, and in its metadata its group, rule and help."""
  return dataclasses.field(default=default,
                           metadata=dict(group=group, rule=rule, help=help_text))


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything a training run needs besides its model_dir."""
  dataset: str = _field(
      "kmnist", DATA, _DATASET,
      "Images to train on: a TFDS name[/config] (kmnist, celeb_a, "
      "imagenet_resized/64x64, ...), folder:DIR (image files; splits are DIR's "
      "train/test/validation sub-folders, else DIR is train) or tfrecord:GLOB "
      "(tf.train.Examples with encoded images; {split} in GLOB names splits). "
      "kmnist, mnist and fashion_mnist read --dataset_dir if set.")
  dataset_dir: Optional[str] = _field(
      None, DATA, _EXISTING_DIR_OR_UNSET,
      "Directory with the official dataset files (idx/idx.gz, or the KMNIST npz). "
      "If unset, the data comes from TFDS.")
  data_dir: Optional[str] = _field(
      None, DATA, None,
      "TFDS data directory (where TFDS downloads and prepares datasets).")
  train_split: str = _field(
      "train", DATA, _SPLIT,
      "Training split, TFDS slicing syntax, e.g. train or test[:9000].")
  eval_split: str = _field(
      "test", DATA, _SPLIT,
      "Evaluation split, TFDS slicing syntax, e.g. test or test[9000:].")
  image_size: str = _field(
      "", DATA, _IMAGE_SIZE,
      "N or H,W: scale each image to cover H x W (shorter side first), then crop the "
      "centre. Empty: as stored (the first training image's size if they differ).")
  channels: int = _field(
      0, DATA, _CHANNELS,
      "1 (grey) or 3 (RGB), converting images that differ; 0: as stored (the first "
      "training image's).")
  image_key: str = _field(
      "", DATA, None,
      "Image feature of TFDS or TFRecord data; empty: image for TFDS, image/encoded "
      "or else image for TFRecords.")
  label_key: str = _field(
      "", DATA, None,
      "Int label feature of TFDS or TFRecord data; empty: label for TFDS, "
      "image/class/label or else label for TFRecords, if present.")
  skip_corrupt_images: bool = _field(
      False, DATA, _BOOL,
      "Decode every image once at start and leave out (and count) those that cannot "
      "be decoded, instead of stopping at the first with its file name.")
  binarize: str = _field(
      "dynamic", TRAINING, _one_of(data.BINARIZE_MODES),
      "How grey pixels become Bernoulli targets: dynamic (resampled each time), "
      "threshold (> 0.5) or none (grey values as soft targets).")
  random_crop: bool = _field(
      False, TRAINING, _BOOL,
      "Crop training images at a random place along their longer side instead of "
      "the centre (with --image_size).")
  random_flip: bool = _field(
      False, TRAINING, _BOOL,
      "Mirror half the training images left-right.")
  num_hiddens: int = _field(
      128, ARCHITECTURE, _POSITIVE_INT,
      "Channels of the encoder/decoder convolutions.")
  num_residual_hiddens: int = _field(
      32, ARCHITECTURE, _POSITIVE_INT,
      "Channels inside each residual block.")
  num_residual_layers: int = _field(
      2, ARCHITECTURE, _NON_NEGATIVE_INT,
      "Number of residual blocks in encoder and decoder.")
  embedding_dim: int = _field(
      64, ARCHITECTURE, _POSITIVE_INT,
      "D, the size of a codebook vector.")
  num_embeddings: int = _field(
      512, ARCHITECTURE, _POSITIVE_INT,
      "K, the number of codebook vectors.")
  num_downsamples: int = _field(
      2, ARCHITECTURE, _POSITIVE_INT,
      "Strided convolutions; the latent grid is image size / 2**n.")
  top_downsamples: int = _field(
      0, ARCHITECTURE, _NON_NEGATIVE_INT,
      "VQ-VAE-2: a top code map this many halvings below the bottom one (the "
      "num_downsamples grid), with its own codebook of K codes; 0 for one code map. "
      "Conv architecture only.")
  commitment_cost: float = _field(
      0.25, TRAINING, _NON_NEGATIVE,
      "beta, the weight of the commitment loss.")
  decay: float = _field(
      0.99, TRAINING, _UNIT_INTERVAL,
      "EMA decay of the codebook statistics.")
  decay_warmup: bool = _field(
      True, TRAINING, _BOOL,
      "Warm the EMA decay up as min(decay, (1 + t) / (10 + t)) at update t, so the "
      "codebook keeps up with the encoder early on.")
  epsilon: float = _field(
      1e-5, TRAINING, _POSITIVE,
      "Laplace smoothing of the EMA code counts.")
  dead_code_threshold: float = _field(
      0.5, TRAINING, _UNIT_INTERVAL,
      "Re-seed a code from an encoder output when its EMA count falls below this (0 "
      "disables).")
  dtype: str = _field(
      "float32", TRAINING, _one_of(DTYPES),
      "Encoder/decoder compute dtype; the quantizer always runs in float32.")
  architecture: str = _field(
      "conv", ARCHITECTURE, _one_of(builder.ARCHITECTURES),
      "Encoder/decoder: conv (the paper's), mlp (two hidden layers of num_hiddens) "
      "or global (the TFP blog's ELU conv net); mlp and global code an image as "
      "num_latents vectors.")
  num_latents: int = _field(
      1, ARCHITECTURE, _POSITIVE_INT,
      "Latent vectors per image for --architecture=mlp|global.")
  quantizer: str = _field(
      "ema", ARCHITECTURE, _one_of(builder.QUANTIZERS),
      "Codebook training: ema (moving averages) or loss (gradient of the codebook "
      "loss ||sg(z_e) - e||^2).")
  num_quantizers: int = _field(
      1, ARCHITECTURE, _POSITIVE_INT,
      "Residual VQ stages; codes get a trailing stage axis when > 1.")
  codebook_init: str = _field(
      "data", TRAINING, _one_of(builder.CODEBOOK_INITS),
      "First-batch codebook: data (K encoder outputs), kmeans (Lloyd iterations on "
      "encoder outputs) or uniform (+-1/K).")
  likelihood: str = _field(
      "bernoulli", ARCHITECTURE, _one_of(builder.LIKELIHOODS),
      "Decoder distribution: bernoulli, gaussian (fixed variance = the data's: "
      "normalised MSE) or logistic (discretized, 8-bit); the last two need "
      "--binarize=none.")
  pixel_range: str = _field(
      "unit", ARCHITECTURE, _one_of(tuple(builder.PIXEL_RANGES)),
      "Pixel values the networks see: unit ([0, 1]) or symmetric ([-1, 1]).")
  pad_to: int = _field(
      0, ARCHITECTURE, _NON_NEGATIVE_INT,
      "Pad images with black to pad_to x pad_to for the networks (0: no padding).")
  batch_size: int = _field(
      64, LOOP, _POSITIVE_INT,
      "Global training batch size.")
  reduction_group_size: int = _field(
      0, TRAINING, _NON_NEGATIVE_INT,
      "Images per reduction group (0, or a per-replica batch of at most this size: "
      "the replica's batch is one group). Each replica runs its batch through the "
      "networks in groups of this size and sums per-group gradients and codebook "
      "statistics, so one process with batch 2b and groups of b is bit-identical to "
      "2 replicas with b each (with --quantizer=ema; a gradient-trained codebook "
      "sums its gradient over the replica's batch).")
  learning_rate: float = _field(
      3e-4, LOOP, _POSITIVE,
      "Adam learning rate.")
  num_steps: int = _field(
      30000, LOOP, _POSITIVE_INT,
      "Total training steps (a resumed run continues up to this).")
  seed: int = _field(
      0, LOOP, _NON_NEGATIVE_INT,
      "Seed of initialisation, data order, binarisation and code re-seeding.")
  log_every: int = _field(
      100, LOOP, _POSITIVE_INT,
      "Steps between progress lines and training summaries.")
  eval_every: int = _field(
      2000, LOOP, _POSITIVE_INT,
      "Steps between evaluations on --eval_split.")
  checkpoint_every: int = _field(
      500, LOOP, _POSITIVE_INT,
      "Steps between checkpoints.")
  max_checkpoints: int = _field(
      3, LOOP, _POSITIVE_INT,
      "Checkpoints to keep.")
  eval_batch_size: int = _field(
      500, LOOP, _POSITIVE_INT,
      "Batch size for evaluation.")
  jit_compile: bool = _field(
      False, TRAINING, _BOOL,
      "Compile the train step with XLA. Off by default: on CPU the XLA step "
      "measured 2x slower than TF's graph with oneDNN kernels (README, "
      "Performance); the results are the same either way.")
  strategy: str = _field(
      "default", DISTRIBUTION, _one_of(distribute.STRATEGIES),
      "tf.distribute strategy: default (one device), mirrored (all local devices), "
      "multi_worker (machines in TF_CONFIG) or tpu.")
  tpu: Optional[str] = _field(
      None, DISTRIBUTION, None,
      "TPU name or grpc:// address for --strategy=tpu (empty on a TPU VM).")

  def __post_init__(self):
    for field in dataclasses.fields(self):
      message = check(field.name, getattr(self, field.name))
      if message:
        raise ValueError(f"{field.name}={getattr(self, field.name)!r}: {message}")
    if (self.batch_size > self.reduction_group_size > 0
        and self.batch_size % self.reduction_group_size):
      raise ValueError(f"batch_size={self.batch_size} must be a multiple of "
                       f"reduction_group_size={self.reduction_group_size}.")
    if self.likelihood != "bernoulli" and self.binarize != "none":
      raise ValueError(f"likelihood={self.likelihood!r} models grey pixels: use "
                       f"binarize='none', not {self.binarize!r}.")

  @classmethod
  def from_flags(cls, flag_values=flags.FLAGS):
    return cls(**{f.name: flag_values[f.name].value for f in dataclasses.fields(cls)})

  def to_json(self) -> str:
    """The config as a JSON object (what checkpoints and SavedModels carry)."""
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> "Config":
    """The config `to_json` wrote; fields it lacks take their defaults.

    Raises:
      ValueError: for unknown fields or values out of range.
    """
    record = json.loads(text)
    unknown = sorted(set(record) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
      raise ValueError(f"Unknown config fields {', '.join(unknown)}: written by "
                       "another version of tfp_vqvae?")
    return cls(**record)


def field_names(*groups: str) -> tuple[str, ...]:
  """Names of the `Config` fields in `groups`, in declaration order."""
  return tuple(f.name for f in dataclasses.fields(Config)
               if f.metadata["group"] in groups)


def data_args(config) -> dict[str, Any]:
  """The `data.open_data` arguments of a config's `DATA` fields (any object with them)."""
  return {name: getattr(config, name) for name in field_names(DATA)}


def check(name: str, value: Any) -> Optional[str]:
  """The problem with `value` for field `name` as a sentence, or None if it is fine."""
  field = Config.__dataclass_fields__.get(name)
  rule = field.metadata["rule"] if field is not None else None
  return None if rule is None or rule.accepts(value) else rule.message


def define_flags(flag_values=flags.FLAGS, fields=None):
  """Defines one flag per `Config` field, defaults from `Config`, validated by `check`.

  Args:
    flag_values: the `flags.FlagValues` to define them in.
    fields: names of the fields to define, e.g. `field_names(DATA)` for another
      program that reads the same data; all fields if None.
  """
  for field in dataclasses.fields(Config):
    if fields is not None and field.name not in fields:
      continue
    name, default = field.name, field.default
    rule, help_text = field.metadata["rule"], field.metadata["help"]
    if rule is not None and rule.choices:
      flags.DEFINE_enum(name, default, rule.choices, help_text, flag_values=flag_values)
    elif field.type in (str, Optional[str]):
      flags.DEFINE_string(name, default, help_text, flag_values=flag_values)
    elif field.type is int:
      flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)
    elif field.type is bool:
      flags.DEFINE_boolean(name, default, help_text, flag_values=flag_values)
    else:
      flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
    if rule is not None:
      flags.register_validator(name, lambda value, name=name: check(name, value) is None,
                               message=rule.message, flag_values=flag_values)
