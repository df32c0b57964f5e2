"""Registries of components: a name (the value of its flag) -> its options class.

Each kind of component (quantizer, network, likelihood, prior) has one `Registry`.
A component registers its options dataclass under the name its flag uses:

    @QUANTIZERS.register("ema")
    @dataclasses.dataclass(frozen=True)
    class EMAOptions(CodebookOptions):
      decay: float = fields.field(0.99, fields.UNIT_INTERVAL, "EMA decay ...")

      def build(self, embedding_dim, *, seed, name, reduction_group_size):
        from tfp_vqvae.quantizers import ema   # the implementation, imported lazily
        return ema.VectorQuantizerEMA(...)

and `QUANTIZERS.get("ema")` is that class. The options class knows how to build its
component (`build`); the builder looks names up here and never tests them itself.
"""

from typing import Callable, TypeVar

_OptionsClass = TypeVar("_OptionsClass")


class Registry:
  """Options classes of one kind of component, by name, in registration order."""

  def __init__(self, kind: str):
    self.kind = kind
    self._classes = {}

  def register(self, name: str) -> Callable[[_OptionsClass], _OptionsClass]:
    """A class decorator registering an options class under `name`.

    Raises:
      ValueError: if another class is registered under `name` already.
    """

    def decorator(cls):
      registered = self._classes.get(name)
      if registered is not None and registered.__qualname__ != cls.__qualname__:
        raise ValueError(f"{self.kind} {name!r} is registered already, by "
                         f"{registered.__module__}.{registered.__qualname__}.")
      cls.name = name
      self._classes[name] = cls
      return cls

    return decorator

  def get(self, name: str):
    """The options class registered under `name`.

    Raises:
      ValueError: naming the registered ones, if none is registered under `name`.
    """
    if name not in self._classes:
      raise ValueError(f"Unknown {self.kind} {name!r}; registered: "
                       f"{', '.join(self._classes)}.")
    return self._classes[name]

  def names(self) -> tuple[str, ...]:
    return tuple(self._classes)

  def classes(self) -> tuple:
    return tuple(self._classes.values())

  def field_owners(self, flag: str) -> dict[str, tuple[str, ...]]:
    """Every field of a registered class: field name -> the components that have
    it, as chosen with `flag` (e.g. "quantizer=ema")."""
    owners = {}
    for name, cls in self._classes.items():
      for field_name in cls.field_names():
        owners[field_name] = owners.get(field_name, ()) + (f"{flag}={name}",)
    return owners
