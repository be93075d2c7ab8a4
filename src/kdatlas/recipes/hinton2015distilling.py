"""Hinton, Vinyals & Dean (2015): cross-entropy on the labels plus the temperature-softened KL.

Settings: T = 4 and the 0.1/0.9 weighting are the values RepDistiller and mdistiller use for CIFAR-100
(the paper gives no single default; see the implementation's docstring)."""
from kdatlas.implementations import hinton2015distilling as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    def loss(so, to, y, progress):
        return {"ce": s["ce_weight"] * ce(so, y),
                "kd": s["kd_weight"] * impl.kd_loss(so.logits, to.logits, s["temperature"])}
    return [Phase("kd", loss)]


RECIPE = Recipe("hinton2015distilling", settings={"temperature": 4.0, "ce_weight": 0.1, "kd_weight": 0.9},
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {}}, phases=phases)
