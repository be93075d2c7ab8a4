"""OFD (Heo et al., 2019): CE + ofd_weight * sum_k w_k ofd_loss at the pre-ReLU end of every stage.

One phase, as the official CIFAR-100 script: the student's pre-ReLU map at the end of each stage
(the output of the stage's last BatchNorm, before its ReLU) through its OFDConnector (1x1 conv + BN,
trained with the student, dropped afterwards) against the teacher's pre-ReLU map through the margin
ReLU, with the partial L2 distance. Per-channel margins from the teacher's BatchNorm that produces
that map (its affine weight and bias; the official get_margin_from_BN), computed once. Position
weights 1/4, 1/2, 1 (shallow to deep) and ofd_weight = 1/1000: the official CIFAR-100 script
(loss_distill / batch_size / 1000); its ImageNet script uses 1/10000.

How the pre-ReLU maps are read without touching the harness: forward hooks (impl.PreReLUTap) on
the student's BatchNorms copy their outputs during the harness's forward pass; a forward pre-hook on
the student's first stage keeps the batch's inputs, on which the loss runs the teacher itself (eval,
no gradient; impl.pre_relu_maps): the harness's cached teacher holds only post-ReLU maps. The hooks
come off after the loss of the last training step. The positions are those of the harness's
ConvNets (conv-BN-ReLU stages); a residual stage's pre-ReLU map is the sum before its last ReLU, not
a BatchNorm output, so the CIFAR ResNets are not listed."""
from kdatlas.implementations import heo2019comprehensive as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    st = s["stages"]
    dim = ctx.student_features[st[0]].dim() - 2
    conns = [impl.OFDConnector(ctx.student_features[i].shape[1], ctx.teacher_features[i].shape[1], dim) for i in st]
    teacher_bns = [impl.last_batchnorm(ctx.teacher.stages[i]) for i in st]
    margins = [impl.margin_from_bn(bn.weight, bn.bias) for bn in teacher_bns]
    weights = impl.ofd_layer_weights(len(st))
    tap = impl.PreReLUTap([impl.last_batchnorm(ctx.student.stages[i]) for i in st])
    batch = {}  # the latest inputs fed to the student (its first stage's input)
    handle = ctx.student.stages[0].register_forward_pre_hook(lambda m, args: batch.update(x=args[0]))

    def loss(so, to, y, progress):
        t_maps = impl.pre_relu_maps(ctx.teacher, batch["x"], teacher_bns)
        ofd = sum(w * impl.ofd_loss(c(m), t, mg) for w, c, m, t, mg in zip(weights, conns, tap.maps, t_maps, margins))
        if progress is not None and progress.step >= progress.total_steps - 1:  # the last step: hooks off
            tap.remove()
            handle.remove()
        return {"ce": ce(so, y), "ofd": s["ofd_weight"] * ofd}

    return [Phase("ofd", loss, modules=tuple(conns))]


RECIPE = Recipe("heo2019comprehensive",
                settings={"stages": [0, 1, 2], "ofd_weight": 1 / 1000},
                tasks={"mnist1d": {}, "digits": {}}, phases=phases)
