"""FitNets (Romero et al., 2014): a hint phase on the student's lower stages, then KD on all of it.

Phase 1 (hint_epochs_fraction of the epochs): the hint loss between the student's guided stage,
through the file's ConvRegressor ending in a ReLU (the hint is a post-ReLU map), and the teacher's
hint stage; only the student's stages up to the guided one and the regressor are optimised. The hint
loss is a sum over channels x positions (hundreds here): plain SGD at the shared learning rate kills
the regressor's ReLUs in one step. The paper trained with RMSProp, which does not see the loss
scale; AdamW is its closest relative in the harness. Phase 2: fitnets_kd_loss (tau = 3, lambda = 4,
the authors' CIFAR values) on the logits, whole student."""
from torch import nn

from kdatlas.implementations import romero2014fitnets as impl
from kdatlas.recipes import Phase, Recipe


def phases(ctx, s):
    g, h = s["guided_stage"], s["hint_stage"]
    sf, tf = ctx.student_features[g], ctx.teacher_features[h]
    reg = impl.ConvRegressor(sf.shape[1], tf.shape[1], tuple(sf.shape[2:]), tuple(tf.shape[2:]),
                             nonlinearity=nn.ReLU())

    def hint(so, to, y, progress):
        return {"hint": s["hint_weight"] * impl.hint_loss(reg(so.features[g]), to.features[h])}

    def kd(so, to, y, progress):
        return {"kd": impl.fitnets_kd_loss(so.logits, to.logits, y, s["kd_weight"], s["temperature"])}

    lower = [p for stage in ctx.student.stages[: g + 1] for p in stage.parameters()] + list(reg.parameters())
    return [Phase("hint", hint, share=s["hint_epochs_fraction"], params=lower, modules=(reg,),
                  optimizer=s["hint_optimizer"], lr=s["hint_lr"]),
            Phase("kd", kd)]


RECIPE = Recipe("romero2014fitnets",
                settings={"guided_stage": 1, "hint_stage": 1, "hint_weight": 1.0, "hint_epochs_fraction": 0.2,
                          "hint_optimizer": "adamw", "hint_lr": 1e-3, "kd_weight": 4.0, "temperature": 3.0},
                # CIFAR ResNets return (stem, group 1, group 2, group 3): the paper guides the middle
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {"guided_stage": 2, "hint_stage": 2}}, phases=phases)
