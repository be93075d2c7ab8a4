r"""Knowledge distillation: A good teacher is patient and consistent (Beyer et al., CVPR 2022).

Paper: https://arxiv.org/abs/2106.05237
Code:  https://github.com/google-research/big_vision, configs/proj/distill (official; JAX; read, not copied)
Id:    beyer2021knowledge

Idea: distillation as *function matching*. The student should agree with the teacher as a function,
on as much of the input space as possible, so (1) teacher and student see exactly the same input,
augmented aggressively (the same random crop, then mixup with another image), with the teacher's
output computed on that input every step (never precomputed), and (2) training runs for very long
("patience"). The loss is the KL divergence at temperature 1, with no label term:

    L = KL( softmax(f_t(x~)) || softmax(f_s(x~)) ),     x~ = mixup(a(x)) for both models.

The paper's design comparison (Sec. 3), as ``make_views(x, variant, ...)`` -> (teacher input, student input):
- "fixed_teacher":      the teacher sees the clean x (its outputs could be precomputed), the student a(x);
- "independent_noise":  teacher a1(x), student a2(x): two independent augmentations;
- "consistent":         teacher and student the same a(x);
- "function_matching":  the same mixup(a(x)) for both.

Checked against the official configuration (bit_i1k.py and big_vision's mixup, read not copied):
distance "kl" at t = 1; mixup with probability 1 of n = 2 images, the mixing weights drawn from a
Dirichlet(p, p) with p = 1.0 (so lambda ~ U(0, 1)), *one weight for the whole batch*, sorted so the
larger weight stays on the image itself, the partner being the batch rolled by one position. The
augmentation a() there is an inception crop and a horizontal flip; on the atlas's data it is a
random shift with zero fill (``random_shift``), the crop's analogue for sequences and small
canvases. The paper's text could not be read in the stored sources; its design names follow the
implementation notes and the README of the official configs (see the YAML).

Depends only on torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["VARIANTS", "random_shift", "mixup", "make_views", "function_matching_loss"]

VARIANTS = ("fixed_teacher", "independent_noise", "consistent", "function_matching")


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator | None = None) -> Tensor:
    """Shift every example by its own random offset in [-max_shift, max_shift] along each spatial
    dimension (everything after the channels), filling with zeros: a random crop of a padded input."""
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    if max_shift == 0:
        return x.clone()
    spatial = x.shape[2:]
    pad = [max_shift] * (2 * len(spatial))
    padded = F.pad(x, pad)
    offs = torch.randint(0, 2 * max_shift + 1, (x.shape[0], len(spatial)), generator=generator)
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        idx = (i, slice(None)) + tuple(slice(int(o), int(o) + s) for o, s in zip(offs[i], spatial))
        out[i] = padded[idx]
    return out


def mixup(x: Tensor, generator: torch.Generator | None = None, concentration: float = 1.0, n: int = 2) -> tuple[Tensor, Tensor]:
    """big_vision's mixup: weights w ~ Dirichlet(concentration * 1_n), one draw per batch, sorted in
    decreasing order; returns (sum_i w_i roll(x, i, dim=0), w)."""
    if concentration <= 0 or n < 1:
        raise ValueError(f"need concentration > 0 and n >= 1, got {concentration}, {n}")
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))  # the draw follows `generator`
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        w = torch.distributions.Dirichlet(torch.full((n,), float(concentration), dtype=torch.float64)).sample()
    w = torch.sort(w, descending=True).values.to(x.dtype)
    return sum(w[i] * torch.roll(x, i, dims=0) for i in range(n)), w


def make_views(x: Tensor, variant: str, max_shift: int, generator: torch.Generator | None = None,
               concentration: float = 1.0) -> tuple[Tensor, Tensor]:
    """(teacher input, student input) of one step under the paper's four designs (module docstring)."""
    if variant == "fixed_teacher":
        return x, random_shift(x, max_shift, generator)
    if variant == "independent_noise":
        return random_shift(x, max_shift, generator), random_shift(x, max_shift, generator)
    if variant == "consistent":
        v = random_shift(x, max_shift, generator)
        return v, v
    if variant == "function_matching":
        v, _ = mixup(random_shift(x, max_shift, generator), generator, concentration)
        return v, v
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def function_matching_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """KL(softmax(z_t / T) || softmax(z_s / T)), summed over classes, averaged over the batch (T = 1 in the paper)."""
    log_p_t = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    log_p_s = F.log_softmax(student_logits / temperature, dim=-1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()


if __name__ == "__main__":
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1, 40)
    t_in, s_in = make_views(x, "function_matching", 4, g)
    print("same input for both:", torch.equal(t_in, s_in), "mixup weights", mixup(x, g)[1])
