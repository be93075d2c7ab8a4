r"""Mean teachers are better role models (Tarvainen & Valpola, NIPS 2017).

Paper: https://arxiv.org/abs/1703.01780
Code:  https://github.com/CuriousAI/mean-teacher (official; pytorch/main.py update_ema_variables,
       train and get_current_consistency_weight; pytorch/mean_teacher/losses.py softmax_mse_loss,
       softmax_kl_loss; pytorch/mean_teacher/ramps.py sigmoid_rampup; pytorch/experiments/cifar10_test.py)
Id:    tarvainen2017mean

Idea: semi-supervised learning by consistency. A student sees a noisy copy of each input, labelled
or not, and is asked to agree with a teacher that sees another noisy copy. The teacher is not
trained and not pretrained: its weights are an exponential moving average of the student's, so it
is a temporal ensemble of the student that is available at every step and usually more accurate
than the student itself. Labels only enter through the student's cross-entropy on the labelled part
of each batch; the unlabelled part teaches through the consistency cost.

Method (Sec. 2 of the paper; the code for the exact forms):
    theta'_t = a_t theta'_{t-1} + (1 - a_t) theta_t,  a_t = min(1 - 1/(t + 1), alpha)   (after each step)
    J        = w(e) * 1/(B C) sum_i || softmax(f(x_i + eta', theta')) - softmax(f(x_i + eta, theta)) ||^2
    w(e)     = w_max exp(-5 (1 - min(e, E_r)/E_r)^2)        (sigmoid ramp-up over E_r epochs; 1 if E_r = 0)
    L        = 1/B sum_{i labelled} CE(f(x_i + eta, theta), y_i) + J
with B the whole mini-batch (labelled and unlabelled: the code's class loss is a sum with
ignore_index, divided by the minibatch size), C the classes, eta and eta' independent noise. No
gradient reaches the teacher. min(1 - 1/(t + 1), alpha) is the code's warm start ("use the true
average until the exponential average is more correct"); the paper's equation is the plain EMA.

Defaults and where they come from: alpha = 0.99, w_max = 100 (MSE), E_r = 5 epochs: the PyTorch
CIFAR-10 4000-label experiment (experiments/cifar10_test.py; 1000 labels use alpha = 0.97); the
README's rules of thumb: MSE weights between C and C^2, half or a quarter of each batch labelled.
The EMA covers parameters only: the teacher's BatchNorm statistics are its own, updated by its own
forward passes in train mode (the code runs ema_model.train() during training), ``buffers="own"``;
``buffers="copy"`` copies the student's instead. The model the code keeps and reports is the
teacher (its best checkpoint is chosen by the EMA model's accuracy).

Not implemented: the code's optional second logit layer with a logit-distance cost
(--logit-distance-cost, used in its CIFAR runs): one head does both jobs here, as in the paper's
main description. The input noise is the caller's (the paper: translations, flips, Gaussian noise,
dropout; :func:`input_noise` gives random shifts and Gaussian noise for sequences and images).
Depends only on torch.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["make_teacher", "ema_update", "softmax_mse", "softmax_kl", "sigmoid_rampup", "consistency_weight",
           "mean_teacher_loss", "input_noise"]


def make_teacher(student: nn.Module) -> nn.Module:
    """The teacher: a copy of the student with requires_grad off (it changes only through ema_update)."""
    return copy.deepcopy(student).requires_grad_(False)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, alpha: float, step: int, buffers: str = "own") -> float:
    """theta' <- a theta' + (1 - a) theta with a = min(1 - 1/(step + 1), alpha); returns a.

    ``step``: the number of optimiser steps taken before this update (0 for the first). ``buffers``:
    "own" leaves the teacher's buffers (BN statistics) alone, as in the code; "copy" copies the
    student's."""
    if buffers not in ("own", "copy"):
        raise ValueError(f"buffers must be 'own' or 'copy', got {buffers!r}")
    a = min(1.0 - 1.0 / (step + 1), alpha)
    t_params, s_params = list(teacher.parameters()), list(student.parameters())
    if len(t_params) != len(s_params):
        raise ValueError(f"teacher and student differ: {len(t_params)} vs {len(s_params)} parameter tensors")
    for tp, sp in zip(t_params, s_params):
        tp.mul_(a).add_(sp.detach(), alpha=1.0 - a)
    if buffers == "copy":
        for tb, sb in zip(teacher.buffers(), student.buffers()):
            tb.copy_(sb)
    return a


