"""Net2Net (Chen, Goodfellow & Shlens, 2016): not run by the benchmark; the notebook widens and
deepens the atlas's small ConvNet and trains on from it.

Net2Net moves a trained network's knowledge into a *larger* network through its initial parameters
(function-preserving widening and deepening), to train the larger one faster. The benchmark's rows
compress a large teacher into a small student with a loss; Net2Net has neither the loss nor the
direction, so a row beside them would compare nothing the paper claims. The claims (the function is
preserved; training starts where the small network stopped) are in the tests and the notebook."""
from kdatlas.recipes import Recipe

RECIPE = Recipe("chen2015net2net", skip=(
    "Net2Net grows a larger network from a trained smaller one through function-preserving "
    "initialisation, with no distillation loss; the benchmark compresses a large teacher into a small "
    "student, so the notebook and tests check its claims instead"))
