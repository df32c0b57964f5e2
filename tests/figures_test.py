"""Tests of the figures a run writes: names, inputs of any shape, projections."""

import os
import sys
from unittest import mock

from absl import logging as absl_logging
import numpy as np
import tensorflow as tf

from tfp_vqvae.training import figures
from tfp_vqvae.training import plots
import test_util


def _inputs(channels=1, code_shape=(7, 7), stages=1, num_codes=16, steps=(1, 2, 3)):
  """run_figures arguments of 4 random images and codes."""
  rng = np.random.default_rng(0)
  images = rng.random((3, 4, 28, 28, channels))
  return dict(originals=images[0], reconstructions=images[1], random_decoded=images[2],
              codes=rng.integers(0, num_codes, (4,) + code_shape),
              codebooks=[rng.normal(size=(num_codes, 8)) for _ in range(stages)],
              code_counts=rng.integers(0, 5, (stages, num_codes)),
              history={"step": list(steps),
                       "normalized_mse": [1.0, 0.5, 0.4][:len(steps)],
                       "perplexity": [3.0, 4.0, 5.0][:len(steps)]})


def _expected_names():
  return set(figures.FIGURE_NAMES) | ({figures.TSNE_FIGURE}
                                      if figures.tsne_available() else set())


class FiguresTest(tf.test.TestCase):

  def test_pca_matches_numpy_variances(self):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 5)) * np.array([5.0, 3.0, 0.1, 0.1, 0.1])
    projected, shares = figures.pca_2d(vectors)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(vectors.T)))[::-1]
    self.assertAllClose(projected.var(0, ddof=1), eigenvalues[:2], rtol=1e-6)
    self.assertAllClose(shares, eigenvalues[:2] / eigenvalues.sum(), rtol=1e-6)

  def test_upsample_nearest_any_size(self):
    grids = np.arange(3).reshape(1, 1, 3)
    self.assertAllEqual(figures.upsample_nearest(grids, (2, 7))[0],
                        [[0, 0, 0, 1, 1, 2, 2]] * 2)
    grids = np.arange(4).reshape(1, 2, 2)
    self.assertAllEqual(figures.upsample_nearest(grids, (4, 4))[0],
                        np.repeat(np.repeat(grids[0], 2, 0), 2, 1))

  def test_figures_of_rgb_images_global_and_residual_codes(self):
    curves = {"training_recon_error", "training_perplexity"}
    drawn = []
    cases = ((_inputs(channels=3, code_shape=(8, 8)), _expected_names()),
             # No history yet (an eval at step 0): no training curves.
             (_inputs(code_shape=(1, 16), steps=()), _expected_names() - curves),
             (_inputs(code_shape=(7, 7, 2), stages=2), _expected_names()))
    for inputs, names in cases:
      drawn.append(figures.run_figures(3, **inputs))
      self.assertEqual(set(drawn[-1]), names)
      for name, image in drawn[-1].items():
        self.assertEqual((image.dtype, image.ndim, image.shape[-1]), (np.uint8, 3, 3),
                         name)
    # Two stages: the code map gets a row per stage, the scatter a subplot per stage.
    self.assertGreater(drawn[2]["code_map"].shape[0], drawn[0]["code_map"].shape[0])
    self.assertGreater(drawn[2]["codebook_pca"].shape[1],
                       drawn[0]["codebook_pca"].shape[1])

  def test_tsne_is_skipped_with_a_log_line_without_scikit_learn(self):
    # Other tests in the same process may have lowered absl's verbosity.
    self.addCleanup(absl_logging.set_verbosity, absl_logging.get_verbosity())
    absl_logging.set_verbosity(absl_logging.INFO)
    with mock.patch.dict(sys.modules, {"sklearn": None}):
      self.assertFalse(figures.tsne_available())
      with self.assertLogs(level="INFO") as logs:
        images = figures.run_figures(3, **_inputs())
    self.assertEqual(set(images), set(figures.FIGURE_NAMES))
    self.assertLen(logs.output, 1)
    self.assertIn("codebook_tsne.png", logs.output[0])

  def test_tsne_separates_clusters_and_is_deterministic(self):
    if not figures.tsne_available():
      self.skipTest("scikit-learn is not installed")
    rng = np.random.default_rng(0)
    vectors = np.concatenate([rng.normal(size=(20, 8)), rng.normal(size=(20, 8)) + 20])
    points = figures.tsne_2d(vectors)
    self.assertEqual(points.shape, (40, 2))
    self.assertAllEqual(figures.tsne_2d(vectors), points)
    spread = max(points[:20].std(0).max(), points[20:].std(0).max())
    self.assertGreater(np.linalg.norm(points[:20].mean(0) - points[20:].mean(0)),
                       4 * spread)

  def test_every_title_names_the_step(self):
    titles = []

    def record_title(draw, position):
      def drawn(*args, **kwargs):
        titles.append(args[position])
        return draw(*args, **kwargs)
      return drawn

    with mock.patch.object(plots, "image_figure", record_title(plots.image_figure, 1)), \
         mock.patch.object(plots, "training_curve", record_title(plots.training_curve, 2)), \
         mock.patch.object(plots, "codebook_scatter",
                           record_title(plots.codebook_scatter, 2)):
      figures.run_figures(7, **_inputs())

    self.assertLen(titles, len(_expected_names()))
    for title in titles:
      self.assertRegex(title, r"step 7$")

  def test_a_tiny_run_writes_exactly_the_figure_set(self):
    model_dir = self.get_temp_dir()
    test_util.train_tiny_model(model_dir, num_steps=1, eval_every=1, checkpoint_every=1)
    written = {name[:-len(".png")] for name in os.listdir(model_dir)
               if name.endswith(".png")}
    self.assertEqual(written, _expected_names())
    for name in written:
      image = tf.io.decode_png(tf.io.read_file(os.path.join(model_dir, f"{name}.png")))
      self.assertEqual(image.shape[-1], 3, name)
    events = tf.io.gfile.glob(os.path.join(model_dir, "eval", "events.*"))
    tags = {value.tag for path in events
            for event in tf.compat.v1.train.summary_iterator(path)
            for value in event.summary.value}
    self.assertContainsSubset({f"figures/{name}" for name in written}
                              | {"originals", "reconstructions"}, tags)


if __name__ == "__main__":
  tf.test.main()
