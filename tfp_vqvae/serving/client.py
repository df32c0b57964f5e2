"""Clients of an exported VQ-VAE: TF Serving's gRPC Predict and REST :predict, or in-process.

Example (gRPC, port 8500):
  with serving_client.GrpcClient("localhost:8500") as client:
    codes = client.encode(images)["codes"]        # images: uint8 [B, 28, 28, 1]
    probs = client.decode(codes)["probs"]         # float32 [B, 28, 28, 1]

`RestClient("http://localhost:8501")` has the same methods over TF Serving's
REST API (JSON; slower for big batches), and `LocalClient(export_dir)` runs the
SavedModel in this process. All raise `PredictionError` carrying a status code
and message, e.g. INVALID_ARGUMENT with "decode: codes must be in [0, 512); ...".
`client.image_shape()` asks the server for the (H, W, C) of the images the model
takes (GetModelMetadata over gRPC, GET .../metadata over REST).
The signatures are documented in `export_lib`. Inputs must be NumPy arrays (or,
for `LocalClient`, tensors) of exactly the signature's dtypes, uint8 images and
int32 codes: the gRPC server refuses other dtypes, and the REST and local clients
refuse them before sending, because JSON and TF's Python signature calls would
convert them silently (256 -> 0, 3.7 -> 3, 2**32 + 3 -> 3).

The gRPC and REST clients do not import TensorFlow (see `protos`), so a program
that only calls a server starts in well under a second; `LocalClient` imports it.
"""

import json
import re
import sys
import urllib.error
import urllib.request

from google.protobuf import json_format
import grpc
import numpy as np

from tfp_vqvae.serving import protos

DEFAULT_MODEL_NAME = "vqvae"
# gRPC's 4 MB default would cap a decode reply at about 600 28x28 images.
DEFAULT_MAX_MESSAGE_BYTES = 256 << 20
# The outputs of each signature and their dtypes. JSON has no dtypes, so the REST
# client needs them, and TF Serving's REST reply drops the name of a single output.
SIGNATURE_OUTPUTS = {
    "encode": {"codes": np.int32, "top_codes": np.int32, "bottom_codes": np.int32,
               "latents": np.float32},
    "decode": {"probs": np.float32, "logits": np.float32},
    "reconstruct": {"probs": np.float32, "codes": np.int32, "top_codes": np.int32,
                    "bottom_codes": np.int32},
    "neg_elbo": {"neg_elbo": np.float32},
}
SIGNATURE_OUTPUTS["serving_default"] = SIGNATURE_OUTPUTS["reconstruct"]
# The input dtypes of each signature, which the REST client checks: JSON has none.
SIGNATURE_INPUTS = {
    "encode": {"images": np.uint8},
    "decode": {"codes": np.int32},
    "reconstruct": {"images": np.uint8},
    "neg_elbo": {"images": np.uint8},
}
SIGNATURE_INPUTS["serving_default"] = SIGNATURE_INPUTS["reconstruct"]


# TF's wrapping of an op's error when a graph runs: "Graph execution error:", the
# "Detected at node ... <stack traces unavailable>" lines, "{{function_node ...}}",
# "\t [[{{node ...}}]]" and "[Op:__inference_...]". None of it tells a client what
# was wrong with its request.
_GRAPH_NOISE = re.compile(r"Graph execution error:|Detected at node .*|"
                          r"<stack traces unavailable>|\{\{function_node [^}]*\}\}|"
                          r"\s*\[\[\{\{.*|\s*\[Op:[^\]]*\]")
_ASSERTION = "assertion failed: "


def one_line(message):
  """A server's or TF's error message as one line, without TF's graph wrapping.

  A failed `tf.debugging.Assert` (the signatures' input checks) prints its data as
  "[text] [value] [text] [value]"; this gives "text value text value", keeping
  the brackets of a value with several elements: "assertion failed:
  [decode: codes must be in [0, 16); got min] [16] [max] [16]" -> "decode: codes
  must be in [0, 16); got min 16 max 16".
  """
  lines = [_GRAPH_NOISE.sub("", line).strip() for line in str(message).splitlines()]
  text = " ".join(line for line in lines if line)
  if not text.startswith(_ASSERTION + "["):
    return text
  items = text[len(_ASSERTION) + 1:].rstrip("]").split("] [")
  return " ".join([items[0]] + [f"[{item}]" if " " in item else item
                                for item in items[1:]])


class PredictionError(Exception):
  """A failed prediction: `code` is the gRPC status name or the HTTP status, and
  `message` the server's message as `one_line` puts it."""

  def __init__(self, code, message):
    self.code = code
    self.message = one_line(message)
    super().__init__(f"{code}: {self.message}")


