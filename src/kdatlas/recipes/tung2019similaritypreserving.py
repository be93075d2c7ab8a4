"""Similarity-preserving KD (Tung & Mori, 2019): CE + sp_weight * sp_loss on the last stage's maps.

One layer pair, features[-1] of student and teacher (the map before global pooling: the end of the
last group, as in RepDistiller and, as far as the stored text shows, the paper). sp_weight = gamma =
3000, RepDistiller's value, usually quoted as the paper's CIFAR-10 one (unconfirmed: see the
implementation's docstring); it is kept on both embedded tasks (not tuned)."""
from kdatlas.implementations import tung2019similaritypreserving as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    def loss(so, to, y, progress):
        sp = sum(impl.sp_loss(so.features[i], to.features[i]) for i in s["stages"])
        return {"ce": ce(so, y), "sp": s["sp_weight"] * sp}
    return [Phase("sp", loss)]


RECIPE = Recipe("tung2019similaritypreserving",
                settings={"stages": [-1], "sp_weight": 3000.0},  # last stage; gamma = 3000 (RepDistiller)
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {}},  # CIFAR ResNets: the last group, as in the paper
                phases=phases)
