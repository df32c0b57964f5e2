"""Golden checkpoints: what an old tfp_vqvae wrote, restored by today's code.

tests/goldens/ holds tiny VQ-VAE and prior checkpoints and a SavedModel written by
the command-line programs at one commit (see tests/goldens/README.md), each with an
expected.npz of fixed inputs and the outputs of that commit's code. Each test here
restores one fixture through stable surfaces only (`import tfp_vqvae as tv`, the
model and prior methods, `tf.saved_model.load`) and checks the outputs.

Never regenerate the fixtures to make a test pass: a failure means that this version
no longer reads, or no longer computes, what an earlier one wrote.
"""

import json
import os
import shutil
import tarfile
import tempfile

import numpy as np
import tensorflow as tf

import tfp_vqvae as tv

_GOLDENS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "goldens")
_EXPORT_TARBALL = "saved_model.tar.xz"
# Float outputs may differ in the last bits when kernels or the order of a sum
# change (another TF version, a matmul becoming an einsum, a refactoring): a few
# float32 ulps, far below 1e-5 of probabilities in [0, 1] or of ~100-nat losses.
# A change of what is computed moves them by far more. Integer codes must match
# exactly.
_RTOL = 1e-5
_ATOL = 1e-5


def _check_config(model_dir, expected):
  """Checks the config record of a VQ-VAE fixture (its config.json and the Config
  `tv.load_vqvae` returns) against `expected` {field: value}.

  THE ONE PLACE TO ADAPT when the Config API is restructured (e.g. into
  per-component options): change how the values are read, never the values
  the tests pass in.
  """
  with open(os.path.join(model_dir, "config.json")) as f:
    record = json.load(f)  # {"config": {flat Config fields}, "image_shape": [...]}
  from_file = tv.Config.from_json(json.dumps(record["config"]))
  _, loaded, _ = tv.load_vqvae(model_dir)
  for config in (from_file, loaded):
    flat = config.to_record()
    for field in ("quantizer", "num_embeddings", "embedding_dim", "num_quantizers",
                  "top_downsamples", "binarize"):
      assert flat[field] == expected[field], (
          model_dir, field, flat[field], expected[field])
  assert tuple(record["image_shape"]) == expected["image_shape"], record["image_shape"]


def _levels(npz, prefix):
  """npz[prefix], or VQ-VAE-2's {"top": npz[prefix_top], "bottom": ...}."""
  if prefix in npz:
    return npz[prefix]
  return {level: npz[f"{prefix}_{level}"] for level in ("top", "bottom")}


