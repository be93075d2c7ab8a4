"""Spherical KD (Guo et al., 2020): (1 - alpha) CE + alpha T^2 KL on logits projected to a sphere.

The official README's settings: T = 4, multiplier 2 (layer-norm of the logits times 2), alpha 0.9 (the
official script's value for its first 60 epochs; kept constant here, untuned), CE on the normalised
student logits. mode "sphere" is the README's projection; "teacher_std" the training script's variant
(see the implementation's docstring)."""
from kdatlas.implementations import guo2020reducing as impl
from kdatlas.recipes import Phase, Recipe


def phases(ctx, s):
    def loss(so, to, y, progress):
        return impl.skd_loss(so.logits, to.logits, y, s["temperature"], s["alpha"], s["multiplier"], s["mode"])
    return [Phase("skd", loss)]


RECIPE = Recipe("guo2020reducing",
                settings={"temperature": 4.0, "alpha": 0.9, "multiplier": 2.0, "mode": "sphere"},
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {}},
                phases=phases)
