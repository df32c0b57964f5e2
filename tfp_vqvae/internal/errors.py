"""The package's own exceptions, in a module without TensorFlow so that the
command-line programs can catch them before TensorFlow is imported."""


class DatasetUnavailableError(RuntimeError):
  """Raised when a dataset cannot be read; str() is one readable line.

  Covers data that cannot be obtained (offline TFDS, missing files, a folder
  without images, a glob matching nothing) as well as files that are corrupt,
  unreadable or fail their MD5 check.
  """


class Interrupted(Exception):
  """SIGINT or SIGTERM stopped training after a checkpoint; the message says how
  to resume."""
