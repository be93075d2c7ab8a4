"""Ba & Caruana (2013): the student regresses the teacher's logits (mimic learning).

The loss is ``impl.mimic_loss`` on the student's and the (cached) teacher's logits, alone: the paper
trains the mimic nets on the teacher's logits only, without the labels (Sec. 2.2), so there is no
"ce" term; ``mimic_weight`` = 1 is the paper's unweighted loss. The benchmark's student is the task's
own small CNN (the shallow bottleneck MLP is shown in the notebook)."""
from kdatlas.implementations import ba2013deep as impl
from kdatlas.recipes import Phase, Recipe


def phases(ctx, s):
    def loss(so, to, y, progress):
        return {"mimic": s["mimic_weight"] * impl.mimic_loss(so.logits, to.logits)}
    return [Phase("mimic", loss)]


RECIPE = Recipe("ba2013deep", settings={"mimic_weight": 1.0}, tasks={"mnist1d": {}, "digits": {}, "cifar100": {}}, phases=phases)
