"""`Config`: everything a VQ-VAE training run needs besides its model_dir.

A `Config` is composed of options objects, one per concern:

    Config(data=DataOptions(...),          # which images (shared with the prior trainer)
           model=ModelOptions(...),        # D, stages, VQ-VAE-2's top level, pixels
           network=ConvOptions(...),       # the chosen --architecture's options
           quantizer=EMAOptions(...),      # the chosen --quantizer's options
           likelihood=BernoulliOptions(),  # the chosen --likelihood's options
           training=TrainingOptions(...),  # binarisation, augmentation, dtype, ...
           loop=LoopOptions(...),          # steps, cadence, batch, optimiser
           distribution=DistributionOptions(...))

Each options class is a frozen dataclass that checks its own fields
(`fields.InvalidOptionError` names the field); `Config` checks the rules between
them. The network, quantizer and likelihood are whichever classes are registered
in `networks.NETWORKS`, `quantizers.QUANTIZERS` and `likelihoods.LIKELIHOODS`.

Its record (`to_record`, what `config.json` and checkpoints carry) is flat: one key
per field, plus `architecture`, `quantizer` and `likelihood` naming the chosen
components, the same keys as the flags. `from_record` reads records of every
version, whose fields of components not chosen are ignored.

This module imports no implementation and no TensorFlow.
"""

import dataclasses
import json
from typing import Optional

from tfp_vqvae.configs import fields
from tfp_vqvae.configs import likelihoods
from tfp_vqvae.configs import networks
from tfp_vqvae.configs import quantizers
from tfp_vqvae.configs.data import DataOptions
from tfp_vqvae.configs.data import LoopOptions

DTYPES = ("float32", "bfloat16", "float16")
BINARIZE_MODES = ("dynamic", "threshold", "none")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
PIXEL_RANGES = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}


@dataclasses.dataclass(frozen=True)
class ModelOptions(fields.Options):
  """The model's shape beyond its components."""
  embedding_dim: int = fields.field(
      64, fields.POSITIVE_INT, "D, the size of a codebook vector.")
  num_quantizers: int = fields.field(
      1, fields.POSITIVE_INT,
      "Residual VQ stages; codes get a trailing stage axis when > 1.")
  top_downsamples: int = fields.field(
      0, fields.NON_NEGATIVE_INT,
      "VQ-VAE-2: a top code map this many halvings below the bottom one (the "
      "num_downsamples grid), with its own codebook of K codes; 0 for one code map. "
      "Conv architecture only.")
  pixel_range: str = fields.field(
      "unit", fields.one_of(PIXEL_RANGES),
      "Pixel values the networks see: unit ([0, 1]) or symmetric ([-1, 1]).")
  pad_to: int = fields.field(
      0, fields.NON_NEGATIVE_INT,
      "Pad images with black to pad_to x pad_to for the networks (0: no padding).")


@dataclasses.dataclass(frozen=True)
class TrainingOptions(fields.Options):
  """How the VQ-VAE is trained, beyond its loop."""
  binarize: str = fields.field(
      "dynamic", fields.one_of(BINARIZE_MODES),
      "How grey pixels become Bernoulli targets: dynamic (resampled each time), "
      "threshold (> 0.5) or none (grey values as soft targets).")
  random_crop: bool = fields.field(
      False, fields.BOOL,
      "Crop training images at a random place along their longer side instead of "
      "the centre (with --image_size).")
  random_flip: bool = fields.field(
      False, fields.BOOL, "Mirror half the training images left-right.")
  dtype: str = fields.field(
      "float32", fields.one_of(DTYPES),
      "Encoder/decoder compute dtype; the quantizer always runs in float32.")
  reduction_group_size: int = fields.field(
      0, fields.NON_NEGATIVE_INT,
      "Images per reduction group (0, or a per-replica batch of at most this size: "
      "the replica's batch is one group). Each replica runs its batch through the "
      "networks in groups of this size and sums per-group gradients and codebook "
      "statistics, so one process with batch 2b and groups of b is bit-identical to "
      "2 replicas with b each (with --quantizer=ema; a gradient-trained codebook "
      "sums its gradient over the replica's batch).")
  jit_compile: bool = fields.field(
      False, fields.BOOL,
      "Compile the train step with XLA. Off by default: on CPU the XLA step "
      "measured 2x slower than TF's graph with oneDNN kernels (README, "
      "Performance); the results are the same either way.")


@dataclasses.dataclass(frozen=True)
class DistributionOptions(fields.Options):
  """Where the run's replicas are."""
  strategy: str = fields.field(
      "default", fields.one_of(STRATEGIES),
      "tf.distribute strategy: default (one device), mirrored (all local devices), "
      "multi_worker (machines in TF_CONFIG) or tpu.")
  tpu: Optional[str] = fields.field(
      None, None, "TPU name or grpc:// address for --strategy=tpu (empty on a TPU VM).")


# The record key (and flag) naming each registered component: key -> (Config
# attribute, registry).
COMPONENTS = {
    "architecture": ("network", networks.NETWORKS),
    "quantizer": ("quantizer", quantizers.QUANTIZERS),
    "likelihood": ("likelihood", likelihoods.LIKELIHOODS),
}
# Config attribute -> the options class of a part that is not chosen by name.
FIXED_PARTS = {"data": DataOptions, "model": ModelOptions, "training": TrainingOptions,
               "loop": LoopOptions, "distribution": DistributionOptions}
