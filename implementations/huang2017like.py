r"""Like What You Like: Knowledge Distill via Neuron Selectivity Transfer (Huang & Wang, 2017).

Paper: https://arxiv.org/abs/1707.01219
Code:  https://github.com/TuSimple/neuron-selectivity-transfer (MXNet, the authors')
Id:    huang2017like

Idea: a channel of a convolutional map fires in some places of the input and not in others: its
flattened, L2-normalised spatial map is that neuron's "selectivity pattern". Take the C patterns of
a layer as C samples of a distribution over R^{HW}, and train the student so that the distribution
of its patterns matches the teacher's, measured by the squared maximum mean discrepancy (MMD).
Only the distributions are compared, so the two layers may have different numbers of channels; the
spatial size HW must agree.

Selectivity patterns (Sec. 3): F in R^{C x HW}, each row f^i (one channel) divided by its L2 norm
over the HW positions (per channel over positions, not per position over channels).
Squared MMD (Sec. 3, with the kernel trick), teacher rows f_T^i (C_T of them), student rows f_S^j:
    MMD^2 = 1/C_T^2 sum_{i,i'} k(f_T^i, f_T^{i'}) + 1/C_S^2 sum_{j,j'} k(f_S^j, f_S^{j'})
            - 2/(C_T C_S) sum_{i,j} k(f_T^i, f_S^j).
Kernels (Sec. 3): linear k(x, y) = x^T y; polynomial k(x, y) = (x^T y + c)^d with d = 2, c = 0;
Gaussian k(x, y) = exp(-||x - y||^2 / (2 sigma^2)). With the linear kernel MMD^2 is the squared
distance of the mean patterns; with d = 2, c = 0 it is ||G_T/C_T - G_S/C_S||_F^2 with G = F^T F the
HW x HW Gram matrix of positions: the link the paper draws to style transfer (tests check both).
Loss (Sec. 3): L_NST = H(y, p_S) + lambda/2 * MMD^2(F_T, F_S).
What was read: the abstract (MMD between selectivity distributions) and the authors' code; the
paper's Sec. 3-4 were not readable here, so the kernel list, the lambda/2 form and the Gaussian
kernel's form are as recorded in papers/huang2017like.yaml, unconfirmed there.

Paper vs the authors' code (symbol/transfer.py, config/cfgs.py), which this file follows:
- the code has the polynomial kernel only (c = 0, d = 2: config "inception_bn_64_8_poly_0_50") and
  multiplies the MMD term by kt_weight = 50; the recipe's nst_weight = 50 is that factor applied to
  MMD^2 as written above (the code's weight, not a value read in the paper);
- the code leaves out the teacher-teacher sum (a constant for the student); this file keeps it, so
  the value is the MMD^2 itself (>= 0, zero when the two sets of patterns agree) and the gradient is
  the code's (a test pins that the two differ by that constant only);
- per-sample MMD^2 averaged over the batch (the code's per-sample mean, with MXNet's rescale by
  1/batch size); L2 normalisation with eps = 1e-10 as in the code ("spatial" mode: per channel);
- layer: the code transfers one map, the last one before global pooling (ResNet-101's bn1 output,
  pre-ReLU, 2048 x 7 x 7); the caller picks the layer(s) and this file takes what it is given.
Gaussian sigma has no default in what was readable of the paper; sigma = 1 here is ours (patterns
are unit vectors, so ||x - y||^2 lies in [0, 4]). Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["selectivity", "kernel_matrix", "mmd2", "nst_loss"]


def selectivity(features: Tensor, eps: float = 1e-10) -> Tensor:
    """(B, C, *spatial) -> (B, C, HW): each channel's map flattened and L2-normalised over positions."""
    return F.normalize(features.flatten(2), p=2.0, dim=2, eps=eps)


def kernel_matrix(a: Tensor, b: Tensor, kernel: str = "poly", degree: int = 2, c: float = 0.0,
                  sigma: float = 1.0) -> Tensor:
    """k(a_i, b_j) for rows of (B, N, D) and (B, M, D): a (B, N, M) tensor."""
    dot = a @ b.transpose(1, 2)  # x^T y for every pair of rows
    if kernel == "linear":
        return dot
    if kernel == "poly":
        return (dot + c).pow(degree)
    if kernel == "gaussian":
        sq = a.pow(2).sum(-1, keepdim=True) + b.pow(2).sum(-1).unsqueeze(1) - 2.0 * dot  # ||x - y||^2
        return torch.exp(-sq.clamp_min(0.0) / (2.0 * sigma**2))
    raise ValueError(f"unknown kernel {kernel!r}: use 'linear', 'poly' or 'gaussian'")


def mmd2(x: Tensor, y: Tensor, **kernel_args) -> Tensor:
    """Squared MMD between the rows of x (B, N, D) and y (B, M, D), one value per sample: (B,).

    1/N^2 sum k(x, x') + 1/M^2 sum k(y, y') - 2/(N M) sum k(x, y); means spell out the 1/N^2 etc."""
    return (kernel_matrix(x, x, **kernel_args).mean((1, 2)) + kernel_matrix(y, y, **kernel_args).mean((1, 2))
            - 2.0 * kernel_matrix(x, y, **kernel_args).mean((1, 2)))


def nst_loss(student_features: Tensor, teacher_features: Tensor, kernel: str = "poly", degree: int = 2,
             c: float = 0.0, sigma: float = 1.0) -> Tensor:
    """MMD^2 between the student's and the teacher's selectivity patterns, averaged over the batch.

    Shapes: (B, C_s, *spatial) and (B, C_t, *spatial); channel counts may differ, spatial sizes may not
    (2-D maps or 1-D sequences). The teacher features are detached. Multiply by nst_weight (lambda/2)."""
    if student_features.shape[0] != teacher_features.shape[0]:
        raise ValueError("student and teacher batches differ in size")
    if student_features.shape[2:] != teacher_features.shape[2:]:
        raise ValueError(
            f"selectivity patterns need equal spatial sizes, got student {tuple(student_features.shape[2:])}"
            f" and teacher {tuple(teacher_features.shape[2:])}; pick matching layers or pool first")
    f_s = selectivity(student_features)
    f_t = selectivity(teacher_features.detach())
    return mmd2(f_t, f_s, kernel=kernel, degree=degree, c=c, sigma=sigma).mean()  # mean over the batch


if __name__ == "__main__":
    torch.manual_seed(0)
    f_s = torch.randn(4, 16, 7, 7, requires_grad=True)
    f_t = torch.randn(4, 64, 7, 7)
    loss = 50.0 * nst_loss(f_s, f_t)  # nst_weight = 50, the authors' code
    loss.backward()
    print("NST loss", loss.item(), "patterns", tuple(selectivity(f_t).shape))
