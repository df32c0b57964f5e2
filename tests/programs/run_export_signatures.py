"""Loads an export and runs every signature and attribute function on the inputs of
an .npz, saving every output to another .npz. Only TensorFlow is imported, as in a
serving process.

    python tests/programs/run_export_signatures.py EXPORT_DIR INPUTS.npz OUTPUTS.npz
"""

import sys

import numpy as np
import tensorflow as tf


def main(argv):
  export_dir, inputs_path, outputs_path = argv[1:]
  inputs = dict(np.load(inputs_path))
  loaded = tf.saved_model.load(export_dir)
  results = {}
  for key, function in loaded.signatures.items():
    feed = {name: inputs[name] for name in function.structured_input_signature[1]}
    for name, value in function(**{k: tf.constant(v) for k, v in feed.items()}).items():
      results[f"signature/{key}/{name}"] = value.numpy()
  for key in ("encode", "decode", "reconstruct", "neg_elbo"):
    argument = inputs["codes" if key == "decode" else "images"]
    for name, value in getattr(loaded, key)(argument).items():
      results[f"attribute/{key}/{name}"] = value.numpy()
  np.savez(outputs_path, **results)


if __name__ == "__main__":
  main(sys.argv)
