"""Generalized distillation (Lopez-Paz et al., 2016) in Hinton's case: x* = x, Eq. 4 with the student's
softmax at temperature 1 and the teacher's at T.

The benchmark's tasks have no privileged features, so the teacher sees the student's inputs: the
reduction to Hinton's distillation that Sec. 4 names. imitation = T = 1 are the values of the
paper's Sec. 5 (there fixed, not tuned), kept on both tasks; with lambda = 1 the labels reach the
student only through the teacher. The privileged-information experiments of Sec. 5 run in the
test file and the notebook, on the paper's synthetic set-ups."""
from kdatlas.implementations import lopezpaz2015unifying as impl
from kdatlas.recipes import Phase, Recipe


def phases(ctx, s):
    def loss(so, to, y, progress):
        return impl.generalized_distillation_loss(so.logits, y, to.logits, s["imitation"], s["temperature"])
    return [Phase("generalized_distillation", loss)]


RECIPE = Recipe("lopezpaz2015unifying", settings={"imitation": 1.0, "temperature": 1.0},
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {}}, phases=phases)
