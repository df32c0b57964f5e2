r"""A stand-in for TF Serving's gRPC PredictionService, for tests and manual trials.

`tensorflow_model_server` cannot be installed here, so the serving tests talk to
this server instead. It loads one SavedModel version with `tf.saved_model.load`
and answers `Predict` the way TF Serving does:

  * the model_spec name must be the served model's (else NOT_FOUND); a
    model_spec version, if set, must be the loaded one (else NOT_FOUND);
  * an empty signature_name means serving_default; an unknown one is
    FAILED_PRECONDITION;
  * the input keys must be exactly the signature's and each dtype must match
    (else INVALID_ARGUMENT); output_filter selects outputs (unknown names are
    INVALID_ARGUMENT);
  * errors raised while running the signature (the SavedModel's own input
    checks) are INVALID_ARGUMENT with their message.

`GetModelMetadata` answers metadata_field "signature_def" with the
SavedModel's SignatureDefMap (other fields are INVALID_ARGUMENT), as TF Serving
does. It also answers TF Serving's REST `:predict` (JSON) and `GET .../metadata`
when given a REST port. It
binds to 127.0.0.1 only and stops when its `with` block ends, or at the latest
after `lifetime_seconds`. For a manual trial:

    python tests/prediction_server.py --export_dir BASE/1 --port 8500 \
        --rest_api_port 8501
"""

import concurrent.futures
import http.server
import json
import os
import re
import threading

from absl import app
from absl import flags
from google.protobuf import json_format
import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

_DEFAULT_SIGNATURE = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
# Large enough for big batches, as TF Serving's own limit is.
_MAX_MESSAGE_BYTES = 1 << 30


class _Abort(Exception):
  """A gRPC status to answer with."""

  def __init__(self, code, message):
    super().__init__(message)
    self.code = code
    self.message = message


class _Servable:
  """One loaded SavedModel version and TF Serving's request rules, transport-free."""

  def __init__(self, export_dir, model_name):
    self.loaded = tf.saved_model.load(export_dir)
    self.model_name = model_name
    version = os.path.basename(os.path.normpath(export_dir))
    self.version = int(version) if version.isdigit() else 0
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
      saved_model.ParseFromString(f.read())
    self.signature_defs = get_model_metadata_pb2.SignatureDefMap(
        signature_def=saved_model.meta_graphs[0].signature_def)

  def check_model(self, model_name, version):
    """Raises NOT_FOUND unless the request addresses the served model (and version)."""
    if model_name != self.model_name or version not in (None, self.version):
      raise _Abort(grpc.StatusCode.NOT_FOUND,
                   f"Servable not found for request: {model_name} version {version} "
                   f"(this server serves {self.model_name} version {self.version})")

  def signature(self, model_name, version, signature_name):
    """(signature key, function, {input name: TensorSpec}) a request addresses."""
    self.check_model(model_name, version)
    signature_name = signature_name or _DEFAULT_SIGNATURE
    function = self.loaded.signatures.get(signature_name)
    if function is None:
      raise _Abort(grpc.StatusCode.FAILED_PRECONDITION,
                   f'Serving signature key "{signature_name}" not found.')
    return signature_name, function, function.structured_input_signature[1]

  def run(self, signature_name, function, inputs, output_filter=()):
    """Checks input keys, dtypes and output_filter; runs the signature."""
    _, specs = function.structured_input_signature
    if set(inputs) != set(specs):
      raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                   f"{signature_name}: input keys {sorted(inputs)} do not match the "
                   f"signature's {sorted(specs)}.")
    for name, value in inputs.items():
      if value.dtype != specs[name].dtype.as_numpy_dtype:
        raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                     f"{signature_name}: input {name} must be {specs[name].dtype.name}, "
                     f"got {tf.dtypes.as_dtype(value.dtype).name}.")
    unknown = set(output_filter) - set(function.structured_outputs)
    if unknown:
      raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                   f"{signature_name}: output_filter names unknown outputs "
                   f"{sorted(unknown)}.")
    try:
      # As tensors, not arrays: an array of the wrong shape fails Python's binding
      # with a TypeError, while TF Serving feeds any shape and lets the graph's own
      # checks answer, as tensors do here.
      outputs = function(**{name: tf.constant(value) for name, value in inputs.items()})
    except tf.errors.InvalidArgumentError as error:
      raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, error.message) from error
    return {name: value.numpy() for name, value in outputs.items()
            if not output_filter or name in output_filter}


