r"""Paying More Attention to Attention: Improving the Performance of Convolutional Neural Networks
via Attention Transfer (Zagoruyko & Komodakis, 2016; ICLR 2017).

Paper: https://arxiv.org/abs/1612.03928
Id:    zagoruyko2016paying

Idea: summarise a convolutional feature map A (C x H x W) by a spatial "attention map" that says
where the network looks, F(A) = sum_c |A_c|^p, and train the student so that its normalised
attention maps match the teacher's at a few layers of the same spatial size. Because the map
sums over channels, teacher and student may have different widths and need no adapter.

Attention map (Sec. 3.1, activation-based; F^p_sum):  Q = vec(sum_c |A_c|^p), p = 2 by default.
Loss (Sec. 3.1, Eq. 2), per pair j of matched layers:
    L_AT = L(W_S, x) + beta/2 * sum_j || Q_S^j/||Q_S^j||_2 - Q_T^j/||Q_T^j||_2 ||_p.
Paper vs the authors' code (szagoruyko/attention-transfer): the code averages |A_c|^2 over
channels instead of summing (identical after the L2 normalisation) and uses the SQUARED distance
averaged over batch and positions, mean_{b,i} (q_S - q_T)^2, with beta = 1e3 and the
beta/2 factor (the paper's beta "10^3 divided by the number of elements in the attention map
and batch size" matches this per-element average). This file follows the code:
at_loss = mean over batch and positions of the squared difference of the L2-normalised maps,
and the caller multiplies by at_weight = beta/2 = 500 (paper's beta = 1e3) and sums over layers.
Layers (paper, CIFAR WRNs): the outputs of the three groups of residual blocks; ImageNet
ResNets: the last two groups. The caller picks the layers; spatial sizes must match (this file
raises otherwise instead of silently resizing, unlike several re-implementations).
Left out: gradient-based attention transfer (Sec. 3.2). Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["attention_map", "at_loss"]


def attention_map(features: Tensor, p: float = 2.0, eps: float = 1e-12) -> Tensor:
    """sum_c |A_c|^p, flattened to (batch, H*W) and L2-normalised per sample.

    Input (B, C, H, W); 1-D maps (B, C, L) work the same way (a map over L positions)."""
    q = features.abs().pow(p).sum(dim=1).flatten(1)  # F^p_sum(A), vectorised: Q
    return F.normalize(q, p=2.0, dim=1, eps=eps)  # Q / ||Q||_2


def at_loss(student_features: Tensor, teacher_features: Tensor, p: float = 2.0) -> Tensor:
    """Mean over batch and positions of (Q_S/||Q_S|| - Q_T/||Q_T||)^2 for one pair of layers.

    Shapes: (B, C_s, H, W) and (B, C_t, H, W); channel counts may differ, H and W may not.
    The teacher features are detached. Multiply by at_weight (beta/2) and sum over layer pairs.
    """
    if student_features.shape[0] != teacher_features.shape[0]:
        raise ValueError("student and teacher batches differ in size")
    if student_features.shape[2:] != teacher_features.shape[2:]:
        raise ValueError(
            f"attention maps need equal spatial sizes, got student {tuple(student_features.shape[2:])}"
            f" and teacher {tuple(teacher_features.shape[2:])}; pick matching layers or pool first"
        )
    q_s = attention_map(student_features, p)
    q_t = attention_map(teacher_features.detach(), p)
    return (q_s - q_t).pow(2).mean()  # squared distance, averaged over batch and H*W (authors' code)


if __name__ == "__main__":
    torch.manual_seed(0)
    f_s = torch.randn(4, 16, 8, 8, requires_grad=True)
    f_t = torch.randn(4, 64, 8, 8)
    loss = 500.0 * at_loss(f_s, f_t)  # at_weight = beta/2 with the paper's beta = 1e3
    loss.backward()
    print("AT loss", loss.item(), "map shape", tuple(attention_map(f_t).shape))
