"""Options fields: a value's default, rule and help, declared once; `Options`, the
base of every component's frozen options dataclass.

A field of an options class is also a command-line flag of the same name (see
configs/flags.py) and a key of the flat `config.json` record, so field names are
unique across the package's components (two components that share a meaning share
the field, through a common base class).

This module, like all of `tfp_vqvae.configs`, imports no TensorFlow: flags are
parsed and checked before TensorFlow starts.
"""

import dataclasses
import os
from typing import Any, Callable, ClassVar, NamedTuple, Optional


class InvalidOptionError(ValueError):
  """An option out of range. `field` names it; the CLI shows it as `--field`."""

  def __init__(self, field: str, value: Any, problem: str):
    super().__init__(f"{field}={value!r}: {problem}")
    self.field, self.value, self.problem = field, value, problem


class Rule(NamedTuple):
  """What a field's values obey: a predicate and the sentence saying it."""
  accepts: Callable[[object], bool]
  message: str
  choices: Optional[tuple] = None  # set for enums, which become DEFINE_enum flags


def is_int(value):
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
  return isinstance(value, (int, float)) and not isinstance(value, bool)


POSITIVE_INT = Rule(lambda v: is_int(v) and v >= 1, "must be an integer >= 1")
NON_NEGATIVE_INT = Rule(lambda v: is_int(v) and v >= 0, "must be an integer >= 0")
NON_NEGATIVE = Rule(lambda v: _is_number(v) and v >= 0, "must be >= 0")
POSITIVE = Rule(lambda v: _is_number(v) and v > 0, "must be > 0")
UNIT_INTERVAL = Rule(lambda v: _is_number(v) and 0 <= v < 1, "must be in [0, 1)")
BOOL = Rule(lambda v: isinstance(v, bool), "must be true or false")
EXISTING_DIR_OR_UNSET = Rule(lambda v: v is None or os.path.isdir(v), "no such directory")


def one_of(choices) -> Rule:
  choices = tuple(choices)
  return Rule(lambda v: v in choices, f"must be one of {', '.join(choices)}", choices)


def field(default: Any, rule: Optional[Rule], help_text: str,
          architecture: Optional[bool] = None):
  """An options field: its default, and in its metadata its rule and help.

  `architecture` says whether the field shapes a checkpoint's variables (a run
  resumes only with the same value); None leaves it to the part: a quantizer's
  fields are training options unless marked, every other model part's shape it.
  """
  metadata = dict(rule=rule, help=help_text)
  if architecture is not None:
    metadata["architecture"] = architecture
  return dataclasses.field(default=default, metadata=metadata)


def check(options_cls, name: str, value: Any) -> Optional[str]:
  """The problem with `value` for field `name` of `options_cls`, or None."""
  rule = options_cls.__dataclass_fields__[name].metadata.get("rule")
  return None if rule is None or rule.accepts(value) else rule.message


@dataclasses.dataclass(frozen=True)
class Options:
  """Base of the options dataclasses: each field checks its rule at construction.

  Subclasses are frozen dataclasses whose fields are made with `field(...)`; one
  that has rules between its fields overrides `_check_fields` and raises
  `InvalidOptionError` naming the field at fault. A registered component's class
  gets `name`, the name it is registered (and chosen by its flag) under.
  """

  name: ClassVar[str] = ""

  def __post_init__(self):
    for spec in dataclasses.fields(self):
      value = getattr(self, spec.name)
      problem = check(type(self), spec.name, value)
      if problem:
        raise InvalidOptionError(spec.name, value, problem)
    self._check_fields()

  def _check_fields(self):
    """Rules between fields; raise `InvalidOptionError` naming the field at fault."""

  @classmethod
  def field_names(cls) -> tuple[str, ...]:
    return tuple(spec.name for spec in dataclasses.fields(cls))

  @classmethod
  def from_record(cls, record: dict) -> "Options":
    """The options with the fields `record` has; the others take their defaults."""
    return cls(**{name: record[name] for name in cls.field_names() if name in record})

  def to_record(self) -> dict:
    return dataclasses.asdict(self)
