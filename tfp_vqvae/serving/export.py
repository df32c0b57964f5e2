"""Exports a trained VQ-VAE as a SavedModel for TF Serving and for other TF code.

`export_saved_model(model_dir, export_base)` restores the latest checkpoint of a
model_dir and writes `export_base/<version>/`, the layout TF Serving polls. Each
signature (method name `tensorflow/serving/predict`) has the batch as dimension 0
of every input and output, any size including 0 (see `_nonempty`):

    encode       images uint8 [B, H, W, C] -> codes int32 [B, h, w],
                                              latents float32 [B, h, w, D]
    decode       codes int32 [B, h, w]     -> probs float32 [B, H, W, C],
                                              logits float32 [B, H, W, C]
    reconstruct  images uint8 [B, H, W, C] -> probs, codes   (also serving_default)
    neg_elbo     images uint8 [B, H, W, C] -> neg_elbo float32 [B] (nats)

Other models (see models/vqvae.py): codes of N > 1 residual quantizers are [B, h, w, N];
MLP and global-latent models have a 1 x L grid, codes [B, 1, L]. `probs` is the
decoder's mean image in [0, 1] units whatever the likelihood (Bernoulli
probabilities, Gaussian means, which may leave [0, 1], the discretized logistic's
E[level] / 255); `logits` exists for Bernoulli models only. Padding and [-1, 1] scaling happen inside the model, so
clients always send the unpadded uint8 images.

With a learned prior (`export_saved_model(..., prior_dir=...)`, see priors/pixelcnn.py):

    sample          seeds int64 [B],       -> codes int32 [B, h, w],
                    temperature float32 [B]   probs float32 [B, H, W, C]
                    top_k int32 [B]
                    top_p float32 [B]
    log_prob_codes  codes int32 [B, h, w]  -> log_prob float32 [B] (nats)

`sample` draws sample i from seeds[i] alone with the knobs of row i
(priors/categorical_sampling.py): temperature[i] finite and > 0 (1 samples the
prior itself, lower is more typical, higher more diverse), each code among the
top_k[i] most likely (in [0, K], 0 for all) and within the nucleus of probability
top_p[i] (in (0, 1], 1 for all). So a seed and its knobs always give the same
image; temperature 1, top_k 0 and top_p 1 sample the prior. A class-conditional prior
adds a `labels` int32 [B] input to both. Any prior of `train_prior` exports
`sample` (a MaskGIT prior decodes in its 8 parallel steps); only those with an
exact log p (PixelCNN, causal Transformer) export `log_prob_codes`.

VQ-VAE-2 models (`--top_downsamples`) have two code maps: every `codes` above is
`top_codes` int32 [B, ht, wt] and `bottom_codes` int32 [B, hb, wb] instead, and
encode's `latents` is what the decoder takes, [B, hb, wb, 2 * D]. Each is checked
on its own: "decode: top_codes must be in [0, 512)".

Image conversion. Clients send uint8 pixels 0..255. A model trained with
`--binarize=threshold` only ever saw 0/1 images, so the server thresholds too
(pixel > 127, exactly `data.binarize`); a model trained with `dynamic` or `none`
binarisation sees pixel / 255, the expectation of its dynamically binarised
training inputs, which keeps serving deterministic. `neg_elbo` scores the
converted image: recon NLL + h*w*log K under the uniform prior. It is a true
negative ELBO of a binary image when the converted image is binary, i.e. always
for threshold models, and for the others when the client sends 0/255 pixels;
grey pixels are scored as soft Bernoulli targets, as `--binarize=none` trains.

Validation. `tf.gather` raises on CPU for an out-of-range code but returns zeros
on GPU and clamps under XLA, and signature functions (Python's
`loaded.signatures[...]` and TF Serving alike) run whatever shape they are fed.
So every function checks its inputs with `tf.debugging.Assert` ops, which fail
with INVALID_ARGUMENT and a message naming the signature, the input and what is
allowed, e.g. "decode: codes must be in [0, 512)", on every device. XLA drops
Assert ops, so a caller that wraps these functions in `jit_compile=True` must
validate codes itself. Dtypes are not the graph's to check: TF casts NumPy
arrays and Python lists passed to `loaded.signatures[...]` to the signature's
dtype before the graph runs (int64 256 -> uint8 0); `serving_client.LocalClient`
refuses them instead.

Accelerators. No op is pinned to a device, spatial shapes are static and the
batch is `None`. Functions are saved without `jit_compile`; the SavedModel also
carries function aliases (one per signature method, e.g. "encode") for the TPU
inference converter.
"""

