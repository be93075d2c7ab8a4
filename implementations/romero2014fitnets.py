r"""FitNets: Hints for Thin Deep Nets (Romero, Ballas, Kahou, Chassang, Gatta & Bengio, 2014; ICLR 2015).

Paper: https://arxiv.org/abs/1412.6550
Id:    romero2014fitnets

Idea: a thin, deep student ("FitNet") is hard to train from the teacher's outputs alone, so first
its lower half is trained to predict a teacher's intermediate representation (the "hint") from
its own middle layer (the "guided layer") through a small regressor; then the whole student is
trained with knowledge distillation, starting from those weights.

Hint loss (Sec. 2.2, Eq. 3):
    L_HT(W_Guided, W_r) = 1/2 || u_h(x; W_Hint) - r(v_g(x; W_Guided); W_r) ||^2,
u_h: teacher up to the hint layer; v_g: student up to the guided layer; r: regressor, which must
end in the same non-linearity as u_h. Here: summed over channels and positions, averaged over
the batch. Convolutional regressor (Sec. 2.2): a fully connected regressor would be huge, so r is
one convolution with kernel k_1 x k_2 chosen such that N_{g,i} - k_i + 1 = N_{h,i} (N_g, N_h: the
guided and hint spatial sizes; no padding), i.e. k_1*k_2*O_h*O_g weights.
Stage 2, KD (Sec. 2.1, Eq. 2): L_KD(W_S) = H(y_true, P_S) + lambda * H(P_T^tau, P_S^tau),
cross-entropies averaged over the batch, without Hinton's T^2 factor; here kd_weight (lambda).
Training (Sec. 2.3, Algorithm 1): stage 1 minimises L_HT over W_Guided and W_r; stage 2 minimises
L_KD over the whole student, initialised with W*_Guided. The regressor is then discarded.
Layers (paper): the hint is the teacher's middle layer and the guided layer the student's middle
layer (deeper guided layers over-regularise the student). The caller splits the networks.

Defaults and the authors' code (adri-romsor/FitNets, Theano/pylearn2): their CIFAR configs use
tau=3 and lambda=4 decayed linearly towards 1 over training (TeacherDecayOverEpoch); the
defaults here are tau=3 and kd_weight=4, and `annealed_kd_weight` is a simplified linear ramp
(from the first to the last epoch) that the caller may use. Their hint cost sums the squared
error over one axis and averages over the rest, and switches to a cross-entropy for tanh/sigmoid
hint layers; this file follows the paper's 1/2 squared L2 norm per sample.
Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "regressor_kernel_size", "ConvRegressor", "hint_loss", "fitnets_kd_loss",
    "annealed_kd_weight", "hint_stage_step", "kd_stage_step",
]


def regressor_kernel_size(guided_size: tuple[int, ...], hint_size: tuple[int, ...]) -> tuple[int, ...]:
    """k_i = N_{g,i} - N_{h,i} + 1 (Sec. 2.2): a valid convolution maps N_g to N_h."""
    if len(guided_size) != len(hint_size) or len(guided_size) not in (1, 2):
        raise ValueError(f"sizes must both be 1-D or 2-D, got {guided_size} and {hint_size}")
    k = tuple(g - h + 1 for g, h in zip(guided_size, hint_size))
    if min(k) < 1:
        raise ValueError(f"hint {hint_size} is larger than the guided layer {guided_size}")
    return k


class ConvRegressor(nn.Module):
    """r(.; W_r): conv (guided channels -> hint channels, kernel from the sizes), then the hint's
    non-linearity. Sizes of length 2 give a Conv2d (images), of length 1 a Conv1d (sequences)."""

    def __init__(self, guided_channels: int, hint_channels: int, guided_size: tuple[int, ...],
                 hint_size: tuple[int, ...], nonlinearity: nn.Module | None = None):
        super().__init__()
        kernel = regressor_kernel_size(guided_size, hint_size)
        conv = {1: nn.Conv1d, 2: nn.Conv2d}[len(kernel)]
        self.conv = conv(guided_channels, hint_channels, kernel_size=kernel, padding=0)
        # The paper requires u_h and r to share their non-linearity: pass e.g. nn.ReLU() for a post-ReLU hint.
        self.nonlinearity = nonlinearity if nonlinearity is not None else nn.Identity()

    def forward(self, guided: Tensor) -> Tensor:
        return self.nonlinearity(self.conv(guided))


def hint_loss(regressed_guided: Tensor, teacher_hint: Tensor) -> Tensor:
    """1/2 ||u_h - r(v_g)||^2, summed over (C, H, W), averaged over the batch. Teacher detached."""
    if regressed_guided.shape != teacher_hint.shape:
        raise ValueError(f"regressor output {tuple(regressed_guided.shape)} != hint {tuple(teacher_hint.shape)}")
    diff = teacher_hint.detach() - regressed_guided
    return 0.5 * diff.pow(2).flatten(1).sum(1).mean()


def fitnets_kd_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor,
                    kd_weight: float = 4.0, temperature: float = 3.0) -> Tensor:
    """H(y, P_S) + kd_weight * H(P_T^tau, P_S^tau), each averaged over the batch (Eq. 2)."""
    ce = F.cross_entropy(student_logits, targets)
    p_teacher = F.softmax(teacher_logits.detach() / temperature, dim=1)
    soft_ce = -(p_teacher * F.log_softmax(student_logits / temperature, dim=1)).sum(1).mean()
    return ce + kd_weight * soft_ce


def annealed_kd_weight(epoch: int, epochs: int, initial: float = 4.0, final: float = 1.0) -> float:
    """Linear decay of lambda from `initial` (epoch 0) to `final` (last epoch)."""
    return initial + (final - initial) * min(epoch / max(epochs - 1, 1), 1.0)


def hint_stage_step(student_guided: nn.Module, regressor: nn.Module, teacher_hint: nn.Module,
                    x: Tensor, optimizer: torch.optim.Optimizer) -> Tensor:
    """Stage 1, one step: optimizer holds the parameters of student_guided (v_g) and regressor (r)."""
    teacher_hint.eval()  # u_h: the teacher up to its hint layer, frozen
    with torch.no_grad():
        hint = teacher_hint(x)
    loss = hint_loss(regressor(student_guided(x)), hint)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


def kd_stage_step(student: nn.Module, teacher: nn.Module, x: Tensor, targets: Tensor,
                  optimizer: torch.optim.Optimizer, kd_weight: float = 4.0,
                  temperature: float = 3.0) -> Tensor:
    """Stage 2, one step of L_KD on the whole student (which contains the stage-1 guided part)."""
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(x)
    loss = fitnets_kd_loss(student(x), teacher_logits, targets, kd_weight, temperature)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


if __name__ == "__main__":
    torch.manual_seed(0)
    guided, hint = torch.randn(4, 8, 16, 16), torch.randn(4, 32, 8, 8).relu()
    r = ConvRegressor(8, 32, (16, 16), (8, 8), nonlinearity=nn.ReLU())  # 9x9 kernel
    print("kernel", r.conv.kernel_size, "hint loss", hint_loss(r(guided), hint).item())
