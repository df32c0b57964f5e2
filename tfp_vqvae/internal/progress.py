"""Progress lines for passes over data that can take minutes.

A pass (the data variance, the check of every image file, the corrupt-image scan,
encoding codes for a prior) says what it does, how far it is and how long it has
left, so that a long silence is never mistaken for a hang:

    Data variance over 60000 training images: 12544/60000 (21%), 2508/s, ETA 0m19s

A pass that ends within `FIRST_LINE_SECONDS` prints nothing, so small datasets
stay quiet; a longer one prints a line then, one every `EVERY_SECONDS` after it,
and a last line with its total time.
"""

import time
from typing import Callable, Optional

from absl import logging

# Seconds before a pass prints its first line, and between its lines after that.
FIRST_LINE_SECONDS = 5.0
EVERY_SECONDS = 30.0


def format_duration(seconds: float) -> str:
  """`seconds` as e.g. 7m05s or 1h02m, for ETAs and durations in progress lines."""
  seconds = int(max(seconds, 0))
  hours, rest = divmod(seconds, 3600)
  return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
  """Counts the items of one pass and logs how far it is (see the module docstring).

  Example:
    with Progress("Checking 1200 files of folder:/data train", 1200, "files") as p:
      for path in paths:
        check(path)
        p.add(1)
  """

  def __init__(self, what: str, total: Optional[int], unit: str = "images",
               clock: Callable[[], float] = time.monotonic):
    """Args: what the pass does, for the lines; the number of items it will
    count, or None if unknown (then no percentage or ETA); what an item is;
    the clock (seconds), replaceable in tests."""
    self.what = what
    self.total = total
    self.unit = unit
    self.done = 0
    self.lines = 0
    self._clock = clock
    self._start = clock()
    self._next_line = self._start + FIRST_LINE_SECONDS

  def __enter__(self) -> "Progress":
    return self

  def __exit__(self, error_type, unused_error, unused_traceback) -> None:
    if error_type is None:
      self.finish()

  def add(self, count: int) -> None:
    """Counts `count` more items done; logs a line if one is due."""
    self.done += count
    now = self._clock()
    if now < self._next_line:
      return
    self._next_line = now + EVERY_SECONDS
    rate = self.done / max(now - self._start, 1e-9)
    if self.total:
      left = max(self.total - self.done, 0)
      self._log(f"{self.done}/{self.total} {self.unit} ({100 * self.done // self.total}%),"
                f" {rate:.0f}/s, ETA {format_duration(left / max(rate, 1e-9))}")
    else:
      self._log(f"{self.done} {self.unit}, {rate:.0f}/s")

  def finish(self) -> None:
    """Logs the pass's total time, if it logged any line (else it was short)."""
    if self.lines:
      self._log(f"done, {self.done} {self.unit} in "
                f"{format_duration(self._clock() - self._start)}")

  def _log(self, text: str) -> None:
    self.lines += 1
    logging.info("%s: %s", self.what, text)