import os
import tempfile
import uuid

import tensorflow as tf
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

from tfp_vqvae.data import pipeline as data
from tfp_vqvae.models import likelihoods
from tfp_vqvae.priors import categorical_sampling
from tfp_vqvae.priors import pixelcnn as prior_lib
from tfp_vqvae.training import checkpoints

DEFAULT_MODEL_NAME = "vqvae"
DEFAULT_SIGNATURE = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# assets/RECORD_ASSET: the JSON config and image shape the model was built from
# (checkpoints.parse_record reads it).
RECORD_ASSET = "model_record.json"
# Batch sizes replayed at load time: 1 for unbatched traffic, the rest equal to
# allowed_batch_sizes in export/batching_parameters.txt, the sizes the batching
# session pads to.
WARMUP_BATCH_SIZES = (1, 8, 32, 128)
# Prefix of the directory an export is written to before it is renamed to its
# version number; TF Serving ignores directories whose name is not an integer.
_TEMP_PREFIX = "tmp-export-"
# The sampling knobs of the `sample` signature, one per sample
# (priors/categorical_sampling.py), and what a warm-up request sends for each
# input: zeros, but temperature and top_p 1 (0 is refused), so the requests run.
_KNOB_DTYPES = {"temperature": tf.float32, "top_k": tf.int32, "top_p": tf.float32}
_WARMUP_VALUES = {"temperature": 1, "top_p": 1}


def serving_binarize_mode(train_binarize):
  """The `data.binarize` mode serving applies for a model trained with `train_binarize`.

  Args:
    train_binarize: the model_dir's `config.training.binarize`, one of
      `data.BINARIZE_MODES`.

  Returns:
    "threshold" for threshold-trained models, else "none" (pixel / 255): dynamic
    binarisation is random, and its expectation keeps serving deterministic.

  Raises:
    ValueError: if `train_binarize` is not a known mode.
  """
  if train_binarize not in data.BINARIZE_MODES:
    raise ValueError(f"Unknown binarize mode {train_binarize!r}; expected one of "
                     f"{', '.join(data.BINARIZE_MODES)}.")
  return "threshold" if train_binarize == "threshold" else "none"


def _check_shape(tensor, signature, name, dims):
  """An Assert op: `tensor` has shape [batch, *dims] at run time.

  Signature functions do not check shapes against their TensorSpecs, and a
  convolution runs on any image size, so a wrong size would otherwise give
  wrong-sized outputs or an obscure error deep in the graph.

  Returns:
    The Assert op, for a control dependency.
  """
  shape = tf.shape(tensor)
  # Padding with -1 (never a dimension) compares any rank in one op: a wrong rank
  # puts a -1 where a dimension is expected or a dimension where -1 is.
  padding = tf.fill([len(dims) + 1], -1)
  observed = tf.concat([shape[1:], padding], axis=0)[:len(dims) + 1]
  expected = tf.constant(list(dims) + [-1], tf.int32)
  spelled = ", ".join(["batch"] + [str(d) for d in dims])
  return tf.debugging.Assert(
      tf.reduce_all(tf.equal(observed, expected)),
      [f"{signature}: {name} must have shape [{spelled}]; got shape", shape],
      summarize=len(dims) + 8)


def _nonempty(tensor, batch_size):
  """`tensor` [batch_size, ...], with one row of zeros appended if batch_size is 0.

  TF 2.21's oneDNN CPU Conv2D (on by default on CPUs with AVX-512, or with
  TF_ENABLE_ONEDNN_OPTS=1) returns its input unchanged for an empty batch, which
  the next convolution refuses ("input depth must be evenly divisible by filter
  depth"). Zeros are a valid image, code, seed and label, and `_first_rows` drops
  the extra row's outputs. A Pad by zero rows forwards its input, so non-empty
  batches pay nothing (measured: batch-64 encode unchanged).
  """
  padding = [[0, tf.maximum(1 - batch_size, 0)]] + [[0, 0]] * (tensor.shape.rank - 1)
  return tf.pad(tensor, padding)


