"""TF Serving's request protos and NumPy <-> TensorProto, without importing TensorFlow.

The gRPC client needs TF Serving's generated `_pb2` modules, which import TF's own
(`tensorflow.core.framework.tensor_pb2`, ...). Those are plain protobuf modules, but
importing anything under `tensorflow.` first runs `tensorflow/__init__.py`, which
loads all of TensorFlow: about 4 s of the client's 4-5 s for one image (measured
with `python -X importtime`). `_import_serving_protos` loads the same modules with
the package's `__init__` skipped, in 0.06 s; they are the modules TensorFlow itself
uses, so a process that imports TensorFlow later shares them (one descriptor pool,
one `TensorProto` class) and `tf.make_ndarray` takes our protos.

`to_tensor_proto` and `to_ndarray` replace `tf.make_tensor_proto` and
`tf.make_ndarray` for the numeric dtypes the signatures use.
"""

import contextlib
import importlib.util
import sys
import types

import numpy as np


@contextlib.contextmanager
def _without_tensorflow_init():
  """Within the block, `tensorflow.x.y` imports load x.y without tensorflow/__init__.py.

  A stand-in `tensorflow` package (the real directory as its path, no code) sits in
  `sys.modules` and is removed on exit, so a later `import tensorflow` runs the
  real initialisation; the submodules loaded meanwhile stay and are reused by it.
  Does nothing when TensorFlow is already imported.
  """
  if "tensorflow" in sys.modules:
    yield
    return
  spec = importlib.util.find_spec("tensorflow")
  stand_in = types.ModuleType("tensorflow")
  stand_in.__path__ = list(spec.submodule_search_locations)
  sys.modules["tensorflow"] = stand_in
  try:
    yield
  finally:
    if sys.modules.get("tensorflow") is stand_in:
      del sys.modules["tensorflow"]


with _without_tensorflow_init():
  # pylint: disable=g-import-not-at-top,unused-import
  from tensorflow.core.framework import tensor_pb2
  from tensorflow.core.framework import tensor_shape_pb2
  from tensorflow.core.framework import types_pb2
  from tensorflow_serving.apis import get_model_metadata_pb2
  from tensorflow_serving.apis import model_pb2
  from tensorflow_serving.apis import predict_pb2
  from tensorflow_serving.apis import prediction_service_pb2_grpc

# NumPy dtype -> (DataType, the TensorProto field holding its values one by one).
# tensor_content holds them as raw little-endian bytes, which `to_tensor_proto` writes
# and TF Serving usually answers with; a reply may use the field instead.
# Small integer types travel in int_val; the others in the field named after them.
_DTYPES = {
    np.dtype(numpy_name): (types_pb2.DataType.Value(proto_name), field)
    for numpy_name, proto_name, field in (
        ("float16", "DT_HALF", "half_val"), ("float32", "DT_FLOAT", "float_val"),
        ("float64", "DT_DOUBLE", "double_val"), ("int64", "DT_INT64", "int64_val"),
        ("uint32", "DT_UINT32", "uint32_val"), ("uint64", "DT_UINT64", "uint64_val"),
        ("bool", "DT_BOOL", "bool_val"),
        *((name, f"DT_{name.upper()}", "int_val")
          for name in ("int8", "int16", "int32", "uint8", "uint16")))
}
_NUMPY_DTYPES = {data_type: dtype for dtype, (data_type, _) in _DTYPES.items()}


def to_tensor_proto(array) -> tensor_pb2.TensorProto:
  """A `TensorProto` of a NumPy array of a numeric or bool dtype, values in
  tensor_content, as `tf.make_tensor_proto` writes them.

  Raises:
    ValueError: for another dtype (strings, complex, objects).
  """
  array = np.asarray(array)
  if array.dtype not in _DTYPES:
    raise ValueError(f"Cannot send an array of dtype {array.dtype}; the signatures "
                     "take numeric arrays.")
  proto = tensor_pb2.TensorProto(dtype=_DTYPES[array.dtype][0],
                                 tensor_content=array.astype(array.dtype.newbyteorder("<"),
                                                             copy=False).tobytes())
  proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=size)
                                for size in array.shape)
  return proto


def to_ndarray(proto: tensor_pb2.TensorProto) -> np.ndarray:
  """The NumPy array of a `TensorProto`, as `tf.make_ndarray` reads it: from
  tensor_content, or from the typed value field, whose last value fills the rest
  of the shape when fewer are given (zeros when none are).

  Raises:
    ValueError: for a dtype `to_tensor_proto` does not write.
  """
  dtype = _NUMPY_DTYPES.get(proto.dtype)
  if dtype is None:
    raise ValueError("Cannot read a tensor of dtype "
                     f"{types_pb2.DataType.Name(proto.dtype)}.")
  shape = tuple(dim.size for dim in proto.tensor_shape.dim)
  if proto.tensor_content:
    return np.frombuffer(proto.tensor_content, dtype.newbyteorder("<")).astype(
        dtype).reshape(shape)
  values = getattr(proto, _DTYPES[dtype][1])
  size = int(np.prod(shape, dtype=np.int64))
  if dtype == np.float16:  # half_val holds the 16 bits of each value in an int32.
    flat = np.asarray(values, np.uint16).view(np.float16)
  else:
    flat = np.asarray(values, dtype)
  if 0 < len(flat) < size:
    flat = np.concatenate([flat, np.full(size - len(flat), flat[-1], dtype)])
  elif not len(flat):
    flat = np.zeros(size, dtype)
  return flat.reshape(shape)
