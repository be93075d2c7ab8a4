r"""Reducing the Teacher-Student Gap via Spherical Knowledge Distillation (Guo et al., 2020).

Paper: https://arxiv.org/abs/2010.07485   (arXiv v5 title; v1 was "Spherical Knowledge Distillation")
Code:  https://github.com/forjiuzhou/Spherical-Knowledge-Distillation (official; read, not copied)
Id:    guo2020reducing

Idea: a large teacher is more *confident* than a small student can be: its logit vectors have a
larger spread. Hinton KD asks the student to match the teacher's softened probabilities, so it also
asks it to reproduce that confidence, which a small student cannot and which, the paper argues, is
not the useful part of the knowledge (the capacity-gap problem). SKD removes the confidence before
matching: both logit vectors are projected to a sphere of a fixed radius, then Hinton KD and the
label cross-entropy are computed on the projected logits.

Projection (the official README's two lines, ``F.layer_norm(z, (C,), eps=1e-7) * multiplier``):

    z_hat = m * (z - mean_c(z)) / sqrt(var_c(z) + eps)        (var: the biased variance over classes)

so every z_hat has mean 0 and standard deviation m, i.e. it lies on a sphere of radius m*sqrt(C) in
the hyperplane sum_c z_c = 0. The centring does not change any softmax; the division is what removes
the confidence: z_hat is invariant to z -> a*z + b for a > 0 (per sample).

Loss (the authors' training loop):

    L = (1 - alpha) * CE(z_hat_s, y) + alpha * T^2 * KL(softmax(z_hat_t / T) || softmax(z_hat_s / T)),

KL summed over classes and averaged over the batch, and the CE on the *normalised* student logits
(the README insists on it). Prediction uses the student's raw logits: the projection keeps the argmax.

Paper vs code, and what we follow:
- The paper's text beyond the abstract could not be read in the stored sources; its abstract says
  the logits are projected "into a unit sphere". The README's layer-norm times a multiplier
  (``multiplier`` 2 to 3; 2 in its training command) is followed here, ``mode="sphere"`` (default).
- The training script in the repository's last commit does something else in its SKD branch:
  it leaves the teacher's logits as they are and rescales the student's to the teacher's
  per-sample standard deviation, z_s * std(z_t) / std(z_s) (no centring, no multiplier), for both
  the KD and the CE terms. That is ``mode="teacher_std"``. Both remove the student's own
  confidence; only "sphere" also removes the teacher's.
- alpha: the script uses 0.9 for its first 60 of 100 ImageNet epochs, then 0.5, then 0.1; we keep
  a constant ``alpha`` (default 0.9) and leave schedules to the caller. T = 4 is the README's
  command. ``torch.std`` in the script is the unbiased estimate (divides by C - 1); layer_norm's is
  the biased one: a constant factor sqrt(C / (C - 1)) on the radius only.

Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["sphere_normalize", "match_teacher_std", "skd_loss"]

MODES = ("sphere", "teacher_std")


def sphere_normalize(logits: Tensor, multiplier: float = 2.0, eps: float = 1e-7) -> Tensor:
    """m * (z - mean(z)) / sqrt(var(z) + eps) over the last (class) dimension: mean 0, std m."""
    if multiplier <= 0:
        raise ValueError(f"multiplier must be > 0, got {multiplier}")
    return F.layer_norm(logits, logits.shape[-1:], None, None, eps) * multiplier


def match_teacher_std(student_logits: Tensor, teacher_logits: Tensor, eps: float = 1e-7) -> Tensor:
    """z_s * std(z_t) / std(z_s) per sample (unbiased std, as the official script): the student's
    logits with the teacher's spread. The teacher side is detached."""
    t_std = teacher_logits.detach().std(dim=-1, keepdim=True)
    return student_logits / (student_logits.std(dim=-1, keepdim=True) + eps) * t_std


def skd_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor | None, temperature: float = 4.0,
             alpha: float = 0.9, multiplier: float = 2.0, mode: str = "sphere") -> dict[str, Tensor]:
    """SKD: ``{"ce": (1 - alpha) CE(z_hat_s, y), "skd": alpha T^2 KL(p_t || p_s)}`` on projected logits.

    ``targets=None`` leaves the label term out (returns only "skd"). Shapes (batch, classes)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    zt = teacher_logits.detach()
    if mode == "sphere":
        zs_hat, zt_hat = sphere_normalize(student_logits, multiplier), sphere_normalize(zt, multiplier)
    else:
        zs_hat, zt_hat = match_teacher_std(student_logits, zt), zt
    log_p_s = F.log_softmax(zs_hat / temperature, dim=-1)
    p_t = F.softmax(zt_hat / temperature, dim=-1)
    kl = F.kl_div(log_p_s, p_t, reduction="sum") / student_logits.shape[0]  # summed over classes, batch mean
    out = {"skd": alpha * temperature ** 2 * kl}
    if targets is not None:
        out = {"ce": (1 - alpha) * F.cross_entropy(zs_hat, targets)} | out
    return out


if __name__ == "__main__":
    torch.manual_seed(0)
    zs, zt, y = torch.randn(8, 10, requires_grad=True), 5 * torch.randn(8, 10), torch.arange(8) % 10
    terms = skd_loss(zs, zt, y)
    sum(terms.values()).backward()
    print({k: round(v.item(), 4) for k, v in terms.items()})
