"""An autoregressive prior over the VQ-VAE's codes: a causal (decoder-only) Transformer.

Like the gated PixelCNN of priors/pixelcnn.py it factorises

    p(codes) = prod over raster positions p, then stages s, of p(code[p, s] | earlier)

so `log_prob` is exact (one teacher-forced pass) and a proper term of the bound
-log p(x) <= -log p(x | z) - log p(z). Unlike the PixelCNN, every position reads
every earlier one in one layer (no blind spot to cover with depth), and sampling
reuses the keys and values of the positions already drawn.

The network (priors/tokens.py for the tokens, nets/transformer.py for the blocks):
the input at position p is a start vector for p = 0 (the class's learned vector
for a class-conditional prior) and the token of position p - 1 for p > 0, plus
position p's context (its position embedding and, for VQ-VAE-2's bottom prior,
the top codes' features at p: adding them to the input is the simplest way in,
needs no cross-attention, and keeps the cache one tensor per layer). Pre-norm
causal blocks, a final norm, then the per-stage heads: stage s of position p is
predicted from the feature at p and the stages < s at p.

Sampling (`sample`) runs one position per step inside one `tf.while_loop` with
fixed shapes: per layer a key and a value cache [B, heads, N, d] that each step
writes one row of (`TransformerBlock.step`). A step costs O(N), and the loop
compiles with XLA (`sample_xla`, about 5x faster on a CPU). `sample_uncached`
runs the whole network again for every code: the reference the cached sampler
must agree with, draw for draw. All three draw with `categorical_sampling` from
the same per-example noise (drawn before the loop: [B, N, S, K] floats, 32 MB
for 16 samples of 32x32 codes out of 512), with the per-request knobs
temperature, top_k and top_p. Their logits agree up to float rounding, so the
draws are the same unless two codes tie within rounding.

Example (a prior over the KMNIST VQ-VAE's 7x7 grid of 512 codes):
    prior = CausalTransformerPrior(TransformerPriorConfig(512, (7, 7)))
    prior.log_prob(codes)                           # [B] nats, codes int32 [B, 7, 7]
    prior.sample(seeds, temperature=1.0, top_k=50)  # int32 [B, 7, 7], seeds int64 [B]
"""

import dataclasses

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_vqvae.internal import seeds as seeds_lib
from tfp_vqvae.nets import attention as attention_lib
from tfp_vqvae.priors import categorical_sampling
from tfp_vqvae.priors import tokens as tokens_lib

tfd = tfp.distributions


@dataclasses.dataclass(frozen=True)
class TransformerPriorConfig(tokens_lib.TokenPriorConfig):
  """The architecture of a `CausalTransformerPrior` (fields: `TokenPriorConfig`)."""

  def build(self, name: str = "prior") -> "CausalTransformerPrior":
    return CausalTransformerPrior(self, name=name)