def _first_rows(outputs, batch_size):
  """{name: tensor[:batch_size]}: the outputs of the real rows of a `_nonempty` batch."""
  return {name: value[:batch_size] for name, value in outputs.items()}


def code_spec(model):
  """The TensorSpec of a batch of the model's codes: int32 [None, *code_shape] named
  "codes", or for VQ-VAE-2 a dict {"top": ..., "bottom": ...} of specs named
  "top_codes" and "bottom_codes" (the signatures' input and output names)."""
  if isinstance(model.code_shape, dict):
    return {level: tf.TensorSpec((None,) + tuple(shape), tf.int32, name=f"{level}_codes")
            for level, shape in model.code_shape.items()}
  return tf.TensorSpec((None,) + tuple(model.code_shape), tf.int32, name="codes")


def _named_codes(codes):
  """{signature output name: codes} of the model's codes (a tensor or a dict)."""
  if isinstance(codes, dict):
    return {f"{level}_codes": level_codes for level, level_codes in codes.items()}
  return {"codes": codes}


class ServingModule(tf.Module):
  """The serving functions of a `model.VQVAE`; `signatures()` are what TF Serving sees.

  Each public method is a `tf.function` taking one tensor and returning a dict of
  batched tensors, traced once per input spec of `input_specs()`. A later learned
  prior adds `sample` and `log_prob_codes` by subclassing: define the methods and
  extend `input_specs()`; export, warm-up and aliases follow from that table.
  """

  def __init__(self, model, binarize_mode, name="serving"):
    """Wraps `model`.

    Args:
      model: a restored `model.VQVAE`.
      binarize_mode: how uint8 images become model inputs, a `data.binarize` mode
        (see `serving_binarize_mode`); "dynamic" is refused as it is random.

    Raises:
      ValueError: if `binarize_mode` is "dynamic" or unknown.
    """
    super().__init__(name=name)
    if binarize_mode not in ("threshold", "none"):
      raise ValueError(f"binarize_mode must be threshold or none for serving, got "
                       f"{binarize_mode!r}.")
    self.model = model
    self.binarize_mode = binarize_mode

  def input_specs(self):
    """{signature method name: {input name: TensorSpec}}, the batch dimension None."""
    model = self.model
    images = tf.TensorSpec((None,) + model.image_shape, tf.uint8, name="images")
    return {"encode": {"images": images}, "decode": {"codes": code_spec(model)},
            "reconstruct": {"images": images}, "neg_elbo": {"images": images}}

  def signatures(self):
    """{signature key: concrete function}; serving_default is reconstruct."""
    functions = {name: getattr(self, name).get_concrete_function(**specs)
                 for name, specs in self.input_specs().items()}
    functions[DEFAULT_SIGNATURE] = functions["reconstruct"]
    return functions

  def function_aliases(self):
    """{alias: tf.function} for `tf.saved_model.SaveOptions(function_aliases=...)`."""
    return {name: getattr(self, name) for name in self.input_specs()}

  def _model_images(self, images, signature):
    """Checks uint8 images [B, H, W, C] and converts them as the model was trained.

    Returns:
      (the converted images made `_nonempty`, B).
    """
    with tf.control_dependencies(
        [_check_shape(images, signature, "images", self.model.image_shape)]):
      # seed is only used by the "dynamic" mode, which __init__ refuses.
      converted = data.binarize(images, self.binarize_mode, seed=None)
      batch_size = tf.shape(images)[0]
    return _nonempty(converted, batch_size), batch_size

  def _checked_codes(self, codes, signature):
    """(`codes` [B, *code_shape] checked to lie in [0, K) and made `_nonempty`, B).

    A dict of code maps (VQ-VAE-2) is checked map by map, each message naming its
    input ("decode: top_codes must be in [0, 512)"), and all must share one batch.
    """
    num_embeddings = self.model.num_embeddings
    specs, batch_size, checked = code_spec(self.model), None, []
    for spec, level_codes in zip(tf.nest.flatten(specs), tf.nest.flatten(codes)):
      checks = [_check_shape(level_codes, signature, spec.name, spec.shape[1:])]
      if batch_size is None:
        batch_size = tf.shape(level_codes)[0]
      else:
        checks.append(tf.debugging.Assert(
            tf.equal(tf.shape(level_codes)[0], batch_size),
            [f"{signature}: {spec.name} must have the batch size of the other code "
             "maps; got", tf.shape(level_codes)[0], "and", batch_size]))
      with tf.control_dependencies(checks):
        # Flattened so that the reductions work whatever rank was fed.
        flat = tf.reshape(level_codes, [-1])
        range_check = tf.debugging.Assert(
            tf.reduce_all((flat >= 0) & (flat < num_embeddings)),
            [f"{signature}: {spec.name} must be in [0, {num_embeddings}); got min",
             tf.reduce_min(flat), "max", tf.reduce_max(flat)])
      with tf.control_dependencies([range_check]):
        checked.append(_nonempty(level_codes, batch_size))
    return tf.nest.pack_sequence_as(specs, checked), batch_size

  @tf.function
  def encode(self, images):
    """uint8 images -> {"codes": int32 [B, h, w], "latents": float32 [B, h, w, D]}.

    VQ-VAE-2: "top_codes" and "bottom_codes" instead of "codes", and "latents"
    [B, hb, wb, 2 * D], what its decoder takes.
    """
    images, batch_size = self._model_images(images, "encode")
    codes = self.model.encode(images).codes
    # The codebook vectors themselves, not the straight-through sum z_e + (e - z_e),
    # which differs from them in the last bits.
    return _first_rows(dict(_named_codes(codes),
                            latents=self.model.quantizer.lookup(codes)), batch_size)

  @tf.function
  def decode(self, codes):
    """int32 codes -> {"probs"(, "logits" for Bernoulli)}: float32 [B, H, W, C]."""
    codes, batch_size = self._checked_codes(codes, "decode")
    likelihood = self.model.decode_codes(codes)
    outputs = {"probs": likelihood.mean()}
    if isinstance(self.model.likelihood, likelihoods.Bernoulli):
      outputs["logits"] = likelihood.distribution.logits
    return _first_rows(outputs, batch_size)

  @tf.function
  def reconstruct(self, images):
    """uint8 images -> {"probs": float32 [B, H, W, C], "codes": int32 [B, h, w]}."""
    images, batch_size = self._model_images(images, "reconstruct")
    codes = self.model.encode(images).codes
    # Decoded from the codes, as `decode` does, so reconstruct(x) equals
    # decode(encode(x)) exactly.
    return _first_rows(dict(_named_codes(codes),
                            probs=self.model.decode_codes(codes).mean()), batch_size)

  @tf.function
  def neg_elbo(self, images):
    """uint8 images -> {"neg_elbo": float32 [B]}, nats under the uniform prior."""
    images, batch_size = self._model_images(images, "neg_elbo")
    return _first_rows({"neg_elbo": self.model.loss_terms(images).neg_elbo}, batch_size)


