"""Prior options, registered under their `--prior` names, and `TrainPriorConfig`.

An options class here makes the architecture record of its prior for a VQ-VAE:

    architecture(num_embeddings, code_shape, num_classes, seed) -> a prior config

where `code_shape` is the VQ-VAE's (`(h, w)`, `(h, w, N)` for N residual stages, or
VQ-VAE-2's `{"top": (ht, wt), "bottom": (hb, wb)}`); `priors.pixelcnn.build_prior`
builds the prior of that record, and the record is what prior_config.json holds,
with the prior's name (`priors.pixelcnn.CONFIG_CLASSES` reads it back).

Two priors share a field when it means the same for both (`num_heads`,
`dropout_rate`): one flag sets it for whichever prior `--prior` chooses.
"""

import dataclasses

from tfp_vqvae.configs import fields
from tfp_vqvae.configs import registry
from tfp_vqvae.configs.data import DataOptions
from tfp_vqvae.configs.data import LoopOptions

PRIORS = registry.Registry("prior")
# The prior trainer's loop: shorter than a VQ-VAE's, evaluated more often.
PRIOR_LOOP_DEFAULTS = dict(num_steps=2000, eval_every=250, checkpoint_every=250)

_ODD_KERNEL = fields.Rule(lambda v: fields.is_int(v) and v >= 3 and v % 2 == 1,
                          "must be an odd integer >= 3")
_ODD_KERNEL_OR_ZERO = fields.Rule(
    lambda v: fields.is_int(v) and (v == 0 or (v >= 3 and v % 2 == 1)),
    "must be 0 or an odd integer >= 3")


def _dropout_rate():
  return fields.field(
      0.0, fields.UNIT_INTERVAL,
      "Dropout in training: on the PixelCNN's gated outputs of both stacks, on the "
      "Transformers' attention and MLP outputs of each block.")


def _num_heads():
  return fields.field(
      4, fields.POSITIVE_INT, "Heads of each attention block; must divide the "
      "PixelCNN's num_channels, the Transformers' model_dim.")


@dataclasses.dataclass(frozen=True)
class PriorOptions(fields.Options):
  """Base of the priors' options: `architecture` (see above)."""

  def architecture(self, num_embeddings, code_shape, num_classes, seed):
    raise NotImplementedError(f"{type(self).__name__} must implement architecture.")


