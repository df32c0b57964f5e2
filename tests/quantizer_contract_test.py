"""One contract for every quantizer of the package (tests/quantizer_family.py).

Each member (EMA, loss-trained, residual stacks of each, FSQ, LFQ, the rotation
trick, the Keras layers) goes through the same checks: output shapes and dtypes, straight-through gradients, codes
against NumPy, tf.function and XLA, checkpoint round trip, and two replicas against
one device (tests/quantizer_contract_mirrored.py, in a subprocess: logical devices
must be configured before TensorFlow starts).
"""

import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import quantizer_family as family
import test_util

# (test name suffix, member name) for parameterized.named_parameters.
_MEMBERS = [(name, name) for name in family.MEMBERS]
# The shape [B, h, w, D] of every batch of encoder outputs.
_SHAPE = (family.GROUP, 3, 3, family.D)


def _batch(seed, dtype=np.float32):
  return np.random.default_rng(seed).normal(size=_SHAPE).astype(dtype)


def _trained(name, steps=1):
  """A new member `name` after `steps` training calls on batches 0, 1, ..."""
  quantizer = family.MEMBERS[name].make()
  for step in range(steps):
    family.output(quantizer, _batch(step), training=True)
  return quantizer


class QuantizerContractTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      *[(f"{name}_{dtype.name}_{'training' if training else 'eval'}", name, dtype,
         training) for name in family.MEMBERS for dtype in (tf.float32, tf.bfloat16)
        for training in (False, True)])
  def test_output_shapes_and_dtypes(self, name, dtype, training):
    member = family.MEMBERS[name]
    quantizer = _trained(name)
    inputs = tf.constant(_batch(7), dtype)
    out = family.output(quantizer, inputs, training=training)
    batch, height, width, _ = _SHAPE
    stages = () if member.stages == 1 else (member.stages,)
    self.assertEqual(out.quantized.shape, _SHAPE)
    self.assertEqual(out.quantized.dtype, dtype)
    self.assertEqual(out.codes.shape, (batch, height, width) + stages)
    self.assertEqual(out.codes.dtype, tf.int32)
    self.assertAllInRange(out.codes, 0, family.K - 1)
    self.assertEqual(out.commitment_loss.shape, (batch,))
    self.assertEqual(out.commitment_loss.dtype,
                     tf.float32 if member.float32_loss else dtype)
    self.assertAllGreaterEqual(out.commitment_loss, 0.0)
    for statistic in (out.perplexity, out.usage):
      self.assertEqual(statistic.shape, stages)
      self.assertEqual(statistic.dtype, tf.float32)
    self.assertAllInRange(out.usage, 1 / family.K, 1.0)
    self.assertEqual(out.code_counts.shape, stages + (family.K,))
    self.assertAllEqual(tf.reduce_sum(out.code_counts, axis=-1),
                        np.full(stages, batch * height * width))
    # The codebook state stays float32 whatever the inputs' dtype.
    for codebook in family.codebooks(quantizer):
      self.assertEqual(codebook.dtype, np.float32)

  @parameterized.named_parameters(
      *[(f"{name}_{'training' if training else 'eval'}", name, training)
        for name in family.MEMBERS for training in (False, True)])
  def test_straight_through(self, name, training):
    quantizer = _trained(name)
    inputs = tf.constant(_batch(7))
    weights = np.random.default_rng(1).normal(size=_SHAPE).astype(np.float32)
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(inputs)
      # The reference first: a training call updates the codebook after coding.
      reference = tf.reduce_sum(family.straight_through(quantizer, inputs) * weights)
      quantized = family.output(quantizer, inputs, training=training).quantized
      total = tf.reduce_sum(quantized * weights)
    # A codebook quantizer passes the gradient to the encoder unchanged (or through
    # the rotation trick's constant rotation) and never to its codebook; a grid
    # quantizer through its projections, its rounding replaced by the identity.
    sources = [inputs] + family.trainable(quantizer)
    self.assertLen(sources, 1 + family.MEMBERS[name].trainable)
    dense = lambda gradient, source: (np.zeros(source.shape) if gradient is None
                                      else tf.convert_to_tensor(gradient))
    for source, got, want in zip(sources, tape.gradient(total, sources),
                                 tape.gradient(reference, sources)):
      self.assertAllClose(dense(got, source), dense(want, source), rtol=1e-5,
                          atol=1e-5)

  def assertCodesMatchNumpy(self, quantizer, call, inputs):
    """`call(inputs)` codes as NumPy does with the state as it was before."""
    codes, total = family.numpy_reference(quantizer, inputs.reshape(-1, family.D))
    out = call(inputs)
    self.assertAllEqual(tf.reshape(out.codes, [-1, codes.shape[1]]), codes)
    self.assertAllClose(out.quantized, total.reshape(inputs.shape), rtol=1e-5,
                        atol=1e-5)
    return out

  @parameterized.named_parameters(*[(f"{name}_{mode}", name, mode)
                                    for name in family.MEMBERS
                                    for mode in ("eager", "xla")])
  def test_codes_match_numpy(self, name, mode):
    # XLA is checked against NumPy, not against eager: its stateless RNG draws
    # differ from the CPU kernels' for seeds beyond int32, so the first-batch and
    # re-seeded codes differ (the shape of the computation does not).
    quantizer = family.MEMBERS[name].make()
    train = lambda x: family.output(quantizer, x, training=True)
    evaluate = lambda x: family.output(quantizer, x, training=False)
    if mode == "xla":
      train, evaluate = (tf.function(f, jit_compile=True) for f in (train, evaluate))
    train(_batch(0))
    # A training call codes with the codebook as it was before its update.
    for step in (1, 2):
      self.assertCodesMatchNumpy(quantizer, train, _batch(step))
    out = self.assertCodesMatchNumpy(quantizer, evaluate, _batch(7))
    self.assertAllClose(quantizer.lookup(out.codes), out.quantized, rtol=1e-5,
                        atol=1e-5)
    self.assertEqual(int(quantizer.num_updates.numpy()), 3)

  @parameterized.named_parameters(*_MEMBERS)
  def test_tf_function_matches_eager(self, name):
    eager = family.MEMBERS[name].make()
    traced = family.MEMBERS[name].make()
    step = tf.function(lambda x: family.output(traced, x, training=True))
    for batch in range(3):
      inputs = _batch(batch)
      want, got = family.output(eager, inputs, training=True), step(inputs)
      self.assertAllEqual(got.codes, want.codes)
      self.assertAllClose(got.quantized, want.quantized, rtol=1e-5, atol=1e-5)
      self.assertAllClose(got.commitment_loss, want.commitment_loss, rtol=1e-5,
                          atol=1e-5)
    for got, want in zip(family.state(traced), family.state(eager)):
      self.assertAllClose(got, want, rtol=1e-5, atol=1e-5, msg=want.name)

  @parameterized.named_parameters(*_MEMBERS)
  def test_checkpoint_round_trip(self, name):
    original = _trained(name, steps=2)
    path = tf.train.Checkpoint(quantizer=original).save(
        os.path.join(self.get_temp_dir(), name, "ckpt"))
    restored = family.MEMBERS[name].make()
    tf.train.Checkpoint(quantizer=restored).restore(path).assert_consumed()
    for got, want in zip(family.state(restored), family.state(original)):
      self.assertAllEqual(got, want, msg=want.name)
    # The next training call continues identically: same seed (from num_updates),
    # same outputs, same new state.
    inputs = _batch(2)
    want = family.output(original, inputs, training=True)
    got = family.output(restored, inputs, training=True)
    for a, b in zip(got, want):
      self.assertAllEqual(a, b)
    for got, want in zip(family.state(restored), family.state(original)):
      self.assertAllEqual(got, want, msg=want.name)

  @parameterized.named_parameters(*_MEMBERS)
  def test_inputs_of_another_size_raise(self, name):
    quantizer = family.MEMBERS[name].make()
    with self.assertRaisesRegex(ValueError, f"embedding_dim={family.D}"):
      family.output(quantizer, tf.zeros([2, family.D + 1]), training=False)

  @parameterized.named_parameters(*_MEMBERS)
  def test_two_replicas_equal_one_device(self, name):
    report = test_util.run_json_program("quantizer_contract_mirrored.py")[name]
    # Every replica holds the same state ...
    self.assertTrue(report["replicas_equal"], report)
    # ... bit for bit what one device computes on the same global batches: the codes
    # of each call, the code counts of the global batch (on every replica), and
    # every variable (see quantizer_contract_mirrored.py).
    self.assertTrue(report["codes_equal"], report)
    self.assertTrue(report["counts_equal"], report)
    self.assertTrue(report["state_equal"], report)
    # Per-example losses agree too (LFQ's entropy is that of the global batch).
    self.assertLess(report["loss_difference"], 1e-5, report)
    self.assertGreater(report["updates"], 0)


if __name__ == "__main__":
  tf.test.main()