class PriorServingModule(ServingModule):
  """`ServingModule` plus `sample` and, for a prior with an exact log p (not
  MaskGIT), `log_prob_codes` from a learned prior."""

  def __init__(self, model, prior, binarize_mode, name="serving"):
    """Wraps `model` and `prior` (`prior.build_prior`'s, over its codes).

    Raises:
      ValueError: as `ServingModule`, or if the prior's K or grid differ.
    """
    super().__init__(model, binarize_mode, name=name)
    if (prior.num_embeddings != model.num_embeddings
        or prior.code_shape != prior_lib.code_shape_of(model)):
      raise ValueError(f"The prior is over codes of shape {prior.code_shape} out of "
                       f"{prior.num_embeddings}, the model's are {model.code_shape} "
                       f"out of {model.num_embeddings}.")
    self.prior = prior

  def input_specs(self):
    specs = super().input_specs()
    labels = ({"labels": tf.TensorSpec([None], tf.int32, name="labels")}
              if self.prior.num_classes else {})
    specs["sample"] = dict(seeds=tf.TensorSpec([None], tf.int64, name="seeds"),
                           **{name: tf.TensorSpec([None], dtype, name=name)
                              for name, dtype in _KNOB_DTYPES.items()}, **labels)
    if self.prior.exact_log_prob:
      specs["log_prob_codes"] = dict(codes=specs["decode"]["codes"], **labels)
    return specs

  def _checked_labels(self, labels, batch_size, signature):
    """`labels`, checked to be [batch_size] in [0, num_classes), `_nonempty`."""
    if labels is None:
      return None
    num_classes = self.prior.num_classes
    shape_check = tf.debugging.Assert(
        tf.reduce_all(tf.equal(tf.shape(labels), tf.reshape(batch_size, [1]))),
        [f"{signature}: labels must have shape [batch]; got shape", tf.shape(labels),
         "batch", batch_size])
    with tf.control_dependencies([shape_check]):
      range_check = tf.debugging.Assert(
          tf.reduce_all((labels >= 0) & (labels < num_classes)),
          [f"{signature}: labels must be in [0, {num_classes}); got min",
           tf.reduce_min(labels), "max", tf.reduce_max(labels)])
    with tf.control_dependencies([range_check]):
      return _nonempty(labels, batch_size)

  @tf.function
  def sample(self, seeds, temperature, top_k, top_p, labels=None):
    """int64 seeds [B], float32 temperature [B], int32 top_k [B], float32 top_p [B]
    -> {"codes": int32 [B, h, w] (VQ-VAE-2: "top_codes", "bottom_codes"),
    "probs": float32 [B, H, W, C]}."""
    knobs = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
    shape_checks = [_check_shape(seeds, "sample", "seeds", ())] + [
        _check_shape(value, "sample", name, ()) for name, value in knobs.items()]
    with tf.control_dependencies(shape_checks):
      batch_size = tf.shape(seeds)[0]
      knob_checks = [
          tf.debugging.Assert(
              tf.equal(tf.shape(knobs[name])[0], batch_size)
              & tf.reduce_all(valid(tf.cast(knobs[name], tf.float32))),
              [f"sample: {name} must have the batch size of seeds and be {allowed}; "
               "got shape", tf.shape(knobs[name]), "min", tf.reduce_min(knobs[name]),
               "max", tf.reduce_max(knobs[name])])
          for name, valid, allowed in categorical_sampling.knob_rules(
              self.prior.num_embeddings)]
    with tf.control_dependencies(knob_checks):
      seeds = _nonempty(seeds, batch_size)
      # The padded row samples at temperature 1 and top_p 1, not at the refused 0.
      padded_row = tf.cast(tf.equal(batch_size, 0), tf.float32)
      knobs = {"temperature": _nonempty(temperature, batch_size) + padded_row,
               "top_k": _nonempty(top_k, batch_size),
               "top_p": _nonempty(top_p, batch_size) + padded_row}
    labels = self._checked_labels(labels, batch_size, "sample")
    codes = self.prior.sample(seeds, knobs["temperature"][:, None], labels,
                              top_k=knobs["top_k"][:, None], top_p=knobs["top_p"][:, None])
    return _first_rows(dict(_named_codes(codes),
                            probs=self.model.decode_codes(codes).mean()), batch_size)

  @tf.function
  def log_prob_codes(self, codes, labels=None):
    """int32 codes [B, h, w] (VQ-VAE-2: top_codes, bottom_codes) -> {"log_prob":
    float32 [B]}, log p(codes) in nats."""
    codes, batch_size = self._checked_codes(codes, "log_prob_codes")
    labels = self._checked_labels(labels, batch_size, "log_prob_codes")
    return _first_rows({"log_prob": self.prior.log_prob(codes, labels)}, batch_size)


