"""A MaskGIT prior over the VQ-VAE's codes: a bidirectional Transformer, decoded in T steps.

MaskGIT (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer")
trains a bidirectional Transformer to predict codes hidden behind a mask token
from the visible ones, and generates by filling the grid in a few parallel steps
rather than one code at a time:

  * training (`masked_nll`): per example, r ~ U(0, 1), then ceil(gamma(r) * N) of
    the N positions, chosen uniformly, are masked, with the cosine schedule
    gamma(r) = cos(pi r / 2) (`mask_ratio`); the loss is the cross-entropy of
    the masked codes given the visible ones, in nats per image.

    It is NOT -log p(codes), nor a bound on it: it scores each masked code
    given every visible code, not given the codes before it in any one order,
    so it does not enter the VQ-VAE's bound and must never be reported as a
    log-likelihood. This prior has no `log_prob` for that reason;

  * a likelihood anyway (`any_order_nll`): the same network read as an
    autoregressive model in an order sigma of the positions, revealing one at a
    time, q_sigma(codes) = prod_t p(code at sigma_t | the codes at sigma_<t), a
    distribution over codes for each sigma. With sigma uniform and drawn apart
    from the codes, E_sigma[-log q_sigma(codes)] >= -log q(codes) for the
    mixture q = E_sigma q_sigma (Jensen), so its mean is an upper bound on
    -log q and may enter a bound on -log p(x), for the prior q, which is not
    the distribution `sample` draws from. It costs N passes of the network;

  * sampling (`sample`): start with every position masked; at step t of T,
    draw a code for every masked position from the network's logits (with
    temperature, top_k and top_p), score each draw by its log-probability plus
    Gumbel noise scaled by choice_temperature * (1 - (t + 1) / T) (random at
    first, greedy at the end), keep the codes of the most confident draws and
    mask the rest again, so that `decoding_schedule(N, T)[t]` positions stay
    masked after step t: N cos(pi (t + 1) / (2T)) of them, rounded down, and
    none after the last step. Every position is drawn in T steps.

The network shares the tokens of priors/tokens.py with the causal prior: the
input at a position is its token, or the learned mask embedding if masked, plus
its context (position; the top codes' features for VQ-VAE-2's bottom prior) plus
the class vector of a class-conditional prior, then pre-norm blocks attending to
every position. Residual stages: all stages of a position are masked together;
stage s is predicted from the position's feature and its stages < s (the true
ones in training, the ones just drawn when sampling).

Example (a prior over the KMNIST VQ-VAE's 7x7 grid of 512 codes):
    prior = MaskGITPrior(MaskGITPriorConfig(512, (7, 7)))
    loss = tf.reduce_mean(prior.masked_nll(codes, step_seed, training=True))
    prior.sample(seeds, num_steps=8)            # int32 [B, 7, 7], seeds int64 [B]
"""

import dataclasses
import math

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.priors import categorical_sampling
from tfp_vqvae.priors import tokens as tokens_lib

tfd = tfp.distributions


@dataclasses.dataclass(frozen=True)
class MaskGITPriorConfig(tokens_lib.TokenPriorConfig):
  """The architecture of a `MaskGITPrior` (fields: `TokenPriorConfig`)."""

  def build(self, name: str = "prior") -> "MaskGITPrior":
    return MaskGITPrior(self, name=name)


def mask_ratio(progress):
  """The cosine schedule gamma(r) = cos(pi r / 2): the fraction masked at progress r in [0, 1]."""
  return tf.cos(math.pi / 2 * tf.cast(progress, tf.float32))


def decoding_schedule(num_positions: int, num_steps: int) -> list[int]:
  """The number of positions still masked after each of `num_steps` decoding steps.

  floor(N gamma((t + 1) / T)), at least one fewer than after the step before
  (so every step fills a position while any is masked) and 0 after the last.

  Raises:
    ValueError: if num_steps is not a positive integer.
  """
  if int(num_steps) != num_steps or num_steps < 1:
    raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}.")
  counts, masked = [], num_positions
  for step in range(1, num_steps + 1):
    target = math.floor(num_positions * math.cos(math.pi / 2 * step / num_steps))
    masked = 0 if step == num_steps else max(0, min(masked - 1, target))
    counts.append(masked)
  return counts


def _lowest(scores, counts):
  """bool [B, N]: True at the `counts` [B] lowest scores [B, N] of each row."""
  ranks = tf.argsort(tf.argsort(scores, axis=-1, stable=True), axis=-1, stable=True)
  return ranks < tf.reshape(tf.cast(counts, ranks.dtype), [-1, 1])


