r"""Deep Mutual Learning (Zhang, Xiang, Hospedales & Lu, CVPR 2018; arXiv 2017).

Paper: https://arxiv.org/abs/1706.00384
Code:  https://github.com/YingZhangDUT/Deep-Mutual-Learning (TensorFlow, the authors')
Id:    zhang2017deep

Idea: no pre-trained teacher. A cohort of K untrained networks learns together; each one fits the
labels and, at the same time, matches the class posteriors of the others. Every network is a
student of its peers and a teacher for them, and any one of them is kept at test time.

Posteriors (Sec. 2.1): p_k = softmax(z_k), no temperature.
Loss of network k (Sec. 2.1 for K = 2; Sec. 2.3 for K peers):
    L_k = L_C(p_k, y) + kl_weight * 1/(K-1) * sum_{l != k} D_KL(p_l || p_k),
with L_C the cross-entropy and D_KL(p_l || p_k) = sum_m p_l^m log(p_l^m / p_k^m). The peers'
posteriors p_l are targets: network k's gradient comes from its own cross-entropy and from the KL
to the *detached* others, never from the others' losses (the authors' code computes each
network's gradients with var_list restricted to that network's variables).
Optimisation (Sec. 2.2, Algorithm 1): on each mini-batch, compute every posterior; update
network 1 on L_1; recompute its posterior; update network 2 on L_2 (with the new p_1); and so on:
sequential, not simultaneous, updates, each with the network's own optimiser.
Reductions: cross-entropy averaged over the batch; KL summed over classes, averaged over the batch
(as in the authors' kl_loss_compute; the paper writes sums over the N samples).

Defaults: kl_weight = 1 (the paper's loss has no weight on the KL term).
Paper vs the authors' code, and which this file follows:
- K > 2: the paper averages the K-1 KL terms (1/(K-1), Sec. 2.3); the code sums them. This file
  averages (the paper); for K = 2 both are the same.
- Recomputing the posterior (Algorithm 1, step 3): in the code, every sess.run of one network's
  train op recomputes all networks' outputs, and also dequeues a new mini-batch, so in the code
  each network's update sees its own batch. This file follows Algorithm 1: one mini-batch, every
  network updated in turn on it, each target recomputed after its network's update. The
  recomputation is a training-mode forward (batch statistics, as in the update's own forward)
  that leaves BatchNorm running statistics untouched, so each network's running statistics move
  once per step, from its own update's forward (in the code, a network's moving averages are
  updated only by its own train op).
- The code adds 1e-8 inside the log; this file uses log_softmax (finite for any logits).
Left out: the DML_e variant (distil from the averaged posterior of the others, Sec. 2.3, which the
paper finds worse) and the re-identification (metric-learning) losses of Sec. 4.
Depends only on torch.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["mimicry_loss", "dml_loss", "dml_losses", "dml_step"]


def mimicry_loss(z: Tensor, v: Tensor) -> Tensor:
    """D_KL(p_v || p_z), summed over classes, averaged over the batch (Sec. 2.1).

    z: (batch, classes) logits of the network being updated; v: a peer's logits, a target (detached).
    """
    log_p_self = F.log_softmax(z, dim=-1)  # log p_k
    log_p_peer = F.log_softmax(v.detach(), dim=-1)  # log p_l, no gradient to the peer
    return F.kl_div(log_p_self, log_p_peer, reduction="batchmean", log_target=True)


def dml_loss(z: Tensor, peers: Sequence[Tensor], targets: Tensor, kl_weight: float = 1.0) -> dict[str, Tensor]:
    """One network's terms {"ce": L_C(p_k, y), "kl": kl_weight * mean_l D_KL(p_l || p_k)} (Sec. 2.3).

    z: its (batch, classes) logits; peers: the other K-1 networks' logits on the same batch (targets).
    """
    if not peers:
        raise ValueError("mutual learning needs at least one peer")
    kl = torch.stack([mimicry_loss(z, v) for v in peers]).mean()  # 1/(K-1) * sum over the peers
    return {"ce": F.cross_entropy(z, targets), "kl": kl_weight * kl}


def dml_losses(logits: Sequence[Tensor], targets: Tensor, kl_weight: float = 1.0) -> list[dict[str, Tensor]]:
    """Every network's :func:`dml_loss`, the others as its peers. logits: K >= 2 networks' outputs."""
    if len(logits) < 2:
        raise ValueError(f"mutual learning needs at least 2 networks, got {len(logits)}")
    return [dml_loss(z, [v for l, v in enumerate(logits) if l != k], targets, kl_weight)
            for k, z in enumerate(logits)]


def _batch_stat_forward(model: nn.Module, x: Tensor) -> Tensor:
    """``model(x)`` in training mode (batch statistics) without moving BatchNorm running statistics."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in bns]
    for m in bns:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: unchanged
    try:
        return model(x)
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def dml_step(models: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer], x: Tensor, y: Tensor,
             kl_weight: float = 1.0) -> list[dict[str, Tensor]]:
    """One iteration of Algorithm 1 on the mini-batch (x, y): networks updated one after another.

    Network k is updated on its own loss with the current posteriors of the others: those updated
    earlier in this iteration are recomputed after their update. Returns each network's terms
    (computed before its own update).
    """
    logits = [m(x) for m in models]  # step 1: every posterior; each network's own forward
    terms = []
    for k, opt in enumerate(optimizers):
        t = dml_loss(logits[k], [z for l, z in enumerate(logits) if l != k], y, kl_weight)
        opt.zero_grad(set_to_none=True)
        (t["ce"] + t["kl"]).backward()
        opt.step()
        terms.append({name: v.detach() for name, v in t.items()})
        if k < len(models) - 1:  # step 3: the updated network's posterior, the next networks' target
            with torch.no_grad():
                logits[k] = _batch_stat_forward(models[k], x)
    return terms


if __name__ == "__main__":
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5)) for _ in range(2)]
    opts = [torch.optim.SGD(n.parameters(), lr=0.1) for n in nets]
    xb, yb = torch.randn(32, 6), torch.randint(0, 5, (32,))
    for it in range(3):
        print(it, [{k: round(v.item(), 4) for k, v in t.items()} for t in dml_step(nets, opts, xb, yb)])
