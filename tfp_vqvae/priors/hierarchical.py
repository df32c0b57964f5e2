"""The prior of VQ-VAE-2's two grids of codes: p(top) p(bottom | top).

VQ-VAE-2 (Razavi et al. 2019) codes an image as a small top grid (global structure)
and a larger bottom grid (detail) conditioned on it. Its prior factorises the same
way: a top prior (a gated PixelCNN with causal self-attention, PixelSNAIL-like) and
a bottom prior (a gated PixelCNN whose every layer also sees the top codes,
embedded and upsampled to the bottom grid). So

    log p(codes) = log p_top(codes["top"]) + log p_bottom(codes["bottom"] | codes["top"])

and sampling is ancestral: the top grid first, then the bottom grid given it. Both
are priors of one kind, `pixelcnn.GatedPixelCNN`s or Transformer priors
(`pixelcnn.build_prior` builds this module from a `pixelcnn.HierarchicalPriorConfig`);
two MaskGIT priors have no log p, and train on the sum of their masked NLLs
(`masked_nll`); `any_order_nll` sums their any-order NLLs, a bound. Codes are
dicts {"top": int [B, ht, wt], "bottom": int [B, hb, wb]} of the same K, as the
hierarchical VQ-VAE's `encode` returns and `decode_codes` takes.
"""

import tensorflow as tf

from tfp_vqvae.internal import seeds as seeds_lib

LEVELS = ("top", "bottom")


def _bottom_seed(seed):
  """The bottom level's stateless seed of a step's `seed` [2], or None without one."""
  if seed is None:
    return None
  return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 1)


class HierarchicalPrior(tf.Module):
  """p(top) p(bottom | top) over codes {"top": [B, ht, wt], "bottom": [B, hb, wb]}.

  Example:
    prior = prior_lib.build_prior(prior_lib.HierarchicalPriorConfig(top, bottom))
    prior.log_prob({"top": top_codes, "bottom": bottom_codes})   # [B] nats
    prior.sample(seeds, temperature=1.0)    # {"top": int32 [B, ht, wt], "bottom": ...}
  """

  def __init__(self, top: tf.Module, bottom: tf.Module, name: str = "prior"):
    """Composes the two priors.

    Args:
      top: a prior over the top grid, without condition.
      bottom: a prior of the same kind over the bottom grid, conditioned on codes
        of the top grid's shape.
      name: module name.

    Raises:
      ValueError: if the bottom prior is not conditioned on the top grid, or the
        two differ in K or in classes.
    """
    super().__init__(name=name)
    if top.condition_shape or tuple(bottom.condition_shape) != tuple(top.latent_shape):
      raise ValueError(
          f"The bottom prior must be conditioned on the top grid {top.latent_shape} "
          f"(it is on {bottom.condition_shape}) and the top prior on nothing (it is "
          f"on {top.condition_shape}).")
    if (top.num_embeddings, top.num_classes) != (bottom.num_embeddings,
                                                 bottom.num_classes):
      raise ValueError(
          f"The top and bottom priors must share K and the classes; they have "
          f"K={top.num_embeddings}, {bottom.num_embeddings} and num_classes="
          f"{top.num_classes}, {bottom.num_classes}.")
    self.top = top
    self.bottom = bottom
    self.exact_log_prob = top.exact_log_prob
    self.num_embeddings = top.num_embeddings
    self.num_classes = top.num_classes
    self.code_shape = {"top": tuple(top.code_shape), "bottom": tuple(bottom.code_shape)}

  @property
  def level_sizes(self) -> dict[str, int]:
    """Codes per example of each level."""
    return {level: self.code_shape[level][0] * self.code_shape[level][1]
            for level in LEVELS}

  def masked_nll(self, codes, seed, labels=None, training=False):
    """The MaskGIT loss [B] of both levels, each given its own masks: NOT a bound.

    Args: as `level_log_probs`, `seed` (int [2]) required; see
    `maskgit.MaskGITPrior.masked_nll`.
    """
    return (self.top.masked_nll(codes["top"], seed, labels, training)
            + self.bottom.masked_nll(codes["bottom"], _bottom_seed(seed), labels,
                                     training, condition=codes["top"]))

  def any_order_nll(self, codes, seed, labels=None):
    """-log q(top) - log q(bottom | top) [B] of two MaskGIT priors, each level
    revealed in random orders (`maskgit.MaskGITPrior.any_order_nll`).

    Args: as `level_log_probs`, `seed` (int [2]) required.
    """
    return (self.top.any_order_nll(codes["top"], seed, labels)
            + self.bottom.any_order_nll(codes["bottom"], _bottom_seed(seed), labels,
                                        condition=codes["top"]))

  def level_log_probs(self, codes, labels=None, training=False, seed=None):
    """{"top": log p(top) [B], "bottom": log p(bottom | top) [B]} in nats.

    Args:
      codes: {"top": int [B, ht, wt], "bottom": int [B, hb, wb]} in [0, K).
      labels: int [B] class labels, iff num_classes > 0.
      training: applies each prior's dropout if True.
      seed: shape [2] stateless dropout seed when training with dropout; the
        bottom prior's is derived from it.
    """
    return {
        "top": self.top.log_prob(codes["top"], labels, training, seed),
        "bottom": self.bottom.log_prob(codes["bottom"], labels, training,
                                       _bottom_seed(seed), condition=codes["top"]),
    }

  def log_prob(self, codes, labels=None, training=False, seed=None):
    """log p(top) + log p(bottom | top) [B] in nats; arguments as `level_log_probs`."""
    levels = self.level_log_probs(codes, labels, training, seed)
    return levels["top"] + levels["bottom"]

  @tf.function
  def sample(self, seeds, temperature=1.0, labels=None, top_k=0, top_p=1.0):
    """Ancestral samples: the top grid, then the bottom grid given it.

    Each level draws its noise from its own stream of the example's seed, so a
    sample depends on its seed and knobs only.

    Args:
      seeds: int64 [B], one seed per sample.
      temperature: finite, > 0, a scalar or one per sample ([B] or [B, 1]);
        divides the logits of both levels.
      labels: int [B] class labels, iff num_classes > 0.
      top_k: int in [0, K], 0 for all codes; top_p: float in (0, 1], 1 for all
        codes; each a scalar or one per sample, applied at both levels
        (`categorical_sampling`).

    Returns:
      {"top": int32 [B, ht, wt], "bottom": int32 [B, hb, wb]} in [0, K).
    """
    top = self.top.sample(seeds, temperature, labels, top_k=top_k, top_p=top_p)
    bottom = self.bottom.sample(seeds, temperature, labels, condition=top, top_k=top_k,
                                top_p=top_p, stream=seeds_lib.Stream.PRIOR_SAMPLE_BOTTOM)
    return {"top": top, "bottom": bottom}
