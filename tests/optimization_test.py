"""Tests of the trainers' optimiser (tfp_vqvae/training/optimization.py): the
learning rate's cosine decay (--cosine_decay), step by step and across a resume."""

import math
import os

import numpy as np
import tensorflow as tf

from tfp_vqvae.configs import data
from tfp_vqvae.training import optimization

_RATE, _STEPS = 0.1, 8


def _cosine(step):
  return _RATE * 0.5 * (1 + math.cos(math.pi * min(step, _STEPS) / _STEPS))


def _moves(optimizer, variable, count):
  """How far `count` Adam steps on the loss 3 * variable move the variable: with a
  constant gradient each step moves it by exactly that step's learning rate (up to
  Adam's epsilon)."""
  moves = []
  for _ in range(count):
    before = float(variable.numpy())
    optimization.minimize(optimizer, lambda: (3.0 * variable, None), [variable])
    moves.append(before - float(variable.numpy()))
  return moves


class CosineDecayTest(tf.test.TestCase):

  def test_each_step_moves_by_the_half_cosine_then_not_at_all(self):
    variable = tf.Variable(0.0)
    moves = _moves(optimization.make_optimizer(_RATE, decay_steps=_STEPS), variable,
                   _STEPS + 2)
    self.assertAllClose(moves, [_cosine(step) for step in range(_STEPS + 2)],
                        atol=1e-6)
    self.assertAllClose(moves[-2:], [0.0, 0.0], atol=1e-6)
    constant = _moves(optimization.make_optimizer(_RATE), tf.Variable(0.0), 3)
    self.assertAllClose(constant, [_RATE] * 3, atol=1e-6)

  def test_a_restored_optimizer_continues_the_schedule(self):
    variable, optimizer = tf.Variable(0.0), optimization.make_optimizer(
        _RATE, decay_steps=_STEPS)
    _moves(optimizer, variable, 3)
    path = tf.train.Checkpoint(variable=variable, optimizer=optimizer).save(
        os.path.join(self.get_temp_dir(), "ckpt"))
    restored, fresh = tf.Variable(0.0), optimization.make_optimizer(
        _RATE, decay_steps=_STEPS)
    fresh.build([restored])
    tf.train.Checkpoint(variable=restored, optimizer=fresh).restore(path)
    self.assertAllClose(_moves(fresh, restored, 2), _moves(optimizer, variable, 2),
                        atol=1e-7)
    self.assertAllClose(_moves(fresh, restored, 1), [_cosine(5)], atol=1e-6)

  def test_the_flag_sets_the_decay_steps(self):
    self.assertEqual(data.LoopOptions(num_steps=300).decay_steps(), 0)
    self.assertEqual(data.LoopOptions(num_steps=300, cosine_decay=True).decay_steps(),
                     300)


if __name__ == "__main__":
  tf.test.main()
