"""FSP (Yim et al., 2017): stage 1 matches the teacher's FSP matrices, stage 2 trains on the labels.

Stage 1 ("fsp", fsp_epochs_fraction of the epochs): fsp_loss between the FSP matrices of
consecutive stage outputs (stages 0-1 and 1-2; the larger map pooled to the smaller, as RepDistiller
pairs them) of the student, through the file's FSPConnector (the students here are 4x narrower
than the teachers; the paper's students have the teachers' widths), and of the teacher. Only the
student's stages and the connector are optimised (RepDistiller's init stage: the feature modules,
not the classifier), with the task's optimiser and learning rate (RepDistiller uses its main SGD
settings). Stage 2 ("ce"): cross-entropy on the whole student; the connector is dropped.
fsp_epochs_fraction = 0.125 is RepDistiller's 30 init epochs before 240 (the paper's iteration
counts were not readable); fsp_weight = 1 with equal lambda_i (Sec. 3.3: equal weights)."""
from kdatlas.implementations import yim2017gift as impl
from kdatlas.recipes import Phase, Recipe


def phases(ctx, s):
    st = s["stages"]
    conn = impl.FSPConnector([ctx.student_features[i].shape[1] for i in st],
                             [ctx.teacher_features[i].shape[1] for i in st])

    def fsp(so, to, y, progress):
        g_s = impl.fsp_matrices(conn([so.features[i] for i in st]))
        g_t = impl.fsp_matrices([to.features[i] for i in st])
        return {"fsp": s["fsp_weight"] * impl.fsp_loss(g_s, g_t)}

    feature_params = [p for stage in ctx.student.stages for p in stage.parameters()] + list(conn.parameters())
    return [Phase("fsp", fsp, share=s["fsp_epochs_fraction"], params=feature_params, modules=(conn,)),
            Phase("ce", None)]


RECIPE = Recipe("yim2017gift",
                settings={"stages": [0, 1, 2], "fsp_weight": 1.0, "fsp_epochs_fraction": 0.125},
                # CIFAR ResNets return (stem, group 1, group 2, group 3): pair consecutive outputs of all four
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {"stages": [0, 1, 2, 3]}},
                phases=phases)
