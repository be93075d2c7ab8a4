"""Phuong & Lampert (2019): not run by the benchmark; implementations/phuong2019towards.py is the
paper's analytical setting, computed in its notebook and tests.

The paper's results are about one setting: binary classification, a *linear* teacher sigma(w_*^T x),
and a linear or deep linear student trained by gradient descent on the cross-entropy to the
teacher's soft labels. The benchmark's tasks have ten classes, a convolutional teacher and a
convolutional student; distilling there is Hinton et al.'s loss at temperature 1 with no label term,
which the paper does not analyse, so a benchmark row would not test any of its claims. (A linear
student on the raw inputs of MNIST-1D or the digits would still be distilled from a non-linear
teacher, again outside the theory.)"""
from kdatlas.recipes import Recipe

RECIPE = Recipe("phuong2019towards", skip=(
    "a theory paper about linear and deep linear binary students distilled from a linear teacher; the "
    "benchmark's ten-class convolutional teacher and student are outside that setting, so its claims are "
    "checked numerically in the notebook and tests instead"))