class CausalTransformerPrior(tokens_lib.TokenPrior):
  """p(codes) = prod over raster positions (and stages) of Categorical(code | earlier).

  Offers the interface of `pixelcnn.GatedPixelCNN` (`log_prob`, `level_log_probs`,
  `level_sizes`, `sample`, `code_shape`, ...), so `HierarchicalPrior` composes
  two of them, plus the sampling knobs top_k and top_p.
  """
  exact_log_prob = True  # `log_prob` is log p(codes), exactly.

  def __init__(self, config: TransformerPriorConfig, name: str = "prior"):
    """Builds the network of `config` (see `tokens.TokenPrior`).

    Raises:
      ValueError: naming a field of `config` out of range (`tokens.checked_config`).
    """
    super().__init__(config, name=name)
    self._mask = attention_lib.causal_mask(self.tokens.num_positions)

  @tf.Module.with_name_scope
  def logits(self, codes, labels=None, training=False, seed=None, condition=None):
    """Logits [B, *code_shape, K] of each code given the codes before it.

    Args:
      codes: int [B, *code_shape] in [0, K).
      labels: int [B] class labels in [0, num_classes), iff num_classes > 0.
      training: applies dropout if True.
      seed: int [2] stateless dropout seed, required when training with dropout.
      condition: int [B, *condition_shape] codes in [0, K), iff condition_shape.

    Returns:
      float32 logits; those at raster position p (and stage s) do not depend on
      the codes at positions after p, nor on the stages >= s at p.

    Raises:
      ValueError: if labels or condition are passed to a prior without them or
        missing for one with them, or no seed is given for dropout.
    """
    self.tokens.check_inputs(labels, condition)
    sequence = self.tokens.to_sequence(codes)
    start = self.tokens.start(labels, tf.shape(sequence)[0])
    x = tf.concat([start[:, None], self.tokens.embed(sequence[:, :-1])], axis=1)
    x += self.tokens.context(condition)
    features = self.transformer(x, self._mask, training, tokens_lib.dropout_seed(seed))
    return self.tokens.to_codes(self.tokens.logits(features, sequence))

  def log_prob(self, codes, labels=None, training=False, seed=None, condition=None):
    """log p(codes) [B] in nats, exact; arguments as `logits`."""
    logits = self.logits(codes, labels, training, seed, condition)
    return tfd.Independent(tfd.Categorical(logits=logits),
                           reinterpreted_batch_ndims=len(self.code_shape)
                           ).log_prob(codes)

  def level_log_probs(self, codes, labels=None, condition=None):
    """log p of each part of `level_sizes` [B]: the whole grid, or each stage."""
    per_code = tfd.Categorical(
        logits=self.logits(codes, labels, condition=condition)).log_prob(codes)
    if self.num_stages == 1:
      return {"codes": tf.reduce_sum(per_code, axis=[1, 2])}
    return {f"stage_{s}": tf.reduce_sum(per_code[..., s], axis=[1, 2])
            for s in range(self.num_stages)}

  def _noise(self, seeds, temperature, labels, condition, top_k, top_p, stream):
    """Checks a draw's arguments; returns its Gumbel noise [B, N, S, K]."""
    self.tokens.check_inputs(labels, condition)
    categorical_sampling.check_knobs(self.num_embeddings, temperature, top_k, top_p)
    return categorical_sampling.gumbel_noise(
        seeds, stream, [self.tokens.num_positions, self.num_stages, self.num_embeddings])

  def _decode(self, noise, temperature, labels, condition, top_k, top_p):
    """The codes [B, *code_shape] drawn one position per step with KV caches."""
    batch_size = tokens_lib.batch_size(noise)
    num_positions, stages = self.tokens.num_positions, self.num_stages
    context = tf.broadcast_to(
        self.tokens.context(condition),
        tf.stack([batch_size, num_positions, self.config.model_dim]))

    def step(position, x, sequence, keys, values):
      features, keys, values = self.transformer.step(
          (x + context[:, position])[:, None], keys, values, position)
      features = features[:, 0]
      drawn = tf.zeros([batch_size, stages], tf.int32)
      for stage in range(stages):
        logits = categorical_sampling.truncate(
            self.tokens.stage_logits(features, drawn, stage), temperature, top_k, top_p)
        code = categorical_sampling.draw(logits, noise[:, position, stage])
        drawn = tf.where(tf.range(stages) == stage, code[:, None], drawn)
      sequence = tf.where((tf.range(num_positions) == position)[:, None], drawn[:, None],
                          sequence)
      return position + 1, self.tokens.embed(drawn), sequence, keys, values

    loop_vars = (tf.constant(0), self.tokens.start(labels, batch_size),
                 tf.zeros(tf.stack([batch_size, num_positions, stages]), tf.int32),
                 *self.transformer.empty_cache(batch_size, num_positions))
    _, _, sequence, _, _ = tf.while_loop(
        lambda position, *_: position < num_positions, step, loop_vars,
        maximum_iterations=num_positions)
    return self.tokens.to_codes(sequence)

  @tf.function
  def sample(self, seeds, temperature=1.0, labels=None, condition=None, top_k=0,
             top_p=1.0, stream=seeds_lib.Stream.PRIOR_SAMPLE):
    """Ancestral samples, one position per step, reusing earlier keys and values.

    Each example draws from its own seed (Gumbel-max with stateless noise), so a
    sample depends on its seed and knobs only, not on the rest of the batch.

    Args:
      seeds: int64 [B], one seed per sample.
      temperature: finite, > 0; a scalar or one per sample ([B] or [B, 1]).
      labels: int [B] class labels, iff num_classes > 0.
      condition: int [B, *condition_shape] codes, iff condition_shape.
      top_k: int in [0, K], 0 for all codes; a scalar or one per sample.
      top_p: float in (0, 1], 1 for all codes; a scalar or one per sample.
      stream: the `seeds.Stream` of the noise (a prior composed with others
        draws from its own).

    Returns:
      int32 codes [B, *code_shape] in [0, K).

    Raises:
      ValueError: if a knob known when tracing is out of range, or labels or
        condition are passed wrongly (see `logits`). A knob passed as a tensor
        is checked when the graph runs (InvalidArgumentError).
    """
    noise = self._noise(seeds, temperature, labels, condition, top_k, top_p, stream)
    return self._decode(noise, temperature, labels, condition, top_k, top_p)

  @tf.function
  def sample_xla(self, seeds, temperature=1.0, labels=None, condition=None, top_k=0,
                 top_p=1.0, stream=seeds_lib.Stream.PRIOR_SAMPLE):
    """`sample` with its decoding loop compiled by XLA: the same draws, faster.

    The noise is drawn outside the compiled loop: XLA's stateless generators
    give other numbers for a seed only known at run time.
    """
    noise = self._noise(seeds, temperature, labels, condition, top_k, top_p, stream)
    return self._decode_compiled(noise, temperature, labels, condition, top_k, top_p)

  @tf.function(jit_compile=True)
  def _decode_compiled(self, noise, temperature, labels, condition, top_k, top_p):
    return self._decode(noise, temperature, labels, condition, top_k, top_p)

  @tf.function
  def sample_uncached(self, seeds, temperature=1.0, labels=None, condition=None,
                      top_k=0, top_p=1.0, stream=seeds_lib.Stream.PRIOR_SAMPLE):
    """`sample` by running the whole network for every code: the O(N^2)-per-step reference.

    Draws the same codes as `sample` for the same arguments; slower by a factor
    of about N.
    """
    noise = self._noise(seeds, temperature, labels, condition, top_k, top_p, stream)
    num_positions, stages = self.tokens.num_positions, self.num_stages
    codes = tf.zeros(tf.concat([tf.shape(noise)[:1], self.code_shape], 0), tf.int32)
    for index in tf.range(num_positions * stages):
      position, stage = index // stages, index % stages
      logits = tf.reshape(self.logits(codes, labels, condition=condition),
                          [-1, num_positions * stages, self.num_embeddings])
      code = categorical_sampling.draw(
          categorical_sampling.truncate(logits[:, index], temperature, top_k, top_p),
          noise[:, position, stage])
      sequence = tf.reshape(codes, [-1, num_positions * stages])
      codes = tf.reshape(tf.where(tf.range(num_positions * stages) == index,
                                  code[:, None], sequence), [-1, *self.code_shape])
    return codes
