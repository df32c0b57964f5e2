"""Images/s of sampling codes from untrained priors: PixelCNN vs cached Transformer vs MaskGIT.

    python tests/programs/prior_sampling_speed.py [--grids 7,32] [--batch 16]

A timing note, not a test: every prior is timed in this one process, on the same
grid of K=512 codes, after two warm-up calls (tracing and first-run graph
optimisation excluded), as the best of `--repeats` calls. The sizes are
"tiny-ish" and of similar weight: a 32-channel gated PixelCNN with just enough
layers to see every earlier position (kernel 3 on 7x7, 7 on 32x32), and
Transformers of width 64, 4 blocks of 4 heads. Sampling cost does not depend on
the weights, so untrained priors time the same as trained ones.

On grids over 16x16 a PixelCNN call of 16 samples takes minutes on a CPU, so
there it is timed at a small batch (--large_grid_pixelcnn_batch, 2), and the
others both at that batch (like for like) and at --batch.

One JSON line per (grid, batch, prior) on stdout; then, per grid and batch, the
speed-up of each prior over the PixelCNN's images/s.

Measured on 2 shared CPU cores (TF 2.21, one run of `--grids 7,32 --repeats 1`),
images/s and the speed-up over the PixelCNN:

  grid   batch  PixelCNN   cached Transformer  + XLA           MaskGIT, 8 steps
  7x7    16     67.1       127    (1.9x)       641   (9.6x)    112   (1.7x)
  32x32  2      0.071      0.752  (10.6x)      4.87  (68.8x)   4.24  (59.9x)
  32x32  16     (0.071)    1.62   (22.9x)      6.23  (88.1x)   4.06  (57.4x)

On 7x7 the 49 steps of a sequential sampler are few, so its per-step overhead
counts and MaskGIT's 8 full passes gain little; the gap opens with the number of
codes.
"""

import argparse
import json
import time

import tensorflow as tf

from tfp_vqvae.priors import maskgit
from tfp_vqvae.priors import pixelcnn
from tfp_vqvae.priors import transformer

_K = 512


def _priors(grid):
  """{name: (prior, its sampling function)} on a grid x grid of K codes."""
  kernel_size = 3 if grid <= 13 else 7
  num_layers = max(1, -(-(grid - 1) // (kernel_size // 2)))
  pixel_cnn = pixelcnn.GatedPixelCNN(pixelcnn.PriorConfig(
      num_embeddings=_K, latent_shape=(grid, grid), num_channels=32,
      num_layers=num_layers, kernel_size=kernel_size))
  sizes = dict(model_dim=64, num_layers=4, num_heads=4)
  causal = transformer.CausalTransformerPrior(
      transformer.TransformerPriorConfig(_K, (grid, grid), **sizes))
  masked = maskgit.MaskGITPrior(maskgit.MaskGITPriorConfig(_K, (grid, grid), **sizes))
  return {"pixelcnn": (pixel_cnn, pixel_cnn.sample),
          "transformer_cached": (causal, causal.sample),
          "transformer_cached_xla": (causal, causal.sample_xla),
          "maskgit_8_steps": (masked, masked.sample)}


def _images_per_second(sample, batch, repeats):
  seeds = tf.range(batch, dtype=tf.int64)
  for _ in range(2):
    sample(seeds).numpy()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    sample(seeds).numpy()
    best = min(best, time.perf_counter() - start)
  return batch / best


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--grids", default="7,32", help="grid sizes, comma-separated")
  parser.add_argument("--batch", type=int, default=16, help="samples per call")
  parser.add_argument("--large_grid_pixelcnn_batch", type=int, default=2,
                      help="the PixelCNN's batch on grids over 16x16, where a call "
                      "of --batch would take minutes; the others are then timed at "
                      "this batch too, for a like-for-like ratio")
  parser.add_argument("--repeats", type=int, default=2, help="timed calls per prior")
  args = parser.parse_args()
  for grid in (int(g) for g in args.grids.split(",")):
    priors = _priors(grid)
    batches = [args.batch]
    if grid > 16 and args.large_grid_pixelcnn_batch != args.batch:
      batches.insert(0, args.large_grid_pixelcnn_batch)
    pixel_cnn_speed = None
    for batch in batches:
      speeds = {}
      for name, (prior, sample) in priors.items():
        if name == "pixelcnn" and pixel_cnn_speed is not None:
          continue
        speeds[name] = _images_per_second(sample, batch, args.repeats)
        print(json.dumps({"grid": grid, "batch": batch, "prior": name,
                          "parameters": sum(int(tf.size(v)) for v in
                                            prior.trainable_variables),
                          "images_per_second": round(speeds[name], 3)}), flush=True)
      pixel_cnn_speed = pixel_cnn_speed or speeds["pixelcnn"]
      print(json.dumps({"grid": grid, "batch": batch, "pixelcnn_batch": batches[0],
                        "speedup_over_pixelcnn": {
                            name: round(speed / pixel_cnn_speed, 1)
                            for name, speed in speeds.items()}}), flush=True)


if __name__ == "__main__":
  main()