@PRIORS.register("pixelcnn")
@dataclasses.dataclass(frozen=True)
class PixelCNNOptions(PriorOptions):
  """A gated PixelCNN, with optional causal self-attention blocks."""
  num_channels: int = fields.field(128, fields.POSITIVE_INT,
                                   "Channels of each PixelCNN stack.")
  num_layers: int = fields.field(
      6, fields.POSITIVE_INT,
      "Gated PixelCNN layers; enough to see the whole grid (6 for 7x7 with kernel 3).")
  kernel_size: int = fields.field(
      3, _ODD_KERNEL, "Odd kernel size of the stacks' convolutions.")
  dropout_rate: float = _dropout_rate()
  num_attention_blocks: int = fields.field(
      0, fields.NON_NEGATIVE_INT,
      "Causal multi-head self-attention blocks (PixelSNAIL-like), evenly spaced among "
      "the gated layers of the prior of the only grid, or of the top grid of a "
      "VQ-VAE-2; 0 for none.")
  num_heads: int = _num_heads()
  bottom_num_channels: int = fields.field(
      0, fields.NON_NEGATIVE_INT,
      "VQ-VAE-2 only: channels of the bottom prior (conditioned on the top codes); 0 "
      "for num_channels'.")
  bottom_num_layers: int = fields.field(
      0, fields.NON_NEGATIVE_INT,
      "VQ-VAE-2 only: gated layers of the bottom prior; 0 for num_layers'.")
  bottom_kernel_size: int = fields.field(
      0, _ODD_KERNEL_OR_ZERO,
      "VQ-VAE-2 only: kernel size of the bottom prior; 0 for kernel_size's.")

  def architecture(self, num_embeddings, code_shape, num_classes, seed):
    """A `PriorConfig`, or a `HierarchicalPriorConfig` for VQ-VAE-2's two grids.

    Raises:
      ValueError: if the bottom_* options leave a blind spot on the bottom grid.
    """
    from tfp_vqvae.priors import pixelcnn  # pylint: disable=g-import-not-at-top
    common = dict(num_embeddings=num_embeddings, dropout_rate=self.dropout_rate,
                  num_classes=num_classes)
    # Heads only with attention: a prior without is recorded as before the options
    # existed, so that its model_dir resumes.
    attention = (dict(num_attention_blocks=self.num_attention_blocks,
                      num_heads=self.num_heads) if self.num_attention_blocks else {})
    sizes = dict(num_channels=self.num_channels, num_layers=self.num_layers,
                 kernel_size=self.kernel_size)
    if not isinstance(code_shape, dict):
      shape = tuple(int(s) for s in code_shape)
      return pixelcnn.PriorConfig(
          latent_shape=shape[:2], num_stages=shape[2] if len(shape) > 2 else 1,
          seed=seed, **sizes, **attention, **common)
    top, bottom = (tuple(int(s) for s in code_shape[level]) for level in ("top", "bottom"))
    bottom_layers = self.bottom_num_layers or self.num_layers
    bottom_kernel = self.bottom_kernel_size or self.kernel_size
    if not pixelcnn.receptive_field_covers(bottom, bottom_layers, bottom_kernel):
      raise ValueError(
          f"bottom_num_layers={bottom_layers} of bottom_kernel_size={bottom_kernel} "
          f"leave a blind spot on the {bottom[0]}x{bottom[1]} bottom grid: each layer "
          f"reaches {bottom_kernel // 2} more rows and columns; use more layers.")
    return pixelcnn.HierarchicalPriorConfig(
        top=pixelcnn.PriorConfig(latent_shape=top, seed=seed, **sizes, **attention,
                                 **common),
        # Its own seed: the two networks start from different weights.
        bottom=pixelcnn.PriorConfig(
            latent_shape=bottom, num_channels=self.bottom_num_channels or self.num_channels,
            num_layers=bottom_layers, kernel_size=bottom_kernel, seed=seed + 1,
            condition_shape=top, **common))


