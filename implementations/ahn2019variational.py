r"""Variational Information Distillation for Knowledge Transfer (Ahn, Hu, Damianou, Lawrence & Dai,
2019; CVPR 2019).

Paper: https://arxiv.org/abs/1904.05835
Id:    ahn2019variational

Idea: transfer as much information about the teacher's features t as the student's features s can
carry, by maximising a variational lower bound on their mutual information. A Gaussian q(t | s)
whose mean mu(s) is regressed from the student's map and whose variance sigma_c^2 is learned per
teacher channel turns the bound into a hint loss that weights each channel by how predictable it
is: a channel the student cannot predict gets a large variance and a small pull.

Bound (Sec. 3): I(t; s) = H(t) - H(t | s) >= H(t) + E_{t,s}[log q(t | s)]; H(t) does not depend on
the student, so the student and q minimise -E[log q(t | s)] for each transferred pair k.
Gaussian q with a heteroscedastic per-channel variance (Sec. 3, intermediate layers):
    -log q(t | s) = sum_{c,h,w} [ log sigma_c + (t_{c,h,w} - mu_{c,h,w}(s))^2 / (2 sigma_c^2) ] + const,
    sigma_c^2 = log(1 + exp(alpha_c)) + eps   (softplus: the variance is always > eps > 0).
Loss: L = L_CE - sum_k lambda_k E[log q(t^(k) | s^(k))]. mu: a small stack of 1x1 convolutions.
With sigma_c fixed to 1 the loss is half the squared error of a FitNets hint (a test checks it).

This file follows RepDistiller's port of the authors' code (HobbitLong/RepDistiller,
distiller_zoo/VID.py, "code from author" ssahn0215/variational-information-distillation; the
authors' repository itself was not available here), which agrees with the equations above, and says
where the port's choices enter:
- reduction: the mean over batch, channels and positions of the per-entry NLL
  0.5 * (log sigma_c^2 + (t - mu)^2 / sigma_c^2), i.e. the paper's sum over c, h, w divided by C H W,
  without the constant 0.5 log(2 pi) (a test pins both);
- mu: conv1x1 -> ReLU -> conv1x1 -> ReLU -> conv1x1, bias-free, hidden width = the teacher's
  channels; sigma^2 initialised to 5 (init_variance), eps = 1e-5;
- lambda_k = 1 for every pair (RepDistiller's beta = 1 on CIFAR-100); pairs: the outputs of the
  residual groups (feat[1:-1]), one regressor per pair.
Differences: RepDistiller average-pools the larger map when spatial sizes differ; this file raises
instead (the caller picks layers of equal size). Depends only on torch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["gaussian_nll", "vid_loss", "VIDRegressor"]


def gaussian_nll(mean: Tensor, variance: Tensor, target: Tensor) -> Tensor:
    """Mean over every entry of 0.5 * (log var + (target - mean)^2 / var): -log N(target; mean, var)
    without 0.5 log(2 pi). ``variance`` (C,) broadcasts over the channel dimension (dim 1)."""
    var = variance.view(1, -1, *([1] * (mean.dim() - 2)))
    return 0.5 * (var.log() + (target - mean).pow(2) / var).mean()


class VIDRegressor(nn.Module):
    """q(t | s): mu(s) by three bias-free 1x1 convolutions, and a learned variance per teacher channel."""

    def __init__(self, student_channels: int, teacher_channels: int, hidden: int | None = None, dim: int = 2,
                 init_variance: float = 5.0, eps: float = 1e-5):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 (sequences) or 2 (images), got {dim}")
        conv = nn.Conv1d if dim == 1 else nn.Conv2d
        hidden = teacher_channels if hidden is None else hidden  # RepDistiller: the teacher's width
        self.mean = nn.Sequential(conv(student_channels, hidden, 1, bias=False), nn.ReLU(),
                                  conv(hidden, hidden, 1, bias=False), nn.ReLU(),
                                  conv(hidden, teacher_channels, 1, bias=False))
        self.eps = eps
        # alpha_c with softplus(alpha_c) + eps = init_variance: the inverse softplus, log(e^v - 1)
        alpha = math.log(math.expm1(init_variance - eps))
        self.alpha = nn.Parameter(torch.full((teacher_channels,), alpha))

    def variance(self) -> Tensor:
        """sigma_c^2 = softplus(alpha_c) + eps, shape (teacher_channels,)."""
        return F.softplus(self.alpha) + self.eps

    def forward(self, student_features: Tensor) -> tuple[Tensor, Tensor]:
        return self.mean(student_features), self.variance()


def vid_loss(student_features: Tensor, teacher_features: Tensor, regressor: VIDRegressor) -> Tensor:
    """-E[log q(t | s)] per entry (mean over batch, channels, positions; no constant) for one pair.

    Shapes: (B, C_s, *spatial) and (B, C_t, *spatial), equal spatial sizes. The teacher is detached;
    multiply by vid_weight (lambda_k) and sum over pairs."""
    if student_features.shape[0] != teacher_features.shape[0]:
        raise ValueError("student and teacher batches differ in size")
    if student_features.shape[2:] != teacher_features.shape[2:]:
        raise ValueError(f"VID needs equal spatial sizes, got student {tuple(student_features.shape[2:])} and "
                         f"teacher {tuple(teacher_features.shape[2:])}; pick matching layers or pool first")
    mean, variance = regressor(student_features)
    return gaussian_nll(mean, variance, teacher_features.detach())


if __name__ == "__main__":
    torch.manual_seed(0)
    f_s = torch.randn(4, 16, 8, 8, requires_grad=True)
    f_t = torch.randn(4, 64, 8, 8)
    reg = VIDRegressor(16, 64)
    loss = 1.0 * vid_loss(f_s, f_t, reg)  # vid_weight = 1 (RepDistiller)
    loss.backward()
    print("VID loss", loss.item(), "variance", reg.variance()[:3].tolist())
