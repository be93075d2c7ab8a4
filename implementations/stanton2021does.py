r"""Does Knowledge Distillation Really Work? (Stanton, Izmailov, Kirichenko, Alemi & Wilson, NeurIPS 2021).

Paper: https://arxiv.org/abs/2106.05945
Code:  https://github.com/samuelstanton/gnosis (official)
Id:    stanton2021does

Idea: a distilled student is judged by two different things. *Generalisation* is its own test
accuracy; *fidelity* is how closely it matches its teacher, measured by how often the two top-1
predictions agree and by the KL divergence between their predictive distributions. The paper
finds that students often match their teacher poorly, on test data and even on the very data they
were distilled on, including in self-distillation where the student could copy the teacher
exactly; it traces this to optimisation. This file holds the paper's distillation objective, its
ensemble teacher and its two fidelity metrics; the experiments are in the notebook.

Objective (Sec. 3.1, Eq. 1), student logits z_s, teacher logits z_t, temperature tau, weight alpha:
    L_s = alpha * L_NLL(z_s, y) + (1 - alpha) * L_KD(z_s, z_t),
    L_KD = - tau^2 * sum_j softmax(z_t / tau)_j * log softmax(z_s / tau)_j,
a cross-entropy, summed over classes and averaged over the batch. It equals tau^2 * KL(p_t || p_s)
plus tau^2 times the teacher's entropy, which does not depend on the student: the gradients are
those of Hinton et al.'s KL form, but the value is not 0 when the student equals the teacher. This
file follows the paper and the authors' code (``TeacherStudentFwdCrossEntLoss``, the default loss of
their configs), and a test pins the cross-entropy form.
Ensemble teacher (Sec. 3.1): z_t = log((1/m) sum_i softmax(z_i)), the log of the averaged
probabilities, as ``reduce_ensemble_logits`` of the authors' code; the temperature is applied to
these averaged log-probabilities, not to each member (their loss divides after reducing).

Fidelity (Sec. 3.2, Eqs. 2-3), on n inputs, without temperature:
    top-1 agreement = (1/n) sum_i 1[argmax_j p_t(j | x_i) = argmax_j p_s(j | x_i)],
    predictive KL   = (1/n) sum_i KL(p_t(. | x_i) || p_s(. | x_i)).
The authors' evaluation averages the per-batch means (``eval_epoch``); here both are means over
samples, as the equations say (the two differ only when the last batch is smaller).

Defaults: tau = 4 and alpha = 0 (no label term) are the main-text setting (Sec. 5.1 and the
authors' configs: ``temp: 4.0`` in ``config/image_classification.yaml``, ``alpha: 0.0`` in
``config/loss/ts_fwd_cross_ent.yaml``); alpha is named ``ce_weight`` here (the weight of the label
term) and the KD term gets 1 - alpha.
Left out: the paper's data variants (augmentations, mixup, GAN samples) and its optimiser studies;
they are ways to run this loss, not parts of it. Depends only on torch.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ensemble_logits", "kd_loss", "stanton_loss", "top1_agreement", "predictive_kl", "fidelity"]


def ensemble_logits(member_logits: Tensor) -> Tensor:
    """log((1/m) sum_i softmax(z_i)) for member logits of shape (members, batch, classes).

    Softmax of the result is the ensemble's averaged probability (Sec. 3.1)."""
    log_p = F.log_softmax(member_logits, dim=-1)
    return torch.logsumexp(log_p, dim=0) - math.log(member_logits.shape[0])


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 4.0) -> Tensor:
    """L_KD of Eq. 1: -tau^2 sum_j p_t,j log q_s,j at temperature tau, averaged over the batch.

    Shapes (batch, classes). The teacher is detached."""
    p_t = F.softmax(teacher_logits.detach() / temperature, dim=-1)  # teacher, softmax(z_t / tau)
    log_q = F.log_softmax(student_logits / temperature, dim=-1)  # student, log softmax(z_s / tau)
    return -(temperature**2) * (p_t * log_q).sum(dim=-1).mean()


def stanton_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, temperature: float = 4.0,
                 ce_weight: float = 0.0) -> dict[str, Tensor]:
    """The weighted terms of Eq. 1: {"kd": (1 - alpha) L_KD} and, when alpha > 0, {"ce": alpha L_NLL}.

    ``ce_weight`` is the paper's alpha in [0, 1); the loss is the sum of the dict's values."""
    if not 0.0 <= ce_weight < 1.0:
        raise ValueError(f"ce_weight (alpha) must lie in [0, 1), got {ce_weight}")
    out = {"kd": (1.0 - ce_weight) * kd_loss(student_logits, teacher_logits, temperature)}
    if ce_weight > 0:
        out["ce"] = ce_weight * F.cross_entropy(student_logits, targets)  # averaged over the batch
    return out


def top1_agreement(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Eq. 2: the share of rows whose argmax agree, in [0, 1] (a float tensor, no gradient)."""
    return (student_logits.argmax(dim=-1) == teacher_logits.argmax(dim=-1)).float().mean()


def predictive_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Eq. 3: KL(p_t || p_s) summed over classes, averaged over rows (the paper: temperature 1).

    The teacher is detached."""
    log_p_t = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    log_p_s = F.log_softmax(student_logits / temperature, dim=-1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1).mean()


@torch.no_grad()
def fidelity(student: nn.Module, teacher: nn.Module | Sequence[nn.Module], batches: Iterable[Tensor]) -> dict:
    """Top-1 agreement (percent) and predictive KL of ``student`` to ``teacher`` over input batches.

    ``teacher``: one model, or a list of models (an ensemble, reduced by :func:`ensemble_logits`).
    Both are put in eval mode (and left there). Each metric is a mean over samples."""
    members = list(teacher) if isinstance(teacher, (list, tuple)) else [teacher]
    student.eval()
    for m in members:
        m.eval()
    agree, kl, n = 0.0, 0.0, 0
    for x in batches:
        z_s = student(x)
        z_t = ensemble_logits(torch.stack([m(x) for m in members])) if len(members) > 1 else members[0](x)
        agree += float(top1_agreement(z_s, z_t)) * len(x)
        kl += float(predictive_kl(z_s, z_t)) * len(x)
        n += len(x)
    return {"agreement": 100.0 * agree / n, "kl": kl / n}


if __name__ == "__main__":
    torch.manual_seed(0)
    z = torch.randn(8, 10, requires_grad=True)
    members, y = torch.randn(3, 8, 10), torch.randint(0, 10, (8,))
    v = ensemble_logits(members)
    out = stanton_loss(z, v, y)
    sum(out.values()).backward()
    print({k: round(t.item(), 4) for k, t in out.items()}, "grad norm", round(z.grad.norm().item(), 4))
    print("agreement", top1_agreement(z, v).item(), "predictive KL", round(predictive_kl(z, v).item(), 4))
