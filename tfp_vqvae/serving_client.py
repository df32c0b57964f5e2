"""Clients of an exported VQ-VAE served by TF Serving: gRPC Predict and REST :predict.

Example (gRPC, port 8500):
  with serving_client.GrpcClient("localhost:8500") as client:
    codes = client.encode(images)["codes"]        # images: uint8 [B, 28, 28, 1]
    probs = client.decode(codes)["probs"]         # float32 [B, 28, 28, 1]

`RestClient("http://localhost:8501")` has the same methods over TF Serving's
REST API (JSON; slower for big batches). Both raise `PredictionError` carrying
the server's status code and message, e.g. INVALID_ARGUMENT with
"decode: codes must be in [0, 512); ...". The signatures are documented in
`export_lib`; arrays are sent as given, so images must already be uint8 and codes
int32 (the server rejects other dtypes).
"""

import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

DEFAULT_MODEL_NAME = "vqvae"
# gRPC's 4 MB default would cap a decode reply at about 600 28x28 images.
DEFAULT_MAX_MESSAGE_BYTES = 256 << 20
# The outputs of each signature and their dtypes. JSON has no dtypes, so the REST
# client needs them, and TF Serving's REST reply drops the name of a single output.
SIGNATURE_OUTPUTS = {
    "encode": {"codes": np.int32, "latents": np.float32},
    "decode": {"probs": np.float32, "logits": np.float32},
    "reconstruct": {"probs": np.float32, "codes": np.int32},
    "neg_elbo": {"neg_elbo": np.float32},
}
SIGNATURE_OUTPUTS["serving_default"] = SIGNATURE_OUTPUTS["reconstruct"]


class PredictionError(Exception):
  """A failed prediction: `code` is the gRPC status name or the HTTP status."""

  def __init__(self, code, message):
    super().__init__(f"{code}: {message}")
    self.code = code
    self.message = message


class _Client:
  """The signature methods, shared by the transports; subclasses define `predict`."""

  def predict(self, signature_name, inputs):
    """Runs a signature on {input name: array}; returns {output name: np.ndarray}."""
    raise NotImplementedError

  def encode(self, images):
    """uint8 images [B, H, W, C] -> {"codes": int32 [B, h, w], "latents"}."""
    return self.predict("encode", {"images": images})

  def decode(self, codes):
    """int32 codes [B, h, w] -> {"probs", "logits"}: float32 [B, H, W, C]."""
    return self.predict("decode", {"codes": codes})

  def reconstruct(self, images):
    """uint8 images -> {"probs": float32 [B, H, W, C], "codes": int32 [B, h, w]}."""
    return self.predict("reconstruct", {"images": images})

  def neg_elbo(self, images):
    """uint8 images -> {"neg_elbo": float32 [B]} in nats."""
    return self.predict("neg_elbo", {"images": images})

  def close(self):
    """Releases the connection, if any."""

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()


class GrpcClient(_Client):
  """PredictionService.Predict over one gRPC channel; safe to share between threads."""

  def __init__(self, target, model_name=DEFAULT_MODEL_NAME, version=None,
               timeout_seconds=30.0, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES):
    """Opens an insecure channel to `target`.

    Args:
      target: "host:port" of the server's gRPC port (TF Serving's --port).
      model_name: the served model name (TF Serving's --model_name).
      version: a version number to pin, or None for the latest.
      timeout_seconds: deadline of each request.
      max_message_bytes: largest request and reply; raise it for huge batches.
    """
    self._channel = grpc.insecure_channel(
        target, options=[("grpc.max_send_message_length", max_message_bytes),
                         ("grpc.max_receive_message_length", max_message_bytes)])
    self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
    self._model_name = model_name
    self._version = version
    self._timeout = timeout_seconds

  def predict(self, signature_name, inputs):
    """See `_Client.predict`.

    Raises:
      PredictionError: with the gRPC status (e.g. INVALID_ARGUMENT,
        DEADLINE_EXCEEDED, UNAVAILABLE) and the server's message.
    """
    spec = model_pb2.ModelSpec(name=self._model_name, signature_name=signature_name)
    if self._version is not None:
      spec.version.value = self._version
    request = predict_pb2.PredictRequest(model_spec=spec)
    for name, value in inputs.items():
      request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
    try:
      response = self._stub.Predict(request, timeout=self._timeout)
    except grpc.RpcError as error:
      raise PredictionError(error.code().name, error.details()) from error
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

  def close(self):
    self._channel.close()


class RestClient(_Client):
  """TF Serving's REST `:predict` (columnar "inputs" JSON) with urllib."""

  def __init__(self, base_url, model_name=DEFAULT_MODEL_NAME, version=None,
               timeout_seconds=30.0):
    """Points at `base_url`, e.g. "http://localhost:8501" (TF Serving's --rest_api_port).

    Args:
      base_url: scheme, host and port of the REST API.
      model_name: the served model name.
      version: a version number to pin, or None for the latest.
      timeout_seconds: timeout of each request.
    """
    path = f"/v1/models/{model_name}"
    if version is not None:
      path += f"/versions/{version}"
    self._url = base_url.rstrip("/") + path + ":predict"
    self._timeout = timeout_seconds

  def predict(self, signature_name, inputs):
    """See `_Client.predict`; outputs are cast to the dtypes of `SIGNATURE_OUTPUTS`.

    Raises:
      PredictionError: with the HTTP status and the server's "error" message.
      KeyError: for a signature this client does not know the outputs of.
    """
    outputs = SIGNATURE_OUTPUTS[signature_name]
    body = json.dumps({
        "signature_name": signature_name,
        "inputs": {name: np.asarray(value).tolist() for name, value in inputs.items()},
    }).encode()
    request = urllib.request.Request(self._url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
      with urllib.request.urlopen(request, timeout=self._timeout) as reply:
        result = json.load(reply)["outputs"]
    except urllib.error.HTTPError as error:
      message = error.read().decode(errors="replace")
      try:
        message = json.loads(message)["error"]
      except (ValueError, KeyError, TypeError):
        pass  # Not TF Serving's JSON error body: keep the raw text.
      raise PredictionError(error.code, message) from error
    except urllib.error.URLError as error:
      raise PredictionError("UNAVAILABLE", str(error.reason)) from error
    if not isinstance(result, dict):
      # TF Serving leaves out the name when a signature has one output.
      (name,) = outputs
      result = {name: result}
    return {name: np.asarray(value, outputs[name]) for name, value in result.items()}
