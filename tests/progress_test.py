"""Tests of honest progress: lines of long passes, and steps/s of training alone."""

from absl import logging as absl_logging
import tensorflow as tf

from tfp_vqvae.internal import progress
from tfp_vqvae.training import loop as loop_lib


class FakeClock:
  """A clock the test moves by hand."""

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


class ProgressTest(tf.test.TestCase):

  def test_a_short_pass_prints_nothing(self):
    clock = FakeClock()
    with self.assertNoLogs(absl_logging.get_absl_logger(), level="INFO"):
      with progress.Progress("Short pass", 10, clock=clock) as counter:
        for _ in range(10):
          clock.now += 0.4
          counter.add(1)

  def test_a_long_pass_prints_how_far_and_how_long(self):
    clock = FakeClock()
    with self.assertLogs(absl_logging.get_absl_logger(), level="INFO") as logs:
      with progress.Progress("Data variance over 400 training images", 400,
                             clock=clock) as counter:
        for _ in range(40):
          clock.now += 1.0
          counter.add(10)

    lines = [record.getMessage() for record in logs.records]
    self.assertEqual(lines, [
        "Data variance over 400 training images: 50/400 images (12%), 10/s, ETA 0m35s",
        "Data variance over 400 training images: 350/400 images (87%), 10/s, ETA 0m05s",
        "Data variance over 400 training images: done, 400 images in 0m40s"])

  def test_without_a_total_no_eta(self):
    clock = FakeClock()
    with self.assertLogs(absl_logging.get_absl_logger(), level="INFO") as logs:
      counter = progress.Progress("Encoding the codes of train", None, clock=clock)
      clock.now += 8.0
      counter.add(64)

    self.assertEqual([record.getMessage() for record in logs.records],
                     ["Encoding the codes of train: 64 images, 8/s"])

  def test_format_duration(self):
    self.assertEqual(progress.format_duration(425), "7m05s")
    self.assertEqual(progress.format_duration(3725), "1h02m")
    self.assertEqual(progress.format_duration(-3), "0m00s")


class TrainingRateTest(tf.test.TestCase):

  def test_first_step_checkpoints_and_evaluation_are_left_out(self):
    clock = FakeClock()
    rate = loop_lib.TrainingRate(clock)
    clock.now += 30.0  # Step 1: tracing and compiling.
    rate.start(1)
    self.assertIsNone(rate.window(1))  # A line at the first step has no rate.
    for step in range(2, 11):
      clock.now += 0.5
      if step == 5:
        with rate.paused():  # A checkpoint and an evaluation.
          clock.now += 60.0
    self.assertEqual(rate.window(10), 2.0)  # 9 steps in 4.5 s.
    clock.now += 10 * 0.25
    self.assertEqual(rate.window(20), 4.0)


if __name__ == "__main__":
  tf.test.main()
