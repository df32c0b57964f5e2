"""Command-line flags of the options: one flag per field, parsed before TensorFlow.

Each field of an options class is a flag of the same name, with the field's
default, rule (a validator) and help. `define_config_flags` defines the VQ-VAE
trainer's: every part of `Config`, a selector flag per kind of component
(`--architecture`, `--quantizer`, `--likelihood`) and the fields of every registered
component; `config_from_flags` reads a `Config` back. `print_help` prints a
program's own flags, grouped, with their defaults: what `--help` shows.
"""

import dataclasses
import re
import sys
import textwrap
from typing import Optional

from absl import flags

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.configs import fields

# id(flag_values) -> [(group title, [flag names])], in definition order.
_HELP_GROUPS = {}
HELP_ARGS = ("--help", "-h", "-help", "--helpshort", "-?")


def add_help_group(title: str, names, flag_values=flags.FLAGS) -> None:
  """Lists flags `names` under `title` in `print_help`."""
  _HELP_GROUPS.setdefault(id(flag_values), []).append((title, list(names)))


def define_options_flags(options_cls, title: str, flag_values=flags.FLAGS,
                         defaults: Optional[dict] = None, only=None) -> None:
  """Defines a flag per field of `options_cls` not defined yet, listed under `title`.

  Args:
    options_cls: an options dataclass (see `fields.Options`).
    title: the flags' group in `--help`.
    flag_values: the `flags.FlagValues` to define them in.
    defaults: field name -> a default other than the field's (e.g. the prior
      trainer's shorter `num_steps`).
    only: the names of the fields to define, if not all.
  """
  names = []
  for spec in dataclasses.fields(options_cls):
    name = spec.name
    if only is not None and name not in only:
      continue
    names.append(name)
    if name in flag_values:  # A field shared with a component defined earlier.
      continue
    default = (defaults or {}).get(name, spec.default)
    rule, help_text = spec.metadata["rule"], spec.metadata["help"]
    if rule is not None and rule.choices:
      flags.DEFINE_enum(name, default, rule.choices, help_text, flag_values=flag_values)
    elif spec.type in (str, Optional[str]):
      flags.DEFINE_string(name, default, help_text, flag_values=flag_values)
    elif spec.type is int:
      flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)
    elif spec.type is bool:
      flags.DEFINE_boolean(name, default, help_text, flag_values=flag_values)
    else:
      flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
    if rule is not None:
      flags.register_validator(
          name, lambda value, cls=options_cls, name=name: fields.check(
              cls, name, value) is None,
          message=rule.message, flag_values=flag_values)
  if names:
    add_help_group(title, names, flag_values)


def define_config_flags(flag_values=flags.FLAGS) -> None:
  """Defines the flags of every `Config` field and registered component."""
  for attribute in ("data", "model"):
    define_options_flags(config_lib.FIXED_PARTS[attribute], attribute, flag_values)
  for key, (attribute, registry) in config_lib.COMPONENTS.items():
    default = config_lib.Config.__dataclass_fields__[attribute].default_factory.name
    flags.DEFINE_string(
        key, default, f"The {registry.kind}: one of {', '.join(registry.names())}.",
        flag_values=flag_values)
    flags.register_validator(
        key, lambda value, registry=registry: value in registry.names(),
        message=f"must be a registered {registry.kind}", flag_values=flag_values)
    add_help_group(f"{attribute} (choose with --{key})", [key], flag_values)
    for cls in registry.classes():
      define_options_flags(cls, f"--{key}={cls.name}", flag_values)
  for attribute in ("training", "loop", "distribution"):
    define_options_flags(config_lib.FIXED_PARTS[attribute], attribute, flag_values)


def config_from_flags(flag_values=flags.FLAGS) -> config_lib.Config:
  """The `Config` of the parsed flags.

  A flag given for a component that is not chosen (e.g. --decay with
  --quantizer=loss), at a value other than its default, is reported on stderr in
  one line: it has no effect.
  """
  record = {name: flag_values[name].value for name in config_lib.COMPONENTS}
  for name in config_lib.component_fields():
    record[name] = flag_values[name].value
  for options_cls in config_lib.FIXED_PARTS.values():
    for name in options_cls.field_names():
      record[name] = flag_values[name].value
  config = config_lib.Config.from_record(record)
  warn_of_unchosen_options(config_lib.component_fields(), set(config.to_record()),
                           flag_values)
  return config


def warn_of_unchosen_options(owners, used, flag_values=flags.FLAGS) -> None:
  """Reports on stderr, one line each, the flags given for components not chosen.

  A flag set to its default is not reported: it changes nothing either way, and
  the flagfiles that vary a part of flags/kmnist.cfg (e.g. --quantizer=fsq) would
  otherwise warn of the defaults that file spells out.

  Args:
    owners: {field name: the components that have it, e.g. ("quantizer=ema",)}.
    used: the field names of the chosen components.
    flag_values: the parsed flags.
  """
  for name, components in owners.items():
    flag = flag_values[name]
    if flag.present and flag.value != flag.default and name not in used:
      print(f"warning: --{name} is an option of --{' or --'.join(components)}; it has "
            "no effect here.", file=sys.stderr)


def flag_error(error: ValueError) -> str:
  """An options error as the CLI says it: the field as its flag."""
  if isinstance(error, fields.InvalidOptionError):
    return f"--{error.field}={error.value}: {error.problem}"
  return str(error)


def print_help(summary: str, flag_values=flags.FLAGS, file=sys.stdout) -> None:
  """Prints `summary` and the program's own flags, grouped, with their defaults."""
  print(summary.strip(), file=file)
  shown = set()
  for title, names in _HELP_GROUPS.get(id(flag_values), []):
    print(f"\n{title}:", file=file)
    shared = [name for name in names if name in shown]
    if shared:
      print(f"  (and {', '.join('--' + name for name in shared)}, as above)", file=file)
    for name in names:
      if name in shown:
        continue
      shown.add(name)
      flag = flag_values[name]
      default = "" if flag.default is None else flag.default_as_str
      first_sentence = re.split(r"(?<=[.)])\s+(?=[A-Z])", flag.help)[0]
      line = f"  --{name}" + (f"={default.strip(chr(39))}" if default else "")
      print(line, file=file)
      print(textwrap.fill(first_sentence, width=88, initial_indent=" " * 6,
                          subsequent_indent=" " * 6), file=file)
  print("\nFlags can also come from files: --flagfile=flags/kmnist.cfg.", file=file)


def wants_help(argv) -> bool:
  return any(arg in HELP_ARGS for arg in argv[1:])
