"""VID (Ahn et al., 2019): CE + vid_weight * sum over stage pairs of vid_loss, regressors trained with the student.

One VIDRegressor per paired stage (mu: three 1x1 convolutions to the teacher's width, a learned
variance per teacher channel), owned by the phase so that it is optimised with the student and
dropped afterwards. Pairs: every stage with its counterpart (stages 0-2 here; on CIFAR ResNets the
three residual groups, RepDistiller's feat[1:-1]). vid_weight = 1 and the regressor's sizes are
RepDistiller's CIFAR-100 settings (its port of the authors' code)."""
from kdatlas.implementations import ahn2019variational as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    regs = [impl.VIDRegressor(ctx.student_features[i].shape[1], ctx.teacher_features[i].shape[1],
                              dim=ctx.student_features[i].dim() - 2, init_variance=s["init_variance"])
            for i in s["stages"]]

    def loss(so, to, y, progress):
        vid = sum(impl.vid_loss(so.features[i], to.features[i], r) for i, r in zip(s["stages"], regs))
        return {"ce": ce(so, y), "vid": s["vid_weight"] * vid}
    return [Phase("vid", loss, modules=tuple(regs))]


RECIPE = Recipe("ahn2019variational",
                settings={"stages": [0, 1, 2], "vid_weight": 1.0, "init_variance": 5.0},
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {"stages": [1, 2, 3]}},  # CIFAR: the 3 groups
                phases=phases)