@dataclasses.dataclass(frozen=True)
class TokenPriorOptions(PriorOptions):
  """The sizes of a Transformer over the codes as tokens (priors/tokens.py)."""
  model_dim: int = fields.field(
      128, fields.POSITIVE_INT, "D, the width of a Transformer prior's residual stream.")
  num_blocks: int = fields.field(
      4, fields.POSITIVE_INT,
      "Transformer blocks (self-attention, then an MLP) of a Transformer prior.")
  num_heads: int = _num_heads()
  dropout_rate: float = _dropout_rate()
  positions: str = fields.field(
      "learned", fields.one_of(("learned", "rotary", "learned_and_rotary")),
      "How a Transformer prior knows where a code is: a learned embedding per "
      "position added to its input, 2-D rotary embeddings (each attention turns "
      "queries and keys by their row and column), or both.")

  def _check_fields(self):
    if self.model_dim % self.num_heads:
      raise fields.InvalidOptionError("num_heads", self.num_heads,
                                      f"must divide model_dim={self.model_dim}")
    if "rotary" in self.positions and (self.model_dim // self.num_heads) % 4:
      raise fields.InvalidOptionError(
          "positions", self.positions,
          f"needs heads of a width model_dim / num_heads = {self.model_dim} / "
          f"{self.num_heads} that is a multiple of 4")

  def architecture(self, num_embeddings, code_shape, num_classes, seed):
    """This prior's config (`priors.pixelcnn.CONFIG_CLASSES`), or a
    `HierarchicalPriorConfig` of two for VQ-VAE-2's grids, the bottom one
    conditioned on the top codes."""
    from tfp_vqvae.priors import pixelcnn  # pylint: disable=g-import-not-at-top
    config_class = pixelcnn.CONFIG_CLASSES[self.name]
    common = dict(num_embeddings=num_embeddings, model_dim=self.model_dim,
                  num_layers=self.num_blocks, num_heads=self.num_heads,
                  dropout_rate=self.dropout_rate, num_classes=num_classes,
                  positions=self.positions)
    if not isinstance(code_shape, dict):
      shape = tuple(int(s) for s in code_shape)
      return config_class(latent_shape=shape[:2],
                          num_stages=shape[2] if len(shape) > 2 else 1, seed=seed,
                          **common)
    top, bottom = (tuple(int(s) for s in code_shape[level]) for level in ("top", "bottom"))
    # Its own seed: the two networks start from different weights.
    return pixelcnn.HierarchicalPriorConfig(
        top=config_class(latent_shape=top, seed=seed, **common),
        bottom=config_class(latent_shape=bottom, seed=seed + 1, condition_shape=top,
                            **common))


@PRIORS.register("transformer")
@dataclasses.dataclass(frozen=True)
class TransformerOptions(TokenPriorOptions):
  """A causal Transformer: exact log p(codes), cached ancestral sampling."""


@PRIORS.register("maskgit")
@dataclasses.dataclass(frozen=True)
class MaskGITOptions(TokenPriorOptions):
  """MaskGIT: a bidirectional Transformer trained on masked codes, decoded in 8 parallel
  steps; its loss is a masked NLL, not a bound on -log p(codes)."""
  any_order_eval: bool = fields.field(
      False, fields.BOOL,
      "After training, also score the best MaskGIT prior on the eval split as an "
      "autoregressive model revealing each image's codes one at a time in a random "
      "order: an upper bound on -log q(codes) for that model (not for MaskGIT's "
      "sampler), reported with its bound on -log p(x). Costs h*w passes of the "
      "network per eval batch.")


@dataclasses.dataclass(frozen=True)
class TrainPriorConfig:
  """A prior training run: which images, the loop, the prior, and its conditioning."""
  data: DataOptions = dataclasses.field(default_factory=DataOptions)
  loop: LoopOptions = dataclasses.field(
      default_factory=lambda: LoopOptions(**PRIOR_LOOP_DEFAULTS))
  prior: PriorOptions = dataclasses.field(default_factory=PixelCNNOptions)
  class_conditional: bool = False
  # N: also train on the codes of every training image shifted by each (dy, dx)
  # with |dy|, |dx| <= N pixels ((2N + 1)^2 code maps per image).
  train_shifts: int = 0

  def __post_init__(self):
    if PRIORS.get(type(self.prior).name) is not type(self.prior):
      raise ValueError(f"prior must be options registered as a prior, got "
                       f"{type(self.prior).__name__}.")
    if not fields.NON_NEGATIVE_INT.accepts(self.train_shifts):
      raise fields.InvalidOptionError("train_shifts", self.train_shifts,
                                      fields.NON_NEGATIVE_INT.message)

  @property
  def seed(self) -> int:
    return self.loop.seed

  @classmethod
  def field_names(cls) -> tuple[str, ...]:
    """The flat fields of a record (and flags): every registered prior's too."""
    names = ("prior", "class_conditional", "train_shifts")
    for options_cls in (DataOptions, LoopOptions, *PRIORS.classes()):
      names += tuple(n for n in options_cls.field_names() if n not in names)
    return names

  @classmethod
  def from_record(cls, record: dict) -> "TrainPriorConfig":
    """The config of flat fields (as flags name them); the others take defaults.

    Raises:
      ValueError: for unknown fields or priors, or values out of range.
    """
    prior_cls = PRIORS.get(record.get("prior", "pixelcnn"))
    unknown = sorted(set(record) - set(cls.field_names()))
    if unknown:
      raise ValueError(f"Unknown prior config fields {', '.join(unknown)}.")
    return cls(data=DataOptions.from_record(record),
               loop=LoopOptions.from_record({**PRIOR_LOOP_DEFAULTS, **record}),
               prior=prior_cls.from_record(record),
               class_conditional=record.get("class_conditional", False),
               train_shifts=record.get("train_shifts", 0))

  @classmethod
  def from_fields(cls, **record) -> "TrainPriorConfig":
    """`TrainPriorConfig.from_fields(num_steps=100, num_layers=4)`."""
    return cls.from_record(record)

  def override(self, **changes) -> "TrainPriorConfig":
    """A copy with flat `changes`."""
    record = {**self.data.to_record(), **self.loop.to_record(),
              **self.prior.to_record(), "prior": self.prior.name,
              "class_conditional": self.class_conditional,
              "train_shifts": self.train_shifts}
    return self.from_record({**record, **changes})
