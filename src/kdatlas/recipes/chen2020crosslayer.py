"""SemCKD (Chen et al., 2021): CE + KD + semckd_weight * L_SemCKD over all stage pairs, one phase.

The authors' CIFAR-100 command (-r 1 -a 1 -b 400, kd_T 4): cross-entropy and Hinton's T^2 KL with
weight 1 each, and the attention-weighted cross-layer loss with beta = 400, kept untuned here. The
layers are every stage output of both networks (the code's feat[1:-1]: post-ReLU stage outputs,
without the stem and the pooled vector); on the CIFAR ResNets, which also return the stem, groups
1-3. The attention module (queries, keys, the S x T projectors) is trained with the student by the
task's optimiser, as in the code, and dropped afterwards.

Its query and key MLPs read rows of b x b similarity matrices, so it is built for the task's batch
size. The code skips a shorter last batch of an epoch entirely; here that batch keeps its CE and KD
terms and gets no SemCKD term (the harness does not drop last batches)."""
from kdatlas.implementations import chen2020crosslayer as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    st = s["stages"]
    dim = ctx.student_features[st[0]].dim() - 2
    module = impl.SemCKDAttention([ctx.student_features[i].shape[1] for i in st],
                                  [ctx.teacher_features[i].shape[1] for i in st],
                                  batch_size=ctx.task.batch_size, dim=dim, factor=s["factor"])

    def loss(so, to, y, progress):
        terms = {"ce": ce(so, y), "kd": s["kd_weight"] * impl.kd_loss(so.logits, to.logits, s["temperature"])}
        if len(y) == module.batch_size:  # a shorter last batch: no SemCKD term (the code skips the batch)
            projected, targets, attention = module([so.features[i] for i in st], [to.features[i] for i in st])
            terms["semckd"] = s["semckd_weight"] * impl.semckd_loss(projected, targets, attention)
        return terms

    return [Phase("semckd", loss, modules=(module,))]


RECIPE = Recipe("chen2020crosslayer",
                settings={"stages": [0, 1, 2], "kd_weight": 1.0, "temperature": 4.0, "semckd_weight": 400.0,
                          "factor": 4},
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {"stages": [1, 2, 3]}},  # CIFAR: groups 1-3
                phases=phases)