# Parts whose options say what a checkpoint's variables mean: a run resumes only
# with the same values.
ARCHITECTURE_PARTS = ("model", "network", "quantizer", "likelihood")


def component_fields() -> dict[str, tuple[str, ...]]:
  """Every field a registered component has: field name -> the names of the
  components (e.g. "quantizer=ema") that have it."""
  owners = {}
  for key, (_, registry) in COMPONENTS.items():
    for name, components in registry.field_owners(key).items():
      owners[name] = owners.get(name, ()) + components
  return owners


def _registered(options, key):
  """`options` if its class is registered under COMPONENTS[key]; else ValueError."""
  registry = COMPONENTS[key][1]
  if registry.get(type(options).name) is not type(options):
    raise ValueError(f"{COMPONENTS[key][0]} must be options registered as a "
                     f"{registry.kind}, got {type(options).__name__}.")
  return options


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything a training run needs besides its model_dir (see the module doc)."""
  data: DataOptions = dataclasses.field(default_factory=DataOptions)
  model: ModelOptions = dataclasses.field(default_factory=ModelOptions)
  network: fields.Options = dataclasses.field(default_factory=networks.ConvOptions)
  quantizer: fields.Options = dataclasses.field(default_factory=quantizers.EMAOptions)
  likelihood: fields.Options = dataclasses.field(
      default_factory=likelihoods.BernoulliOptions)
  training: TrainingOptions = dataclasses.field(default_factory=TrainingOptions)
  loop: LoopOptions = dataclasses.field(default_factory=LoopOptions)
  distribution: DistributionOptions = dataclasses.field(
      default_factory=DistributionOptions)

  def __post_init__(self):
    for key, (attribute, _) in COMPONENTS.items():
      _registered(getattr(self, attribute), key)
    for attribute, cls in FIXED_PARTS.items():
      if not isinstance(getattr(self, attribute), cls):
        raise ValueError(f"{attribute} must be a {cls.__name__}, got "
                         f"{type(getattr(self, attribute)).__name__}.")
    batch, group = self.loop.batch_size, self.training.reduction_group_size
    if batch > group > 0 and batch % group:
      raise fields.InvalidOptionError(
          "reduction_group_size", group, f"must divide batch_size={batch}")
    if self.likelihood.models_grey_pixels and self.training.binarize != "none":
      raise fields.InvalidOptionError(
          "binarize", self.training.binarize,
          f"likelihood={self.likelihood.name!r} models grey pixels: use "
          "binarize='none'")
    if self.model.top_downsamples and not self.quantizer.hierarchical_level:
      raise fields.InvalidOptionError(
          "quantizer", self.quantizer.name, "cannot be a VQ-VAE-2 level "
          "(top_downsamples > 0)")
    if self.model.top_downsamples and (self.network.name != "conv"
                                       or self.model.num_quantizers != 1):
      raise fields.InvalidOptionError(
          "top_downsamples", self.model.top_downsamples,
          "VQ-VAE-2 needs architecture='conv' and num_quantizers=1, got "
          f"{self.network.name!r} and {self.model.num_quantizers}")

  @property
  def seed(self) -> int:
    return self.loop.seed

  def to_record(self) -> dict:
    """The flat record: every field of every part, and the chosen components' names."""
    record = {}
    for attribute in FIXED_PARTS:
      record.update(getattr(self, attribute).to_record())
    for key, (attribute, _) in COMPONENTS.items():
      options = getattr(self, attribute)
      record[key] = options.name
      record.update(options.to_record())
    return record

  def architecture(self) -> dict:
    """The record's part that says what the checkpoint's variables mean."""
    record = dict(self.model.to_record())
    for key, (attribute, _) in COMPONENTS.items():
      options = getattr(self, attribute)
      record[key] = options.name
      record.update({name: value for name, value in options.to_record().items()
                     if type(options).__dataclass_fields__[name].metadata.get(
                         "architecture", attribute != "quantizer")})
    return record

  @classmethod
  def from_record(cls, record: dict) -> "Config":
    """The config of a flat record; fields it lacks take their defaults.

    Fields of registered components that the record does not choose are ignored
    (records of earlier versions carry every component's fields).

    Raises:
      ValueError: for unknown fields or components, or values out of range.
    """
    known = set(COMPONENTS) | set(component_fields())
    for options_cls in FIXED_PARTS.values():
      known.update(options_cls.field_names())
    unknown = sorted(set(record) - known)
    if unknown:
      raise ValueError(f"Unknown config fields {', '.join(unknown)}: written by "
                       "another version of tfp_vqvae?")
    parts = {attribute: options_cls.from_record(record)
             for attribute, options_cls in FIXED_PARTS.items()}
    for key, (attribute, registry) in COMPONENTS.items():
      default = cls.__dataclass_fields__[attribute].default_factory
      parts[attribute] = registry.get(record.get(key, default.name)).from_record(record)
    return cls(**parts)

  def override(self, **changes) -> "Config":
    """A copy with flat `changes` (field or component names, as in flags)."""
    return self.from_record({**self.to_record(), **changes})

  @classmethod
  def from_fields(cls, **record) -> "Config":
    """The config of flat fields: `Config.from_fields(num_steps=60, quantizer="loss")`."""
    return cls.from_record(record)

  def to_json(self) -> str:
    """The record as a JSON object (what checkpoints and SavedModels carry)."""
    return json.dumps(self.to_record(), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> "Config":
    """The config `to_json` (of any version) wrote; see `from_record`."""
    return cls.from_record(json.loads(text))