def check_inputs(signature_name, inputs, dtypes):
  """Refuses inputs that are not arrays of exactly the signature's dtypes.

  TF converts a NumPy array or Python list passed to `loaded.signatures[...]` to
  the signature's dtype with a C cast (int64 256 -> uint8 0, int8 -1 -> 255,
  float 3.7 -> int32 3, 2**32 + 3 -> 3), and TF Serving's REST API casts JSON
  integers to uint8 the same way, so such values would reach the graph's range
  checks already wrapped. TF Serving's gRPC API refuses a wrong dtype; this is the
  same rule for the other paths.

  Args:
    signature_name: for the messages.
    inputs: {input name: value} as given by the caller.
    dtypes: {input name: NumPy dtype} of the signature.

  Raises:
    PredictionError: INVALID_ARGUMENT if the input names differ from the
      signature's, or a value is not a `np.ndarray` or `tf.Tensor` of its dtype.
  """
  if set(inputs) != set(dtypes):
    raise PredictionError("INVALID_ARGUMENT",
                          f"{signature_name}: input keys {sorted(inputs)} do not match "
                          f"the signature's {sorted(dtypes)}.")
  # A tf.Tensor can only have been made if TensorFlow is imported; no need to here.
  tensorflow = sys.modules.get("tensorflow")
  for name, value in inputs.items():
    expected = np.dtype(dtypes[name]).name
    if isinstance(value, np.ndarray) or (
        tensorflow is not None and isinstance(value, tensorflow.Tensor)):
      got = value.dtype.name
      if got == expected:
        continue
    else:
      got = type(value).__name__
    raise PredictionError("INVALID_ARGUMENT",
                          f"{signature_name}: input {name} must be a NumPy array or "
                          f"tensor of dtype {expected}, got {got}.")


def _unknown_signature(signature_name):
  return PredictionError("FAILED_PRECONDITION",
                         f'Serving signature key "{signature_name}" not found.')


def _input_shapes(signature_defs, signature_name):
  """{input name: shape} of one signature of a `SignatureDefMap` (the served metadata)."""
  if signature_name not in signature_defs.signature_def:
    raise _unknown_signature(signature_name)
  inputs = signature_defs.signature_def[signature_name].inputs
  return {name: tuple(dim.size if dim.size >= 0 else None
                      for dim in info.tensor_shape.dim)
          for name, info in inputs.items()}


