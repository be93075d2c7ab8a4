r"""Born Again Neural Networks (Furlanello, Lipton, Tschannen, Itti & Anandkumar, 2018; ICML 2018).

Paper: https://arxiv.org/abs/1805.04770
Id:    furlanello2018born

Idea: distil a trained network into a freshly initialised network of the *same* architecture, with
no size difference left to explain a gain. The born-again student often ends up more accurate than
its teacher; the step can be repeated over generations, and averaging the generations' predictions
(the born-again ensemble) helps further.

Born-again step (Sec. 3, Eq. 2): with theta_1* trained on the labels (Eq. 1), the student theta_2
minimises the cross-entropy between the teacher's and its own softmax outputs,
    L(f(x, theta_1*), f(x, theta_2)) = -sum_i p_i log q_i,   p = softmax(v), q = softmax(z),
at temperature 1 (the paper uses none). "BAN" is this term alone; "BAN+L" adds the label
cross-entropy (``ce_weight``), which the paper needed for its language models. Reductions: summed
over the classes, averaged over the batch.
Generations (Sec. 3.1, Eq. 3): generation k learns from generation k-1, each from a fresh random
initialisation. Born-again ensemble (Eq. 4): f^k(x) = (1/k) sum_{i<=k} f(x, theta_i), the mean of
the generations' softmax outputs -> ``ban_ensemble`` / ``BANEnsemble``.
Gradient (Sec. 3.2, Eqs. 5-6): dL/dz_i = q_i - p_i per sample; the true-class part is the label
gradient with the target rescaled by the teacher's confidence p_*, the rest is "dark knowledge".
Two controls (Sec. 3.2):
  CWTM (Eq. 10): label cross-entropy, each sample weighted by the teacher's maximum probability,
      w_s = max_c p_{c,s} / sum_u max_c p_{c,u} (weights sum to 1 over the batch) -> ``cwtm_loss``;
  DKPP (Eq. 11): the teacher's distribution with its argmax entry kept in place and the other
      entries randomly permuted among the other classes -> ``dkpp_targets`` / ``dkpp_loss``.
The CWTM weights and DKPP targets are treated as constants (no gradient flows into the teacher).

Defaults: temperature 1 and no label term (BAN) are the paper's (Sec. 3); 3 generations after the
teacher match the BAN-1..3 columns of its CIFAR-100 tables. Simplified: DKPP here draws a new
permutation per sample and per call (the paper does not say whether permutations are fixed); the
non-argmax classes of DKPP are the teacher's, not the true label's. The authors released no code;
the unofficial implementations were not followed. Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ban_loss", "cwtm_loss", "dkpp_targets", "dkpp_loss", "ban_ensemble", "BANEnsemble"]


def ban_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor | None = None,
             ce_weight: float = 0.0) -> Tensor:
    """Eq. 2: -sum_i p_i log q_i at T = 1 (mean over the batch), plus ce_weight * CE(z, y) (BAN+L)."""
    p = F.softmax(teacher_logits.detach(), dim=-1)                      # teacher generation, p
    loss = -(p * F.log_softmax(student_logits, dim=-1)).sum(-1).mean()  # student generation, log q
    if ce_weight:
        if targets is None:
            raise ValueError("ce_weight > 0 (BAN+L) needs the targets")
        loss = loss + ce_weight * F.cross_entropy(student_logits, targets)
    return loss


def cwtm_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor) -> Tensor:
    """Eq. 10: sum_s w_s CE(z_s, y_s), w_s = max_c p_{c,s} / sum_u max_c p_{c,u} (a weighted mean)."""
    conf = F.softmax(teacher_logits.detach(), dim=-1).amax(dim=-1)  # the teacher's max probability
    w = conf / conf.sum()
    return (w * F.cross_entropy(student_logits, targets, reduction="none")).sum()


def dkpp_targets(teacher_probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Eq. 11's targets: per row, the argmax entry stays; the others are permuted among themselves."""
    p = teacher_probs.detach()
    b, n = p.shape
    top = p.argmax(dim=-1)
    # Each row: the n-1 non-argmax columns, in a random order (sort random keys; argmax gets +inf).
    keys = torch.rand(b, n, generator=generator, device="cpu").to(p.device)
    keys[torch.arange(b), top] = float("inf")
    others = keys.argsort(dim=-1)[:, : n - 1]                  # a random order of the other columns
    src = torch.sort(others, dim=-1).values                    # the same columns in their own order
    out = p.clone()
    out.scatter_(1, others, p.gather(1, src))                  # column others[j] gets src[j]'s value
    return out


def dkpp_loss(student_logits: Tensor, teacher_logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Eq. 11: the BAN cross-entropy to ``dkpp_targets`` of the teacher's softmax, mean over the batch."""
    target = dkpp_targets(F.softmax(teacher_logits, dim=-1), generator)  # detached there
    return -(target * F.log_softmax(student_logits, dim=-1)).sum(-1).mean()


def ban_ensemble(logits_per_generation: list[Tensor]) -> Tensor:
    """Eq. 4: (1/k) sum_i softmax(z_i), the mean of the generations' probabilities. (batch, classes)."""
    return torch.stack([F.softmax(z, dim=-1) for z in logits_per_generation]).mean(0)


class BANEnsemble(nn.Module):
    """The born-again ensemble of ``models``; ``forward`` returns log f^k(x) (argmax = the ensemble's)."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        self.models = nn.ModuleList(models)

    def forward(self, x: Tensor) -> Tensor:
        return ban_ensemble([m(x) for m in self.models]).clamp_min(1e-30).log()


if __name__ == "__main__":
    torch.manual_seed(0)
    z, v, y = torch.randn(8, 10, requires_grad=True), torch.randn(8, 10), torch.randint(0, 10, (8,))
    loss = ban_loss(z, v)
    loss.backward()
    print("BAN", round(loss.item(), 4), "CWTM", round(cwtm_loss(z, v, y).item(), 4),
          "DKPP", round(dkpp_loss(z, v, torch.Generator().manual_seed(0)).item(), 4))