def integer_versions(export_base):
  """The integer version directories in `export_base`, sorted; [] if it is absent."""
  if not tf.io.gfile.isdir(export_base):
    return []
  names = (name.rstrip("/") for name in tf.io.gfile.listdir(export_base))
  return sorted(int(name) for name in names if name.isdigit())


def _warmup_requests(module, model_name, batch_sizes):
  """PredictionLogs calling every signature once per batch size, with zero inputs."""
  specs = module.input_specs()
  specs[DEFAULT_SIGNATURE] = specs["reconstruct"]
  for signature, inputs in specs.items():
    for batch_size in batch_sizes:
      request = predict_pb2.PredictRequest(
          model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
      for spec in tf.nest.flatten(inputs):
        request.inputs[spec.name].CopyFrom(tf.make_tensor_proto(tf.fill(
            (batch_size,) + tuple(spec.shape[1:]),
            tf.constant(_WARMUP_VALUES.get(spec.name, 0), spec.dtype))))
      yield prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request))


def save_module(module, export_base, version=None, model_name=DEFAULT_MODEL_NAME,
                warmup_batch_sizes=WARMUP_BATCH_SIZES):
  """Writes `module` as version `version` of a TF Serving model base path.

  The SavedModel and its warm-up file are written to a non-numeric directory in
  `export_base` and then renamed to `export_base/<version>`, so a server polling
  `export_base` never loads a half-written version and a failed export leaves no
  version behind. The rename is atomic on local/POSIX filesystems only.

  Args:
    module: a `ServingModule`.
    export_base: the model base path; created if missing.
    version: positive integer version; None for one more than the highest
      existing version (1 in an empty base).
    model_name: the model name the warm-up requests address.
    warmup_batch_sizes: batch sizes of the warm-up requests of each signature.

  Returns:
    The path of the new version directory.

  Raises:
    ValueError: if export_base is not a directory, or the version is not a
      positive integer or exists already.
  """
  if tf.io.gfile.exists(export_base) and not tf.io.gfile.isdir(export_base):
    raise ValueError(f"--export_base {export_base} exists and is not a directory.")
  existing = integer_versions(export_base)
  if version is None:
    version = existing[-1] + 1 if existing else 1
  elif not isinstance(version, int) or isinstance(version, bool) or version < 1:
    raise ValueError(f"version must be a positive integer, got {version!r}.")
  final_dir = os.path.join(export_base, str(version))
  if version in existing or tf.io.gfile.exists(final_dir):
    raise ValueError(f"version {version} already exists in {export_base}; TF Serving "
                     "does not reload a version, so pick a new one.")
  tf.io.gfile.makedirs(export_base)
  temp_dir = os.path.join(export_base, f"{_TEMP_PREFIX}{version}-{uuid.uuid4().hex}")
  try:
    tf.saved_model.save(
        module, temp_dir, signatures=module.signatures(),
        options=tf.saved_model.SaveOptions(function_aliases=module.function_aliases()))
    warmup_path = os.path.join(temp_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(warmup_path))
    with tf.io.TFRecordWriter(warmup_path) as writer:
      for log in _warmup_requests(module, model_name, warmup_batch_sizes):
        writer.write(log.SerializeToString())
    tf.io.gfile.rename(temp_dir, final_dir, overwrite=False)
  except BaseException:
    if tf.io.gfile.exists(temp_dir):
      tf.io.gfile.rmtree(temp_dir)
    raise
  return final_dir


