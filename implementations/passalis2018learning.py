r"""Learning Deep Representations with Probabilistic Knowledge Transfer (Passalis & Tefas, 2018;
ECCV 2018; arXiv v1 "Probabilistic Knowledge Transfer for deep representation learning").

Paper: https://arxiv.org/abs/1803.10837
Id:    passalis2018learning

Idea: describe a representation by the probability that a sample of the batch would pick each other
sample as its neighbour, estimated with a kernel on the features; train the student so that its
neighbour probabilities match the teacher's (a KL divergence). Only relations between samples are
matched, so the two feature spaces may have different dimensions, and the "teacher" can be any
feature extractor (handcrafted features, another modality).

Kernel and probabilities (Sec. 3). With the cosine kernel K(a, b) = 1/2 (a^T b / (||a|| ||b||) + 1),
in [0, 1], and teacher features t_i, student features s_i of a batch:
    p_{i|j} = K(t_i, t_j) / sum_{k != j} K(t_k, t_j),    q_{i|j} likewise with s,
    L_PKT = sum_i sum_{j != i} p_{j|i} log(p_{j|i} / q_{j|i})     (KL between the two).
The paper motivates it as keeping the mutual information between representation and labels; it
also gives a Gaussian kernel, and prefers the cosine one (no bandwidth to tune).

Paper vs the authors' code (passalis/probabilistic_kt, nn/pkt.py, cosine_similarity_loss; also
RepDistiller's PKT, "code from author"). This file follows the CODE, and tests pin each point:
- the code keeps k = j: each row of the kernel matrix, self-similarity K(t_j, t_j) = 1 included, is
  divided by its sum, and the KL runs over all b x b entries (the paper excludes i = j). Pass
  exclude_self=True for the paper's conditional probabilities.
- reduction: the code averages the b x b terms (torch.mean), i.e. the paper's double sum / b^2.
- eps = 1e-7 inside the log, log((p + eps) / (q + eps)), and features divided by (norm + eps); a
  zero feature vector becomes 0 (the code replaces its NaN by 0), here F.normalize does the same
  (it divides by max(norm, 1e-12) instead of norm + 1e-7: a difference below 1e-7 relative).
Defaults: eps = 1e-7 (code). The code trains the representation with this loss alone (Adam, lr 1e-4)
and then evaluates retrieval; the classification benchmark of CRD (tian2019contrastive) adds it to
the cross-entropy with weight 3e4 on the penultimate embedding (RepDistiller), which is what the
recipe does. Layers (paper): the penultimate representation (the output of the last hidden layer).
Left out: the Gaussian kernel, the supervised-similarity extension, cross-modal transfer.
Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["cosine_kernel", "pkt_conditional_probs", "pkt_loss"]


def cosine_kernel(features: Tensor) -> Tensor:
    """(b, b) matrix of K(f_i, f_j) = (cos(f_i, f_j) + 1) / 2, in [0, 1]. Input (b, d)."""
    unit = F.normalize(features.reshape(features.shape[0], -1), p=2.0, dim=1)  # zero vector -> 0
    return (unit @ unit.t() + 1.0) / 2.0


def pkt_conditional_probs(features: Tensor, exclude_self: bool = False) -> Tensor:
    """(b, b) matrix whose row j holds p_{.|j}: the kernel row divided by its sum.

    exclude_self=False: the authors' code (the k = j term stays). True: the paper (diagonal 0)."""
    k = cosine_kernel(features)
    if exclude_self:
        k = k * (1.0 - torch.eye(k.shape[0], dtype=k.dtype, device=k.device))
    # row sums: >= 1 with the self term (K(f, f) = 1; 1/2 for a zero vector); without it a floor
    # keeps a row whose kernel values are all 0 (b = 2, opposite vectors) finite
    return k / k.sum(dim=1, keepdim=True).clamp_min(1e-12)


def pkt_loss(student_emb: Tensor, teacher_emb: Tensor, eps: float = 1e-7, exclude_self: bool = False) -> Tensor:
    """KL(P || Q) of the neighbour probabilities, averaged over the b x b entries (authors' code).

    Shapes (b, d_s) and (b, d_t); the dimensions may differ. The teacher is detached."""
    b = student_emb.shape[0]
    if teacher_emb.shape[0] != b:
        raise ValueError(f"batch sizes differ: {b} vs {teacher_emb.shape[0]}")
    if b < 2:
        raise ValueError("need at least 2 examples per batch")
    q = pkt_conditional_probs(student_emb, exclude_self)
    p = pkt_conditional_probs(teacher_emb.detach(), exclude_self)
    if exclude_self:  # the paper's sum over j != i, still divided by b^2 (no 0 log 0/0 on the diagonal)
        off = ~torch.eye(b, dtype=torch.bool, device=p.device)
        p, q = p[off], q[off]
    return (p * torch.log((p + eps) / (q + eps))).sum() / (b * b)  # the code's mean; its eps placement


if __name__ == "__main__":
    torch.manual_seed(0)
    s = torch.randn(64, 32, requires_grad=True)
    t = torch.randn(64, 128)
    loss = 3e4 * pkt_loss(s, t)  # pkt_weight of the CRD benchmark (RepDistiller)
    loss.backward()
    print("PKT loss", round(loss.item(), 4), "grad norm", s.grad.norm().item())
