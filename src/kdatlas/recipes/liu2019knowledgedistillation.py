"""IRG (Liu et al., 2019): CE + vertex (logits) + edge (stages 2 and 3) + transformation (stage 2 -> 3).

Weights 0.1 / 5 / 5 are AberHu/Knowledge-Distillation-Zoo's (same mean reductions as the
implementation); the paper's lambdas could not be read (see the implementation's docstring). Layers:
stage indices into Outputs.features (three stages on both embedded tasks), globally pooled as in the
official code; edges on the last two stages, the transformation from the middle stage to the last
(Knowledge-Distillation-Zoo's choice on CIFAR ResNets: groups 2 and 3). Not tuned."""
from kdatlas.implementations import liu2019knowledgedistillation as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    crit = impl.IRGLoss(s["vertex_weight"], s["edge_weight"], s["transformation_weight"],
                        edge_layers=s["edge_stages"], transformation_pairs=s["transformation_pairs"])

    def loss(so, to, y, progress):
        return {"ce": ce(so, y), **crit(so.features, to.features, so.logits, to.logits)}
    return [Phase("irg", loss)]


RECIPE = Recipe("liu2019knowledgedistillation",
                settings={"vertex_weight": 0.1, "edge_weight": 5.0, "transformation_weight": 5.0,
                          "edge_stages": [1, 2], "transformation_pairs": [[1, 2]]},
                tasks={"mnist1d": {}, "digits": {}},
                phases=phases)