def _version(spec):
  return spec.version.value if spec.HasField("version") else None


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
  """Answers Predict and GetModelMetadata from a `_Servable`; the other RPCs stay
  UNIMPLEMENTED."""

  def __init__(self, servable):
    self._servable = servable

  def GetModelMetadata(self, request, context):  # pylint: disable=invalid-name
    try:
      self._servable.check_model(request.model_spec.name, _version(request.model_spec))
      if list(request.metadata_field) != ["signature_def"]:
        raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                     f"Metadata fields {list(request.metadata_field)}: only "
                     "signature_def is supported.")
    except _Abort as error:
      context.abort(error.code, error.message)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = self._servable.model_name
    response.model_spec.version.value = self._servable.version
    response.metadata["signature_def"].Pack(self._servable.signature_defs)
    return response

  def Predict(self, request, context):  # pylint: disable=invalid-name
    spec = request.model_spec
    try:
      signature_name, function, _ = self._servable.signature(
          spec.name, _version(spec), spec.signature_name)
      inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
      outputs = self._servable.run(signature_name, function, inputs,
                                   request.output_filter)
    except _Abort as error:
      context.abort(error.code, error.message)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = self._servable.model_name
    response.model_spec.version.value = self._servable.version
    response.model_spec.signature_name = signature_name
    for name, value in outputs.items():
      response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    return response


def _rest_handler(servable):
  """A handler of TF Serving's REST POST /v1/models/NAME[/versions/N]:predict
  and GET /v1/models/NAME[/versions/N]/metadata.

  Like TF Serving, it converts JSON values to the signature's input dtypes and
  answers columnar "inputs" with "outputs" and row "instances" with
  "predictions", leaving out the output name when there is only one.
  """

  class Handler(http.server.BaseHTTPRequestHandler):

    def do_GET(self):  # pylint: disable=invalid-name
      match = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/(\d+))?/metadata", self.path)
      try:
        if not match:
          raise _Abort(grpc.StatusCode.NOT_FOUND, f"Malformed request: {self.path}")
        servable.check_model(match.group(1),
                             int(match.group(2)) if match.group(2) else None)
      except _Abort as error:
        self._reply(404, {"error": error.message})
        return
      signature_defs = json_format.MessageToDict(servable.signature_defs,
                                                 preserving_proto_field_name=True)
      self._reply(200, {
          "model_spec": {"name": servable.model_name, "signature_name": "",
                         "version": str(servable.version)},
          "metadata": {"signature_def": signature_defs}})

    def do_POST(self):  # pylint: disable=invalid-name
      match = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/(\d+))?:predict",
                           self.path)
      try:
        if not match:
          raise _Abort(grpc.StatusCode.NOT_FOUND, f"Malformed request: {self.path}")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        version = int(match.group(2)) if match.group(2) else None
        signature_name, function, specs = servable.signature(
            match.group(1), version, body.get("signature_name"))
        columnar = "inputs" in body
        if columnar:
          values = body["inputs"]
        else:
          values = {name: [row[name] for row in body["instances"]] for name in specs}
        inputs = {name: np.asarray(value, specs[name].dtype.as_numpy_dtype)
                  if name in specs else np.asarray(value)
                  for name, value in values.items()}
        outputs = servable.run(signature_name, function, inputs)
      except _Abort as error:
        status = 404 if error.code == grpc.StatusCode.NOT_FOUND else 400
        self._reply(status, {"error": error.message})
        return
      single = len(outputs) == 1
      if columnar:
        result = {name: value.tolist() for name, value in outputs.items()}
        self._reply(200, {"outputs": next(iter(result.values())) if single else result})
      else:
        rows = [{name: value[i].tolist() for name, value in outputs.items()}
                for i in range(len(next(iter(outputs.values()))))]
        self._reply(200, {"predictions": [next(iter(row.values())) if single else row
                                          for row in rows]})

    def _reply(self, status, payload):
      data = json.dumps(payload).encode()
      self.send_response(status)
      self.send_header("Content-Type", "application/json")
      self.send_header("Content-Length", str(len(data)))
      self.end_headers()
      self.wfile.write(data)

    def log_message(self, *args):
      del args  # Quiet: tests make hundreds of requests.

  return Handler


