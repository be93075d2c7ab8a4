"""Decoupled KD (Zhao et al., 2022): CE + warm-up * DKD (alpha TCKD + beta NCKD).

alpha = 1, beta = 8, T = 4 are the authors' CIFAR-100 values for ResNet32x4 -> ResNet8x4; the DKD term
is ramped in linearly over the first 20/240 of training as in the authors' code, through the
file's warmup_factor on the fractional epoch the harness passes."""
from kdatlas.implementations import zhao2022decoupled as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    warm_epochs = max(s["warmup_fraction"] * ctx.epochs, 1e-9)

    def loss(so, to, y, progress):
        warm = impl.warmup_factor(progress.epoch_float, warm_epochs)
        return {"ce": ce(so, y),
                "dkd": warm * impl.dkd_loss(so.logits, to.logits, y, s["tckd_weight"], s["nckd_weight"],
                                            s["temperature"])}
    return [Phase("dkd", loss)]


RECIPE = Recipe("zhao2022decoupled",
                settings={"tckd_weight": 1.0, "nckd_weight": 8.0, "temperature": 4.0, "warmup_fraction": 20 / 240},
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {}}, phases=phases)
