r"""Model Compression (Bucilua, Caruana & Niculescu-Mizil, KDD 2006).

Paper: https://doi.org/10.1145/1150402.1150464 (author copy: cs.cornell.edu/~caruana/compression.kdd06.pdf)
Id:    bucilua2006model

Idea (Sec. 2): a large, slow, accurate model (there: an ensemble-selection ensemble of hundreds of
models) labels a large set of unlabelled inputs, and a small neural net trained on those labels
learns the function the big model computes. When no unlabelled data exists, pseudo data is
generated from the small training set; the generator matters, since points off the data's
manifold teach the mimic nothing about the region of interest.

Generators (Sec. 2.1-2.3):
  RANDOM (Sec. 2.1) -> ``random_marginals``: every attribute drawn independently and uniformly
      from the bag of that attribute's training values (all conditional structure is lost).
  MUNGE (Sec. 2.3, Algorithm 1) -> ``munge``: k passes; each pass copies the training set T into
      T' and visits every example e of T' once: e' <- its closest other example in T' (Euclidean
      distance on continuous attributes scaled linearly to [0, 1], Hamming distance on nominal
      ones); for every attribute a, with probability p, a nominal value is swapped between e and
      e', and a continuous one becomes e_a <- N(e'_a, sd), e'_a <- N(e_a, sd), sd = |e_a - e'_a| / s
      (both drawn from the values before the change). The k modified copies are the pseudo data,
      k |T| examples.
  NBE (Sec. 2.2, a naive-Bayes mixture estimate of the joint density) is not implemented.
Targets and loss (Sec. 3.1): the pseudo data "labeled by the ensemble model" and the mimic net
trained on it; the paper reports RMSE of predicted probabilities and trains its nets with SNNS,
but does not write out the loss. ``compression_loss`` is the squared error between the mimic's
softmax probabilities and the big model's, summed over the classes and averaged over the batch
(for the paper's binary problems: the squared error of the predicted positive probability, up to a
factor 2). In the paper's experiments the training set of the mimic is the 4k original points plus
the pseudo data (Sec. 3.2: "396k of pseudo data and the original 4k train data").

Paper and this file differ (no official code exists): the paper does not give values of p and s
(the defaults p = 0.5, s = 1 are the atlas's choice, NOT confirmed), nor how the Euclidean and
Hamming parts combine (here: squared scaled differences plus mismatch counts, one sum); whether the
original points keep their true labels or get the big model's is not stated (the recipe labels all
with the big model). Visiting order: the examples of T' in index order, each neighbour search
against T' as modified so far, as Algorithm 1 is written. Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["munge", "random_marginals", "compression_loss", "nearest_other"]


def nearest_other(t: Tensor, i: int, nominal: Tensor, lo: Tensor, span: Tensor) -> int:
    """Index of the closest example to t[i] among the other rows of ``t`` (Sec. 2.3's distance)."""
    z = torch.where(nominal, t, (t - lo) / span)
    diff = z - z[i]
    d = torch.where(nominal, (diff != 0).to(t.dtype), diff * diff).sum(1)
    d[i] = float("inf")
    return int(d.argmin())


def munge(x: Tensor, multiplier: int, p: float = 0.5, s: float = 1.0, nominal_mask: Tensor | None = None,
          generator: torch.Generator | None = None) -> Tensor:
    """Algorithm 1: ``multiplier`` modified copies of ``x`` (N, ...), ``(multiplier N, ...)`` pseudo
    examples. ``nominal_mask``: a bool per attribute (of ``x[0].flatten()``), True for nominal ones
    (swapped, never jittered); default: all continuous. ``s`` = inf means sd = 0 (pure swaps)."""
    shape = x.shape[1:]
    flat = x.reshape(len(x), -1).float()
    n, d = flat.shape
    if n < 2:
        raise ValueError("MUNGE needs at least two examples (each one's closest other example)")
    nominal = torch.zeros(d, dtype=torch.bool) if nominal_mask is None else nominal_mask.reshape(-1).bool()
    nominal = nominal.to(flat.device)
    lo, hi = flat.min(0).values, flat.max(0).values
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    out = []
    for _ in range(multiplier):
        t = flat.clone()                                             # T' <- T
        for i in range(n):                                           # every example e of T'
            j = nearest_other(t, i, nominal, lo, span)               # e' <- the closest example of e
            pick = torch.rand(d, generator=generator).to(flat.device) < p  # each attribute, prob. p
            noise = torch.randn(2, d, generator=generator).to(flat.device)
            e, e2 = t[i].clone(), t[j].clone()
            sd = (e - e2).abs() / s
            cont = pick & ~nominal
            swap = pick & nominal
            t[i] = torch.where(cont, e2 + sd * noise[0], torch.where(swap, e2, e))
            t[j] = torch.where(cont, e + sd * noise[1], torch.where(swap, e, e2))
        out.append(t)
    return (torch.cat(out) if out else flat[:0]).reshape(multiplier * n, *shape).to(x.dtype)


def random_marginals(x: Tensor, n_new: int, generator: torch.Generator | None = None) -> Tensor:
    """RANDOM (Sec. 2.1): each attribute of each new example drawn uniformly from that attribute's
    training values, independently of the others. Returns ``(n_new, *x.shape[1:])``."""
    flat = x.reshape(len(x), -1)
    rows = torch.randint(0, len(x), (n_new, flat.shape[1]), generator=generator).to(x.device)
    return flat.gather(0, rows).reshape(n_new, *x.shape[1:])


def compression_loss(student_logits: Tensor, teacher_probs: Tensor) -> Tensor:
    """Squared error between the mimic's softmax and the big model's probabilities (constants):
    sum over the classes, mean over the batch."""
    return (F.softmax(student_logits, dim=-1) - teacher_probs.detach()).pow(2).sum(-1).mean()
