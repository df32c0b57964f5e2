"""What the command-line programs share: their `--help`, flags checked before
TensorFlow starts, one-line errors, and TensorFlow's start-up chatter kept out.

A program's module defines its flags and calls `run(main, __doc__, required)`;
`main` checks its flags, calls `start_tensorflow(...)` and only then imports the
library. When the running program is one of the package's CLIs
(`python -m tfp_vqvae.train`, `python -m export.client`, ...), `start_tensorflow`:

  * sets TF_CPP_MIN_LOG_LEVEL=3 unless the user set it (TF's C++ INFO, WARNING
    and ERROR lines are then not printed; op failures still reach Python as
    exceptions), and in that case also drops INFO records that TF's own Python
    code logs (e.g. the checkpoint saver's "Sharding callback duration", through
    absl logging like the package's own lines);
  * imports TensorFlow with file descriptor 2 redirected to a temporary file,
    then writes back what was captured except the C++ log lines below that level.
    TF 2.21 writes some lines at import before it reads the variable, through
    absl logging that is not initialised yet, so the variable alone does not hide
    them (measured on a CPU machine: "WARNING: All log messages before
    absl::InitializeLog() is called are written to STDERR" and
    "I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine",
    twice each, at every level). The later "E0000 ... failed call to cuInit"
    line and the oneDNN / CPU-feature banners do obey TF_CPP_MIN_LOG_LEVEL.

Called in a library (tests, notebooks), it only logs its line. The package's own
progress and error lines are Python absl logging and `sys.exit` messages, which
neither setting touches.
"""

import logging
import os
import re
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging as absl_logging

from tfp_vqvae.configs import flags as config_flags
from tfp_vqvae.internal import errors as package_errors

_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# What the CLIs use when the user did not set a level: no C++ INFO, WARNING, ERROR.
_DEFAULT_LEVEL = "3"
# The top-level packages whose modules are CLIs.
_CLI_PACKAGES = ("tfp_vqvae", "export")
# C++ log lines, absl's format ("E0000 00:00:1795910334.790236  123 file.cc:52] ...",
# seconds since the epoch before absl is initialised) and TF's older one
# ("2025-09-17 14:44:05.157831: I external/.../file.cc:32] ..."); not Python's absl
# lines, which share the first format but name a .py file.
_LOG_LINE = re.compile(r"(?:([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+|"
                       r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF])) "
                       r"\S+(?<!\.py):\d+\] ")
_SEVERITIES = {"I": 0, "W": 1, "E": 2, "F": 3}
# absl's notice before its first message, shown only when INFO lines are.
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"


def _running_a_cli():
  """Whether the program is one of the package's CLIs: `python -m` one of its
  modules, or a console command installed by pip (tfp-vqvae-train, ...)."""
  spec = getattr(sys.modules.get("__main__"), "__spec__", None)
  if spec is not None and spec.name.partition(".")[0] in _CLI_PACKAGES:
    return True
  return os.path.basename(sys.argv[0] if sys.argv else "").startswith("tfp-vqvae-")


def _min_level():
  """TF_CPP_MIN_LOG_LEVEL as TF reads it: an integer, anything else is 0."""
  value = os.environ.get(_LEVEL_VARIABLE, "0")
  return int(value) if value.isdigit() else 0


def kept_lines(text, min_level):
  """The lines of captured stderr `text` that TF_CPP_MIN_LOG_LEVEL=min_level keeps.

  C++ log lines of a lower severity than min_level are dropped (FATAL never),
  and absl's preamble with the INFO lines; any other line is kept.
  """
  kept = []
  for line in text.splitlines():
    match = _LOG_LINE.match(line)
    if match:
      severity = _SEVERITIES[match.group(1) or match.group(2)]
      if severity < min(min_level, 3):
        continue
    elif line.startswith(_ABSL_PREAMBLE) and min_level > 0:
      continue
    kept.append(line)
  return kept


