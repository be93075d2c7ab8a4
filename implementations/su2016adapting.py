r"""Adapting Models to Signal Degradation using Distillation (Su & Maji, BMVC 2017; arXiv 2016).

Paper: https://arxiv.org/abs/1604.00433
Id:    su2016adapting

Idea: *cross quality distillation* (CQD). A model trained on high-quality inputs does badly on
degraded ones (low resolution, noise, ...), and a model trained on the degraded inputs alone lacks
what the clean signal showed. With *paired* data, the clean x_i and its degraded copy D(x_i), a
teacher f trained on clean inputs supervises a student g that only ever sees degraded inputs:

    min_g  sum_i [ ce_weight * CE(y_i, g(D(x_i)))
                   + kd_weight * T^2 * KL( softmax(f(x_i) / T) || softmax(g(D(x_i)) / T) ) ].

The pairing is the method: the teacher's target for example i comes from the *clean* x_i, the
student's prediction from the *degraded* copy of the same example. With ce_weight = 0 no label is
needed on the degraded side.

What could not be read: the paper's body (see the YAML); the loss above is the abstracts' cross-
quality form written with Hinton's soft targets, so the weighting of the two terms and the
temperature are ours (defaults: ce_weight 0.1, kd_weight 0.9, T = 4, as the atlas's Hinton recipe).
The degradations are toy analogues of the paper's (lower resolution, noise): ``degrade`` works on
sequences (B, C, L) and images (B, C, H, W).

Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["degrade", "cross_quality_loss"]


def degrade(x: Tensor, kind: str = "lowres", factor: int = 2, noise_std: float = 0.0,
            generator: torch.Generator | None = None) -> Tensor:
    """A degraded copy of ``x``: "lowres" averages blocks of ``factor`` (per spatial dimension) and
    repeats them back to the input's size (piecewise constant); "noise" adds N(0, noise_std^2);
    "lowres+noise" does both. ``factor`` must divide the spatial sizes."""
    if kind not in ("lowres", "noise", "lowres+noise"):
        raise ValueError(f"kind must be 'lowres', 'noise' or 'lowres+noise', got {kind!r}")
    out = x
    if "lowres" in kind and factor > 1:
        dims = x.dim() - 2
        if any(s % factor for s in x.shape[2:]):
            raise ValueError(f"factor {factor} does not divide the spatial sizes {tuple(x.shape[2:])}")
        pool = F.avg_pool1d if dims == 1 else F.avg_pool2d
        out = pool(out, factor)
        for d in range(2, 2 + dims):
            out = out.repeat_interleave(factor, dim=d)
    if "noise" in kind and noise_std > 0:
        out = out + noise_std * torch.randn(out.shape, generator=generator, dtype=out.dtype).to(out.device)
    return out


def cross_quality_loss(student_logits_degraded: Tensor, teacher_logits_clean: Tensor, targets: Tensor | None = None,
                       ce_weight: float = 0.1, kd_weight: float = 0.9, temperature: float = 4.0) -> dict[str, Tensor]:
    """``{"ce": ce_weight CE(y, g(D(x))), "cqd": kd_weight T^2 KL(p_f(x) || p_g(D(x)))}`` per batch
    (KL summed over classes, averaged over the batch). Rows i of both logit tensors must be the same
    example (clean for the teacher, degraded for the student). ``targets=None``: no label term."""
    if student_logits_degraded.shape != teacher_logits_clean.shape:
        raise ValueError(f"paired logits must have one shape, got {tuple(student_logits_degraded.shape)} "
                         f"and {tuple(teacher_logits_clean.shape)}")
    log_p_t = F.log_softmax(teacher_logits_clean.detach() / temperature, dim=-1)
    log_p_s = F.log_softmax(student_logits_degraded / temperature, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()
    out = {"cqd": kd_weight * temperature ** 2 * kl}
    if targets is not None and ce_weight:
        out = {"ce": ce_weight * F.cross_entropy(student_logits_degraded, targets)} | out
    return out


if __name__ == "__main__":
    x = torch.arange(8.0).view(1, 1, 8)
    print(degrade(x, "lowres", 2))
