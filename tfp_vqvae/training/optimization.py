"""The optimiser of the trainers, with dynamic loss scaling for float16 networks.

float16 has a 5-bit exponent: gradients below ~6e-8 flush to zero and activations
above 65504 overflow. With `dtype="float16"` the loss is multiplied by a dynamic
scale before differentiation and the gradients divided by it after
(`tf_keras.mixed_precision.LossScaleOptimizer`): a step whose gradients are not
finite is skipped and the scale halved, so no NaN or Inf ever reaches a weight
(tested). bfloat16 has float32's exponent and needs no scaling.
"""

from typing import Any, Callable

import tensorflow as tf
import tf_keras


def make_optimizer(learning_rate: float, dtype: str = "float32", decay_steps: int = 0):
  """Adam, wrapped in a dynamic `LossScaleOptimizer` when `dtype` is float16.

  With `decay_steps` > 0 its learning rate follows a half cosine from
  `learning_rate` at its first step to 0 after `decay_steps` steps (then stays 0);
  the optimizer's step count is checkpointed with it, so a resumed run continues
  the schedule where it stopped.
  """
  if decay_steps:
    learning_rate = tf_keras.optimizers.schedules.CosineDecay(learning_rate,
                                                              decay_steps)
  optimizer = tf_keras.optimizers.Adam(learning_rate)
  if dtype == "float16":
    optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
  return optimizer


def minimize(optimizer, loss_fn: Callable[[], tuple[tf.Tensor, Any]], variables) -> Any:
  """One optimiser step on the loss of `loss_fn` (scaled if the optimiser scales).

  Args:
    optimizer: from `make_optimizer`.
    loss_fn: returns (scalar loss, anything else the caller wants back).
    variables: the variables to train.

  Returns:
    What `loss_fn` returned besides the loss.
  """
  scaling = isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
  with tf.GradientTape() as tape:
    loss, extra = loss_fn()
    if scaling:
      loss = optimizer.get_scaled_loss(loss)
  gradients = tape.gradient(loss, variables)
  if scaling:
    gradients = optimizer.get_unscaled_gradients(gradients)
  optimizer.apply_gradients(zip(gradients, variables))
  return extra
