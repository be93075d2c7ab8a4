"""Relational KD (Park et al., 2019): CE + distance and angle losses on the pooled embeddings.

The published weights 25 (distance) and 50 (angle) were kept on MNIST-1D by
benchmarks/select_weights.py (results/weight_selection.json)."""
from kdatlas.implementations import park2019relational as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    def loss(so, to, y, progress):
        return {"ce": ce(so, y),
                "distance": s["distance_weight"] * impl.rkd_distance_loss(so.embedding, to.embedding),
                "angle": s["angle_weight"] * impl.rkd_angle_loss(so.embedding, to.embedding)}
    return [Phase("rkd", loss)]


RECIPE = Recipe("park2019relational", settings={"distance_weight": 25.0, "angle_weight": 50.0},
                # digits: chosen on held-out images by benchmarks/select_weights.py (the published 25/50
                # came out best on MNIST-1D and are kept there)
                tasks={"mnist1d": {}, "digits": {"distance_weight": 5.0, "angle_weight": 10.0}, "cifar100": {}},
                phases=phases)
