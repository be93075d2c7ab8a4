"""DarkRank (Chen, Wang & Zhang, 2017): CE + darkrank_weight * soft transfer on the pooled embedding.

The paper distils metric-learning students (person re-identification, retrieval, clustering) trained
with their own metric losses; on these classification tasks the label loss is cross-entropy and
DarkRank is the extra term, on Outputs.embedding (the penultimate, pooled features). Soft transfer
(KL over the 4! orders of each query's 4 teacher-nearest samples), alpha = beta = 3 and unit-norm
embeddings follow a public re-implementation (see the implementation's docstring); darkrank_weight
= 1 is a neutral value (the paper's loss weight was not read), not tuned."""
from kdatlas.implementations import chen2017darkrank as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    def loss(so, to, y, progress):
        return {"ce": ce(so, y),
                "darkrank": s["darkrank_weight"] * impl.darkrank_soft_loss(
                    so.embedding, to.embedding, s["alpha"], s["beta"], s["list_size"])}
    return [Phase("darkrank", loss)]


RECIPE = Recipe("chen2017darkrank",
                settings={"darkrank_weight": 1.0, "alpha": 3.0, "beta": 3.0, "list_size": 4},
                tasks={"mnist1d": {}, "digits": {}},
                phases=phases)
