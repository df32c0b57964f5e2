"""Tests of the sharded code files: random reads, streamed batches, completeness."""

import os
from unittest import mock

from absl import logging as absl_logging
import numpy as np
import tensorflow as tf

from tfp_vqvae.data import code_shards
from tfp_vqvae.internal import progress
from tfp_vqvae.internal import seeds as seeds_lib
import test_util


class CodeShardsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.codes = {"train": rng.integers(0, 8, (40, 2, 3)).astype(np.int32),
                  "eval": rng.integers(0, 8, (11, 2, 3)).astype(np.int32)}
    self.labels = {"train": np.arange(40, dtype=np.int32) % 5 - 1,
                   "eval": np.full([11], 3, np.int32)}
    self.directory = os.path.join(self.get_temp_dir(), "codes")
    # 3 rows per shard: 14 train shards, more than a reader keeps open.
    self.train, self.eval = test_util.write_code_shards(
        self.directory, self.codes, rows_per_shard=3, labels=self.labels)

  def test_reads_rows_in_any_order_across_shards(self):
    self.assertEqual(self.train.num_rows, 40)
    self.assertLen(tf.io.gfile.glob(os.path.join(self.directory, "train-*.npy")), 14)
    indices = [39, 0, 5, 6, 7, 7, 2, 30, 31, 1, 12, 25, 38, 20, 9, 10, 11, 33, 3]
    records = self.train.read(indices)
    self.assertAllEqual(records["codes"], self.codes["train"][indices])
    self.assertAllEqual(records["label"], self.labels["train"][indices])
    self.assertEqual(self.train.label_range, (-1, 3))
    self.assertEqual(self.train.read([]).shape, (0,))
    with self.assertRaisesRegex(IndexError, "outside the 40 of train"):
      self.train.read([40])
    # Shards are plain NumPy files.
    first = np.load(os.path.join(self.directory, "eval-00000.npy"))
    self.assertAllEqual(first["codes"], self.codes["eval"][:3])
    self.assertAllEqual(first["recon_nll"], [0.0, 0.5, 1.0])

  def test_train_batches_are_the_seeded_rows_and_resume_anywhere(self):
    batches = list(self.train.train_batches(4, seed=7, start=0, stop=6))
    self.assertLen(batches, 6)
    for step, (index, codes, labels) in enumerate(batches):
      self.assertEqual(int(index), step)
      rows = tf.random.stateless_uniform(
          [4], seeds_lib.step_seed(7, seeds_lib.Stream.PRIOR_BATCHES, step), maxval=40,
          dtype=tf.int32).numpy()
      self.assertAllEqual(codes, self.codes["train"][rows])
      self.assertAllEqual(labels, self.labels["train"][rows])
    resumed = list(self.train.train_batches(4, seed=7, start=4, stop=6))
    for (_, codes, _), (index, resumed_codes, _) in zip(batches[4:], resumed):
      self.assertAllEqual(resumed_codes, codes)
    self.assertEqual([int(index) for index, _, _ in resumed], [4, 5])

  def test_eval_batches_cover_the_split_in_order(self):
    batches = list(self.eval.eval_batches(4))
    self.assertEqual([len(labels) for _, labels, _ in batches], [4, 4, 3])
    self.assertAllEqual(np.concatenate([codes for codes, _, _ in batches]),
                        self.codes["eval"])
    self.assertAllEqual(np.concatenate([recon for _, _, recon in batches]),
                        np.arange(11) / 2)
    # The training split has no recon NLLs.
    self.assertLen(next(iter(self.train.eval_batches(4))), 2)

  def test_levels_are_fields_and_batches_are_dicts(self):
    rng = np.random.default_rng(1)
    codes = {"top": rng.integers(0, 4, (5, 1, 2)), "bottom": rng.integers(0, 4, (5, 2, 4))}
    train, _ = test_util.write_code_shards(
        os.path.join(self.get_temp_dir(), "levels"), {"train": codes, "eval": codes},
        rows_per_shard=2)
    self.assertEqual(train.code_names, ("top", "bottom"))
    batch, _ = next(iter(train.eval_batches(5)))
    self.assertEqual(sorted(batch), ["bottom", "top"])
    self.assertAllEqual(batch["bottom"], codes["bottom"])
    self.assertEqual(batch["top"].shape, (5, 1, 2))

  def test_a_directory_without_index_is_incomplete(self):
    self.assertTrue(code_shards.is_complete(self.directory))
    os.remove(os.path.join(self.directory, code_shards.INDEX_FILE))
    self.assertFalse(code_shards.is_complete(self.directory))
    with self.assertRaisesRegex(ValueError, "holds no complete encoded codes"):
      code_shards.CodeShards(self.directory, "train")

  def test_a_shard_that_does_not_match_the_index_is_refused(self):
    np.save(os.path.join(self.directory, "eval-00000.npy"), np.zeros(3, np.int32))
    with self.assertRaisesRegex(ValueError, "not the index's"):
      self.eval.read([0])

  def test_writer_shows_progress_with_the_total(self):
    with mock.patch.object(progress, "FIRST_LINE_SECONDS", 0.0):
      writer = code_shards.ShardWriter(os.path.join(self.get_temp_dir(), "more"),
                                       "train", code_shards.record_dtype((2, 3), False),
                                       total=40)
      with self.assertLogs(absl_logging.get_absl_logger(), level="INFO") as logs:
        for start in (0, 20):
          writer.write(codes=self.codes["train"][start:start + 20],
                       label=self.labels["train"][start:start + 20])
        writer.close()

    lines = [record.getMessage() for record in logs.records]
    self.assertStartsWith(lines[0], "Encoding the codes of train: 20/40 images (50%), ")
    self.assertIn(", ETA ", lines[0])
    self.assertStartsWith(lines[-1], "Encoding the codes of train: done, 40 images in ")

  def test_writer_checks_the_fields(self):
    writer = code_shards.ShardWriter(self.get_temp_dir(), "x",
                                     code_shards.record_dtype((2, 2), False))
    with self.assertRaisesRegex(ValueError, "Expected the fields"):
      writer.write(codes=np.zeros([1, 2, 2]))


if __name__ == "__main__":
  tf.test.main()