class MaskGITPrior(tokens_lib.TokenPrior):
  """A bidirectional Transformer over codes, trained to fill masked positions.

  It has the attributes of the other priors (`code_shape`, `num_embeddings`,
  `num_classes`, `condition_shape`, ...) and a `sample` that takes the same
  seeds, labels, condition and knobs, but no `log_prob`: `masked_nll` is its
  training loss, not a likelihood; `any_order_nll` bounds one (module docstring).
  """
  exact_log_prob = False  # No `log_prob`: see `masked_nll`.

  def __init__(self, config: MaskGITPriorConfig, name: str = "prior"):
    """Builds the network of `config` (see `tokens.TokenPrior`) and the mask embedding.

    Raises:
      ValueError: naming a field of `config` out of range (`tokens.checked_config`).
    """
    super().__init__(config, name=name)
    with self.name_scope:
      self.mask_embedding = tf.Variable(
          tf.random.stateless_normal([self.config.model_dim], self._seeds.next()),
          name="mask_embedding")

  def _features(self, sequence, masked, labels, context, training=False, seed=None):
    """Features [B, N, D] of codes [B, N, S] with the positions masked [B, N] hidden."""
    x = tf.where(masked[..., None], self.mask_embedding,
                 self.tokens.embed(tf.maximum(sequence, 0)))
    x += context + self.tokens.start(labels, tf.shape(sequence)[0])[:, None]
    return self.transformer(x, None, training, tokens_lib.dropout_seed(seed))

  @tf.Module.with_name_scope
  def logits(self, codes, masked, labels=None, training=False, seed=None,
             condition=None):
    """Logits [B, *code_shape, K] of every code given the codes not masked.

    Args:
      codes: int [B, *code_shape] in [0, K); those of masked positions are not read
        (but stage s's head reads the stages < s of its own position).
      masked: bool [B, h, w], True where a position's codes are hidden.
      labels: int [B] class labels in [0, num_classes), iff num_classes > 0.
      training: applies dropout if True.
      seed: int [2] stateless dropout seed, required when training with dropout.
      condition: int [B, *condition_shape] codes in [0, K), iff condition_shape.

    Raises:
      ValueError: if labels or condition are passed to a prior without them or
        missing for one with them, or no seed is given for dropout.
    """
    self.tokens.check_inputs(labels, condition)
    sequence = self.tokens.to_sequence(codes)
    masked = tf.reshape(masked, [-1, self.tokens.num_positions])
    features = self._features(sequence, masked, labels,
                              self.tokens.context(condition), training, seed)
    return self.tokens.to_codes(self.tokens.logits(features, sequence))

  def masked_nll(self, codes, seed, labels=None, training=False, condition=None):
    """The masked-code cross-entropy [B] in nats per image: the training loss, NOT a bound.

    Masks ceil(cos(pi r / 2) N) positions (at least one) of each example, r ~
    U(0, 1), and sums -log p(code | visible codes) over the masked positions'
    codes (all stages). Its value depends on how many codes were masked and is
    no estimate of -log p(codes): never report it as a prior NLL.

    Args:
      codes: int [B, *code_shape] in [0, K).
      seed: int [2] stateless seed of the masks (and of dropout when training).
      labels, training, condition: as `logits`.
    """
    seed = tf.cast(seed, tf.int64)
    mask_seed = tf.random.experimental.stateless_fold_in(seed, seeds_lib.Stream.PRIOR_MASK)
    batch_size = tf.shape(codes)[0]
    num_positions = self.tokens.num_positions
    progress = tf.random.stateless_uniform(
        [batch_size], tf.random.experimental.stateless_fold_in(mask_seed, 0))
    counts = tf.clip_by_value(
        tf.math.ceil(mask_ratio(progress) * num_positions), 1, num_positions)
    scores = tf.random.stateless_uniform(
        tf.stack([batch_size, num_positions]),
        tf.random.experimental.stateless_fold_in(mask_seed, 1))
    masked = _lowest(scores, counts)
    logits = self.logits(codes, tf.reshape(masked, [-1, *self.latent_shape]), labels,
                         training, seed, condition)
    nll = -tfd.Categorical(logits=logits).log_prob(codes)
    nll = tf.reshape(nll, [-1, num_positions, self.num_stages])
    return tf.reduce_sum(tf.where(masked[..., None], nll, 0.0), axis=[1, 2])

  def any_order_nll(self, codes, seed, labels=None, condition=None):
    """-log q_sigma(codes) [B] in nats per image, each example in its own random order.

    Reveals the positions of example b one at a time in the order that sorts
    row b of `tf.random.stateless_uniform([B, N], seed)` (raster positions N =
    h * w) and sums -log p(code | the codes revealed so far) over the positions'
    codes (stage s of a position given its stages < s), in N passes of the
    network: an exact -log q_sigma for that order, and on average over orders an
    upper bound on -log q(codes) (module docstring), unlike `masked_nll`.

    Args:
      codes: int [B, *code_shape] in [0, K).
      seed: int [2] stateless seed of the orders.
      labels, condition: as `logits`.
    """
    self.tokens.check_inputs(labels, condition)
    sequence = self.tokens.to_sequence(codes)
    batch_size = tf.shape(sequence)[0]
    num_positions = self.tokens.num_positions
    scores = tf.random.stateless_uniform(tf.stack([batch_size, num_positions]),
                                         tf.cast(seed, tf.int64))
    order = tf.argsort(scores, axis=-1, stable=True)  # [B, N]: the positions in order
    reveal_step = tf.argsort(order, axis=-1, stable=True)  # [B, N]: when each is revealed
    context = self.tokens.context(condition)

    def step(index, total):
      features = self._features(sequence, reveal_step >= index, labels, context)
      position = order[:, index]
      logits = self.tokens.logits(tf.gather(features, position, batch_dims=1),
                                  tf.gather(sequence, position, batch_dims=1))
      nll = -tfd.Categorical(logits=logits).log_prob(
          tf.gather(sequence, position, batch_dims=1))
      return index + 1, total + tf.reduce_sum(nll, axis=-1)

    _, total = tf.while_loop(lambda index, _: index < num_positions, step,
                             (tf.constant(0), tf.zeros([batch_size])),
                             maximum_iterations=num_positions)
    return total

  @tf.function
  def sample(self, seeds, temperature=1.0, labels=None, condition=None, top_k=0,
             top_p=1.0, num_steps=8, choice_temperature=4.5,
             stream=seeds_lib.Stream.PRIOR_SAMPLE):
    """Codes decoded in `num_steps` parallel steps with confidence-based re-masking.

    Each example draws from its own seed, so a sample depends on its seed and
    the arguments only, not on the rest of the batch.

    Args:
      seeds: int64 [B], one seed per sample.
      temperature: finite, > 0, divides the logits of each draw; a scalar or
        one per sample ([B] or [B, 1]).
      labels: int [B] class labels, iff num_classes > 0.
      condition: int [B, *condition_shape] codes, iff condition_shape.
      top_k: int in [0, K], 0 for all codes; a scalar or one per sample.
      top_p: float in (0, 1], 1 for all codes; a scalar or one per sample.
      num_steps: T >= 1, a Python int (the loop's length is part of the graph).
      choice_temperature: a Python float >= 0, the scale of the Gumbel noise
        added to the confidences at the first step, annealed linearly to 0 at
        the last (4.5 in MaskGIT); 0 keeps the most likely draws.
      stream: the `seeds.Stream` of the noise.

    Returns:
      int32 codes [B, *code_shape] in [0, K).

    Raises:
      ValueError: if num_steps or choice_temperature is out of range, a knob
        known when tracing is out of range, or labels or condition are passed
        wrongly (see `logits`). A knob passed as a tensor is checked when the
        graph runs (InvalidArgumentError).
    """
    self.tokens.check_inputs(labels, condition)
    categorical_sampling.check_knobs(self.num_embeddings, temperature, top_k, top_p)
    if not 0 <= choice_temperature < math.inf:
      raise ValueError(f"choice_temperature must be finite and >= 0, got "
                       f"{choice_temperature!r}.")
    schedule = tf.constant(decoding_schedule(self.tokens.num_positions, num_steps))
    num_positions, stages = self.tokens.num_positions, self.num_stages
    batch_size = tokens_lib.batch_size(seeds)
    context = self.tokens.context(condition)

    def step(index, sequence, masked):
      features = self._features(sequence, masked, labels, context)
      noise = categorical_sampling.gumbel_noise(
          seeds, stream, [num_positions, stages, self.num_embeddings], index=2 * index)
      drawn = tf.zeros(tf.stack([batch_size, num_positions, stages]), tf.int32)
      log_prob = 0.0
      for stage in range(stages):
        logits = categorical_sampling.truncate(
            self.tokens.stage_logits(features, drawn, stage), temperature, top_k, top_p)
        code = categorical_sampling.draw(logits, noise[:, :, stage])
        log_prob += tf.squeeze(tf.experimental.numpy.take_along_axis(
            tf.nn.log_softmax(logits), code[..., None], axis=-1), -1)
        drawn = tf.where(tf.range(stages) == stage, code[..., None], drawn)
      annealing = choice_temperature * (
          1.0 - tf.cast(index + 1, tf.float32) / num_steps)
      confidence = log_prob + annealing * categorical_sampling.gumbel_noise(
          seeds, stream, [num_positions], index=2 * index + 1)
      # Codes already chosen rank last, so they are never masked again.
      confidence = tf.where(masked, confidence, math.inf)
      still_masked = _lowest(confidence, tf.fill([batch_size], schedule[index]))
      sequence = tf.where((masked & ~still_masked)[..., None], drawn, sequence)
      return index + 1, sequence, still_masked

    # -1 marks codes not drawn yet; the network never reads them (they are masked).
    loop_vars = (tf.constant(0),
                 tf.fill(tf.stack([batch_size, num_positions, stages]), -1),
                 tf.ones(tf.stack([batch_size, num_positions]), tf.bool))
    _, sequence, _ = tf.while_loop(lambda index, *_: index < num_steps, step,
                                   loop_vars, maximum_iterations=num_steps)
    return self.tokens.to_codes(sequence)