class PredictionServer:
  """The stand-in on 127.0.0.1: gRPC, and REST if asked; use as a context manager.

  Example:
    with PredictionServer(export_dir, rest=True) as server:
      client = serving_client.GrpcClient(server.address)
      rest = serving_client.RestClient(server.rest_url)
  """

  def __init__(self, export_dir, model_name="vqvae", port=0, rest_port=None,
               max_workers=8, lifetime_seconds=600.0):
    """Loads the SavedModel and binds the ports.

    Args:
      export_dir: a SavedModel version directory, e.g. BASE/1.
      model_name: the model name requests must address.
      port: gRPC port on 127.0.0.1; 0 picks a free one.
      rest_port: REST port on 127.0.0.1; 0 picks a free one, None serves no REST.
      max_workers: gRPC requests served concurrently.
      lifetime_seconds: the server stops by itself after this long, so a test
        that never reaches its cleanup cannot leave it running.

    Raises:
      RuntimeError: if the gRPC port cannot be bound.
      OSError: if the REST port cannot be bound.
    """
    servable = _Servable(export_dir, model_name)
    self._server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=max_workers),
        options=[("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                 ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(servable), self._server)
    self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
    if not self.port:
      raise RuntimeError(f"cannot bind 127.0.0.1:{port}")
    self.address = f"127.0.0.1:{self.port}"
    self._rest = None
    if rest_port is not None:
      self._rest = http.server.ThreadingHTTPServer(("127.0.0.1", rest_port),
                                                   _rest_handler(servable))
      self.rest_url = f"http://127.0.0.1:{self._rest.server_address[1]}"
    self._stopped = threading.Event()
    self._timer = threading.Timer(lifetime_seconds, self.stop)
    self._timer.daemon = True

  def start(self):
    self._server.start()
    if self._rest:
      threading.Thread(target=self._rest.serve_forever, daemon=True).start()
    self._timer.start()
    return self

  def stop(self):
    """Stops serving; safe to call twice (the lifetime timer may call it too)."""
    if self._stopped.is_set():
      return
    self._stopped.set()
    self._timer.cancel()
    self._server.stop(grace=None).wait()
    if self._rest:
      self._rest.shutdown()
      self._rest.server_close()

  def wait(self):
    """Blocks until the server stops."""
    self._stopped.wait()

  def __enter__(self):
    return self.start()

  def __exit__(self, *exc_info):
    self.stop()


def main(argv):
  del argv  # Unused.
  flag_values = flags.FLAGS
  server = PredictionServer(flag_values.export_dir, flag_values.model_name,
                            flag_values.port, flag_values.rest_api_port,
                            lifetime_seconds=flag_values.lifetime_seconds)
  with server:
    print(f"Serving {flag_values.model_name} from {flag_values.export_dir}: gRPC "
          f"{server.address}, REST {server.rest_url}, for at most "
          f"{flag_values.lifetime_seconds:.0f} s.", flush=True)
    server.wait()


if __name__ == "__main__":
  flags.DEFINE_string("export_dir", None, "SavedModel version directory, e.g. BASE/1.")
  flags.DEFINE_string("model_name", "vqvae", "Model name requests must address.")
  flags.DEFINE_integer("port", 8500, "gRPC port on 127.0.0.1.")
  flags.DEFINE_integer("rest_api_port", 8501, "REST port on 127.0.0.1.")
  flags.DEFINE_float("lifetime_seconds", 3600.0, "Stop after this many seconds.")
  flags.mark_flag_as_required("export_dir")
  app.run(main)
