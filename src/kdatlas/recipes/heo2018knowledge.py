"""AB (Heo et al., 2019): an activation-boundary initialisation phase, then KD on the logits.

Phase 1 ("ab", init_epochs_fraction of the epochs): ab_weight * multi_layer_ab_loss between the
student's pre-ReLU stage maps, each through its ABConnector, and the teacher's pre-ReLU maps (the
last BatchNorm of every stage, before its ReLU), margin 1, layer weights 1/4, 1/2, 1, ab_weight =
3/1000: the official CIFAR-10 script. Only the student's stages and the connectors are optimised,
with the task's optimiser and learning rate (the official script uses its main SGD settings). No
label term. Phase 2 ("kd"): the official script's KD term alone (T = 3, no T^2, ce_weight = 0: its
cross-entropy is commented out) on the whole student; the connectors are dropped. The script's
other option (KD = False: cross-entropy alone) is kd_weight = 0, ce_weight = 1.
init_epochs_fraction = 0.125 is RepDistiller's 30 init epochs before 240 (the official script ships
with 1 and 1 as placeholders; the paper's counts were not readable).

How the pre-ReLU maps are read without touching the harness: forward hooks (impl.PreReLUTap) on
the student's BatchNorms copy their outputs during the harness's forward pass; a forward pre-hook
on the student's first stage keeps the batch's inputs, on which the loss runs the teacher itself
(eval, no gradient) with temporary hooks (impl.pre_relu_maps): the harness's cached teacher holds
only post-ReLU maps. The student's hooks come off at the first step of phase 2. The positions are
those of the harness's ConvNets (conv-BN-ReLU stages); a residual stage's pre-ReLU map is the sum
before its last ReLU, not a BatchNorm output, so the CIFAR ResNets are not listed."""
from kdatlas.implementations import heo2018knowledge as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    st = s["stages"]
    dim = ctx.student_features[st[0]].dim() - 2
    conns = [impl.ABConnector(ctx.student_features[i].shape[1], ctx.teacher_features[i].shape[1], dim) for i in st]
    teacher_bns = [impl.last_batchnorm(ctx.teacher.stages[i]) for i in st]
    tap = impl.PreReLUTap([impl.last_batchnorm(ctx.student.stages[i]) for i in st])
    batch = {}  # the latest inputs fed to the student (its first stage's input)
    handle = ctx.student.stages[0].register_forward_pre_hook(lambda m, args: batch.update(x=args[0]))

    def ab(so, to, y, progress):
        t_maps = impl.pre_relu_maps(ctx.teacher, batch["x"], teacher_bns)
        s_maps = [c(m) for c, m in zip(conns, tap.maps)]
        return {"ab": s["ab_weight"] * impl.multi_layer_ab_loss(s_maps, t_maps, s["margin"])}

    def kd(so, to, y, progress):
        if tap.active:  # phase 2 no longer needs the student's hooks
            tap.remove()
            handle.remove()
        terms = {"kd": s["kd_weight"] * impl.ab_kd_loss(so.logits, to.logits, s["temperature"])}
        if s["ce_weight"]:
            terms["ce"] = s["ce_weight"] * ce(so, y)
        return terms

    feature_params = [p for stage in ctx.student.stages for p in stage.parameters()]
    feature_params += [p for c in conns for p in c.parameters()]
    return [Phase("ab", ab, share=s["init_epochs_fraction"], params=feature_params, modules=tuple(conns)),
            Phase("kd", kd)]


RECIPE = Recipe("heo2018knowledge",
                settings={"stages": [0, 1, 2], "margin": 1.0, "ab_weight": 3 / 1000, "init_epochs_fraction": 0.125,
                          "temperature": 3.0, "kd_weight": 1.0, "ce_weight": 0.0},
                tasks={"mnist1d": {}, "digits": {}}, phases=phases)
