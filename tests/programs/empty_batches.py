"""Calls every signature of an export with an empty batch, through
`loaded.signatures[...]` and through the gRPC stand-in, and prints as JSON the shape
and dtype of every output and whether oneDNN is on (TF_ENABLE_ONEDNN_OPTS is read
when TensorFlow starts, hence a process of its own).

    python tests/programs/empty_batches.py EXPORT_DIR
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import prediction_server  # pylint: disable=g-import-not-at-top,wrong-import-position
from tfp_vqvae.serving import client as serving_client  # pylint: disable=g-import-not-at-top


def main(argv):
  export_dir = argv[1]
  loaded = tf.saved_model.load(export_dir)
  results = {"onednn": _pywrap_util_port.IsMklEnabled()}
  with prediction_server.PredictionServer(export_dir, lifetime_seconds=120) as server:
    with serving_client.GrpcClient(server.address, timeout_seconds=60) as client:
      for key, function in loaded.signatures.items():
        inputs = {name: np.zeros([0] + spec.shape[1:].as_list(), spec.dtype.as_numpy_dtype)
                  for name, spec in function.structured_input_signature[1].items()}
        direct = function(**{name: tf.constant(v) for name, v in inputs.items()})
        for path, outputs in (("signature", direct), ("grpc", client.predict(key, inputs))):
          for name, value in outputs.items():
            value = np.asarray(value)
            results[f"{path}/{key}/{name}"] = [list(value.shape), value.dtype.name]
  print(json.dumps(results))


if __name__ == "__main__":
  main(sys.argv)
