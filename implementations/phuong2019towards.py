r"""Towards Understanding Knowledge Distillation (Phuong & Lampert, ICML 2019).

Paper: https://proceedings.mlr.press/v97/phuong19a.html (arXiv copy: 2105.13093)
Id:    phuong2019towards

Idea: study distillation where it can be solved exactly. Binary classification, a linear teacher
w_* with soft labels t(x) = sigma(w_*^T x), and a linear student w (or a deep linear network,
whose end-to-end map is a vector w) trained by gradient descent on the cross-entropy to those soft
labels. The paper explains the student's success by three factors: *optimisation bias* (gradient
descent lands on one particular minimiser among the many that fit the soft labels), *data
geometry* (how much input mass lies at a small angle to the teacher's decision boundary sets how
fast the risk falls) and *strong monotonicity* (more transfer data never increases the expected
risk). No classification network is trained here: this file is the paper's analytical setting,
computed numerically (the notebook and tests use float64).

Objective (Sec. 2), transfer set x_1..x_n in R^d (the rows of X):
    L(w) = -(1/n) sum_i [ t_i log sigma(w^T x_i) + (1 - t_i) log(1 - sigma(w^T x_i)) ],  t_i = sigma(w_*^T x_i),
    grad L(w) = (1/n) X^T (sigma(X w) - sigma(X w_*)).
The gradient lies in the span of the data, so gradient descent from w_0 never changes the part of
w outside that span, and inside it converges to the unique point where X w = X w_* (L is strictly
convex there and its minimum, the soft labels' entropy, is reached exactly):
    w_hat = P w_* + (I - P) w_0,   P = X^T (X X^T)^+ X   (projection onto the span of the x_i),
so w_hat = P w_* from a zero start when n < d, and w_hat = w_* when the x_i span R^d (n >= d).
This is the paper's optimisation-bias result for linear students; the file derives it as above and
the tests check it. Deep linear students (Sec. 4 of the paper): the gradient of the first layer W_1
also lies in the data span, so W_1's part outside the span keeps its initial value and the
end-to-end vector ends close to P w_* when W_1 starts small; the tests check that numerically.
Risk (the paper's transfer risk): R(w) = Pr_x[sign(w^T x) != sign(w_*^T x)], the disagreement
with the teacher, estimated on sample inputs; for isotropic Gaussian inputs it is exactly the
angle between w and w_* divided by pi.

Not checked against the paper's text: theorem numbers and the exact form of its risk bound and of
its conditions on deep linear initialisations (only the abstract and introduction were read).
Defaults: the step size is 1/smoothness of L (the smoothness is lambda_max(X^T X) / (4 n)); the
number of steps is the caller's. The authors released no code. Depends only on torch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["soft_labels", "distillation_loss", "distillation_gradient", "smoothness", "distill_linear",
           "hard_label_linear", "projection_onto_span", "distillation_limit", "transfer_risk", "angle",
           "end_to_end", "distill_deep_linear", "sample_inputs"]


def soft_labels(x: Tensor, teacher_w: Tensor) -> Tensor:
    """t_i = sigma(w_*^T x_i). x: (..., n, d), teacher_w: (..., d) -> (..., n). No gradient to w_*."""
    return torch.sigmoid((x @ teacher_w.detach().unsqueeze(-1)).squeeze(-1))


def distillation_loss(x: Tensor, student_w: Tensor, teacher_w: Tensor) -> Tensor:
    """L(w) of Sec. 2: the binary cross-entropy to the soft labels, averaged over the n points."""
    logits = (x @ student_w.unsqueeze(-1)).squeeze(-1)
    return F.binary_cross_entropy_with_logits(logits, soft_labels(x, teacher_w), reduction="none").mean(-1)


def distillation_gradient(x: Tensor, student_w: Tensor, teacher_w: Tensor) -> Tensor:
    """grad L(w) = (1/n) X^T (sigma(X w) - sigma(X w_*)), batched over leading dimensions."""
    residual = torch.sigmoid((x @ student_w.unsqueeze(-1)).squeeze(-1)) - soft_labels(x, teacher_w)
    return (x.transpose(-1, -2) @ residual.unsqueeze(-1)).squeeze(-1) / x.shape[-2]


def smoothness(x: Tensor) -> Tensor:
    """lambda_max(X^T X) / (4 n): a Lipschitz constant of grad L (sigma' <= 1/4). Shape (...)."""
    return torch.linalg.matrix_norm(x, ord=2) ** 2 / (4 * x.shape[-2])


def _descend(grad_fn, x: Tensor, steps: int, lr: float | None, init: Tensor | None) -> Tensor:
    w = torch.zeros(x.shape[:-2] + x.shape[-1:], dtype=x.dtype, device=x.device) if init is None else init.clone()
    step = (1.0 / smoothness(x)).unsqueeze(-1) if lr is None else lr
    for _ in range(steps):
        w = w - step * grad_fn(w)
    return w


def distill_linear(x: Tensor, teacher_w: Tensor, steps: int = 5000, lr: float | None = None,
                   init: Tensor | None = None) -> Tensor:
    """Gradient descent on L from ``init`` (default: zero), ``steps`` full-batch steps of size ``lr``
    (default: 1 / smoothness). Batched: x (..., n, d), teacher_w (..., d) -> w (..., d)."""
    return _descend(lambda w: distillation_gradient(x, w, teacher_w), x, steps, lr, init)


def hard_label_linear(x: Tensor, teacher_w: Tensor, steps: int = 5000, lr: float | None = None,
                      init: Tensor | None = None) -> Tensor:
    """The comparison: the same gradient descent on the teacher's hard labels 1[w_*^T x > 0]
    (logistic regression), which is what learning from labels alone gives."""
    y = (x @ teacher_w.unsqueeze(-1)).squeeze(-1).gt(0).to(x.dtype)  # a comparison: no gradient

    def grad(w):
        residual = torch.sigmoid((x @ w.unsqueeze(-1)).squeeze(-1)) - y
        return (x.transpose(-1, -2) @ residual.unsqueeze(-1)).squeeze(-1) / x.shape[-2]
    return _descend(grad, x, steps, lr, init)


def projection_onto_span(x: Tensor, w: Tensor) -> Tensor:
    """P w with P = X^T (X X^T)^+ X: the orthogonal projection onto the span of the rows of x."""
    proj = torch.linalg.pinv(x) @ x  # (..., d, d); X^+ X = X^T (X X^T)^+ X
    return (proj @ w.unsqueeze(-1)).squeeze(-1)


def distillation_limit(x: Tensor, teacher_w: Tensor, init: Tensor | None = None) -> Tensor:
    """Where gradient descent on L converges: w_hat = P w_* + (I - P) w_0 (w_0 = ``init``, default 0)."""
    limit = projection_onto_span(x, teacher_w)
    if init is not None:
        limit = limit + init - projection_onto_span(x, init)
    return limit


def transfer_risk(x: Tensor, student_w: Tensor, teacher_w: Tensor) -> Tensor:
    """The share of inputs x (..., m, d) on which sign(w^T x) differs from sign(w_*^T x)."""
    s = (x @ student_w.unsqueeze(-1)).squeeze(-1) > 0
    t = (x @ teacher_w.unsqueeze(-1)).squeeze(-1) > 0
    return (s != t).to(x.dtype).mean(-1)


def angle(student_w: Tensor, teacher_w: Tensor) -> Tensor:
    """The angle between w and w_* in radians; divided by pi, the exact risk for isotropic inputs."""
    cos = F.cosine_similarity(student_w, teacher_w, dim=-1)
    return torch.arccos(cos.clamp(-1.0, 1.0))


def end_to_end(weights: list[Tensor]) -> Tensor:
    """The end-to-end vector of a deep linear net W_N ... W_1 (W_1: (width, d), W_N: (1, width))."""
    out = weights[0]
    for w in weights[1:]:
        out = w @ out
    return out.squeeze(0)


def distill_deep_linear(x: Tensor, teacher_w: Tensor, depth: int = 3, width: int = 16, steps: int = 5000,
                        lr: float = 0.5, init_scale: float = 0.1, generator: torch.Generator | None = None,
                        ) -> tuple[Tensor, list[Tensor]]:
    """Gradient descent on L for the deep linear student sigma(W_N ... W_1 x) (``depth`` = N >= 2).

    Each W_k starts as ``init_scale`` * (a standard normal matrix) / sqrt(its fan-in); returns the
    end-to-end vector and the layers. Not batched: x (n, d), teacher_w (d,)."""
    d = x.shape[-1]
    shapes = [(width, d)] + [(width, width)] * (depth - 2) + [(1, width)]
    ws = [(init_scale * torch.randn(*s, generator=generator, dtype=x.dtype) / math.sqrt(s[1])).requires_grad_(True)
          for s in shapes]
    opt = torch.optim.SGD(ws, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        distillation_loss(x, end_to_end(ws), teacher_w).backward()
        opt.step()
    return end_to_end(ws).detach(), [w.detach() for w in ws]


def sample_inputs(n: int, teacher_w: Tensor, gap: float = 0.0, generator: torch.Generator | None = None) -> Tensor:
    """n standard normal inputs in R^d, keeping only those at an angle of at least ``gap`` (radians)
    to the teacher's decision boundary (``gap`` = 0: isotropic). The data-geometry experiments' inputs."""
    d, unit = teacher_w.shape[-1], F.normalize(teacher_w, dim=-1)
    kept, count = [], 0
    while count < n:
        x = torch.randn(2 * n + 16, d, generator=generator, dtype=teacher_w.dtype)
        cos_to_normal = (x @ unit).abs() / x.norm(dim=-1)  # |cos angle(x, w_*)| = sin angle(x, boundary)
        x = x[cos_to_normal >= math.sin(gap)]
        kept.append(x)
        count += len(x)
    return torch.cat(kept)[:n]


if __name__ == "__main__":
    g = torch.Generator().manual_seed(0)
    w_star = torch.randn(50, generator=g, dtype=torch.float64)
    x = torch.randn(20, 50, generator=g, dtype=torch.float64)
    w = distill_linear(x, w_star, steps=3000)
    print("n=20, d=50: |w - P w*| =", float((w - projection_onto_span(x, w_star)).norm()),
          " risk (isotropic) =", float(angle(w, w_star) / math.pi))
