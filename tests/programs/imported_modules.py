"""Imports the modules named on the command line and prints, as JSON, which of the
modules named after `--` were imported as a result (run in a fresh interpreter).

    python tests/programs/imported_modules.py tfp_vqvae.serving.export -- tf_keras ...
"""

import importlib
import json
import sys


def main(argv):
  split = argv.index("--")
  for name in argv[1:split]:
    importlib.import_module(name)
  print(json.dumps(sorted(name for name in argv[split + 1:] if name in sys.modules)))


if __name__ == "__main__":
  main(sys.argv)
