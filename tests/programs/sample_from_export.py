"""Samples three code grids from an export with a prior (temperatures 1, 0.5, 1;
top_k 0, 0, 3; top_p 1, 1, 0.9), scores them, tries codes out of range (printing the refusal), and saves codes, probs
and log_prob to an .npz.

    python tests/programs/sample_from_export.py EXPORT_DIR OUTPUTS.npz
"""

import sys

import numpy as np
import tensorflow as tf


def main(argv):
  loaded = tf.saved_model.load(argv[1])
  seeds = tf.constant([3, 1, 4], tf.int64)
  sampled = loaded.signatures["sample"](
      seeds=seeds, temperature=tf.constant([1.0, 0.5, 1.0]),
      top_k=tf.constant([0, 0, 3]), top_p=tf.constant([1.0, 1.0, 0.9]))
  scored = loaded.signatures["log_prob_codes"](codes=sampled["codes"])
  try:
    loaded.signatures["log_prob_codes"](codes=sampled["codes"] + 16)
  except tf.errors.InvalidArgumentError as error:
    print("REFUSED", " ".join(error.message.split()))
  np.savez(argv[2], codes=sampled["codes"], probs=sampled["probs"],
           log_prob=scored["log_prob"])


if __name__ == "__main__":
  main(sys.argv)
