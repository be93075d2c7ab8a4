r"""Decoupled Knowledge Distillation (Zhao, Cui, Song, Qiu & Liang, 2022; CVPR 2022).

Paper: https://arxiv.org/abs/2203.08679
Id:    zhao2022decoupled

Idea: the classical KD loss splits exactly into a target-class part (TCKD: do teacher and student
agree on how confident to be about the true class?) and a non-target part (NCKD: do they rank the
wrong classes alike?). In KD the NCKD term is weighted by (1 - p_t^T), so it is suppressed exactly
on the samples the teacher is sure of; DKD gives the two parts their own weights.

Notation (Sec. 3.1), all softmaxes at temperature T; t is the target class:
    b = [p_t, 1 - p_t]                          binary target-vs-rest probabilities,
    p_hat_i = exp(z_i/T) / sum_{j != t} exp(z_j/T)   (i != t), distribution over non-targets.
Reformulation (Sec. 3.1):
    KD = KL(b^T || b^S) + (1 - p_t^T) KL(p_hat^T || p_hat^S) = TCKD + (1 - p_t^T) NCKD.
DKD (Sec. 3.3):  DKD = alpha * TCKD + beta * NCKD, here tckd_weight (alpha), nckd_weight (beta).
Each term is multiplied by T^2 and averaged over the batch, as for KD; the student's usual CE on
the labels is added by the caller (weight 1.0 in the authors' CIFAR-100 configs).
Defaults: T=4, tckd_weight=1, nckd_weight=8 are the paper's CIFAR-100 setting for most
teacher-student pairs (beta is tuned per pair, Sec. 4); nckd_weight may also be a per-sample
tensor, so that tckd_weight=1, nckd_weight=(1 - p_t^T) gives back plain KD.

Paper vs the authors' code (megvii-research/mdistiller, DKD.py):
- Non-target distribution: the code subtracts 1000 from the target logit (after dividing by T)
  and takes a softmax over all classes; this file drops the target column and takes the softmax
  over the C - 1 others, which is the paper's p_hat exactly (the code's version leaks when a
  target logit exceeds ~1000*T). The two agree to float precision on ordinary logits.
- TCKD: the code takes log of the summed probabilities (log 0 = -inf if p_t underflows); this
  file gets log p_t and log(1 - p_t) from logsumexp, the same value without the underflow.
- Warm-up: the code multiplies the whole DKD term by min(epoch / 20, 1) (WARMUP: 20 epochs).
  The loss here has no schedule; `warmup_factor` is provided and the caller multiplies.
Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["dkd_terms", "dkd_loss", "warmup_factor"]


def _binary_and_nontarget_logprobs(logits: Tensor, targets: Tensor, temperature: float):
    """log b (B, 2) and log p_hat (B, C-1) at temperature T."""
    z = logits / temperature
    is_target = F.one_hot(targets, z.shape[1]).bool()
    z_target = z[is_target]  # (B,)
    z_others = z[~is_target].view(z.shape[0], -1)  # (B, C-1): target column removed
    log_all = torch.logsumexp(z, dim=1)
    log_b = torch.stack([z_target - log_all, torch.logsumexp(z_others, dim=1) - log_all], dim=1)
    log_p_hat = F.log_softmax(z_others, dim=1)
    return log_b, log_p_hat


def _kl(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p || q) per sample, from log-probabilities, summed over the last dimension."""
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def dkd_terms(
    student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, temperature: float = 4.0
) -> tuple[Tensor, Tensor]:
    """Per-sample (TCKD, NCKD), each times T^2; shapes (B,). The teacher is detached."""
    log_b_s, log_ph_s = _binary_and_nontarget_logprobs(student_logits, targets, temperature)
    log_b_t, log_ph_t = _binary_and_nontarget_logprobs(teacher_logits.detach(), targets, temperature)
    tckd = _kl(log_b_t, log_b_s) * temperature**2  # KL(b^T || b^S)
    nckd = _kl(log_ph_t, log_ph_s) * temperature**2  # KL(p_hat^T || p_hat^S)
    return tckd, nckd


def dkd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    tckd_weight: float | Tensor = 1.0,
    nckd_weight: float | Tensor = 8.0,
    temperature: float = 4.0,
) -> Tensor:
    """mean over the batch of tckd_weight * TCKD + nckd_weight * NCKD (both T^2-scaled).

    Logits (B, C), targets (B,) class indices. Weights: floats or per-sample tensors of shape (B,).
    """
    tckd, nckd = dkd_terms(student_logits, teacher_logits, targets, temperature)
    return (tckd_weight * tckd + nckd_weight * nckd).mean()


def warmup_factor(epoch: float, warmup_epochs: float = 20.0) -> float:
    """min(epoch / warmup_epochs, 1): the authors' code ramps the DKD term in over 20 epochs."""
    return min(epoch / warmup_epochs, 1.0)


if __name__ == "__main__":
    torch.manual_seed(0)
    z = torch.randn(8, 100, requires_grad=True)
    v, y = torch.randn(8, 100), torch.randint(0, 100, (8,))
    tckd, nckd = dkd_terms(z, v, y)
    loss = dkd_loss(z, v, y)
    loss.backward()
    print("TCKD", tckd.mean().item(), "NCKD", nckd.mean().item(), "DKD", loss.item())
