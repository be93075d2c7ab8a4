r"""A Comprehensive Overhaul of Feature Distillation (Heo, Kim, Yun, Park, Kwak & Choi, ICCV 2019).

Paper: https://arxiv.org/abs/1904.01866
Code:  https://github.com/clovaai/overhaul-distillation (official)
Id:    heo2019comprehensive

Idea: design feature distillation around the ReLU. Distil where the information is, the PRE-ReLU
map at the end of each stage; keep what the teacher's ReLU keeps (positive responses, copied as
they are) and drop what it throws away (how negative a response is): negative teacher responses
become one per-channel margin, the expected value of the channel's negative responses, and a
student response below the target there is not penalised at all.

Teacher transform, the margin ReLU: sigma_m(x) = max(x, m_c) for channel c. The margin is
m_c = E[x | x < 0] of the channel's pre-ReLU response. The response is the output of a
BatchNorm, roughly x ~ N(beta_c, gamma_c^2) (its learned shift and scale: the official code reads
bn.bias and |bn.weight|, not the running statistics), so for x ~ N(mu, s^2)
    m = mu - s phi(mu / s) / Phi(-mu / s)
with phi, Phi the standard normal density and distribution (the mean of a normal truncated to
x < 0). When Phi(-mu / s) <= 0.001 (almost no negative responses) the official code uses -3 s
instead; ``margin_from_bn`` does the same.
Student transform: a bias-free 1x1 convolution to the teacher's width followed by BatchNorm
(``OFDConnector``, He-normal initialised, BN weight 1 and bias 0, as the official connector).
Distance, the partial L2: for target T = sigma_m(teacher) and student S,
    d_p(T, S) = sum_i 0 if S_i <= T_i <= 0, else (T_i - S_i)^2
(``partial_l2``; the official code: MSE kept where S > T or T > 0).
Loss (official CIFAR-100 code, CIFAR-100/distiller.py and train_with_distillation.py):
    L = CE + (1/1000) (1/B) sum_k 2^(k - n + 1) d_p(sigma_m(T_k), r_k(S_k))
over the n distilled positions k = 0..n-1 (weights ..., 1/4, 1/2, 1, deepest last), B the batch
size; ``ofd_loss`` is one position's d_p / B, ``ofd_layer_weights`` the weights; the recipe holds
the 1/1000 (ImageNet: 1/10000 in the code). Positions (code): the pre-ReLU map at the end of each
group; the margins come from the BatchNorm that produces it.

Paper vs code. The paper's text was not readable beyond the abstract (stored copies); the
transform, margin and distance above are the official code's, and the code is what this file
follows. Two things of the code are not followed: (1) it keeps the teacher in train mode while
distilling (its BatchNorm normalises with the batch's statistics and its running statistics
drift); here the teacher runs in eval mode (``pre_relu_maps``); (2) a margin for gamma = 0 would
divide by zero there; here the scale is floored (the margin is then beta or 0).

Pre-ReLU maps: ``PreReLUTap`` (forward hooks copying a module's output before an in-place ReLU
overwrites it) and ``pre_relu_maps`` (a teacher's maps, eval mode, no gradients), the same helpers
as implementations/heo2018knowledge.py, repeated so that this file stands alone. Depends only on
torch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["margin_from_bn", "margin_relu", "partial_l2", "ofd_loss", "ofd_layer_weights", "OFDConnector",
           "PreReLUTap", "last_batchnorm", "pre_relu_maps"]


def margin_from_bn(weight: Tensor, bias: Tensor, min_negative_mass: float = 1e-3) -> Tensor:
    """Per channel, E[x | x < 0] for x ~ N(bias, weight^2) (a BatchNorm's output); -3 |weight| where
    P(x < 0) <= ``min_negative_mass``. ``weight``, ``bias``: a BatchNorm's (C,) affine parameters."""
    s = weight.detach().abs().double().clamp_min(1e-12)
    mu = bias.detach().double()
    mass = torch.special.ndtr(-mu / s)                              # Phi(-mu / s) = P(x < 0)
    density = torch.exp(-0.5 * (mu / s) ** 2) / math.sqrt(2 * math.pi)  # phi(mu / s)
    truncated = mu - s * density / mass.clamp_min(1e-300)
    return torch.where(mass > min_negative_mass, truncated, -3 * s).to(weight.dtype)


def margin_relu(x: Tensor, margin: Tensor) -> Tensor:
    """sigma_m(x) = max(x, m_c) with one margin per channel (dim 1) of ``x`` (B, C, ...)."""
    return torch.maximum(x, margin.view(1, -1, *([1] * (x.dim() - 2))).to(x.dtype))


def partial_l2(student: Tensor, target: Tensor) -> Tensor:
    """d_p: sum of (target - student)^2 except where student <= target <= 0 (nothing to learn there)."""
    if student.shape != target.shape:
        raise ValueError(f"shapes differ: student {tuple(student.shape)} vs target {tuple(target.shape)}")
    keep = (student > target) | (target > 0)
    return ((student - target).pow(2) * keep).sum()


def ofd_loss(student_preact: Tensor, teacher_preact: Tensor, margin: Tensor) -> Tensor:
    """One position: d_p(sigma_m(T), r(S)) / B. ``student_preact`` is r(S) (through the connector)."""
    target = margin_relu(teacher_preact.detach(), margin)
    return partial_l2(student_preact, target) / student_preact.shape[0]


def ofd_layer_weights(n: int) -> list[float]:
    """The official position weights 1 / 2^(n - k - 1), k = 0..n-1: ..., 1/4, 1/2, 1 (deepest last)."""
    return [2.0 ** (k - n + 1) for k in range(n)]


class OFDConnector(nn.Module):
    """r: bias-free 1x1 convolution from the student's channels to the teacher's, then BatchNorm."""

    def __init__(self, student_channels: int, teacher_channels: int, dim: int = 2):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {dim}")
        conv, bn = (nn.Conv1d, nn.BatchNorm1d) if dim == 1 else (nn.Conv2d, nn.BatchNorm2d)
        self.conv = conv(student_channels, teacher_channels, 1, bias=False)
        self.bn = bn(teacher_channels)
        nn.init.normal_(self.conv.weight, 0.0, math.sqrt(2.0 / teacher_channels))  # 2 / (1 * 1 * C_out)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


def last_batchnorm(module: nn.Module) -> nn.Module:
    """The last BatchNorm inside ``module`` (in a conv-BN-ReLU stage: the map just before its ReLU)."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        raise ValueError(f"{type(module).__name__} has no BatchNorm layer")
    return bns[-1]


class PreReLUTap:
    """Forward hooks keeping a copy of each module's latest output (``maps``, in module order); the
    copy is taken before an in-place ReLU overwrites it and stays in the graph. ``remove()`` ends it."""

    def __init__(self, modules: list[nn.Module]):
        self.maps: list[Tensor | None] = [None] * len(modules)
        self._handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(modules)]

    def _hook(self, i: int):
        def hook(module, args, out):
            self.maps[i] = out.clone()
        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    @property
    def active(self) -> bool:
        return bool(self._handles)


def pre_relu_maps(model: nn.Module, x: Tensor, modules: list[nn.Module]) -> list[Tensor]:
    """Run ``model(x)`` once in eval mode without gradients; the outputs of ``modules`` (a teacher's)."""
    was = model.training
    tap = PreReLUTap(modules)
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        tap.remove()
        model.train(was)
    return tap.maps


if __name__ == "__main__":
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(32)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-1, 1)
    m = margin_from_bn(bn.weight, bn.bias)
    s = torch.randn(4, 8, 6, 6, requires_grad=True)   # student pre-ReLU map (8 channels)
    t = torch.randn(4, 32, 6, 6) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    loss = ofd_loss(OFDConnector(8, 32)(s), t, m) / 1000
    loss.backward()
    print("margins", m[:4].tolist(), "OFD loss", round(loss.item(), 4))
