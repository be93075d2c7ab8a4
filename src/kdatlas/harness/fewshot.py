r"""Few-shot episodes and their metric (for SKD, Rajasegaran et al. 2020, and later papers).

The protocol of RFS (Tian et al. 2020), which SKD follows: a network is trained on the *base* classes;
it is then frozen and scored on *novel* classes it never saw, in N-way K-shot episodes: draw N novel
classes, K labelled support and Q query images of each, fit a linear classifier (logistic regression)
on the L2-normalised embeddings of the support images, and score it on the queries. The reported
number is the mean accuracy over many episodes with its 95% confidence interval
(1.96 x std / sqrt(episodes)). ``classifier="prototype"`` scores with the nearest class mean of the
normalised support embeddings instead (ProtoNet-style; no fitting).

Episodes are drawn from a generator seeded by the caller: every model is scored on the same episodes.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

__all__ = ["sample_episodes", "episode_accuracy", "embed", "fewshot_score"]


def sample_episodes(labels: Tensor, n_way: int, k_shot: int, n_query: int, n_episodes: int,
                    seed: int = 0) -> list[tuple[Tensor, Tensor]]:
    """``n_episodes`` pairs ``(support, query)`` of indices into ``labels``: ``n_way`` classes drawn
    at random, ``k_shot`` support and ``n_query`` query samples of each (disjoint), class-major order."""
    classes = labels.unique()
    if len(classes) < n_way:
        raise ValueError(f"{n_way}-way episodes need {n_way} classes, the labels have {len(classes)}")
    by_class = {int(c): (labels == c).nonzero().flatten() for c in classes}
    short = {c: len(i) for c, i in by_class.items() if len(i) < k_shot + n_query}
    if short:
        raise ValueError(f"classes {sorted(short)} have fewer than k_shot + n_query = {k_shot + n_query} samples")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_episodes):
        chosen = classes[torch.randperm(len(classes), generator=gen)[:n_way]]
        support, query = [], []
        for c in chosen.tolist():
            idx = by_class[c][torch.randperm(len(by_class[c]), generator=gen)[:k_shot + n_query]]
            support.append(idx[:k_shot])
            query.append(idx[k_shot:])
        out.append((torch.cat(support), torch.cat(query)))
    return out


def _logistic(xs: Tensor, ys: Tensor, n_way: int, l2: float, steps: int) -> nn.Linear:
    """Multinomial logistic regression by L-BFGS, penalty ``l2/2 ||W||^2`` on the weights."""
    lin = nn.Linear(xs.shape[1], n_way)
    nn.init.zeros_(lin.weight)
    nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(xs), ys, reduction="sum") + 0.5 * l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return lin


def episode_accuracy(embeddings: Tensor, labels: Tensor, episodes: list, classifier: str = "logistic",
                     l2: float = 1.0, steps: int = 100) -> tuple[float, float]:
    """Mean query accuracy (%) over ``episodes`` and its 95% confidence interval half-width."""
    if classifier not in ("logistic", "prototype"):
        raise ValueError(f"classifier must be 'logistic' or 'prototype', got {classifier!r}")
    z = F.normalize(embeddings.detach().float(), dim=1)
    accs = []
    for support, query in episodes:
        classes = labels[support].unique()
        ys = torch.searchsorted(classes, labels[support])
        yq = torch.searchsorted(classes, labels[query])
        if classifier == "prototype":
            protos = torch.stack([z[support][ys == k].mean(0) for k in range(len(classes))])
            pred = (z[query] @ F.normalize(protos, dim=1).T).argmax(1)
        else:
            pred = _logistic(z[support], ys, len(classes), l2, steps)(z[query]).argmax(1)
        accs.append(100.0 * float((pred == yq).float().mean()))
    acc = torch.tensor(accs)
    ci = 1.96 * float(acc.std()) / math.sqrt(len(accs)) if len(accs) > 1 else float("nan")
    return float(acc.mean()), ci


@torch.no_grad()
def embed(model: nn.Module, loader: DataLoader, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """``(model.embedding(x), y)`` over a loader (eval mode; the mode is restored)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.to(device).eval()
    zs, ys = [], []
    for batch in loader:
        zs.append(model.embedding(batch[0].to(device)).cpu())
        ys.append(batch[1].cpu())
    model.train(was_training)
    return torch.cat(zs), torch.cat(ys)


def fewshot_score(model: nn.Module, loader: DataLoader, *, n_way: int, k_shot: int, n_query: int,
                  n_episodes: int, seed: int = 0, classifier: str = "logistic",
                  device: torch.device | str | None = None) -> tuple[float, float]:
    """The protocol end to end: embed the novel-class images, draw the episodes, score them."""
    z, y = embed(model, loader, device)
    return episode_accuracy(z, y, sample_episodes(y, n_way, k_shot, n_query, n_episodes, seed), classifier)