def export_saved_model(model_dir, export_base, version=None,
                       model_name=DEFAULT_MODEL_NAME,
                       warmup_batch_sizes=WARMUP_BATCH_SIZES, prior_dir=None):
  """Exports the latest checkpoint of `model_dir` to `export_base/<version>`.

  Args:
    model_dir: a directory written by `train_lib.train_and_evaluate`.
    export_base, version, model_name, warmup_batch_sizes: see `save_module`.
    prior_dir: optional directory written by `train_prior` over model_dir's codes;
      its best checkpoint adds the `sample` and (unless it is MaskGIT's)
      `log_prob_codes` signatures.

  Returns:
    The path of the new version directory.

  Raises:
    ValueError: if model_dir has no config or checkpoint, prior_dir no best
      checkpoint of a prior over model_dir's codes, or see `save_module`.
    AssertionError: if the checkpoint does not match the model's variables.
  """
  model, config, path = checkpoints.load_vqvae(model_dir)
  binarize_mode = serving_binarize_mode(config.training.binarize)
  if prior_dir is None:
    module = ServingModule(model, binarize_mode)
  else:
    module = PriorServingModule(model, prior_lib.load_prior(prior_dir, model)[0],
                                binarize_mode)
  with tempfile.TemporaryDirectory() as scratch:
    # The config the model was built from travels in the SavedModel's assets.
    record_path = os.path.join(scratch, RECORD_ASSET)
    with open(record_path, "w") as f:
      f.write(checkpoints.read_record(path))
    module.model_record = tf.saved_model.Asset(record_path)
    return save_module(module, export_base, version, model_name, warmup_batch_sizes)
