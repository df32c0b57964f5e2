"""CPU benchmark of the train step, the quantizer and serving, beside the peers.

`python -m tfp_vqvae.benchmark` follows the protocol of the peer bench
(../shared/bench/README.md, "Protocol" and "Adding tfp_vqvae") so that

    OURS_CMD="python -m tfp_vqvae.benchmark" TF_PY=... TORCH_PY=... \
        bash ../shared/bench/run_peers.sh > results.jsonl

times this package beside Sonnet and vector-quantize-pytorch in one run. It takes
the peers' arguments (`--what train_step --batch B`, `--what quantizer --n N --k K`,
`--malloc keep|default`, `--quick`) and prints one JSON line per configuration on
stdout; progress goes to stderr. The protocol pieces are reimplemented here so the
package never imports the bench at run time:

  * every configuration runs in a fresh child process (`--child`), so
    `peak_rss_mb` is that configuration's own peak; `--malloc keep` gives the
    children the same GLIBC_TUNABLES as the peers (this VM re-faults freed
    memory expensively, see the bench README, "Allocator");
  * warm-up steps (the first one traces) are excluded, then timed windows of
    a few steps; the median window (ms per step) is reported with min and max;
  * every step ends by fetching a scalar to the host;
  * synthetic binarized inputs (p = 0.5), a pool of 4 batches made up front.

What is timed:
  train_step  `train_lib.Trainer.train_step` itself (the package's real step:
              forward, loss, gradients, Adam, EMA codebook update) on the
              paper's model, `model.VQVAE` defaults; `--dtypes float32 bfloat16`
              adds mixed-precision lines, labelled peer "tfp_vqvae-bfloat16" so
              they never stand in for the float32 figure; `--jit-compile` times
              the XLA-compiled steps as peer "tfp_vqvae-xla".
  quantizer   a quantizer alone in training mode on standard normal [N, 64]
              inputs: forward, state update, commitment loss and its gradient
              to the inputs (and, for one whose outputs carry a gradient of
              their own, the gradient of their mean), in one `tf.function`.
              `--quantizers` picks them from QUANTIZER_VARIANTS, built from
              their registered options with K codes (FSQ: levels of 8 and one
              remainder level, 512 = 8,8,8; LFQ: log2 K bits; both need K a
              power of 2); lines of all but `ema` (the one the peers are
              compared with) are labelled peer "tfp_vqvae-<variant>" and every
              line names its "quantizer".
  serving     (ours only) `encode`, `decode` and `reconstruct` signatures of a
              SavedModel written by `export_lib.save_module` from a freshly
              initialised model and loaded back: latency p50/p99 per call at
              batch 1 and 64 (one call per sample), images/s at batch 256.
  sample      (ours only; `--what sample --runs RUN ...`) images/s of
              sampling a batch of `--sample-batch` (traced once) from a prior
              of any kind (PixelCNN, cached causal Transformer, MaskGIT's 8
              steps) over any code layout. A RUN is either
                NAME=VQVAE_DIR,PRIOR_DIR
              trained model and prior directories: codes sampled and decoded,
              as `sample.sample_images` does ("decoded": true), or
                NAME=PRIOR@LAYOUT[:FIELD=VALUE,...]
              an untrained prior (sampling costs what a trained one's does)
              built from its registered options (`--prior=PRIOR`, the FIELDs
              overriding their defaults) over `--num-embeddings` codes laid out
              as hxw (one grid), hxwxS (S residual stages) or hxw+hxw
              (VQ-VAE-2's top and bottom grids): codes only ("decoded":
              false). FIELD batch sets this run's batch, e.g.
                --runs pixelcnn32=pixelcnn@32x32:num_channels=64,batch=2
"""

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

