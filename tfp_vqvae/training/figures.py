"""The figures a training run writes, and image grids as PNG files.

`run_figures` turns evaluation outputs (plain NumPy arrays) into named uint8 RGB
images drawn by training/plots.py; `write_run_figures` writes them as <model_dir>/<name>.png
and as TensorBoard images `figures/<name>`. The figures are the tutorials':
reconstructions, images decoded from random codes, code maps, the codebook on its
principal axes (and in t-SNE when scikit-learn is installed) and the training
curves. They are drawn from evaluation outputs only, so they never change metrics.
"""

import importlib.util
import os
from typing import Mapping, Sequence

from absl import logging
import numpy as np
import tensorflow as tf

from tfp_vqvae.training import plots

# Figures every run writes once it has a training curve; `codebook_tsne` is added
# when scikit-learn is installed (`pip install tfp_vqvae[figures]`).
FIGURE_NAMES = ("reconstructions", "random_codes", "code_map", "codebook_pca",
                "training_recon_error", "training_perplexity")
TSNE_FIGURE = "codebook_tsne"
# Images per row of the image grids; code_map shows one row of originals.
_COLUMNS = 8


def image_grid(images, columns, padding=2):
  """Tiles images [N, H, W, C] (float in [0, 1]) into one uint8 [rows*H', cols*W', C].

  Cells are separated by `padding` pixels of mid grey; missing cells stay grey.
  """
  images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
  if images.ndim != 4:
    raise ValueError(f"images must be [N, H, W, C], got shape {images.shape}.")
  count, height, width, channels = images.shape
  columns = max(1, min(columns, count))
  rows = -(-count // columns)
  cell_h, cell_w = height + padding, width + padding
  grid = np.full((rows * cell_h + padding, columns * cell_w + padding, channels), 0.5,
                 np.float32)
  for i, image in enumerate(images):
    top = padding + (i // columns) * cell_h
    left = padding + (i % columns) * cell_w
    grid[top:top + height, left:left + width] = image
  return np.round(grid * 255.0).astype(np.uint8)


def upsample_nearest(grids, size):
  """Nearest-neighbour resize of grids [N, h, w, ...] to [N, size[0], size[1], ...].

  Any sizes: cell (i, j) of the output takes grid cell (i * h // H, j * w // W), so
  a 1 x L grid of global latents becomes L vertical bands.
  """
  grids = np.asarray(grids)
  rows = np.arange(size[0]) * grids.shape[1] // size[0]
  cols = np.arange(size[1]) * grids.shape[2] // size[1]
  return grids[:, rows][:, :, cols]


def write_png(path, grid):
  """Writes a uint8 [H, W, C] array as PNG (any tf.io.gfile path)."""
  tf.io.write_file(path, tf.io.encode_png(tf.convert_to_tensor(grid, tf.uint8)))


def pca_2d(vectors) -> tuple[np.ndarray, np.ndarray]:
  """Projection of vectors [N, D] on their first two principal axes.

  Returns:
    ([N, 2] coordinates, [2] fractions of the total variance along the two axes).
  """
  vectors = np.asarray(vectors, np.float64)
  centred = vectors - vectors.mean(axis=0)
  if vectors.shape[1] < 2:
    centred = np.pad(centred, [(0, 0), (0, 2 - vectors.shape[1])])
  _, singular, axes = np.linalg.svd(centred, full_matrices=False)
  variance = singular ** 2
  return centred @ axes[:2].T, variance[:2] / max(variance.sum(), 1e-30)


def tsne_available() -> bool:
  """Whether scikit-learn, which `tsne_2d` needs (an optional extra), is installed."""
  return importlib.util.find_spec("sklearn") is not None


def tsne_2d(vectors) -> np.ndarray:
  """t-SNE embedding [N, 2] of vectors [N, D] (N >= 2), deterministic.

  Euclidean, the distance the quantizer assigns codes by; the perplexity is capped
  below N / 3 so small codebooks work. 500 iterations at Barnes-Hut angle 0.8
  reach the KL divergence of the default 1000 at 0.5 on 512 codes in half the time.
  Needs scikit-learn (`tsne_available()`).
  """
  # Optional dependency (the `figures` extra), so imported only when used.
  from sklearn import manifold  # pylint: disable=g-import-not-at-top
  import threadpoolctl  # pylint: disable=g-import-not-at-top
  vectors = np.asarray(vectors, np.float64)
  perplexity = max(min(30.0, (len(vectors) - 1) / 3), 1.0)
  tsne = manifold.TSNE(n_components=2, perplexity=perplexity, max_iter=500, angle=0.8,
                       init="pca" if vectors.shape[1] >= 2 else "random", random_state=0)
  # One OpenMP thread: next to TensorFlow's threads, more made 16 codes take seconds.
  with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
    return tsne.fit_transform(vectors)


def _code_maps(codes) -> list[tuple[str, np.ndarray]]:
  """(row label, [B, h, w] codes) of each code map: one, one per residual stage of
  [B, h, w, N] codes, or one per level of a dict of them (VQ-VAE-2)."""
  if isinstance(codes, dict):
    return [(f"{level} codes", np.asarray(level_codes))
            for level, level_codes in codes.items()]
  codes = np.asarray(codes)
  if codes.ndim == 3:
    return [("codes", codes)]
  return [(f"stage {stage + 1} codes", codes[..., stage])
          for stage in range(codes.shape[-1])]


def run_figures(step: int, originals, reconstructions, random_decoded, codes,
                codebooks: Sequence[np.ndarray], code_counts, history: Mapping[str, list]
                ) -> dict[str, np.ndarray]:
  """The figures of a run at `step`, drawn from evaluation outputs.

  Args:
    step: the training step, named in the titles.
    originals: float [B, H, W, C] eval images in [0, 1] (C is 1 or 3), as the
      user gave them (`ImageData.first_images`: not binarized), so that the
      "original" rows show the data rather than the model's input.
    reconstructions: float [B, H, W, C] means of their reconstructions.
    random_decoded: float [M, H, W, C] images decoded from uniformly random codes.
    codes: int codes of `originals`, [B, h, w], [B, h, w, N] for N residual
      stages (1 x L grids for global latents), or a dict of [B, h, w] maps of
      each level (VQ-VAE-2).
    codebooks: per stage, its [K, D] codebook.
    code_counts: [N, K] uses of each code on the whole eval split, per stage.
    history: the training curve as columns (lists), at least `step`,
      `normalized_mse` and `perplexity`; its charts are left out while it is empty.

  Returns:
    {name: uint8 RGB [H, W, 3]}: the `FIGURE_NAMES`, plus `TSNE_FIGURE` when
    scikit-learn is installed.
  """
  originals = np.asarray(originals, np.float32)
  images = {}
  columns = min(_COLUMNS, len(originals))
  rows = []
  for start in range(0, len(originals), columns):
    rows += [originals[start:start + columns], reconstructions[start:start + columns]]
  images["reconstructions"] = plots.image_figure(
      image_grid(np.concatenate(rows), columns),
      f"Originals and their reconstructions (decoder means), step {step}",
      row_labels=["original", "reconstruction"] * (len(rows) // 2))
  num_codes = int(np.shape(codebooks[0])[0])
  images["random_codes"] = plots.image_figure(
      image_grid(random_decoded, _COLUMNS),
      f"Decoded uniformly random codes (K={num_codes}), step {step}")

  shown = np.broadcast_to(originals[:columns], originals[:columns].shape[:3] + (3,))
  code_maps = _code_maps(codes)
  maps = [plots.code_colors(upsample_nearest(level_codes[:columns], shown.shape[1:3]))
          for _, level_codes in code_maps]
  labels = [label for label, _ in code_maps]
  images["code_map"] = plots.image_figure(
      image_grid(np.concatenate([shown] + maps), columns),
      f"Originals and the code of each latent position, step {step}",
      row_labels=["original"] + labels, num_codes=num_codes)

  projections = [pca_2d(codebook) for codebook in codebooks]
  images["codebook_pca"] = plots.codebook_scatter(
      [points for points, _ in projections], code_counts,
      f"Codebook on its first two principal axes, step {step}",
      [(f"PC 1 ({100 * share[0]:.0f}% var)", f"PC 2 ({100 * share[1]:.0f}% var)")
       for _, share in projections])
  if not tsne_available():
    logging.info("scikit-learn is not installed: no %s.png (pip install "
                 "'tfp_vqvae[figures]').", TSNE_FIGURE)
  else:
    images[TSNE_FIGURE] = plots.codebook_scatter(
        [tsne_2d(codebook) for codebook in codebooks], code_counts,
        f"Codebook in t-SNE (Euclidean), step {step}",
        [("t-SNE 1", "t-SNE 2")] * len(codebooks))

  if len(history["step"]):
    images["training_recon_error"] = plots.training_curve(
        history["step"], history["normalized_mse"],
        f"Training reconstruction error (normalised MSE) to step {step}",
        "MSE / variance of the data (log scale)", log_y=True)
    images["training_perplexity"] = plots.training_curve(
        history["step"], history["perplexity"],
        f"Training codebook perplexity (exp of code entropy per batch) to step {step}",
        "perplexity" if len(codebooks) == 1 else
        f"perplexity (mean of {len(codebooks)} stages)",
        reference=(num_codes, f"codebook size K = {num_codes}"))
  return images


def samples_figure(images, columns: int, title: str) -> np.ndarray:
  """uint8 RGB figure of float [N, H, W, C] images in [0, 1], `columns` per row,
  under `title` (what `tfp-vqvae-sample` writes)."""
  return plots.image_figure(image_grid(images, columns), title)


def write_run_figures(model_dir: str, step: int, originals, reconstructions,
                      **figure_inputs) -> None:
  """Writes `run_figures` as <model_dir>/<name>.png and TensorBoard images.

  TensorBoard gets `figures/<name>` and the first 8 `originals` and
  `reconstructions`, in the default summary writer at its default step.

  Args:
    model_dir: the run's directory (any tf.io.gfile path).
    step: the training step.
    originals: float [B, H, W, C] eval images in [0, 1].
    reconstructions: float [B, H, W, C] their reconstructions.
    **figure_inputs: the other arguments of `run_figures`.
  """
  tf.summary.image("originals", originals, max_outputs=8)
  tf.summary.image("reconstructions", reconstructions, max_outputs=8)
  images = run_figures(step, originals, reconstructions, **figure_inputs)
  for name, image in images.items():
    write_png(os.path.join(model_dir, f"{name}.png"), image)
    tf.summary.image(f"figures/{name}", image[None])