class GoldensTest(tf.test.TestCase):

  def _temp_dir(self):
    # tempfile, not create_tempdir: pytest runs the tests without absl's flags.
    path = tempfile.mkdtemp(prefix="goldens_test_")
    self.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path

  def _copy(self, *names):
    """Copies fixtures side by side into a temporary directory (a prior dir records
    its VQ-VAE as ../<name>); returns their paths there."""
    root = self._temp_dir()
    paths = []
    for name in names:
      paths.append(os.path.join(root, name))
      shutil.copytree(os.path.join(_GOLDENS, name), paths[-1])
    return paths

  def _expected(self, name):
    with np.load(os.path.join(_GOLDENS, name, "expected.npz")) as npz:
      return dict(npz)

  def assertCodesEqual(self, expected, actual):
    for want, got in zip(tf.nest.flatten(expected), tf.nest.flatten(actual)):
      got = np.asarray(got)
      self.assertTrue(np.issubdtype(got.dtype, np.integer), got.dtype)
      self.assertAllEqual(want, got)

  def assertFloatsClose(self, expected, actual):
    self.assertAllClose(expected, np.asarray(actual), rtol=_RTOL, atol=_ATOL)

  def _check_vqvae(self, name, expected_config):
    model_dir, = self._copy(name)
    _check_config(model_dir, expected_config)
    expected = self._expected(name)
    model, _, _ = tv.load_vqvae(model_dir)
    images = tf.constant(expected["images"], tf.float32)
    encoded = model.encode(images)
    self.assertCodesEqual(_levels(expected, "codes"), encoded.codes)
    self.assertFloatsClose(expected["quantized"], encoded.quantized)
    self.assertFloatsClose(expected["recon_mean"], model.decode_codes(encoded.codes).mean())
    self.assertFloatsClose(expected["decode_mean"], model.decode(encoded.quantized).mean())
    terms = model.loss_terms(images)
    for term in ("recon_nll", "kl", "neg_elbo"):
      self.assertFloatsClose(expected[term], getattr(terms, term))

  def test_ema(self):
    self._check_vqvae("ema", dict(quantizer="ema", num_embeddings=16, embedding_dim=4,
                                  num_quantizers=1, top_downsamples=0,
                                  binarize="threshold", image_shape=(16, 16, 1)))

  def test_loss(self):
    self._check_vqvae("loss", dict(quantizer="loss", num_embeddings=16, embedding_dim=4,
                                   num_quantizers=1, top_downsamples=0,
                                   binarize="threshold", image_shape=(16, 16, 1)))

  def test_residual(self):
    self._check_vqvae("residual", dict(quantizer="ema", num_embeddings=16,
                                       embedding_dim=4, num_quantizers=2,
                                       top_downsamples=0, binarize="threshold",
                                       image_shape=(16, 16, 1)))

  def test_vqvae2(self):
    self._check_vqvae("vqvae2", dict(quantizer="ema", num_embeddings=16, embedding_dim=4,
                                     num_quantizers=1, top_downsamples=1,
                                     binarize="threshold", image_shape=(16, 16, 1)))

  def _check_prior(self, name, vqvae_name):
    vqvae_dir, prior_dir = self._copy(vqvae_name, name)
    expected = self._expected(name)
    model, _, _ = tv.load_vqvae(vqvae_dir)
    prior, _ = tv.load_prior(prior_dir, model)
    codes = model.encode(tf.constant(expected["images"], tf.float32)).codes
    self.assertCodesEqual(_levels(expected, "codes"), codes)
    golden_codes = tf.nest.map_structure(lambda c: tf.constant(c, tf.int32),
                                         _levels(expected, "codes"))
    self.assertFloatsClose(expected["log_prob"], prior.log_prob(golden_codes))
    # Seeded ancestral sampling (stateless Gumbel-max) at temperature 1.
    samples = prior.sample(tf.constant(expected["sample_seeds"], tf.int64), 1.0)
    self.assertCodesEqual(_levels(expected, "samples"), samples)

  def test_pixelcnn(self):
    self._check_prior("pixelcnn", "ema")

  def test_vqvae2_prior(self):
    self._check_prior("vqvae2_prior", "vqvae2")

  def test_export_ema(self):
    root = self._temp_dir()
    with tarfile.open(os.path.join(_GOLDENS, "export_ema", _EXPORT_TARBALL)) as tar:
      tar.extractall(root, filter="data")
    loaded = tf.saved_model.load(os.path.join(root, "saved_model"))
    expected = self._expected("export_ema")
    names = sorted({key.split("/")[0] for key in expected})
    self.assertCountEqual(names, loaded.signatures.keys())
    for signature in names:
      inputs = {key.split("/")[2]: tf.constant(value) for key, value in expected.items()
                if key.startswith(f"{signature}/in/")}
      want = {key.split("/")[2]: value for key, value in expected.items()
              if key.startswith(f"{signature}/out/")}
      got = loaded.signatures[signature](**inputs)
      self.assertCountEqual(want, got, signature)
      for key, value in want.items():
        if np.issubdtype(value.dtype, np.integer):
          self.assertCodesEqual(value, got[key].numpy())
        else:
          self.assertFloatsClose(value, got[key].numpy())


if __name__ == "__main__":
  tf.test.main()
