"""Attention transfer (Zagoruyko & Komodakis, 2016): CE + at_weight * sum over stage pairs of at_loss.

The paper's beta = 1000 (beta/2 per pair, the default at_weight) is tied to the feature scales of its
CIFAR WRNs; at_weight on the embedded tasks was chosen by benchmarks/select_weights.py on held-out training samples (never the test
set; results/weight_selection.json)."""
from kdatlas.implementations import zagoruyko2016paying as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    def loss(so, to, y, progress):
        at = sum(impl.at_loss(so.features[i], to.features[i], s["p"]) for i in s["stages"])
        return {"ce": ce(so, y), "at": s["at_weight"] * at}
    return [Phase("at", loss)]


RECIPE = Recipe("zagoruyko2016paying",
                settings={"stages": [0, 1, 2], "at_weight": 500.0, "p": 2.0},  # the paper's beta / 2
                tasks={"mnist1d": {"at_weight": 1.0},  # chosen on held-out data (select_weights.py)
                       "digits": {"at_weight": 10.0},  # ditto: 80.5 held-out against 74.6 alone
                       "cifar100": {"stages": [1, 2, 3]}},  # CIFAR ResNets: stem, groups 1-3; pair the groups
                phases=phases)
