"""tf.distribute training: 2 replicas (and 2 workers) equal one device on the same batch.

The two-worker test reads TFDS mock data and a folder of PNG files.

Each scenario runs in a fresh Python process: logical devices and TF_CONFIG must be
set before the TensorFlow runtime starts.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import parameterized
import tensorflow as tf

from tfp_vqvae.configs import config as config_lib
from tfp_vqvae.internal import distribute
from tfp_vqvae.quantizers import base as quantizer_lib
from tfp_vqvae.training import checkpoints
from tfp_vqvae.training import loop as loop_lib
import image_files

_PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs",
                        "train_under_strategy.py")


def _train(model_dir, strategy_name, steps, env=None, group_size=0, source="mock",
           overrides=None):
  return subprocess.Popen(
      [sys.executable, _PROGRAM, model_dir, strategy_name, str(steps), str(group_size),
       source, json.dumps(overrides or {})],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=dict(os.environ, **(env or {})))


def _finish(process):
  stdout, stderr = process.communicate(timeout=600)
  if process.returncode:
    raise AssertionError(f"training failed:\n{stderr[-4000:]}")
  return stdout


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


class DistributeTest(parameterized.TestCase, tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix="distribute_test_")
    cls.single = os.path.join(cls.root, "single")
    # The same run in 2 reduction groups of 8, to compare bit for bit with 2 replicas.
    cls.grouped = os.path.join(cls.root, "single_grouped")
    runs = [_train(cls.single, "default", 6), _train(cls.grouped, "default", 6,
                                                      group_size=8)]
    for run in runs:
      stdout = _finish(run)
      assert "REPLICAS 1" in stdout, stdout

  def assertSameModel(self, model_dir, reference=None, exactly=False):
    expected, _, _ = checkpoints.load_vqvae(reference or self.single)
    actual, _, path = checkpoints.load_vqvae(model_dir)
    self.assertEndsWith(path, "ckpt-6")
    for a, b in zip(expected.variables, actual.variables):
      if exactly:
        self.assertAllEqual(a, b, msg=a.name)
      else:
        self.assertAllClose(a, b, atol=1e-5, rtol=1e-5, msg=a.name)

  def assertSameMetrics(self, model_dir, reference):
    with open(os.path.join(model_dir, "metrics.json")) as f, \
        open(os.path.join(reference, "metrics.json")) as g:
      got, want = json.load(f), json.load(g)
    for name in ("codes_used", "recon_nll_nats", "perplexity", "commitment_loss",
                 "history"):
      self.assertEqual(got[name], want[name], msg=name)

  def test_two_replicas_equal_one_device_on_the_same_global_batch(self):
    mirrored = os.path.join(self.root, "mirrored")
    self.assertIn("REPLICAS 2", _finish(_train(mirrored, "mirrored", 6)))
    self.assertSameModel(mirrored)
    with open(os.path.join(mirrored, "metrics.json")) as f, \
        open(os.path.join(self.single, "metrics.json")) as g:
      got, want = json.load(f), json.load(g)
    self.assertEqual(got["codes_used"], want["codes_used"])
    self.assertAllClose(got["recon_nll_nats"], want["recon_nll_nats"], rtol=1e-4)

  def test_checkpoints_resume_across_replica_counts(self):
    for first, second in (("mirrored", "default"), ("default", "mirrored")):
      model_dir = os.path.join(self.root, f"{first}_then_{second}")
      _finish(_train(model_dir, first, 3))
      _finish(_train(model_dir, second, 6))
      self.assertSameModel(model_dir)

  def test_two_replicas_in_groups_equal_one_device_bit_for_bit(self):
    mirrored = os.path.join(self.root, "mirrored_grouped")
    self.assertIn("REPLICAS 2", _finish(_train(mirrored, "mirrored", 6, group_size=8)))
    self.assertSameModel(mirrored, self.grouped, exactly=True)
    self.assertSameMetrics(mirrored, self.grouped)
    # Groups change only the order of float sums: close to the ungrouped run.
    self.assertSameModel(self.grouped)

  def test_vqvae2_on_two_replicas_in_groups_equals_one_device_bit_for_bit(self):
    # Both levels' codebooks all-reduce their statistics; the top networks run in
    # the same reduction groups as the bottom ones.
    vqvae2 = dict(top_downsamples=1, pad_to=32)
    runs = {name: os.path.join(self.root, f"vqvae2_{name}")
            for name in ("default", "mirrored")}
    processes = [_train(model_dir, name, 6, group_size=8, overrides=vqvae2)
                 for name, model_dir in runs.items()]
    for process in processes:
      _finish(process)
    self.assertSameModel(runs["mirrored"], runs["default"], exactly=True)
    self.assertSameMetrics(runs["mirrored"], runs["default"])

  @parameterized.named_parameters(("mock_tfds", "mock"), ("folder", "folder"))
  def test_two_workers_equal_one_process_bit_for_bit_in_groups(self, source):
    if source == "mock":
      reference, runs = self.grouped, []
    else:  # A folder of PNG files; its one-process run alongside the workers.
      source = "folder:" + image_files.write_folder(
          os.path.join(self.root, "images"), {"train": 48, "test": 16}, (16, 16, 1))
      reference = os.path.join(self.root, "folder_grouped")
      runs = [_train(reference, "default", 6, group_size=8, source=source)]
    model_dir = os.path.join(self.root, f"workers_{source.split(':')[0]}")
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = [
        _train(model_dir, "multi_worker", 6, group_size=8, source=source, env={
            "TF_CONFIG": json.dumps({"cluster": cluster,
                                     "task": {"type": "worker", "index": index}})})
        for index in range(2)]
    for run in runs:
      self.assertIn("REPLICAS 1", _finish(run))
    for worker in workers:
      self.assertIn("REPLICAS 2", _finish(worker))
    # Only the chief (worker 0) keeps checkpoints; worker 1's scratch dir is gone.
    self.assertEmpty(tf.io.gfile.glob(os.path.join(model_dir, "scratch_*")))
    self.assertSameModel(model_dir, reference, exactly=True)
    self.assertSameMetrics(model_dir, reference)


class DistributeUnitTest(tf.test.TestCase):

  def test_default_strategy_saves(self):
    self.assertTrue(loop_lib.should_save(distribute.make_strategy("default")))

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "Unknown strategy 'gpu'"):
      distribute.make_strategy("gpu")
    two_replicas = mock.Mock(num_replicas_in_sync=2)
    with self.assertRaisesRegex(ValueError, "batch_size=3 must be a multiple of the "
                                "number of replicas \\(2\\)"):
      distribute.check_batch_size(3, two_replicas)
    distribute.check_batch_size(4, two_replicas)
    with self.assertRaisesRegex(ValueError, "per-replica batch \\(6 = batch_size / 2 "
                                "replicas\\) must be a multiple of reduction_group_size=4"):
      distribute.check_batch_size(12, two_replicas, group_size=4)
    distribute.check_batch_size(16, two_replicas, group_size=4)
    distribute.check_batch_size(16, two_replicas, group_size=32)  # One group each.
    self.assertEqual(quantizer_lib.reduction_groups(64, 32), 2)
    self.assertEqual(quantizer_lib.reduction_groups(16, 32), 1)
    self.assertEqual(quantizer_lib.reduction_groups(64, 0), 1)
    with self.assertRaisesRegex(ValueError, "batch of 48 cannot be cut into groups of "
                                "reduction_group_size=32"):
      quantizer_lib.reduction_groups(48, 32)

  def test_reduction_groups_need_a_dividing_batch(self):
    config = config_lib.Config.from_fields(batch_size=64, reduction_group_size=32)
    config.override(reduction_group_size=128)  # One group.
    with self.assertRaisesRegex(ValueError,
                                "reduction_group_size=24: must divide batch_size=64"):
      config.override(reduction_group_size=24)


if __name__ == "__main__":
  tf.test.main()
