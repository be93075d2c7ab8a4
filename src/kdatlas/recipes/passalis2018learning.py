"""Probabilistic knowledge transfer (Passalis & Tefas, 2018): CE + pkt_weight * pkt_loss on the
penultimate embeddings (the pooled features that feed the classifier, the paper's layer).

The paper trains a representation with the PKT loss alone and evaluates retrieval; for a classifier
the recipe follows the CRD benchmark (tian2019contrastive, RepDistiller): the loss added to the
cross-entropy with pkt_weight = 3e4 (RepDistiller's scripts/run_cifar_distill.sh, "-b 30000"), kept
on both embedded tasks (not tuned)."""
from kdatlas.implementations import passalis2018learning as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    def loss(so, to, y, progress):
        return {"ce": ce(so, y), "pkt": s["pkt_weight"] * impl.pkt_loss(so.embedding, to.embedding)}
    return [Phase("pkt", loss)]


RECIPE = Recipe("passalis2018learning", settings={"pkt_weight": 3e4},  # RepDistiller / CRD benchmark
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {}},
                phases=phases)
