r"""Relational Knowledge Distillation (Park, Kim, Lu & Cho, 2019; CVPR 2019).

Paper: https://arxiv.org/abs/1904.05068
Id:    park2019relational

Idea: instead of matching the teacher's output for each example, match the *structure* among the
examples of a mini-batch: how far apart their embeddings are (distance-wise) and which angles
triplets of them form (angle-wise). Both relations are unchanged by a global rescaling or shift of
an embedding space, so teacher and student need not share a scale, and since only relations are
compared their embedding dimensions may differ without any projection layer.

Notation (Sec. 3.2): t_i, s_i are the teacher and student embeddings of example x_i; X^2, X^3 the
ordered pairs / triplets of *distinct* examples of the mini-batch; l_delta the Huber loss
    l_delta(x, y) = 1/2 (x - y)^2 if |x - y| <= 1, else |x - y| - 1/2.
Distance-wise potential and loss (Sec. 3.2.1):
    psi_D(t_i, t_j) = ||t_i - t_j||_2 / mu,   mu = mean over (i, j) in X^2 of ||t_i - t_j||_2,
    L_RKD-D = sum over (i, j) in X^2 of l_delta(psi_D(t_i, t_j), psi_D(s_i, s_j)),
mu computed separately for teacher and student (this is what makes the loss scale-free).
Angle-wise potential and loss (Sec. 3.2.2), the cosine of the angle at the middle point t_j:
    psi_A(t_i, t_j, t_k) = < (t_i - t_j)/||t_i - t_j||, (t_k - t_j)/||t_k - t_j|| >,
    L_RKD-A = sum over (i, j, k) in X^3 of l_delta(psi_A(t_i, t_j, t_k), psi_A(s_i, s_j, s_k)).
Training (Sec. 3.2.3): L = L_task + lambda_KD * L_KD with L_KD = L_RKD-D and/or L_RKD-A. Here
distance_weight (lambda_RKD-D) = 1 and angle_weight (lambda_RKD-A) = 2 are the paper's weights in
its metric-learning experiments (Sec. 4.1); RepDistiller's CIFAR-100 re-run uses 25 and 50.
Layers (paper): the final embedding (metric learning) or the penultimate / logit layer
(classification; RKD there is added to CE or KD). The caller passes flat (B, D) embeddings.

Paper vs the authors' code (lenscloth/RKD, metric/loss.py):
- Reduction: the paper sums over the tuples; the code averages smooth_l1 (Huber, delta=1) over all
  B^2 (distance) or B^3 (angle) entries, degenerate ones included (they contribute 0). This file
  averages over the paper's tuples of distinct examples, i.e. the code's value times B^2/(B(B-1))
  resp. B^2/((B-1)(B-2)): the paper's loss divided by the number of tuples, so that the weights
  do not depend on the batch size. A test pins this.
- mu: the code averages only the non-zero distances; this file averages all distinct pairs, as the
  paper's formula does (they differ only when two examples have identical embeddings).
- Identical embeddings: a zero distance has an infinite sqrt gradient, a zero difference no
  direction. Squared distances are clamped at `eps` before the sqrt and difference vectors are
  normalised with an `eps` floor (a zero difference gives cosine 0): no NaN. The code does the same.
- The code computes the teacher's relations under no_grad; here the teacher is .detach()ed.
Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["pairwise_distance_potential", "angle_potential", "rkd_distance_loss", "rkd_angle_loss", "RKDLoss"]


def _check(student_emb: Tensor, teacher_emb: Tensor, min_batch: int) -> None:
    if student_emb.dim() != 2 or teacher_emb.dim() != 2:
        raise ValueError("embeddings must be flat (batch, dim); flatten or pool feature maps first")
    if student_emb.shape[0] != teacher_emb.shape[0]:
        raise ValueError(f"batch sizes differ: {student_emb.shape[0]} vs {teacher_emb.shape[0]}")
    if student_emb.shape[0] < min_batch:
        raise ValueError(f"need at least {min_batch} examples per batch for this relation")


def pairwise_distance_potential(emb: Tensor, eps: float = 1e-12) -> Tensor:
    """psi_D: (B, B) matrix of ||e_i - e_j|| / mu, mu = mean over i != j. The diagonal is 0."""
    sq = (emb.unsqueeze(1) - emb.unsqueeze(0)).pow(2).sum(-1)  # (B, B) squared distances
    off = ~torch.eye(emb.shape[0], dtype=torch.bool, device=emb.device)
    dist = sq.clamp_min(eps).sqrt() * off  # clamp: no inf gradient at zero distance
    mu = dist[off].mean().clamp_min(eps)  # mean over the pairs of distinct examples
    return dist / mu


def angle_potential(emb: Tensor, eps: float = 1e-12) -> Tensor:
    """psi_A: (B, B, B) tensor, entry [j, i, k] = cos of the angle at e_j between e_i and e_k."""
    diff = emb.unsqueeze(0) - emb.unsqueeze(1)  # diff[j, i] = e_i - e_j
    unit = F.normalize(diff, p=2, dim=-1, eps=eps)  # zero difference -> zero vector (cosine 0)
    return unit @ unit.transpose(1, 2)  # [j, i, k] = <unit(e_i - e_j), unit(e_k - e_j)>


def _huber(x: Tensor, y: Tensor) -> Tensor:
    """l_delta with delta = 1 (Sec. 3.2.1), elementwise."""
    return F.smooth_l1_loss(x, y, reduction="none", beta=1.0)


def rkd_distance_loss(student_emb: Tensor, teacher_emb: Tensor, eps: float = 1e-12) -> Tensor:
    """Mean over ordered pairs i != j of l_delta(psi_D(t_i, t_j), psi_D(s_i, s_j)).

    Shapes (B, D_s) and (B, D_t); D_s and D_t may differ. The teacher is detached."""
    _check(student_emb, teacher_emb, 2)
    off = ~torch.eye(student_emb.shape[0], dtype=torch.bool, device=student_emb.device)
    psi_s = pairwise_distance_potential(student_emb, eps)
    psi_t = pairwise_distance_potential(teacher_emb.detach(), eps)
    return _huber(psi_s[off], psi_t[off]).mean()


def rkd_angle_loss(student_emb: Tensor, teacher_emb: Tensor, eps: float = 1e-12) -> Tensor:
    """Mean over ordered triplets of distinct (i, j, k) of l_delta(psi_A(t), psi_A(s)), angle at j.

    Shapes (B, D_s) and (B, D_t); D_s and D_t may differ. The teacher is detached. Memory O(B^3)."""
    _check(student_emb, teacher_emb, 3)
    n = student_emb.shape[0]
    idx = torch.arange(n, device=student_emb.device)
    j, i, k = idx.view(n, 1, 1), idx.view(1, n, 1), idx.view(1, 1, n)
    distinct = (i != j) & (k != j) & (i != k)  # the paper's X^3
    psi_s = angle_potential(student_emb, eps)
    psi_t = angle_potential(teacher_emb.detach(), eps)
    # masked mean (cheaper than boolean indexing of a B^3 tensor in the backward pass)
    return (_huber(psi_s, psi_t) * distinct).sum() / distinct.sum()


class RKDLoss(nn.Module):
    """distance_weight * L_RKD-D + angle_weight * L_RKD-A (RKD-DA). Holds only the two weights;
    add the task loss (CE for classification) yourself. Returns a dict of the weighted terms."""

    def __init__(self, distance_weight: float = 1.0, angle_weight: float = 2.0):
        super().__init__()
        self.distance_weight = distance_weight  # lambda_RKD-D (paper: 1)
        self.angle_weight = angle_weight  # lambda_RKD-A (paper: 2)

    def forward(self, student_emb: Tensor, teacher_emb: Tensor) -> dict[str, Tensor]:
        return {"distance": self.distance_weight * rkd_distance_loss(student_emb, teacher_emb),
                "angle": self.angle_weight * rkd_angle_loss(student_emb, teacher_emb)}


if __name__ == "__main__":
    torch.manual_seed(0)
    s = torch.randn(16, 32, requires_grad=True)
    t = torch.randn(16, 128)
    terms = RKDLoss()(s, t)
    sum(terms.values()).backward()
    print({k: round(v.item(), 4) for k, v in terms.items()}, "grad norm", s.grad.norm().item())
