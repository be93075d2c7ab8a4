r"""Distilling the Knowledge in a Neural Network (Hinton, Vinyals & Dean, 2015).

Paper: https://arxiv.org/abs/1503.02531
Id:    hinton2015distilling

Idea: a trained teacher (a large net or an ensemble) gives small but informative probabilities
to the wrong classes. Raising the softmax temperature T of teacher and student exposes that
structure, and the student learns to match these soft targets as well as the true labels.

Soft targets (Sec. 2, Eq. 1):  q_i = exp(z_i / T) / sum_j exp(z_j / T).
Soft-target loss: the cross-entropy between the teacher's p = softmax(v / T) and the student's
q = softmax(z / T); this file uses KL(p || q), which differs from it only by the teacher's
entropy (a constant for the student), so the gradient is the same (Sec. 2.1, Eq. 2):
    dC/dz_i = (1/T) (q_i - p_i).
For T large against the logits and zero-mean logits (Sec. 2.1, Eqs. 3-4):
    dC/dz_i ~= (z_i - v_i) / (N T^2),
so distillation becomes matching logits, i.e. minimising (1/2)(z_i - v_i)^2 (Sec. 2.1).
Because the soft-target gradients scale as 1/T^2, they are multiplied by T^2 when mixed with the
hard-label loss (end of Sec. 2), which keeps their size roughly constant as T changes:
    L = ce_weight * CE(z, y) + kd_weight * T^2 * KL(softmax(v/T) || softmax(z/T)).
Reduction: the KL is summed over classes and averaged over the batch ("batchmean"); the CE is
averaged over the batch.

Defaults: T=4, ce_weight=0.1, kd_weight=0.9 are the common CIFAR-100 setting (RepDistiller,
mdistiller), not the paper's: the paper reports T from 1 to 20 (e.g. T=20 for MNIST) and "a
considerably lower weight" on the hard-label term, without one fixed pair of weights.
Left out: the paper's specialist ensembles (Sec. 5) and soft-target regularisation of speech
models; only the distillation loss is here. The authors released no code.
Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["kd_loss", "KDLoss"]


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 4.0) -> Tensor:
    """T^2 * KL(softmax(v/T) || softmax(z/T)), summed over classes, averaged over the batch.

    student_logits z and teacher_logits v: (batch, classes). The teacher is detached.
    """
    log_q = F.log_softmax(student_logits / temperature, dim=-1)  # student, log q_i
    log_p = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)  # teacher, log p_i
    # "batchmean" is the true KL averaged over samples; "mean" would also divide by the classes.
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * temperature**2


class KDLoss(nn.Module):
    """The weighted terms {"ce": ce_weight * CE(z, y), "kd": kd_weight * kd_loss(z, v, T)}.

    The loss is the sum of the dict's values (as in the harness, which sums and logs them).
    """

    def __init__(self, temperature: float = 4.0, ce_weight: float = 0.1, kd_weight: float = 0.9):
        super().__init__()
        self.temperature, self.ce_weight, self.kd_weight = temperature, ce_weight, kd_weight

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, targets: Tensor
    ) -> dict[str, Tensor]:
        ce = F.cross_entropy(student_logits, targets)  # averaged over the batch
        kd = kd_loss(student_logits, teacher_logits, self.temperature)
        return {"ce": self.ce_weight * ce, "kd": self.kd_weight * kd}


if __name__ == "__main__":
    torch.manual_seed(0)
    z = torch.randn(8, 10, requires_grad=True)
    v, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    out = KDLoss()(z, v, y)
    sum(out.values()).backward()
    print({k: round(t.item(), 4) for k, t in out.items()}, "grad norm", z.grad.norm().item())
