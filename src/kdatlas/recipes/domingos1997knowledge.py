"""Domingos (1997), CMM: not run by the benchmark; implementations/domingos1997knowledge.py is run
in its notebook and tests.

CMM's student is not a neural network: a bagged ensemble of a rule learner (C4.5RULES in the paper,
a small CART here) labels generated examples, and the same rule learner is re-run on the enlarged
set to give one readable model. The benchmark's rows train the task's convolutional student by
gradient descent from a trained teacher network, so a row would compare nothing the paper claims;
its claims (one tree keeps part of bagging's gain, and agrees with the ensemble more than a tree
grown on the original data) are checked on the digits in the notebook and tests."""
from kdatlas.recipes import Recipe

RECIPE = Recipe("domingos1997knowledge", skip=(
    "a bagged rule/tree learner relabels generated examples for one tree of the same learner, with no "
    "neural student and no teacher network; the benchmark's rows train a convolutional student from a "
    "trained teacher, so the notebook and tests check its claims with trees on the digits instead"))
