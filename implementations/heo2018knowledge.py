r"""Knowledge Transfer via Distillation of Activation Boundaries Formed by Hidden Neurons
(Heo, Lee, Yun & Choi, AAAI 2019).

Paper: https://arxiv.org/abs/1811.03233
Code:  https://github.com/bhheo/AB_distillation (official)
Id:    heo2018knowledge

Idea: a ReLU neuron splits its input space into the region where it fires and the region where it
does not; the hyperplane between them is its activation boundary, and the boundaries of all the
neurons together shape the network's decision regions. Transfer those boundaries rather than the
activation values: make every student neuron (through a connector) fire exactly where the
matching teacher neuron fires, and stay off where it is off.

Activation transfer loss (the ideal, not differentiable): the number of neurons whose on/off state
differs, || rho(T(x)) - rho(r(S(x))) ||_1 with rho(t) = 1[t > 0] elementwise on the PRE-ReLU
responses T(x) of the teacher and S(x) of the student, r the connector. ``boundary_disagreement``
returns it as a fraction of the neurons (the official code's "activation similarity" is 1 minus it).

Alternative loss (the piecewise-differentiable surrogate that is trained), margin mu:
    L(x) = || rho(T(x)) (.) sigma(mu 1 - r(S(x))) + (1 - rho(T(x))) (.) sigma(mu 1 + r(S(x))) ||_2^2
with sigma = ReLU: a squared hinge that pushes a student response above +mu where the teacher's
neuron is on (T > 0) and below -mu where it is off (T <= 0). It is zero iff every student response
is on the teacher's side with at least the margin; its gradient is nonzero only at neurons on the
wrong side of (or inside the margin of) the boundary; only the SIGN of T enters. ``ab_loss`` is one
layer's term: the sum over neurons and positions, divided by the batch size (the official
criterion_alternative_L2(...) / batch_size).

Connector r (``ABConnector``): a bias-free 1x1 convolution to the teacher's width followed by batch
normalisation, He-normal initialised (std sqrt(2 / (k k C_out))), BN weight 1 and bias 0, as the
official code (Conv1d for 1-D maps, which the code does not have).

Training (official cifar10_AB_distillation.py): an initialisation phase optimises the student and
the connectors on the alternative loss alone (no labels); then the connectors are dropped and the
student is trained on the task. What the official script does in each part, and what this file
gives for it:
- layers: the pre-ReLU map at the end of each of the three groups (WRN), weights 1/4, 1/2, 1 from
  shallow to deep (``ab_layer_weights``: 2^(i - n + 1), as RepDistiller writes it), and the sum
  times 3/1000 (the recipe's ab_weight);
- margin mu = 1.0 (the official code and RepDistiller);
- second phase: the official CIFAR-10 script trains with the KD term alone, the KL divergence at
  temperature 3 summed over classes, averaged over the batch, without the T^2 factor and with the
  cross-entropy term commented out (``ab_kd_loss`` is that term; the recipe adds CE with weight 0);
- the official script puts the teacher in train mode during the initialisation (its BN uses batch
  statistics and its running statistics drift); here the teacher is in eval mode (the network as
  trained; the harness never changes the teacher). Recorded as a difference, not followed.
The paper's own sections, equations and epoch counts could not be read (the stored copies return
only the abstract): the equation above is the implementation notes' reading of the paper's loss,
and it agrees term by term with the official criterion (a test pins the two against each other).

Pre-ReLU maps. The harness's models return post-ReLU stage outputs, whose negative side (needed
for T <= 0 vs the margin) is lost. ``PreReLUTap`` keeps, through forward hooks, a copy of the
output of chosen modules (the last BatchNorm of each stage: ``last_batchnorm``), taken before the
in-place ReLU that follows overwrites it; ``pre_relu_maps`` runs a (teacher) network once in eval
mode, without gradients, and returns those maps. Depends only on torch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ab_loss", "boundary_disagreement", "ab_layer_weights", "multi_layer_ab_loss", "ab_kd_loss",
           "ABConnector", "PreReLUTap", "last_batchnorm", "pre_relu_maps"]


def ab_loss(student_preact: Tensor, teacher_preact: Tensor, margin: float = 1.0) -> Tensor:
    """The alternative loss of one layer: sum of the squared hinges over neurons / batch size.

    ``student_preact`` is r(S(x)) (already through the connector), ``teacher_preact`` is T(x), both
    pre-ReLU and of one shape (B, C, ...). The teacher is detached; only its sign is used."""
    if student_preact.shape != teacher_preact.shape:
        raise ValueError(f"shapes differ: student {tuple(student_preact.shape)} vs teacher "
                         f"{tuple(teacher_preact.shape)} (map the student through the connector)")
    on = teacher_preact.detach() > 0                           # rho(T(x))
    hinge = torch.where(on, F.relu(margin - student_preact),   # on: push r(S) above +mu
                        F.relu(margin + student_preact))       # off (T <= 0): push r(S) below -mu
    return hinge.pow(2).sum() / student_preact.shape[0]


@torch.no_grad()
def boundary_disagreement(student_preact: Tensor, teacher_preact: Tensor) -> Tensor:
    """The activation transfer loss as a fraction: share of neurons whose on/off state differs."""
    return ((student_preact > 0) ^ (teacher_preact > 0)).float().mean()


def ab_layer_weights(n: int) -> list[float]:
    """The official layer weights, 2^(i - n + 1) for i = 0..n-1: ..., 1/4, 1/2, 1 (deepest last)."""
    return [2.0 ** (i - n + 1) for i in range(n)]


def multi_layer_ab_loss(student_preacts: list[Tensor], teacher_preacts: list[Tensor], margin: float = 1.0,
                        weights: list[float] | None = None) -> Tensor:
    """sum_i w_i ab_loss(student_i, teacher_i), weights ``ab_layer_weights`` unless given."""
    if len(student_preacts) != len(teacher_preacts):
        raise ValueError(f"{len(student_preacts)} student maps vs {len(teacher_preacts)} teacher maps")
    w = ab_layer_weights(len(student_preacts)) if weights is None else weights
    return sum(wi * ab_loss(s, t, margin) for wi, s, t in zip(w, student_preacts, teacher_preacts))


def ab_kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 3.0) -> Tensor:
    """The official second phase's KD term: KL(p_t^T || p_s^T) summed over classes, batch mean, no T^2."""
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean()