class _DropTensorFlowInfo(logging.Filter):
  """Drops INFO (and lower) records logged from TensorFlow's own Python files."""

  def __init__(self, tensorflow_dir):
    super().__init__()
    self._prefix = tensorflow_dir + os.sep

  def filter(self, record):
    return record.levelno > logging.INFO or not record.pathname.startswith(self._prefix)


def _import_tensorflow_quietly():
  """Imports TensorFlow with its import-time C++ lines filtered by `kept_lines`."""
  defaulted = _LEVEL_VARIABLE not in os.environ
  os.environ.setdefault(_LEVEL_VARIABLE, _DEFAULT_LEVEL)
  sys.stderr.flush()
  saved_stderr = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow  # pylint: disable=g-import-not-at-top
    finally:
      sys.stderr.flush()
      os.dup2(saved_stderr, 2)
      os.close(saved_stderr)
      captured.seek(0)
      for line in kept_lines(captured.read().decode(errors="replace"), _min_level()):
        print(line, file=sys.stderr)
  if defaulted:
    info_filter = _DropTensorFlowInfo(os.path.dirname(tensorflow.__file__))
    # TF logs through its "tensorflow" logger and, in places, absl's, as we do.
    for name in ("tensorflow", "absl"):
      logging.getLogger(name).addFilter(info_filter)


def start_tensorflow(what: str) -> None:
  """Says `what` the program is doing (its first line, before TensorFlow's ~10 s
  start), then imports TensorFlow with its start-up chatter filtered."""
  absl_logging.info("%s (starting TensorFlow) ...", what)
  quiet_tensorflow()


def quiet_tensorflow() -> None:
  """In a CLI, imports TensorFlow with its start-up chatter filtered (see above)."""
  if _running_a_cli() and "tensorflow" not in sys.modules:
    _import_tensorflow_quietly()


def run(main, summary: str, required=(), flag_values=flags.FLAGS) -> None:
  """Runs a program's `main` with absl, after its own `--help` if asked for.

  `--help` (and -h, --helpshort) prints `summary` and the program's flags,
  grouped (configs/flags.py), and exits 0; absl's own help would list only
  "Try --helpfull". Flags are parsed and checked before `main` runs, so a bad
  flag is refused before TensorFlow is imported.
  """
  if config_flags.wants_help(sys.argv):
    config_flags.print_help(summary, flag_values)
    sys.exit(0)
  flags.mark_flags_as_required(list(required), flag_values=flag_values)
  app.run(main, flags_parser=lambda argv: _parse_flags(argv, flag_values))


def _parse_flags(argv, flag_values):
  """The arguments left after the flags; a bad flag exits with one line (not absl's
  "Pass --helpshort or --helpfull", which would bury this program's flags)."""
  try:
    return flag_values(argv)
  except flags.Error as error:
    problems = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    problems = problems.replace(" ?", "?")
    sys.exit(f"error: {problems}{'' if problems.endswith(('.', '?')) else '.'} "
             "--help lists the flags.")


def check_no_arguments(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")


def exit_on_error(function, *args, errors=(), **kwargs):
  """`function(*args, **kwargs)`, or exit with one line for a stop or an expected error.

  An `Interrupted` (Ctrl-C, SIGTERM) exits with "stopped: ..."; a ValueError,
  `DatasetUnavailableError` or one of `errors` with "error: " and its first line
  (an option error naming its flag), or for an error raised while TensorFlow traced
  a function, whose first line is "in user code:", its last line: the error itself.
  """
  try:
    return function(*args, **kwargs)
  except package_errors.Interrupted as stop:
    sys.exit(f"stopped: {stop}")
  except (package_errors.DatasetUnavailableError, ValueError, *errors) as error:
    message = config_flags.flag_error(error).strip() or repr(error)
    lines = message.splitlines()
    if lines[0] == "in user code:":  # "ValueError: the message" last, after the trace
      lines = [re.sub(r"^\w+(Error|Exception): ", "", lines[-1].strip())]
    sys.exit(f"error: {lines[0]}")
