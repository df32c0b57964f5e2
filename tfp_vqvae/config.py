"""Training configuration: the `Config` dataclass and the command-line flags behind it.

Every field of `Config` is a flag of the same name, defined here and nowhere else.
Each value is checked by one rule, used both by the flag validators (so a bad flag
ends in one error line before any work) and by `Config.__post_init__` (so library
users get the same `ValueError`). No flag is required at import time.
"""

import dataclasses
import os
from typing import Callable, NamedTuple, Optional

from absl import flags

from tfp_vqvae import architectures
from tfp_vqvae import codebook_init
from tfp_vqvae import data
from tfp_vqvae import distribute
from tfp_vqvae import likelihoods
from tfp_vqvae import model

DTYPES = ("float32", "bfloat16", "float16")
# The fields that say which images to read, shared by every program that reads them.
DATA_FIELDS = ("dataset", "dataset_dir", "data_dir", "train_split", "eval_split")


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything a training run needs besides its model_dir."""
  # Data.
  dataset: str = "kmnist"
  dataset_dir: Optional[str] = None
  data_dir: Optional[str] = None
  train_split: str = "train"
  eval_split: str = "test"
  binarize: str = "dynamic"
  # Model.
  num_hiddens: int = 128
  num_residual_hiddens: int = 32
  num_residual_layers: int = 2
  embedding_dim: int = 64
  num_embeddings: int = 512
  num_downsamples: int = 2
  commitment_cost: float = 0.25
  decay: float = 0.99
  decay_warmup: bool = True
  epsilon: float = 1e-5
  dead_code_threshold: float = 0.5
  dtype: str = "float32"
  architecture: str = "conv"
  num_latents: int = 1
  quantizer: str = "ema"
  num_quantizers: int = 1
  codebook_init: str = "data"
  likelihood: str = "bernoulli"
  pixel_range: str = "unit"
  pad_to: int = 0
  # Optimisation and bookkeeping.
  batch_size: int = 64
  reduction_group_size: int = 0
  learning_rate: float = 3e-4
  num_steps: int = 30000
  seed: int = 0
  log_every: int = 100
  eval_every: int = 2000
  checkpoint_every: int = 500
  max_checkpoints: int = 3
  eval_batch_size: int = 500
  jit_compile: bool = False
  # Distribution (see distribute.py).
  strategy: str = "default"
  tpu: Optional[str] = None

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

  def model_kwargs(self):
    """The `model.VQVAE` constructor arguments this config fixes (besides the image shape)."""
    names = ("num_hiddens", "num_residual_hiddens", "num_residual_layers",
             "embedding_dim", "num_embeddings", "num_downsamples", "commitment_cost",
             "decay", "decay_warmup", "epsilon", "dead_code_threshold", "seed", "dtype",
             "architecture", "num_latents", "quantizer", "num_quantizers", "codebook_init",
             "likelihood", "pixel_range", "pad_to")
    return {name: getattr(self, name) for name in names}


class _Rule(NamedTuple):
  accepts: Callable[[object], bool]
  message: str


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


def _one_of(choices):
  return _Rule(lambda v: v in choices, f"must be one of {', '.join(choices)}")


_RULES = {
    "dataset": _one_of(data.SUPPORTED_DATASETS),
    "dataset_dir": _EXISTING_DIR_OR_UNSET,
    "train_split": _SPLIT,
    "eval_split": _SPLIT,
    "binarize": _one_of(data.BINARIZE_MODES),
    "num_hiddens": _POSITIVE_INT,
    "num_residual_hiddens": _POSITIVE_INT,
    "num_residual_layers": _NON_NEGATIVE_INT,
    "embedding_dim": _POSITIVE_INT,
    "num_embeddings": _POSITIVE_INT,
    "num_downsamples": _POSITIVE_INT,
    "commitment_cost": _NON_NEGATIVE,
    "decay": _UNIT_INTERVAL,
    "decay_warmup": _BOOL,
    "epsilon": _POSITIVE,
    "dead_code_threshold": _UNIT_INTERVAL,
    "dtype": _one_of(DTYPES),
    "architecture": _one_of(architectures.ARCHITECTURES),
    "num_latents": _POSITIVE_INT,
    "quantizer": _one_of(model.QUANTIZERS),
    "num_quantizers": _POSITIVE_INT,
    "codebook_init": _one_of(codebook_init.INIT_METHODS),
    "likelihood": _one_of(likelihoods.LIKELIHOODS),
    "pixel_range": _one_of(tuple(model.PIXEL_RANGES)),
    "pad_to": _NON_NEGATIVE_INT,
    "batch_size": _POSITIVE_INT,
    "reduction_group_size": _NON_NEGATIVE_INT,
    "learning_rate": _POSITIVE,
    "num_steps": _POSITIVE_INT,
    "seed": _NON_NEGATIVE_INT,
    "log_every": _POSITIVE_INT,
    "eval_every": _POSITIVE_INT,
    "checkpoint_every": _POSITIVE_INT,
    "max_checkpoints": _POSITIVE_INT,
    "eval_batch_size": _POSITIVE_INT,
    "jit_compile": _BOOL,
    "strategy": _one_of(distribute.STRATEGIES),
}
_ENUMS = {"dataset": data.SUPPORTED_DATASETS, "binarize": data.BINARIZE_MODES,
          "dtype": DTYPES, "strategy": distribute.STRATEGIES,
          "architecture": architectures.ARCHITECTURES, "quantizer": model.QUANTIZERS,
          "codebook_init": codebook_init.INIT_METHODS,
          "likelihood": likelihoods.LIKELIHOODS, "pixel_range": tuple(model.PIXEL_RANGES)}


def check(name, value):
  """The problem with `value` for field `name` as a sentence, or None if it is fine."""
  rule = _RULES.get(name)
  return None if rule is None or rule.accepts(value) else rule.message


_HELP = {
    "dataset": "Dataset name: TFDS name, or the kind of official files in --dataset_dir.",
    "dataset_dir": ("Directory with the official dataset files (idx/idx.gz, or the "
                    "KMNIST npz). If unset, the data comes from TFDS."),
    "data_dir": "TFDS data directory (where TFDS downloads and prepares datasets).",
    "train_split": "Training split, TFDS slicing syntax, e.g. train or test[:9000].",
    "eval_split": "Evaluation split, TFDS slicing syntax, e.g. test or test[9000:].",
    "binarize": ("How grey pixels become Bernoulli targets: dynamic (resampled each "
                 "time), threshold (> 0.5) or none (grey values as soft targets)."),
    "num_hiddens": "Channels of the encoder/decoder convolutions.",
    "num_residual_hiddens": "Channels inside each residual block.",
    "num_residual_layers": "Number of residual blocks in encoder and decoder.",
    "embedding_dim": "D, the size of a codebook vector.",
    "num_embeddings": "K, the number of codebook vectors.",
    "num_downsamples": "Strided convolutions; the latent grid is image size / 2**n.",
    "commitment_cost": "beta, the weight of the commitment loss.",
    "decay": "EMA decay of the codebook statistics.",
    "decay_warmup": ("Warm the EMA decay up as min(decay, (1 + t) / (10 + t)) at update "
                     "t, so the codebook keeps up with the encoder early on."),
    "epsilon": "Laplace smoothing of the EMA code counts.",
    "dead_code_threshold": ("Re-seed a code from an encoder output when its EMA count "
                            "falls below this (0 disables)."),
    "dtype": "Encoder/decoder compute dtype; the quantizer always runs in float32.",
    "architecture": ("Encoder/decoder: conv (the paper's), mlp (two hidden layers of "
                     "num_hiddens) or global (the TFP blog's ELU conv net); mlp and "
                     "global code an image as num_latents vectors."),
    "num_latents": "Latent vectors per image for --architecture=mlp|global.",
    "quantizer": ("Codebook training: ema (moving averages) or loss (gradient of the "
                  "codebook loss ||sg(z_e) - e||^2)."),
    "num_quantizers": "Residual VQ stages; codes get a trailing stage axis when > 1.",
    "codebook_init": ("First-batch codebook: data (K encoder outputs), kmeans (Lloyd "
                      "iterations on encoder outputs) or uniform (+-1/K)."),
    "likelihood": ("Decoder distribution: bernoulli, gaussian (fixed variance = the "
                   "data's: normalised MSE) or logistic (discretized, 8-bit); the "
                   "last two need --binarize=none."),
    "pixel_range": "Pixel values the networks see: unit ([0, 1]) or symmetric ([-1, 1]).",
    "pad_to": "Pad images with black to pad_to x pad_to for the networks (0: no padding).",
    "batch_size": "Global training batch size.",
    "reduction_group_size": (
        "Images per reduction group (0, or a per-replica batch of at most this "
        "size: the replica's batch is one group). Each replica runs its batch "
        "through the networks in groups of this size and sums per-group gradients "
        "and codebook statistics, so one process with batch 2b and groups of b is "
        "bit-identical to 2 replicas with b each (with --quantizer=ema; a "
        "gradient-trained codebook sums its gradient over the replica's batch)."),
    "learning_rate": "Adam learning rate.",
    "num_steps": "Total training steps (a resumed run continues up to this).",
    "seed": "Seed of initialisation, data order, binarisation and code re-seeding.",
    "log_every": "Steps between progress lines and training summaries.",
    "eval_every": "Steps between evaluations on --eval_split.",
    "checkpoint_every": "Steps between checkpoints.",
    "max_checkpoints": "Checkpoints to keep.",
    "eval_batch_size": "Batch size for evaluation.",
    "jit_compile": ("Compile the train step with XLA. Off by default: on CPU the "
                    "XLA step measured 2x slower than TF's graph with oneDNN kernels "
                    "(README, Performance); the results are the same either way."),
    "strategy": ("tf.distribute strategy: default (one device), mirrored (all local "
                 "devices), multi_worker (machines in TF_CONFIG) or tpu."),
    "tpu": "TPU name or grpc:// address for --strategy=tpu (empty on a TPU VM).",
}


def define_flags(flag_values=flags.FLAGS, fields=None):
  """Defines one flag per `Config` field, defaults from `Config`, validated by `check`.

  Args:
    flag_values: the `flags.FlagValues` to define them in.
    fields: names of the fields to define, e.g. `DATA_FIELDS` for another
      program that reads the same data; all fields if None.
  """
  for field in dataclasses.fields(Config):
    if fields is not None and field.name not in fields:
      continue
    name, default, help_text = field.name, field.default, _HELP[field.name]
    if name in _ENUMS:
      flags.DEFINE_enum(name, default, _ENUMS[name], help_text, flag_values=flag_values)
    elif field.type in (str, Optional[str]):
      flags.DEFINE_string(name, default, help_text, flag_values=flag_values)
    elif field.type is int:
      flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)
    elif field.type is bool:
      flags.DEFINE_boolean(name, default, help_text, flag_values=flag_values)
    else:
      flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
    if name in _RULES:
      flags.register_validator(name, lambda value, name=name: check(name, value) is None,
                               message=_RULES[name].message, flag_values=flag_values)
