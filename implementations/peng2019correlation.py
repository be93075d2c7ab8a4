r"""Correlation Congruence for Knowledge Distillation (Peng, Jin, Liu, Li, Wu, Liu, Zhou & Zhang, 2019;
ICCV 2019).

Paper: https://arxiv.org/abs/1904.01802
Id:    peng2019correlation

Idea: KD asks each student output to match the teacher's for the same instance (instance
congruence) and ignores how instances relate. CC adds correlation congruence: the n x n matrix of
kernel correlations between the embeddings of a mini-batch's instances must match the teacher's.
The correlation is a Gaussian RBF kernel, computed through its Taylor expansion in the inner product
so that it costs one n x n matrix product.

Kernel (Sec. 3, correlation method). For L2-normalised embeddings f_i (||f_i|| = 1),
    k(f_i, f_j) = exp(-gamma ||f_i - f_j||^2) = exp(-2 gamma) exp(2 gamma f_i^T f_j)
               ~= sum_{p=0}^{P} exp(-2 gamma) (2 gamma)^p / p! (f_i^T f_j)^p,
psi(F) = [k(f_i, f_j)]_{ij}, an n x n matrix (teacher and student dimensions may differ).
Loss:  L_CC = 1/n^2 ||psi(F_t) - psi(F_s)||_F^2,
       L = alpha L_CE + (1 - alpha) L_KD + beta L_CC   (L_KD: Hinton's soft-target loss).
Defaults gamma = 0.4 and P = 2: the values usually quoted for the paper's CIFAR-100 runs; the
method and experiment sections were not readable in the stored copies of the paper, so they are
UNCONFIRMED (papers/peng2019correlation.yaml). The recipe holds alpha, beta and the KD temperature.
Layers (paper): the embedding that feeds the classifier (the penultimate features).

Paper vs code. There is no official code. RepDistiller's "Correlation" (a version the authors
emailed) is a different loss: on 128-d linear embeddings of both networks (trainable, so the two
must share a dimension) it takes d = |f_s - f_t| and averages sum_k d_i[k] d_{i+1}[k] over
consecutive samples of the batch; it has no kernel and no n x n matrix. This file follows the
paper's kernel formulation (a test shows the two differ).
Left out: the class-uniform / superclass-uniform batch samplers (batches of k classes with n/k
instances each, so every batch holds same-class pairs): the harness draws plain random batches;
the other kernels of the ablation (bilinear pooling, the exact RBF) beyond exact=True here.
Depends only on torch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["taylor_rbf_kernel", "cc_loss"]


def taylor_rbf_kernel(emb: Tensor, gamma: float = 0.4, order: int = 2, exact: bool = False) -> Tensor:
    """psi(F): (n, n) matrix of the order-P Taylor expansion of exp(-gamma ||f_i - f_j||^2) for the
    L2-normalised rows f_i of emb (n, d). exact=True: the kernel itself, exp(-2 gamma (1 - f_i^T f_j))."""
    f = F.normalize(emb.reshape(emb.shape[0], -1), p=2.0, dim=1)
    c = f @ f.t()  # f_i^T f_j, in [-1, 1]
    if exact:
        return torch.exp(-2.0 * gamma * (1.0 - c))
    terms = [math.exp(-2.0 * gamma) * (2.0 * gamma) ** p / math.factorial(p) * c.pow(p) for p in range(order + 1)]
    return torch.stack(terms).sum(0)


def cc_loss(student_emb: Tensor, teacher_emb: Tensor, gamma: float = 0.4, order: int = 2,
            exact: bool = False) -> Tensor:
    """1/n^2 ||psi(F_t) - psi(F_s)||_F^2 (the teacher is detached). Shapes (n, d_s) and (n, d_t)."""
    n = student_emb.shape[0]
    if teacher_emb.shape[0] != n:
        raise ValueError(f"batch sizes differ: {n} vs {teacher_emb.shape[0]}")
    psi_s = taylor_rbf_kernel(student_emb, gamma, order, exact)
    psi_t = taylor_rbf_kernel(teacher_emb.detach(), gamma, order, exact)
    return (psi_t - psi_s).pow(2).sum() / (n * n)


if __name__ == "__main__":
    torch.manual_seed(0)
    s = torch.randn(64, 32, requires_grad=True)
    t = torch.randn(64, 128)
    loss = cc_loss(s, t)
    loss.backward()
    print("CC loss", round(loss.item(), 6), "grad norm", s.grad.norm().item())
