r"""Improved Knowledge Distillation via Teacher Assistant (Mirzadeh, Farajtabar, Li, Levine,
Matsukawa & Ghasemzadeh, AAAI 2020; arXiv 2019).

Paper: https://ojs.aaai.org/index.php/AAAI/article/view/5963 (arXiv: https://arxiv.org/abs/1902.03393)
Code:  https://github.com/imirzadeh/Teacher-Assistant-Knowledge-Distillation (PyTorch, the authors')
Id:    mirzadeh2019improved

Idea: a student learns less from a teacher that is much larger than it (the capacity gap). A
teacher assistant (TA) of intermediate size is distilled from the teacher first, then frozen and
used as the student's teacher: T -> TA -> S, each arrow plain knowledge distillation. Longer
chains of assistants (multi-step distillation) do better still.

One step (Eqs. 1-3): with the student's logits a_s, the (frozen) teacher's a_t, labels y and
temperature tau,
    L_SL = H(softmax(a_s), y),   L_KD = tau^2 KL(softmax(a_t / tau) || softmax(a_s / tau)),
    L = (1 - lambda) L_SL + lambda L_KD.
The chain (Sec. "Teacher Assistant Knowledge Distillation"): train T; distil T -> A_1; freeze A_1;
distil A_1 -> A_2; ...; distil A_k -> S. A chain with no assistant is baseline KD (BLKD).
Reductions: cross-entropy averaged over the batch; KL summed over classes, averaged over the batch.
The tau^2 factor and the (1 - lambda) / lambda weighting are read in the authors' train.py, whose
README calls tau and lambda the parameters of the paper's Eq. 3 (the typeset equations themselves
were not read).

Defaults: the paper tunes lambda (kd_weight) and tau per run with a hyper-parameter optimiser (the
code's search space: lambda in 0.05..1, tau in {1, 2, 5, 10, 15, 20}) and gives no single pair;
the defaults here, tau = 4 and lambda = 0.9, are those of this atlas's Hinton KD recipe, so that
TAKD and direct KD differ only by the path.
Paper vs the authors' code (train.py), and which this file follows:
- The code's KD term is nn.KLDivLoss() with its default reduction, the mean over batch *and*
  classes: its KL is the true KL divided by the number of classes (10 or 100), so its lambda
  weighs a term 10-100 times smaller than the formula's. This file follows the formula (the KL
  averaged over samples only).
- The code runs the teacher without torch.no_grad() (its parameters are not in the optimiser, so
  nothing moves); here the teacher's logits are detached.
Left out: the VC-dimension argument and the loss-landscape study; which assistant sizes to use is
the caller's choice (the paper's TAs are plain CNNs or ResNets of the same family, of sizes between
the teacher's and the student's).
Depends only on torch.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["kd_term", "takd_loss", "distillation_path"]


def kd_term(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 4.0) -> Tensor:
    """L_KD = tau^2 KL(softmax(a_t/tau) || softmax(a_s/tau)), summed over classes, mean over the batch."""
    log_q = F.log_softmax(student_logits / temperature, dim=-1)  # student
    log_p = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)  # teacher (or assistant), frozen
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * temperature**2


def takd_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, kd_weight: float = 0.9,
              temperature: float = 4.0) -> dict[str, Tensor]:
    """One step of the chain (Eq. 3): {"ce": (1 - lambda) L_SL, "kd": lambda L_KD}; lambda = kd_weight."""
    return {"ce": (1.0 - kd_weight) * F.cross_entropy(student_logits, targets),
            "kd": kd_weight * kd_term(student_logits, teacher_logits, temperature)}


def distillation_path(teacher: nn.Module, make_models: Sequence[Callable[[], nn.Module]],
                      distil: Callable[[nn.Module, nn.Module], nn.Module]) -> list[nn.Module]:
    """T -> A_1 -> ... -> S: ``[teacher, *trained models]``; ``make_models`` from the first assistant
    to the student. ``distil(new_model, frozen_teacher)`` trains the new model (with
    :func:`takd_loss`) and returns it; each teacher is frozen (eval mode, no gradients) first."""
    chain = [teacher]
    for make in make_models:
        frozen = chain[-1].eval().requires_grad_(False)
        chain.append(distil(make(), frozen))
    return chain


if __name__ == "__main__":
    torch.manual_seed(0)
    z = torch.randn(8, 10, requires_grad=True)
    v, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    out = takd_loss(z, v, y)
    sum(out.values()).backward()
    print({k: round(t.item(), 4) for k, t in out.items()}, "grad norm", z.grad.norm().item())
