"""Stanton et al. (2021): how the harness runs implementations/stanton2021does.py.

The paper's distillation setting (Sec. 3.1, Eq. 1): the student learns from the teacher's outputs
alone, with the cross-entropy L_KD at temperature tau and no label term (alpha = 0), from the
task's single teacher on the student's training set. The paper's fidelity metrics (top-1
agreement and predictive KL) and its ensemble self-distillation are measured in the notebook; the
benchmark scores test accuracy like every other method.

Settings: ``temperature`` = 4 and ``ce_weight`` (the paper's alpha) = 0 are the main-text values
(Sec. 5.1) and those of the authors' configs (``config/image_classification.yaml``: ``temp: 4.0``;
``config/loss/ts_fwd_cross_ent.yaml``: ``alpha: 0.0``). Not tuned here."""
from kdatlas.implementations import stanton2021does as impl
from kdatlas.recipes import Phase, Recipe


def phases(ctx, s):
    def loss(so, to, y, progress):
        return impl.stanton_loss(so.logits, to.logits, y, s["temperature"], s["ce_weight"])
    return [Phase("kd", loss)]


RECIPE = Recipe("stanton2021does", settings={"temperature": 4.0, "ce_weight": 0.0},
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {}}, phases=phases)
