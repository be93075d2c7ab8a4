"""CRD (Tian et al., 2019): CE + crd_weight * the contrastive loss on the pooled embeddings.

The embedding heads and the memory banks (one row per training sample, looked up by the loader's
sample index) live in the file's CRDLoss, which joins the optimiser. Settings: the authors' code
(crd_weight 0.8, 128-d heads, momentum 0.5, tau 0.07); 256 negatives instead of 16,384, since the
students' training set has 500 samples. On CIFAR-100 (the overhead benchmark's size) the negatives
are shared by the batch (the file's shared_negatives option): the code's per-anchor negatives
gather 16,385 rows per anchor and cost 2.3x the plain step there (benchmarks/overhead.py).
On the toy tasks the code's per-anchor sampling is kept."""
from kdatlas.implementations import tian2019contrastive as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    crd = impl.CRDLoss(ctx.student_features[-1].shape[1], ctx.teacher_features[-1].shape[1], ctx.n_data,
                       feat_dim=s["feat_dim"], num_negatives=s["num_negatives"],
                       nce_temperature=s["nce_temperature"], momentum=s["momentum"],
                       shared_negatives=s["shared_negatives"])

    def loss(so, to, y, progress):
        return {"ce": ce(so, y), "crd": s["crd_weight"] * crd(so.embedding, to.embedding, so.index)}
    return [Phase("crd", loss, modules=(crd,))]


RECIPE = Recipe("tian2019contrastive",
                settings={"crd_weight": 0.8, "feat_dim": 128, "num_negatives": 256, "nce_temperature": 0.07,
                          "momentum": 0.5, "shared_negatives": False},
                # the paper's 16,384 negatives where the training set is large enough
                tasks={"mnist1d": {}, "digits": {},
                       "cifar100": {"num_negatives": 16384, "shared_negatives": True}},
                phases=phases)