class _Client:
  """The signature methods, shared by the transports; subclasses define `predict`
  and `input_shapes`."""

  def predict(self, signature_name, inputs):
    """Runs a signature on {input name: array}; returns {output name: np.ndarray}."""
    raise NotImplementedError

  def input_shapes(self, signature_name):
    """{input name: shape tuple} of a signature, from the served model's metadata;
    None marks a dimension of any size (the batch)."""
    raise NotImplementedError

  def image_shape(self, signature_name: str = "encode") -> tuple[int, int, int]:
    """(H, W, C) of the uint8 images `signature_name` (one taking images) accepts.

    Raises:
      PredictionError: if the server has no such signature or cannot be reached.
      KeyError: if the signature takes no `images` input.
    """
    return tuple(self.input_shapes(signature_name)["images"][1:])

  def encode(self, images):
    """uint8 images [B, H, W, C] -> {"codes": int32 [B, h, w], "latents"}
    (VQ-VAE-2: "top_codes" and "bottom_codes" instead of "codes")."""
    return self.predict("encode", {"images": images})

  def decode(self, codes):
    """int32 codes [B, h, w] -> {"probs", "logits"}: float32 [B, H, W, C].

    VQ-VAE-2: `codes` is {"top_codes": ..., "bottom_codes": ...}, as encode gives.
    """
    return self.predict("decode", codes if isinstance(codes, dict) else {"codes": codes})

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
    self._stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
    self._model_name = model_name
    self._version = version
    self._timeout = timeout_seconds

  def _spec(self, signature_name=""):
    spec = protos.model_pb2.ModelSpec(name=self._model_name,
                                      signature_name=signature_name)
    if self._version is not None:
      spec.version.value = self._version
    return spec

  def _call(self, method, request):
    """`method`(request) with the deadline; gRPC errors become `PredictionError`s."""
    try:
      return method(request, timeout=self._timeout)
    except grpc.RpcError as error:
      raise PredictionError(error.code().name, error.details()) from error

  def predict(self, signature_name, inputs):
    """See `_Client.predict`.

    Raises:
      PredictionError: with the gRPC status (e.g. INVALID_ARGUMENT,
        DEADLINE_EXCEEDED, UNAVAILABLE) and the server's message.
    """
    request = protos.predict_pb2.PredictRequest(model_spec=self._spec(signature_name))
    for name, value in inputs.items():
      request.inputs[name].CopyFrom(protos.to_tensor_proto(value))
    response = self._call(self._stub.Predict, request)
    return {name: protos.to_ndarray(proto) for name, proto in response.outputs.items()}

  def input_shapes(self, signature_name):
    """See `_Client.input_shapes`: TF Serving's GetModelMetadata ("signature_def").

    Raises:
      PredictionError: as `predict`; FAILED_PRECONDITION for an unknown signature.
    """
    request = protos.get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=self._spec(), metadata_field=["signature_def"])
    response = self._call(self._stub.GetModelMetadata, request)
    signature_defs = protos.get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_defs)
    return _input_shapes(signature_defs, signature_name)

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
    self._model_url = base_url.rstrip("/") + path
    self._timeout = timeout_seconds

  def _request(self, url, body=None):
    """GET `url`, or POST the JSON `body` to it; returns the parsed JSON reply.

    Raises:
      PredictionError: the HTTP status and the server's "error" message, or
        UNAVAILABLE if the server cannot be reached.
    """
    if body is None:
      request = urllib.request.Request(url)
    else:
      request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                       headers={"Content-Type": "application/json"})
    try:
      with urllib.request.urlopen(request, timeout=self._timeout) as reply:
        return json.load(reply)
    except urllib.error.HTTPError as error:
      message = error.read().decode(errors="replace")
      try:
        message = json.loads(message)["error"]
      except (ValueError, KeyError, TypeError):
        pass  # Not TF Serving's JSON error body: keep the raw text.
      raise PredictionError(error.code, message) from error
    except urllib.error.URLError as error:
      raise PredictionError("UNAVAILABLE", str(error.reason)) from error

  def predict(self, signature_name, inputs):
    """See `_Client.predict`; outputs are cast to the dtypes of `SIGNATURE_OUTPUTS`.

    Raises:
      PredictionError: INVALID_ARGUMENT (see `check_inputs`) before sending, or
        the HTTP status and the server's "error" message.
      KeyError: for a signature this client does not know the inputs of.
    """
    check_inputs(signature_name, inputs, SIGNATURE_INPUTS[signature_name])
    outputs = SIGNATURE_OUTPUTS[signature_name]
    result = self._request(self._model_url + ":predict", {
        "signature_name": signature_name,
        "inputs": {name: np.asarray(value).tolist() for name, value in inputs.items()},
    })["outputs"]
    if not isinstance(result, dict):
      # TF Serving leaves out the name when a signature has one output.
      (name,) = outputs
      result = {name: result}
    return {name: np.asarray(value, outputs[name]) for name, value in result.items()}

  def input_shapes(self, signature_name):
    """See `_Client.input_shapes`: TF Serving's GET .../metadata.

    Raises:
      PredictionError: as `predict`; FAILED_PRECONDITION for an unknown signature.
    """
    reply = self._request(self._model_url + "/metadata")
    signature_defs = json_format.ParseDict(reply["metadata"]["signature_def"],
                                           protos.get_model_metadata_pb2.SignatureDefMap(),
                                           ignore_unknown_fields=True)
    return _input_shapes(signature_defs, signature_name)


class LocalClient(_Client):
  """Runs an exported SavedModel's signatures in this process, inputs checked.

  The checked way to call an export from Python: `check_inputs` first (what
  TF Serving's gRPC API checks), then the signature on tensors, whose graph checks
  shapes and value ranges. Failures raise `PredictionError` as the remote clients
  do, so code can switch between them. It imports TensorFlow, which the module
  leaves to it.
  """

  def __init__(self, export_dir):
    """Loads the SavedModel version directory `export_dir` (e.g. BASE/1)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self._tf = tf
    self.loaded = tf.saved_model.load(export_dir)

  def predict(self, signature_name, inputs):
    """See `_Client.predict`; any signature of the export, e.g. "sample".

    Raises:
      PredictionError: FAILED_PRECONDITION for an unknown signature,
        INVALID_ARGUMENT for inputs `check_inputs` refuses or that fail the
        graph's checks (with their message).
    """
    specs = self._input_specs(signature_name)
    function = self.loaded.signatures[signature_name]
    check_inputs(signature_name, inputs,
                 {name: spec.dtype.as_numpy_dtype for name, spec in specs.items()})
    tf = self._tf
    try:
      outputs = function(**{name: tf.convert_to_tensor(value)
                            for name, value in inputs.items()})
    except tf.errors.InvalidArgumentError as error:
      raise PredictionError("INVALID_ARGUMENT", error.message) from error
    return {name: value.numpy() for name, value in outputs.items()}

  def _input_specs(self, signature_name):
    function = self.loaded.signatures.get(signature_name)
    if function is None:
      raise _unknown_signature(signature_name)
    return function.structured_input_signature[1]

  def input_shapes(self, signature_name):
    """See `_Client.input_shapes`: the signature's TensorSpecs.

    Raises:
      PredictionError: FAILED_PRECONDITION for an unknown signature.
    """
    return {name: tuple(spec.shape.as_list())
            for name, spec in self._input_specs(signature_name).items()}
