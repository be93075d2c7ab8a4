r"""Combining Labeled and Unlabeled Data with Co-Training (Blum & Mitchell, COLT 1998).

Paper: https://doi.org/10.1145/279943.279962
Id:    blum1998combining

Idea: each example has two *views*, x = (x1, x2) (a web page's own words and the words of the links
pointing to it), each sufficient to predict the label and, ideally, conditionally independent of
the other given the label. Two classifiers, one per view, label unlabelled examples for each other:
what h1 is confident about is, for h2, a fresh and (under independence) randomly placed labelled
example, so a handful of labels can grow into a good classifier. A precursor of the teacher-student
idea: each view's model is the other's teacher, through pseudo-labels.

The algorithm (the paper's Table 1, as read in a transcription, see the YAML):

    pool U' <- u examples drawn at random from U
    repeat k times:
        train h1 on L with x1 only, h2 on L with x2 only
        h1 labels its p most confident positives and n most confident negatives in U'; h2 the same
        move those 2p + 2n self-labelled examples to L (labels are never revised)
        refill U' with 2p + 2n examples drawn at random from U

with p = 1, n = 3, k = 30, u = 75 in the web-page experiment (naive Bayes on word counts), and the
combined classifier multiplying the two views' class posteriors, P(c | x) ~ P(c | x1) P(c | x2).

Generalised and simplified here:
- More than two classes: ``per_class[c]`` examples per class and classifier and iteration (the
  paper's binary case is ``per_class = [n, p]`` for labels 0 = negative, 1 = positive). "Most
  confident for class c" = the largest posterior P(c | view) among the pool's examples not already
  chosen in this iteration; h1 chooses first, then h2 among the rest.
- The learner is any (fit, log_proba) pair; the default is Gaussian naive Bayes in torch (the paper's
  is multinomial naive Bayes on words; our views are real-valued).
- When U runs out, U' is refilled with what is left; the loop stops early when U' is empty.

Depends only on torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

__all__ = ["GaussianNB", "gaussian_nb_fit", "gaussian_nb_log_proba", "CoTrainResult", "co_training",
           "combined_log_proba"]


@dataclass
class GaussianNB:
    """Class means and variances per feature, and log class priors."""

    mean: Tensor      # (C, d)
    var: Tensor       # (C, d)
    log_prior: Tensor  # (C,)


def gaussian_nb_fit(x: Tensor, y: Tensor, num_classes: int, var_smoothing: float = 1e-2) -> GaussianNB:
    """Per-class Gaussian with diagonal covariance; ``var_smoothing`` times the largest feature
    variance is added to every variance (so classes seen once or constant features stay finite).
    A class with no example gets the overall mean and a prior of one pseudo-example."""
    x = x.double()
    counts = torch.bincount(y, minlength=num_classes).double()
    overall_mean, overall_var = x.mean(0), x.var(0, unbiased=False)
    eps = var_smoothing * float(overall_var.max().clamp_min(1e-12))
    mean = torch.stack([x[y == c].mean(0) if counts[c] > 0 else overall_mean for c in range(num_classes)])
    var = torch.stack([x[y == c].var(0, unbiased=False) if counts[c] > 0 else overall_var for c in range(num_classes)])
    prior = (counts + (counts == 0).double()) / (counts + (counts == 0).double()).sum()
    return GaussianNB(mean, var + eps, prior.log())


def gaussian_nb_log_proba(model: GaussianNB, x: Tensor) -> Tensor:
    """log P(c | x) under the naive-Bayes model, (n, C)."""
    x = x.double()
    ll = -0.5 * (((x[:, None, :] - model.mean) ** 2) / model.var + model.var.log()).sum(-1)
    return torch.log_softmax(ll + model.log_prior, dim=1)


@dataclass
class CoTrainResult:
    h1: object
    h2: object
    labeled: Tensor                                    # final mask of L (original + self-labelled)
    labels: Tensor                                     # labels used for L: the given ones and the pseudo-labels
    added: list = field(default_factory=list)          # (iteration, view, index, label) in the order added
    pool_sizes: list = field(default_factory=list)     # |U'| after each refill


def co_training(x1: Tensor, x2: Tensor, y: Tensor, labeled: Tensor, num_classes: int, per_class: list[int],
                iterations: int = 30, pool_size: int = 75, generator: torch.Generator | None = None,
                fit: Callable | None = None, log_proba: Callable | None = None) -> CoTrainResult:
    """Table 1 of the paper. ``labeled``: bool mask of L; ``y`` is read only where ``labeled`` is True
    (the other entries may be anything: the algorithm never looks at them)."""
    fit = fit or (lambda x, t: gaussian_nb_fit(x, t, num_classes))
    log_proba = log_proba or gaussian_nb_log_proba
    if len(per_class) != num_classes or min(per_class) < 0:
        raise ValueError(f"per_class needs {num_classes} non-negative counts, got {per_class}")
    n = len(y)
    labeled = labeled.clone().bool()
    labels = torch.where(labeled, y, torch.full_like(y, -1))
    unlabeled = (~labeled).nonzero().flatten()
    order = unlabeled[torch.randperm(len(unlabeled), generator=generator)]  # U in random order
    pool, rest = order[:pool_size].tolist(), order[pool_size:].tolist()
    result = CoTrainResult(None, None, labeled, labels, pool_sizes=[len(pool)])
    for it in range(iterations):
        if not pool:
            break
        idx = labeled.nonzero().flatten()
        h = (fit(x1[idx], labels[idx]), fit(x2[idx], labels[idx]))
        chosen: list[int] = []
        for view, (model, xv) in enumerate(zip(h, (x1, x2)), start=1):
            cand = [i for i in pool if i not in chosen]
            if not cand:
                break
            lp = log_proba(model, xv[cand])
            taken = set()
            for c in range(num_classes):
                order_c = torch.argsort(lp[:, c], descending=True).tolist()
                picks = [j for j in order_c if j not in taken][:per_class[c]]
                for j in picks:
                    taken.add(j)
                    i = cand[j]
                    chosen.append(i)
                    labels[i] = c
                    labeled[i] = True
                    result.added.append((it, view, i, c))
        pool = [i for i in pool if i not in chosen]
        refill, rest = rest[:len(chosen)], rest[len(chosen):]
        pool += refill
        result.pool_sizes.append(len(pool))
    idx = labeled.nonzero().flatten()
    result.h1, result.h2 = fit(x1[idx], labels[idx]), fit(x2[idx], labels[idx])
    return result


def combined_log_proba(result: CoTrainResult, x1: Tensor, x2: Tensor,
                       log_proba: Callable = gaussian_nb_log_proba) -> Tensor:
    """log of P(c | x1) P(c | x2), renormalised over classes (the paper's combined classifier)."""
    return torch.log_softmax(log_proba(result.h1, x1) + log_proba(result.h2, x2), dim=1)


if __name__ == "__main__":
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (400,), generator=g)
    x1 = y[:, None] * 1.5 + torch.randn(400, 5, generator=g)
    x2 = y[:, None] * 1.5 + torch.randn(400, 5, generator=g)
    lab = torch.zeros(400, dtype=torch.bool)
    lab[:6] = True
    res = co_training(x1, x2, y, lab, 2, per_class=[3, 1], generator=g)
    acc = (combined_log_proba(res, x1, x2).argmax(1) == y).double().mean().item()
    print(f"{len(res.added)} self-labelled, combined accuracy on all 400: {acc:.3f}")
