r"""Writes the golden checkpoint fixtures of tests/goldens_test.py (run once; see README.md).

    python tests/goldens/make_goldens.py [--out tests/goldens]

Documentation of how the fixtures were made, NOT run by the tests, and never to be
rerun to make a failing golden test pass: the fixtures are what an old version of
tfp_vqvae wrote, and every later version must restore them.

Steps (all through the command-line programs, as a user would):
  1. a deterministic folder dataset of 16x16 grey PNGs (train/ 48, test/ 16);
  2. `python -m tfp_vqvae.train` of four tiny VQ-VAEs (ema, loss, residual, vqvae2);
  3. `python -m tfp_vqvae.train_prior` of a gated PixelCNN over ema's codes
     (pixelcnn) and of the VQ-VAE-2 prior over vqvae2's codes (vqvae2_prior);
  4. `python -m tfp_vqvae.export` of ema with the pixelcnn prior (export_ema);
  5. per fixture, expected.npz: fixed inputs and what today's code outputs.
Only what the loaders read is kept: a VQ-VAE model_dir's final checkpoint
(checkpoint, ckpt-N.index, ckpt-N.data-*) and config.json; a prior dir's
prior_config.json and best/ checkpoint; the export's SavedModel directory.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tarfile

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_IMAGE_SIZE = 16
_NUM_INPUTS = 4  # Images of each expected.npz.
_SAMPLE_SEEDS = np.array([1, 2, 3, 7], np.int64)
EXPORT_TARBALL = "saved_model.tar.xz"

# Tiny, so that all the fixtures stay under ~300 KB.
# (With 4 or 6 hiddens the decoder's ReLUs die and every reconstruction is the same.)
_TINY = ["--num_hiddens=8", "--num_residual_hiddens=4", "--num_residual_layers=1",
         "--embedding_dim=4", "--num_embeddings=16"]
_LOOP = ["--batch_size=8", "--learning_rate=3e-3", "--num_steps=24", "--log_every=12",
         "--eval_every=24", "--checkpoint_every=24", "--eval_batch_size=16", "--seed=0"]
VQVAES = {
    "ema": ["--quantizer=ema"],
    # At 3e-3 (later flags win) this tiny codebook collapses to one code.
    "loss": ["--quantizer=loss", "--learning_rate=1e-3"],
    "residual": ["--num_quantizers=2"],
    # 16 / 2**(2 + 1): a 4x4 bottom and a 2x2 top grid.
    "vqvae2": ["--top_downsamples=1"],
}
PRIORS = {
    # 3 layers of kernel 3 see the whole 4x4 grid (train_prior refuses 2).
    "pixelcnn": ("ema", ["--num_channels=4", "--num_layers=3"]),
    "vqvae2_prior": ("vqvae2", ["--num_channels=4", "--num_layers=2",
                                "--bottom_num_layers=3"]),
}


def write_images(root):
  """Deterministic 16x16 grey PNGs: a bright rectangle and a disc on a dark ground."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(20240601)
  rows, cols = np.mgrid[:_IMAGE_SIZE, :_IMAGE_SIZE]
  for split, count in (("train", 48), ("test", 16)):
    os.makedirs(os.path.join(root, split))
    for i in range(count):
      image = rng.integers(0, 60, (_IMAGE_SIZE, _IMAGE_SIZE)).astype(np.int32)
      top, left = rng.integers(0, 10, 2)
      height, width = rng.integers(3, 7, 2)
      image[top:top + height, left:left + width] = rng.integers(160, 256)
      centre = rng.uniform(3, 13, 2)
      image[(rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < rng.uniform(4, 12)] = 230
      image = image.astype(np.uint8)[..., None]
      tf.io.write_file(os.path.join(root, split, f"{i:03d}.png"), tf.io.encode_png(image))


def run(model_dir, *args):
  if os.path.exists(model_dir):
    print("reusing", model_dir, flush=True)
    return
  command = [sys.executable, "-m", *args]
  print("+", " ".join(command), flush=True)
  subprocess.run(command, check=True)


def keep_final_checkpoint(source, target):
  """Copies source's latest checkpoint (and a `checkpoint` file naming only it)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = tf.train.latest_checkpoint(source)
  name = os.path.basename(path)
  os.makedirs(target, exist_ok=True)
  for file in glob.glob(path + ".*"):
    shutil.copy(file, target)
  with open(os.path.join(target, "checkpoint"), "w") as f:
    f.write(f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')


def _plain(info):
  """A tar member without the owner and time of this machine."""
  info.uid = info.gid = 0
  info.uname = info.gname = ""
  info.mtime = 0
  return info


def _flat(prefix, value):
  """{prefix: array} or, for VQ-VAE-2's {"top", "bottom"}, {prefix_top: ...}."""
  if isinstance(value, dict):
    return {f"{prefix}_{level}": np.asarray(v) for level, v in value.items()}
  return {prefix: np.asarray(value)}


def vqvae_outputs(model, images):
  encoded = model.encode(images)
  terms = model.loss_terms(images)
  outputs = {"images": images}
  outputs.update(_flat("codes", encoded.codes))
  outputs["quantized"] = np.asarray(encoded.quantized)
  outputs["recon_mean"] = np.asarray(model.decode_codes(encoded.codes).mean())
  outputs["decode_mean"] = np.asarray(model.decode(encoded.quantized).mean())
  for name in ("recon_nll", "kl", "neg_elbo"):
    outputs[name] = np.asarray(getattr(terms, name))
  return outputs


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=_HERE)
  # A fixed path, as the training runs record --dataset=folder:WORK/images.
  parser.add_argument("--work", default="/tmp/tfp_vqvae_goldens", help="Scratch "
                      "directory for the images and full runs; kept, and runs found "
                      "there are reused (delete it for a fresh start).")
  args = parser.parse_args()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tfp_vqvae as tv  # pylint: disable=g-import-not-at-top

  work = args.work
  if not os.path.exists(os.path.join(work, "images")):
    write_images(os.path.join(work, "images"))
  images = {split: np.stack([
      tf.io.decode_png(tf.io.read_file(path)).numpy()
      for path in sorted(glob.glob(os.path.join(work, "images", split, "*.png")))])
            for split in ("train", "test")}
  inputs_uint8 = images["test"][:_NUM_INPUTS]
  inputs = (inputs_uint8 > 127).astype(np.float32)  # --binarize=threshold
  data_flags = [f"--dataset=folder:{os.path.join(work, 'images')}", "--train_split=train",
                "--eval_split=test"]
  runs = os.path.join(work, "runs")

  for name, extra in VQVAES.items():
    run(os.path.join(runs, name), "tfp_vqvae.train", f"--model_dir={os.path.join(runs, name)}",
        "--binarize=threshold", *data_flags, *_TINY, *_LOOP, *extra)
  for name, (vqvae, extra) in PRIORS.items():
    run(os.path.join(runs, name), "tfp_vqvae.train_prior", f"--vqvae_dir={os.path.join(runs, vqvae)}",
        f"--model_dir={os.path.join(runs, name)}", *data_flags, "--batch_size=8",
        "--learning_rate=3e-3", "--num_steps=20", "--log_every=10", "--eval_every=10",
        "--checkpoint_every=10", "--eval_batch_size=16", "--seed=0", *extra)
  run(os.path.join(runs, "export_ema"), "tfp_vqvae.export", f"--model_dir={os.path.join(runs, 'ema')}",
      f"--export_base={os.path.join(runs, 'export_ema')}", "--version=1",
      f"--prior_dir={os.path.join(runs, 'pixelcnn')}")

  out = args.out
  vqvaes = {}
  for name in VQVAES:
    target = os.path.join(out, name)
    if os.path.exists(target):
      shutil.rmtree(target)
    keep_final_checkpoint(os.path.join(runs, name), target)
    shutil.copy(os.path.join(runs, name, "config.json"), target)
    model, _, _ = tv.load_vqvae(target)
    vqvaes[name] = model
    np.savez_compressed(os.path.join(target, "expected.npz"), **vqvae_outputs(model, inputs))

  for name, (vqvae, _) in PRIORS.items():
    target = os.path.join(out, name)
    if os.path.exists(target):
      shutil.rmtree(target)
    keep_final_checkpoint(os.path.join(runs, name, "best"), os.path.join(target, "best"))
    with open(os.path.join(runs, name, "prior_config.json")) as f:
      record = json.load(f)
    # The trainer records the absolute vqvae_dir of the temporary run; load_prior
    # does not read it. Recorded relative to the prior dir instead.
    record["vqvae_dir"] = os.path.join("..", vqvae)
    with open(os.path.join(target, "prior_config.json"), "w") as f:
      json.dump(record, f, indent=2, sort_keys=True)
    model = vqvaes[vqvae]
    prior, _ = tv.load_prior(target, model)
    codes = model.encode(inputs).codes
    outputs = {"images": inputs}
    outputs.update(_flat("codes", codes))
    outputs["log_prob"] = np.asarray(prior.log_prob(codes))
    outputs["sample_seeds"] = _SAMPLE_SEEDS
    outputs.update(_flat("samples", prior.sample(tf.constant(_SAMPLE_SEEDS), 1.0)))
    np.savez_compressed(os.path.join(target, "expected.npz"), **outputs)

  # The SavedModel, as export wrote it (its saved_model.pb is ~800 KB, but xz makes
  # it ~30 KB): tests/goldens_test.py unpacks it to a temporary directory.
  target = os.path.join(out, "export_ema")
  if os.path.exists(target):
    shutil.rmtree(target)
  os.makedirs(target)
  export_dir = os.path.join(runs, "export_ema", "1")
  with tarfile.open(os.path.join(target, EXPORT_TARBALL), "w:xz",
                    preset=9) as tar:
    tar.add(export_dir, arcname="saved_model", filter=_plain)
  loaded = tf.saved_model.load(export_dir)
  signatures = loaded.signatures
  codes = np.asarray(signatures["encode"](images=tf.constant(inputs_uint8))["codes"])
  temperature = np.ones(len(_SAMPLE_SEEDS), np.float32)
  calls = {
      "encode": dict(images=inputs_uint8),
      "decode": dict(codes=codes),
      "reconstruct": dict(images=inputs_uint8),
      "serving_default": dict(images=inputs_uint8),
      "neg_elbo": dict(images=inputs_uint8),
      "sample": dict(seeds=_SAMPLE_SEEDS, temperature=temperature),
      "log_prob_codes": dict(codes=codes),
  }
  assert set(calls) == set(signatures.keys()), sorted(signatures.keys())
  outputs = {}
  for signature, kwargs in calls.items():
    for key, value in kwargs.items():
      outputs[f"{signature}/in/{key}"] = value
    for key, value in signatures[signature](
        **{k: tf.constant(v) for k, v in kwargs.items()}).items():
      outputs[f"{signature}/out/{key}"] = value.numpy()
  np.savez_compressed(os.path.join(target, "expected.npz"), **outputs)
  print("wrote", ", ".join(sorted(list(VQVAES) + list(PRIORS) + ["export_ema"])), "to", out)


if __name__ == "__main__":
  main()
