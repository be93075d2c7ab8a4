r"""Similarity-Preserving Knowledge Distillation (Tung & Mori, 2019; ICCV 2019).

Paper: https://arxiv.org/abs/1907.09682
Id:    tung2019similaritypreserving

Idea: inputs a trained network finds alike give alike activations. So instead of copying the
teacher's activations, the student copies the teacher's b x b pattern of pairwise similarities
between the samples of a mini-batch: pairs the teacher keeps close must be close in the student's
own space, and pairs it keeps apart must stay apart. Only b x b matrices are compared, so the two
layers may differ in channels, resolution and scale, and no regressor is needed.

Loss (Sec. 3). For a layer's batch activations A in R^{b x c x h x w}, Q = reshape(A, b x chw):
    G~ = Q Q^T                          (b x b Gram matrix of the flattened activations)
    G[i, :] = G~[i, :] / ||G~[i, :]||_2 (each ROW scaled to unit L2 norm, so G is not symmetric)
    L_SP = 1/b^2 * sum over layer pairs (l, l') of ||G_T^(l) - G_S^(l')||_F^2
    L = L_CE(y, softmax(z_S)) + gamma * L_SP.
sp_loss is the term of one layer pair (1/b^2 included); the caller sums over pairs and multiplies
by sp_weight (the paper's gamma). gamma = 3000 is RepDistiller's (scripts/run_cifar_distill.sh,
"-b 3000"), the value usually quoted for the paper's CIFAR-10 runs; the experiments section was not
readable in the stored copies of the paper, so that attribution is unconfirmed.
Layers: one pair, the output of the last group of convolutions (the map just before global
pooling; "conv4" of the paper's CIFAR-10 WideResNets). The experiments section was not readable in
the stored copies of the paper; RepDistiller, checked with the author, pairs that same map
(feat[-2], the last stage's output). The recipe pairs the last stage's maps (features[-1]).

Paper vs code. There is no official code. RepDistiller's Similarity module (marked "verified by
original author") computes the same thing: F.normalize of the Gram matrix along dim 1 (rows) and
the squared Frobenius distance summed, divided by b^2. Two small differences, both pinned in the
tests: (1) this file floors each row norm at eps (as F.normalize does) and detaches the teacher;
RepDistiller lets the teacher's map carry gradients and relies on the teacher being frozen;
(2) it returns a 0-d tensor, RepDistiller a 1-element vector (view(-1, 1).sum(0)).
Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["similarity_matrix", "sp_loss"]


def similarity_matrix(features: Tensor, eps: float = 1e-12) -> Tensor:
    """G: (b, b), the Gram matrix of the flattened activations with each row L2-normalised.

    Input (b, ...): any shape after the batch dimension, e.g. (b, c, h, w), (b, c, L) or (b, d)."""
    q = features.reshape(features.shape[0], -1)  # Q: (b, chw)
    gram = q @ q.t()  # G~ = Q Q^T
    return F.normalize(gram, p=2.0, dim=1, eps=eps)  # row i divided by ||G~[i, :]||_2


def sp_loss(student_features: Tensor, teacher_features: Tensor, eps: float = 1e-12) -> Tensor:
    """||G_T - G_S||_F^2 / b^2 for one pair of layers (a 0-d tensor; the teacher is detached).

    Shapes (b, ...) and (b, ...): only the batch sizes must agree."""
    b = student_features.shape[0]
    if teacher_features.shape[0] != b:
        raise ValueError(f"batch sizes differ: {b} vs {teacher_features.shape[0]}")
    g_s = similarity_matrix(student_features, eps)
    g_t = similarity_matrix(teacher_features.detach(), eps)
    return (g_t - g_s).pow(2).sum() / (b * b)  # squared Frobenius norm, then the paper's 1/b^2


if __name__ == "__main__":
    torch.manual_seed(0)
    a_s = torch.randn(8, 16, 4, 4, requires_grad=True)  # narrow student map
    a_t = torch.randn(8, 64, 8, 8)  # wider teacher map at another resolution
    loss = 3000.0 * sp_loss(a_s, a_t)  # sp_weight = gamma = 3000
    loss.backward()
    print("SP loss", round(loss.item(), 4), "grad norm", a_s.grad.norm().item())
