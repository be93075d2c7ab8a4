r"""Distillation as a Defense to Adversarial Perturbations Against Deep Neural Networks
(Papernot, McDaniel, Wu, Jha & Swami, 2015; IEEE S&P 2016).

Paper: https://arxiv.org/abs/1511.04508
Id:    papernot2015distillation

Idea: *defensive distillation*. Teacher and student have the same architecture; the point is not
compression but a student whose output changes less when its input is nudged. Both are trained with
the softmax at a high temperature T, the student on the teacher's temperature-T probabilities, and
the student is deployed at T = 1. Trained at T, the logits grow roughly T-fold; at T = 1 the softmax
then saturates and its gradient with respect to the input, which gradient-based attacks follow,
nearly vanishes.

Softmax at temperature (Sec. IV):  F_i(X) = exp(z_i(X)/T) / sum_l exp(z_l(X)/T).
Procedure (Sec. IV):
  1. train F on (X, Y(X)), hard labels, with the cross-entropy of F at temperature T
     -> ``temperature_ce_loss``;
  2. soft labels F(X) at temperature T for every training input -> ``soft_labels``;
  3. train F^d, same architecture, on (X, F(X)) at the same T:
     min -1/|X| sum_X sum_i F_i(X) log F^d_i(X)   -> ``defensive_distillation_loss``;
  4. deploy F^d at T = 1, i.e. use its logits z(X) unscaled.
Reductions: the cross-entropies are summed over the classes and averaged over the batch. Unlike
Hinton et al. (hinton2015distilling) there is no T^2 factor and no hard-label term in step 3: the
paper trains the distilled network on the soft labels alone.

Why it masks gradients: d F_i / d X = (1/T) sum_j F_i (delta_ij - F_j) d z_j / d X. At deployment
T = 1 with logits ~T times larger, F is nearly one-hot, so F_i (delta_ij - F_j) ~ 0 and the
probability gradients (the "adversarial gradients" of the paper) shrink, in float32 to exactly
zero. Attacks on the logits, or on the softmax of the logits divided by T again (Carlini & Wagner,
2016-17), are not hindered: the defence is gradient masking, not robustness. ``input_gradient_norm``
measures both kinds of gradient; ``fgsm`` (Goodfellow et al.'s fast gradient sign method, which the
authors' follow-up report arXiv 1607.05113 also evaluated) attacks the deployed model, optionally
on its logits divided by ``logit_divisor`` (the rescaling that defeats the defence).

Defaults: T = 100, the temperature of the MNIST runs of the authors' follow-up report (arXiv
1607.05113) as a secondary summary of it describes them; the paper's own tables, with its sweep
over T, could not be read (see papers/papernot2015distillation.yaml), so which T it prefers per
dataset is not confirmed. Simplified: the paper's
attack is the Jacobian saliency-map attack (JSMA); this file gives FGSM and the gradient norms,
which show the same mechanism. The authors released no code for this paper. Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["temperature_ce_loss", "soft_labels", "defensive_distillation_loss", "input_gradient_norm", "fgsm"]


def temperature_ce_loss(logits: Tensor, targets: Tensor, temperature: float = 100.0) -> Tensor:
    """Step 1: cross-entropy of softmax(z/T) with the hard labels, averaged over the batch."""
    return F.cross_entropy(logits / temperature, targets)


def soft_labels(teacher_logits: Tensor, temperature: float = 100.0) -> Tensor:
    """Step 2: the teacher's probabilities F(X) at temperature T (detached: they are labels)."""
    return F.softmax(teacher_logits.detach() / temperature, dim=-1)


def defensive_distillation_loss(student_logits: Tensor, teacher_logits: Tensor,
                                temperature: float = 100.0) -> Tensor:
    """Step 3: -sum_i F_i(X) log F^d_i(X), both at temperature T; summed over classes, mean over batch."""
    log_q = F.log_softmax(student_logits / temperature, dim=-1)  # log F^d(X) at T
    return -(soft_labels(teacher_logits, temperature) * log_q).sum(dim=-1).mean()


def input_gradient_norm(model: nn.Module, x: Tensor, kind: str = "prob") -> Tensor:
    """Per-sample L2 norm of d output / d x for the model deployed at T = 1, at its predicted class.

    kind="prob": the softmax probability F_c(x) (the gradient the paper's attacks use);
    kind="logit": the logit z_c(x) (unmasked by the softmax). The model's train/eval mode is kept."""
    x = x.detach().clone().requires_grad_(True)
    z = model(x)
    c = z.argmax(dim=-1, keepdim=True)
    out = F.softmax(z, dim=-1) if kind == "prob" else z if kind == "logit" else None
    if out is None:
        raise ValueError(f"kind must be 'prob' or 'logit', got {kind!r}")
    (grad,) = torch.autograd.grad(out.gather(1, c).sum(), x)
    return grad.flatten(1).norm(dim=1)


def fgsm(model: nn.Module, x: Tensor, targets: Tensor, eps: float, logit_divisor: float = 1.0) -> Tensor:
    """x + eps * sign(d CE(z(x) / logit_divisor, y) / d x): one step of the fast gradient sign method.

    logit_divisor = 1 attacks the deployed model as it is (T = 1); logit_divisor = T undoes the
    distillation's logit growth, which restores the gradient (Carlini & Wagner's observation)."""
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(x) / logit_divisor, targets)
    (grad,) = torch.autograd.grad(loss, x)
    return (x + eps * grad.sign()).detach()


if __name__ == "__main__":
    torch.manual_seed(0)
    z_t, z_s, y = torch.randn(8, 10) * 50, torch.randn(8, 10, requires_grad=True), torch.randint(0, 10, (8,))
    loss = defensive_distillation_loss(z_s, z_t, 100.0)
    loss.backward()
    print("distillation loss", round(loss.item(), 4), "teacher step", temperature_ce_loss(z_t, y).item())