PEER = "tfp_vqvae"
TRAIN_BATCHES = (64, 256)
QUANTIZER_N = (3136, 16384, 65536)
QUANTIZER_K = (512, 4096)
# --quantizers: variant -> (registered quantizer, its options other than K).
QUANTIZER_VARIANTS = {
    "ema": ("ema", {}),
    "fsq": ("fsq", {}),
    "lfq": ("lfq", {}),
    "ema-rotation": ("ema", {"rotation_trick": True}),
    "ema-cosine8": ("ema", {"cosine_dim": 8}),
    "loss": ("loss", {}),
    "loss-rotation": ("loss", {"rotation_trick": True}),
    "simvq": ("simvq", {}),
}
QUANTIZERS = ("ema", "fsq", "lfq")
SERVING_SIGNATURES = ("encode", "decode", "reconstruct")
SERVING_LATENCY_BATCHES = (1, 64)
SERVING_THROUGHPUT_BATCH = 256
# (warm-up steps, timed windows, steps per window), as in the peer bench.
PROTOCOL = {
    "full": {"train_step": (3, 10, 3), "quantizer": (2, 5, 3), "serving": (5, 200, 1),
             "sample": (1, 5, 1)},
    "quick": {"train_step": (2, 3, 2), "quantizer": (1, 3, 2), "serving": (2, 20, 1),
              "sample": (1, 2, 1)},
}
CHILD_TIMEOUT_S = 600
# glibc never returns freed memory to this VM (no mmap for malloc, no trimming),
# the peer bench's `--malloc keep`; the string must stay identical to the bench's.
MALLOC_KEEP_TUNABLES = ("glibc.malloc.mmap_max=0:"
                        "glibc.malloc.trim_threshold=17179869184")
# Paper architecture and optimiser, the bench's DEFAULTS: the package's defaults.
IMAGE_SHAPE = (28, 28, 1)
LATENT_POSITIONS = 7 * 7


def log(message):
  sys.stderr.write(f"[{PEER}] {message}\n")
  sys.stderr.flush()


def emit(record):
  sys.stdout.write(json.dumps(record) + "\n")
  sys.stdout.flush()


def peak_rss_mb():
  """Peak resident set size of this process in MiB (Linux ru_maxrss is KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb():
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2.0**20


def malloc_env(mode):
  """The environment of a child process under allocator mode keep|default."""
  env = dict(os.environ)
  if mode == "keep":
    env["GLIBC_TUNABLES"] = MALLOC_KEEP_TUNABLES
  else:
    env.pop("GLIBC_TUNABLES", None)
  env["BENCH_MALLOC_MODE"] = mode
  return env


def time_windows(step, warmup, windows, steps_per_window):
  """Runs `step()` (which blocks on a host fetch); returns (ms per step per window, last)."""
  last = None
  for _ in range(warmup):
    last = step()
  samples = []
  for _ in range(windows):
    start = time.perf_counter()
    for _ in range(steps_per_window):
      last = step()
    samples.append((time.perf_counter() - start) * 1000.0 / steps_per_window)
  return samples, last


def _record(config, samples, rss_baseline, **extra):
  """The JSON line of a train_step, quantizer or sample configuration (the peers'
  keys)."""
  median = statistics.median(samples)
  record = {"peer": config["peer"], "what": config["what"], "batch": config.get("batch"),
            "num_embeddings": config["num_embeddings"], "embedding_dim": 64,
            "n_vectors": config["n_vectors"]}
  if config["what"] in ("train_step", "sample"):
    # Four significant digits: a PixelCNN on 32x32 codes draws 0.07 images/s.
    record["images_per_s"] = float(f"{config['batch'] / (median / 1000.0):.4g}")
  else:
    record["vectors_per_s"] = round(config["n_vectors"] / (median / 1000.0), 1)
  record.update({
      "ms_per_step_median": round(median, 3),
      "ms_min": round(min(samples), 3),
      "ms_max": round(max(samples), 3),
      "peak_rss_mb": round(peak_rss_mb(), 1),
      "rss_baseline_mb": round(rss_baseline, 1),
      "ms_windows": [round(s, 3) for s in samples],
      "warmup": config["warmup"],
      "windows": config["windows"],
      "steps_per_window": config["steps_per_window"],
      "seed": config["seed"],
  })
  record.update(_common_fields(config))
  record.update(extra)
  return record


def _common_fields(config):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return {
      "malloc": os.environ.get("BENCH_MALLOC_MODE", "inherit"),
      "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
      "dtype": config["dtype"],
      "jit_compile": config["jit_compile"],
      "threads": {"tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                  "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
                  "os_cpu_count": os.cpu_count()},
      "versions": {"tensorflow": tf.__version__, "python": sys.version.split()[0]},
  }


def _binary_images(rng, batch):
  return (rng.random((batch,) + IMAGE_SHAPE) < 0.5).astype("float32")


def run_train_step(config):
  """Times `Trainer.train_step` on a pool of synthetic binarized batches."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfp_vqvae.configs import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfp_vqvae.training import vqvae_trainer as train_lib  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(config["seed"])
  pool = [tf.constant(_binary_images(rng, config["batch"])) for _ in range(4)]
  trainer = train_lib.Trainer(
      config_lib.Config.from_fields(
          batch_size=config["batch"], num_embeddings=config["num_embeddings"],
          seed=config["seed"], dtype=config["dtype"], jit_compile=config["jit_compile"]),
      IMAGE_SHAPE)
  calls = iter(range(1 << 62))

  def step():
    return float(trainer.train_step(pool[next(calls) % len(pool)])["loss"])

  rss_baseline = current_rss_mb()
  samples, last_loss = time_windows(step, config["warmup"], config["windows"],
                                    config["steps_per_window"])
  n_params = sum(v.shape.num_elements() for v in trainer.model.trainable_variables)
  # The loss includes the constant KL of the uniform prior, 49 * log(512) nats.
  return _record(config, samples, rss_baseline, n_params=int(n_params),
                 final_loss=round(last_loss, 3),
                 traces=int(trainer.train_step.experimental_get_tracing_count()))


