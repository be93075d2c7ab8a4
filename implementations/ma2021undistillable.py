r"""Undistillable: Making A Nasty Teacher That CANNOT teach students (Ma et al., ICLR 2021).

Paper: https://arxiv.org/abs/2105.07381
Code:  https://github.com/VITA-Group/Nasty-Teacher (official; read, not copied)
Id:    ma2021undistillable

Idea: a model owner wants to publish a network that predicts well but cannot be cloned by
distillation. *Self-undermining KD* trains such a "nasty" teacher f_T from scratch next to a
normally trained copy f_A (the "adversarial network", frozen): keep f_T accurate with the
cross-entropy and push its softened outputs *away* from f_A's,

    L(theta_T) = CE(f_T(x), y) - omega * tau_A^2 * KL( softmax(f_T(x) / tau_A) || softmax(f_A(x) / tau_A) ),

so its top-1 prediction stays right while the rest of its distribution, the "dark knowledge" a
student would learn from, is made misleading. A student then distilled from f_T by ordinary KD,
    (1 - alpha) CE(f_S, y) + alpha * tau^2 * KL( softmax(f_T / tau) || softmax(f_S / tau) ),
is expected to do worse than one distilled from f_A, often worse than training alone.

Checked against the official code (train_nasty.py, train_kd.py and the experiments' params.json):
- the divergence is ``KLDivLoss(log_softmax(f_A / T), softmax(f_T / T)) * T^2`` with batch-mean
  reduction, i.e. KL(p_T || p_A) as above, subtracted with weight omega; f_A runs under no_grad;
  the code adds a constant 100 to keep the logged loss positive (no effect on gradients; omitted);
- omega and tau_A per data set: CIFAR-10 omega = 0.04, tau_A = 4; CIFAR-100 omega = 0.005,
  tau_A = 20; Tiny-ImageNet omega = 0.01, tau_A = 20; the nasty network starts from random weights;
- the students' KD: alpha = 0.9, tau = 4 (the CIFAR-10 CNN student's params.json).
The paper's own equation numbers could not be read (see the YAML): the form follows the code.

Note the sign: maximising an unbounded KL. Nothing but the cross-entropy term and the small omega
keeps the teacher's logits from running off; the atlas's recipe measures the teacher's accuracy so
a run where it does is visible.

Depends only on torch.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["self_undermining_loss", "student_kd_loss"]


def _kl_batchmean(p_logits: Tensor, q_logits: Tensor, temperature: float) -> Tensor:
    """KL(softmax(p / T) || softmax(q / T)), summed over classes, averaged over the batch."""
    log_p = F.log_softmax(p_logits / temperature, dim=-1)
    log_q = F.log_softmax(q_logits / temperature, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


def self_undermining_loss(nasty_logits: Tensor, adversarial_logits: Tensor, targets: Tensor,
                          weight: float = 0.04, temperature: float = 4.0) -> dict[str, Tensor]:
    """The nasty teacher's loss: ``{"ce": CE(f_T, y), "undermine": -omega tau^2 KL(p_T || p_A)}``.

    ``nasty_logits``: the network being trained; ``adversarial_logits``: the normally trained one
    (detached here). Defaults: the official CIFAR-10 setting."""
    kl = _kl_batchmean(nasty_logits, adversarial_logits.detach(), temperature)
    return {"ce": F.cross_entropy(nasty_logits, targets), "undermine": -weight * temperature ** 2 * kl}


def student_kd_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, alpha: float = 0.9,
                    temperature: float = 4.0) -> dict[str, Tensor]:
    """The students' KD of the official train_kd.py: ``{"ce": (1 - alpha) CE, "kd": alpha tau^2 KL(p_T || p_S)}``."""
    kl = _kl_batchmean(teacher_logits.detach(), student_logits, temperature)
    return {"ce": (1 - alpha) * F.cross_entropy(student_logits, targets), "kd": alpha * temperature ** 2 * kl}


if __name__ == "__main__":
    import torch

    torch.manual_seed(0)
    zt, za, y = torch.randn(8, 10, requires_grad=True), torch.randn(8, 10), torch.arange(8) % 10
    terms = self_undermining_loss(zt, za, y)
    sum(terms.values()).backward()
    print({k: round(v.item(), 4) for k, v in terms.items()})
