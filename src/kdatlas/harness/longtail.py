r"""A long-tailed split and its many/medium/few-shot metric (for SSD, Li et al. 2021, and later papers).

Long-tailed benchmarks (CIFAR-10/100-LT of Cui et al. 2019, used by LDAM and SSD; ImageNet-LT of Liu
et al. 2019) keep, of class ``c`` among ``C``, ``n_c = floor(n_max * imbalance ** (-c / (C - 1)))``
training images: an exponential profile from ``n_max`` (class 0) down to ``n_max / imbalance`` (the
last class), and test on a balanced set. They report top-1 accuracy over all classes and over three
groups of classes by training-set size: *many-shot* (ImageNet-LT: more than 100 images), *medium*
(20-100) and *few-shot* (fewer than 20). The thresholds here are the task's settings, scaled to the
toy's counts (see ``kdatlas.harness.tasks``, task ``digits_lt``).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import DataLoader

__all__ = ["long_tail_counts", "long_tail_indices", "shot_groups", "shot_accuracy"]


def long_tail_counts(n_max: int, imbalance: float, num_classes: int) -> list[int]:
    """``floor(n_max * imbalance ** (-c / (C - 1)))`` for ``c = 0 .. C-1`` (Cui et al. 2019's profile)."""
    if n_max < 1 or imbalance < 1 or num_classes < 2:
        raise ValueError(f"need n_max >= 1, imbalance >= 1, num_classes >= 2; got {n_max}, {imbalance}, {num_classes}")
    return [max(1, math.floor(n_max * imbalance ** (-c / (num_classes - 1)) + 1e-9)) for c in range(num_classes)]


def long_tail_indices(y: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Indices of the first ``counts[c]`` samples of each class ``c`` of ``y``, in their original order."""
    keep = torch.zeros(len(y), dtype=torch.bool)
    for c, n in enumerate(counts):
        idx = (y == c).nonzero().flatten()
        if len(idx) < n:
            raise ValueError(f"class {c} has {len(idx)} samples, the long-tailed profile asks for {n}")
        keep[idx[:n]] = True
    return keep.nonzero().flatten()


def shot_groups(counts: list[int], many: int, few: int) -> dict[str, list[int]]:
    """Classes by training-set size: many-shot ``n > many``, few-shot ``n < few``, medium the rest."""
    if not few <= many:
        raise ValueError(f"the few-shot threshold ({few}) must not exceed the many-shot one ({many})")
    return {"many": [c for c, n in enumerate(counts) if n > many],
            "medium": [c for c, n in enumerate(counts) if few <= n <= many],
            "few": [c for c, n in enumerate(counts) if n < few]}


@torch.no_grad()
def shot_accuracy(model: nn.Module, loader: DataLoader, groups: dict[str, list[int]],
                  device: torch.device | str | None = None) -> dict[str, float]:
    """Top-1 accuracy (%) over all test samples and over the test samples of each group's classes
    (``nan`` for an empty group); the model's train/eval mode is restored."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.to(device).eval()
    preds, labels = [], []
    for batch in loader:
        preds.append(model(batch[0].to(device)).argmax(-1).cpu())
        labels.append(batch[1].cpu())
    model.train(was_training)
    pred, y = torch.cat(preds), torch.cat(labels)
    out = {"all": 100.0 * float((pred == y).float().mean())}
    for name, classes in groups.items():
        mask = torch.isin(y, torch.tensor(classes, dtype=y.dtype))
        out[name] = 100.0 * float((pred[mask] == y[mask]).float().mean()) if mask.any() else float("nan")
    return out
