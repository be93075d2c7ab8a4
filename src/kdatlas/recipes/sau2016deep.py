"""Noisy teachers (Sau & Balasubramanian, 2016): the student regresses the teacher's logits, perturbed by
(1 + N(0, sigma^2)) on a fraction alpha of the steps.

No label term, as in ba2013deep (the paper's loss could not be read; see the implementation's
docstring). sigma^2 = 0.1 and alpha = 0.5, one coin per mini-batch, are KD_Lib's defaults, not
confirmed as the paper's; kept on both tasks, untuned. The noise comes from a generator seeded by the
run's seed, so a run is reproducible and its noise independent of the data order's."""
import torch

from kdatlas.implementations import sau2016deep as impl
from kdatlas.recipes import Phase, Recipe


def phases(ctx, s):
    gen = torch.Generator(device=ctx.device).manual_seed(10_007 * ctx.seed + 1)

    def loss(so, to, y, progress):
        return {"noisy_mimic": impl.noisy_teacher_loss(so.logits, to.logits, s["noise_std"], s["apply_prob"],
                                                       generator=gen, per_sample=s["per_sample"])}
    return [Phase("noisy_mimic", loss)]


RECIPE = Recipe("sau2016deep",
                settings={"noise_std": 0.1 ** 0.5, "apply_prob": 0.5, "per_sample": False},
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {}},
                phases=phases)