def quantizer_options(variant, num_embeddings):
  """The registered options of quantizer `variant` (QUANTIZER_VARIANTS) with K codes.

  Raises:
    ValueError: naming --k, if the grid quantizers cannot have K codes.
  """
  from tfp_vqvae.configs import quantizers  # pylint: disable=g-import-not-at-top
  name, options = QUANTIZER_VARIANTS[variant]
  k = num_embeddings
  if name in ("fsq", "lfq") and (k < 2 or k & (k - 1)):
    raise ValueError(f"--k {k}: {variant} needs K a power of 2.")
  bits = k.bit_length() - 1
  if name == "fsq":
    levels = [8] * (bits // 3) + ([2 ** (bits % 3)] if bits % 3 else [])
    options = dict(options, fsq_levels=",".join(map(str, levels)))
  elif name == "lfq":
    options = dict(options, lfq_code_dim=bits)
  else:
    options = dict(options, num_embeddings=k)
  try:
    return quantizers.QUANTIZERS.get(name)(**options)
  except ValueError as error:
    raise ValueError(f"--k {k}: {variant}: {error}") from error


def run_quantizer(config):
  """Times one quantizer alone: forward, state update, gradients to the input."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(config["seed"])
  inputs = tf.constant(rng.standard_normal((config["n_vectors"], 64)).astype(np.float32))
  quantizer = quantizer_options(config["quantizer"], config["num_embeddings"]).build(
      64, seed=config["seed"], name="quantizer", reduction_group_size=0)

  @tf.function(jit_compile=config["jit_compile"])
  def quantizer_step(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      out = quantizer(x, training=True)
      loss = tf.reduce_mean(out.commitment_loss)
      if quantizer.own_gradient:
        # Its outputs' gradient goes through the quantizer (projections, rotation).
        loss += tf.reduce_mean(out.quantized)
    # Fetching a scalar of the gradient too forces the backward pass.
    return loss + 0.0 * tf.reduce_sum(tape.gradient(loss, x))

  def step():
    return float(quantizer_step(inputs))

  rss_baseline = current_rss_mb()
  samples, _ = time_windows(step, config["warmup"], config["windows"],
                            config["steps_per_window"])
  return _record(config, samples, rss_baseline, quantizer=config["quantizer"])


def run_serving(config):
  """Exports a fresh model, loads the SavedModel and times its signatures."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfp_vqvae.serving import export as export_lib  # pylint: disable=g-import-not-at-top
  from tfp_vqvae.models import builder  # pylint: disable=g-import-not-at-top
  from tfp_vqvae.configs import config as config_lib  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(config["seed"])
  model = builder.build_vqvae(
      config_lib.Config(num_embeddings=config["num_embeddings"], seed=config["seed"]),
      IMAGE_SHAPE)
  module = export_lib.ServingModule(model, "threshold")
  with tempfile.TemporaryDirectory() as export_base:
    path = export_lib.save_module(module, export_base, warmup_batch_sizes=(1,))
    loaded = tf.saved_model.load(path)
  latent_shape = model.latent_shape

  def inputs(signature, batch):
    if signature == "decode":
      return {"codes": tf.constant(rng.integers(0, config["num_embeddings"],
                                                (batch,) + latent_shape, np.int32))}
    return {"images": tf.constant((rng.random((batch,) + IMAGE_SHAPE) < 0.5)
                                  .astype(np.uint8) * 255)}

  records = []
  for signature in SERVING_SIGNATURES:
    function = loaded.signatures[signature]
    for batch in SERVING_LATENCY_BATCHES + (SERVING_THROUGHPUT_BATCH,):
      feed = inputs(signature, batch)

      def call():
        outputs = function(**feed)
        return next(iter(outputs.values())).numpy()

      throughput = batch == SERVING_THROUGHPUT_BATCH
      windows = max(config["windows"] // 10, 3) if throughput else config["windows"]
      samples, _ = time_windows(call, config["warmup"], windows, 1)
      median = statistics.median(samples)
      record = {"peer": config["peer"], "what": "serving", "signature": signature,
                "batch": batch, "num_embeddings": config["num_embeddings"],
                "ms_p50": round(median, 3),
                "ms_p99": round(float(np.percentile(samples, 99)), 3),
                "ms_min": round(min(samples), 3),
                "images_per_s": round(batch / (median / 1000.0), 1),
                "calls": windows, "warmup": config["warmup"]}
      record.update(_common_fields(config))
      records.append(record)
  for record in records:
    record["peak_rss_mb"] = round(peak_rss_mb(), 1)
  return records


def parse_sample_run(run, num_embeddings, batch):
  """The configuration fields of one `--runs` value of `--what sample` (docstring).

  Raises:
    ValueError: naming the run, if it is neither form, or its prior or options
      are unknown or out of range.
  """
  from tfp_vqvae.configs import priors as prior_configs  # pylint: disable=g-import-not-at-top
  name, _, spec = run.partition("=")
  untrained = re.fullmatch(r"(\w+)@(\d+x\d+(?:x\d+|\+\d+x\d+)?)(?::(.*))?", spec)
  if untrained is None:
    vqvae_dir, _, prior_dir = spec.partition(",")
    if not (name and vqvae_dir and prior_dir):
      raise ValueError(f"--runs {run}: expected NAME=VQVAE_DIR,PRIOR_DIR or "
                       "NAME=PRIOR@LAYOUT[:FIELD=VALUE,...].")
    return dict(run=name, batch=batch, num_embeddings=None, vqvae_dir=vqvae_dir,
                prior_dir=prior_dir)
  prior, layout, fields = untrained.groups()
  options = {}
  for item in filter(None, (fields or "").split(",")):
    field, _, value = item.partition("=")
    try:
      options[field] = json.loads(value)
    except json.JSONDecodeError:
      options[field] = value
  batch = options.pop("batch", batch)
  grids = [[int(size) for size in grid.split("x")] for grid in layout.split("+")]
  code_shape = dict(zip(("top", "bottom"), grids)) if len(grids) == 2 else grids[0]
  try:
    options_cls = prior_configs.PRIORS.get(prior)
    unknown = sorted(set(options) - set(options_cls.field_names()))
    if unknown:
      raise ValueError(f"unknown {prior} options {', '.join(unknown)}")
    options_cls.from_record(options)
  except ValueError as error:
    raise ValueError(f"--runs {run}: {error}") from error
  return dict(run=name, batch=batch, num_embeddings=num_embeddings, prior=prior,
              options=options, code_shape=code_shape)


def run_sample(config):
  """Times sampling from a prior of any kind: images per second."""
  from tfp_vqvae.priors import sampling as sample_lib  # pylint: disable=g-import-not-at-top

  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  rss_baseline = current_rss_mb()
  prior, decode, record = _sample_setup(config)
  labels = tf.zeros([config["batch"]], tf.int32) if prior.num_classes else None
  draws = iter(range(1 << 30))

  def step():
    # What `sample.sample_images` does per batch, its functions traced once: new
    # seeds each call, the same graphs.
    codes = prior.sample(sample_lib.sample_seeds(next(draws), config["batch"]), 1.0,
                         labels)
    return float(tf.reduce_sum(tf.nest.flatten(decode(codes))[0][0]))

  samples, _ = time_windows(step, config["warmup"], config["windows"],
                            config["steps_per_window"])
  return _record(config, samples, rss_baseline, run=config["run"], **record)


def _sample_setup(config):
  """(prior, decode: codes -> what a step fetches from, the record's own fields)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfp_vqvae.configs import priors as prior_configs  # pylint: disable=g-import-not-at-top
  from tfp_vqvae.priors import pixelcnn as prior_lib  # pylint: disable=g-import-not-at-top
  from tfp_vqvae.training import checkpoints  # pylint: disable=g-import-not-at-top

  if "prior_dir" in config:
    vqvae, _, _ = checkpoints.load_vqvae(config["vqvae_dir"])
    prior, _ = prior_lib.load_prior(config["prior_dir"], vqvae)
    decode = tf.function(lambda codes: vqvae.decode_codes(codes).mean())
    return prior, decode, dict(code_shape=str(vqvae.code_shape),
                               num_embeddings=vqvae.num_embeddings,
                               prior=prior_lib.prior_name(
                                   prior_lib.read_config(config["prior_dir"])[0]),
                               decoded=True)
  code_shape = config["code_shape"]  # JSON made its tuples lists
  code_shape = ({level: tuple(shape) for level, shape in code_shape.items()}
                if isinstance(code_shape, dict) else tuple(code_shape))
  options = prior_configs.PRIORS.get(config["prior"]).from_record(config["options"])
  prior = prior_lib.build_prior(options.architecture(
      config["num_embeddings"], code_shape, 0, config["seed"]))
  parameters = sum(int(tf.size(v)) for v in prior.trainable_variables)
  return prior, lambda codes: codes, dict(
      code_shape=str(code_shape), prior=config["prior"], options=options.to_record(),
      n_params=parameters, decoded=False)


_RUNNERS = {"train_step": run_train_step, "quantizer": run_quantizer,
            "serving": run_serving, "sample": run_sample}


def build_configs(args):
  """One dict per configuration (child process) the arguments ask for."""
  mode = "quick" if args.quick else "full"
  whats = ("train_step", "quantizer", "serving") if args.what == "all" else (args.what,)
  configs = []
  for what in whats:
    warmup, windows, steps = PROTOCOL[mode][what]
    base = dict(what=what, seed=args.seed, jit_compile=args.jit_compile,
                warmup=warmup if args.warmup is None else args.warmup,
                windows=windows if args.windows is None else args.windows,
                steps_per_window=steps if args.steps_per_window is None
                else args.steps_per_window)
    if what == "train_step":
      for dtype in args.dtypes:
        for batch in args.batch or TRAIN_BATCHES:
          peer = PEER if dtype == "float32" else f"{PEER}-{dtype}"
          peer += "-xla" if args.jit_compile else ""
          configs.append(dict(base, peer=peer, dtype=dtype, batch=batch,
                              n_vectors=batch * LATENT_POSITIONS,
                              num_embeddings=args.num_embeddings))
    elif what == "quantizer":
      for variant in args.quantizers:
        peer = PEER if variant == "ema" else f"{PEER}-{variant}"
        for n in args.n or QUANTIZER_N:
          for k in args.k or QUANTIZER_K:
            quantizer_options(variant, k)  # Refused here, not in a child.
            configs.append(dict(base, peer=peer + ("-xla" if args.jit_compile else ""),
                                dtype="float32", batch=None, n_vectors=n,
                                num_embeddings=k, quantizer=variant))
    elif what == "sample":
      for run in args.runs or ():
        configs.append(dict(base, peer=PEER, dtype="float32", n_vectors=None,
                            **parse_sample_run(run, args.num_embeddings,
                                               args.sample_batch)))
    else:
      configs.append(dict(base, peer=PEER, dtype="float32",
                          num_embeddings=args.num_embeddings))
  return configs


def run_children(configs, malloc):
  """Runs each configuration in a fresh child process; returns the failure count."""
  failures = 0
  for config in configs:
    command = [sys.executable, "-m", "tfp_vqvae.benchmark", "--child", json.dumps(config)]
    log(f"{config['what']} {json.dumps({k: config.get(k) for k in ('batch', 'n_vectors', 'num_embeddings', 'dtype')})}")
    try:
      result = subprocess.run(command, stdout=subprocess.PIPE, text=True,
                              timeout=CHILD_TIMEOUT_S, env=malloc_env(malloc))
      lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
      if result.returncode or not lines:
        raise RuntimeError(f"child exited {result.returncode}, no result line")
      for line in lines:
        emit(json.loads(line))
    except (subprocess.TimeoutExpired, RuntimeError) as e:
      failures += 1
      emit({"peer": config["peer"], "what": config["what"], "batch": config.get("batch"),
            "num_embeddings": config["num_embeddings"],
            "n_vectors": config.get("n_vectors"), "malloc": malloc, "error": str(e),
            **({"run": config["run"]} if "run" in config else {})})
  return failures


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--what", choices=("train_step", "quantizer", "serving", "sample",
                                         "all"), default="all",
                      help="all: train_step, quantizer and serving (sample needs --runs)")
  parser.add_argument("--runs", nargs="+",
                      metavar="NAME=VQVAE_DIR,PRIOR_DIR|NAME=PRIOR@LAYOUT[:FIELD=VALUE,...]",
                      help="sample: trained VQ-VAE and prior directories to sample "
                      "from, or an untrained prior over a code layout (module docstring)")
  parser.add_argument("--sample-batch", type=int, default=64,
                      help="sample: images drawn per call")
  parser.add_argument("--batch", type=int, nargs="+", help="train-step batch sizes")
  parser.add_argument("--n", type=int, nargs="+", help="quantizer: numbers of vectors N")
  parser.add_argument("--k", type=int, nargs="+", help="quantizer: codebook sizes K")
  parser.add_argument("--quantizers", nargs="+", default=list(QUANTIZERS),
                      choices=tuple(QUANTIZER_VARIANTS),
                      help="quantizer: the quantizers (and options) to time")
  parser.add_argument("--num-embeddings", type=int, default=512,
                      help="K of the train step, serving model and untrained priors")
  parser.add_argument("--dtypes", nargs="+", default=["float32"],
                      choices=("float32", "bfloat16", "float16"),
                      help="train-step compute dtypes; non-float32 lines get their own peer")
  parser.add_argument("--jit-compile", action="store_true",
                      help="XLA-compiled steps (Config.jit_compile), peer *-xla")
  parser.add_argument("--warmup", type=int)
  parser.add_argument("--windows", type=int)
  parser.add_argument("--steps-per-window", type=int)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--quick", action="store_true", help="fewer steps per configuration")
  parser.add_argument("--malloc", choices=("keep", "default"), default="keep",
                      help="glibc allocator mode of the measured children")
  parser.add_argument("--child", help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  if args.child:
    # Here, not at the top: the parent process never imports TensorFlow.
    from tfp_vqvae.internal import cli  # pylint: disable=g-import-not-at-top
    cli.quiet_tensorflow()
    config = json.loads(args.child)
    records = _RUNNERS[config["what"]](config)
    for record in records if isinstance(records, list) else [records]:
      emit(record)
    return 0
  try:
    configs = build_configs(args)
  except ValueError as error:
    sys.exit(f"error: {error}")
  return 1 if run_children(configs, args.malloc) else 0

