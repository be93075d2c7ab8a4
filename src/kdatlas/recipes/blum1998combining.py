"""Co-training (Blum & Mitchell, 1998): not run by the benchmark; the notebook and tests run it.

Co-training is semi-supervised learning from two views of each example, with no teacher network
and no distillation loss: two naive-Bayes classifiers label unlabelled examples for each other.
The benchmark's rows distil a trained teacher into a student on fully labelled data, so a row
would compare nothing the paper claims; its claims are checked on two-view data in the tests and
on the left and right halves of the digits in the notebook."""
from kdatlas.recipes import Recipe

RECIPE = Recipe("blum1998combining", skip=(
    "semi-supervised co-training of two per-view classifiers, with no teacher network and no "
    "distillation loss; the benchmark distils a trained teacher on labelled data, so the notebook "
    "and tests check its claims on two-view data instead"))