def softmax_mse(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """1/(B C) sum ||softmax(z_s) - softmax(z_t)||^2 (the code's softmax_mse_loss / B); teacher detached."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"logit shapes differ: {tuple(student_logits.shape)} vs {tuple(teacher_logits.shape)}")
    return (F.softmax(student_logits, 1) - F.softmax(teacher_logits.detach(), 1)).pow(2).mean()


def softmax_kl(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """1/B sum KL(softmax(z_t) || softmax(z_s)) (the code's softmax_kl_loss / B); teacher detached."""
    return F.kl_div(F.log_softmax(student_logits, 1), F.softmax(teacher_logits.detach(), 1), reduction="batchmean")


def sigmoid_rampup(current: float, rampup_length: float) -> float:
    """exp(-5 (1 - t)^2) with t = clip(current / rampup_length, 0, 1); 1 when rampup_length is 0."""
    if rampup_length == 0:
        return 1.0
    phase = 1.0 - min(max(current, 0.0), rampup_length) / rampup_length
    return math.exp(-5.0 * phase * phase)


def consistency_weight(epoch: float, max_weight: float = 100.0, rampup_epochs: float = 5.0) -> float:
    """w(e) = max_weight * sigmoid_rampup(e, rampup_epochs) (the code's get_current_consistency_weight)."""
    return max_weight * sigmoid_rampup(epoch, rampup_epochs)


def mean_teacher_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, labeled: Tensor,
                      weight: float, consistency: str = "mse") -> dict[str, Tensor]:
    """{"ce": CE over the labelled rows / B, "consistency": weight * softmax_mse (or softmax_kl)}.

    ``labeled``: a boolean mask over the batch (rows with a label); ``targets`` of unlabelled rows are
    ignored. B is the whole batch, as in the code."""
    if labeled.dtype != torch.bool or labeled.shape != targets.shape:
        raise ValueError("labeled must be a boolean mask with the shape of targets")
    if not labeled.any():
        raise ValueError("a mini-batch needs at least one labelled example (the code asserts it)")
    ce = F.cross_entropy(student_logits[labeled], targets[labeled], reduction="sum") / len(targets)
    if consistency not in ("mse", "kl"):
        raise ValueError(f"consistency must be 'mse' or 'kl', got {consistency!r}")
    cons = softmax_mse(student_logits, teacher_logits) if consistency == "mse" else softmax_kl(student_logits, teacher_logits)
    return {"ce": ce, "consistency": weight * cons}


def input_noise(x: Tensor, sigma: float = 0.15, max_shift: int = 2, generator: torch.Generator | None = None) -> Tensor:
    """x shifted by a random whole number of positions in [-max_shift, max_shift] along every spatial
    axis (circularly, per sample) plus N(0, sigma^2) noise. Shapes (B, C, L) or (B, C, H, W)."""
    out = x.clone()
    if max_shift > 0:
        dims = tuple(range(2, x.dim()))
        shifts = torch.randint(-max_shift, max_shift + 1, (x.shape[0], len(dims)), generator=generator)
        for i in range(x.shape[0]):
            out[i] = torch.roll(x[i], tuple(shifts[i].tolist()), tuple(d - 1 for d in dims))
    if sigma > 0:
        out = out + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return out


if __name__ == "__main__":
    torch.manual_seed(0)
    student = nn.Sequential(nn.Flatten(), nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))
    teacher = make_teacher(student)
    opt = torch.optim.SGD(student.parameters(), lr=0.1)
    x, y = torch.randn(16, 1, 20), torch.randint(0, 5, (16,))
    labeled = torch.arange(16) < 4  # a quarter of the batch labelled
    for step in range(3):
        terms = mean_teacher_loss(student(input_noise(x)), teacher(input_noise(x)), y, labeled,
                                  consistency_weight(step, 100.0, 5.0))
        opt.zero_grad()
        sum(terms.values()).backward()
        opt.step()
        a = ema_update(teacher, student, 0.99, step)
        print(step, {k: round(v.item(), 4) for k, v in terms.items()}, "EMA decay used", round(a, 3))