class ABConnector(nn.Module):
    """r: bias-free 1x1 convolution from the student's channels to the teacher's, then BatchNorm."""

    def __init__(self, student_channels: int, teacher_channels: int, dim: int = 2):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {dim}")
        conv, bn = (nn.Conv1d, nn.BatchNorm1d) if dim == 1 else (nn.Conv2d, nn.BatchNorm2d)
        self.conv = conv(student_channels, teacher_channels, 1, bias=False)
        self.bn = bn(teacher_channels)
        nn.init.normal_(self.conv.weight, 0.0, math.sqrt(2.0 / teacher_channels))  # k = 1: 2 / (1 * 1 * C_out)
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
    """Forward hooks keeping a copy of each module's latest output (``maps``, in module order).

    The copy is taken inside the hook, before an in-place ReLU that follows the module overwrites
    its output; it stays in the autograd graph. ``remove()`` takes the hooks off (idempotent)."""

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
    s = torch.randn(4, 8, 6, 6, requires_grad=True)  # student pre-ReLU map (8 channels)
    t = torch.randn(4, 32, 6, 6)                      # teacher pre-ReLU map (32 channels)
    conn = ABConnector(8, 32)
    loss = 3 / 1000 * ab_loss(conn(s), t, margin=1.0)
    loss.backward()
    print("AB loss", round(loss.item(), 4), "disagreement", round(boundary_disagreement(conn(s), t).item(), 3))
