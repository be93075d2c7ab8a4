# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Knowledge Acquisition from Examples Via Multiple Models (CMM)
#
# Domingos (1997) asks whether the accuracy that bagging adds to a rule learner can be kept in one
# readable model. CMM (Combined Multiple Models) bags the learner, generates many new examples,
# labels them with the ensemble's vote, and runs the same learner once more on the original plus
# the new examples. This notebook does it with small CART trees (the atlas's stand-in for
# C4.5RULES), first on a small tabular problem like the paper's UCI sets, then on the 64-pixel
# digits, where the generator's weakness in many dimensions shows, and prints a CMM tree as rules.

# %%
# On Colab, install the atlas (harness + implementation files); locally the README set-up did it.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "kdatlas @ git+https://github.com/kd-atlas/kd-atlas"], check=True)

# %%
from kdatlas.harness import setup

FULL_SIZE = False  # True: five draws per point, 10,000 generated examples and the ten-class digits
QUICK = setup()    # True when KDATLAS_QUICK=1 (CI sets it): fewer depths and draws, numbers that mean little
SEEDS = range(5) if FULL_SIZE else range(1 if QUICK else 3)
DEPTHS = (2, 4) if QUICK else (2, 3, 4, 6, 8)
N_NEW = 10_000 if FULL_SIZE else 2000
N_MODELS = 10  # bagged members (the paper bags C4.5RULES; its number of members was not read)

# %% [markdown]
# ## Set-up
#
# `cmm` (implementations/domingos1997knowledge.py): `bagged_trees` grows `N_MODELS` trees on
# bootstrap replicates; `rule_examples` draws the new examples uniformly inside the region of each
# rule (each leaf's box, closed by the data's range), an equal share per rule: the generator
# Buciluǎ et al. (2006) describe for CMM; `vote` labels them; `fit_tree` is grown once more, with
# the same depth limit, on the original plus new examples. The single tree is grown on the
# original examples alone. Accuracy is measured on held-out examples; "agreement" is how often a
# tree predicts what the ensemble votes.

# %%
import math
import statistics

import matplotlib.pyplot as plt
import torch

from kdatlas.implementations.domingos1997knowledge import cmm, fit_tree, predict_tree, tree_rules, vote


def tabular(n, g):  # four attributes in [0, 1], three classes from a wavy and a flat frontier, 10 % noise
    x = torch.rand(n, 4, generator=g)
    y = ((0.3 * torch.sin(2 * math.pi * x[:, 0]) + 0.5 - x[:, 1]) > 0).long() + (x[:, 2] > 0.7).long()
    flip = torch.rand(n, generator=g) < 0.1
    return x, torch.where(flip, torch.randint(0, 3, (n,), generator=g), y)


def compare(split, num_classes, kinds=("rules",)):
    """Mean accuracy/agreement/leaves per depth over SEEDS; split(seed) -> (x, y, x_test, y_test)."""
    rows = {}
    for depth in DEPTHS:
        r = {k: [] for k in ["single", "bagging", "single agrees", "single leaves"]
             + [f"CMM {g}{s}" for g in kinds for s in ("", " agrees", " leaves")]}
        for seed in SEEDS:
            x, y, xt, yt = split(seed)
            single = fit_tree(x, y, num_classes, max_depth=depth)
            for g in kinds:
                tree, trees, _, _ = cmm(x, y, num_classes, N_MODELS, N_NEW, depth, generator_kind=g,
                                        generator=torch.Generator().manual_seed(100 + seed))
                ens = vote(trees, xt, num_classes)
                r[f"CMM {g}"].append((predict_tree(tree, xt) == yt).float().mean().item() * 100)
                r[f"CMM {g} agrees"].append((predict_tree(tree, xt) == ens).float().mean().item() * 100)
                r[f"CMM {g} leaves"].append(len(tree.leaves))
            r["bagging"].append((ens == yt).float().mean().item() * 100)
            r["single"].append((predict_tree(single, xt) == yt).float().mean().item() * 100)
            r["single agrees"].append((predict_tree(single, xt) == ens).float().mean().item() * 100)
            r["single leaves"].append(len(single.leaves))
        rows[depth] = {k: statistics.fmean(v) for k, v in r.items()}
    return rows


def plot(rows, title):
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    cmms = [k for k in next(iter(rows.values())) if k.startswith("CMM") and k.count(" ") == 1]
    for name in ["single", *cmms, "bagging"]:
        a1.plot(DEPTHS, [rows[d][name] for d in DEPTHS], "o-" if name != "bagging" else "k--", label=name)
        if name != "bagging":
            a2.plot([rows[d][f"{name} leaves"] for d in DEPTHS], [rows[d][f"{name} agrees"] for d in DEPTHS],
                    "o-", label=name)
    a1.set_xlabel("max depth")
    a1.set_ylabel("test accuracy (%)")
    a2.set_xlabel("leaves (rules) of the tree")
    a2.set_ylabel("agreement with the ensemble (%)")
    a2.set_xscale("log")
    for a in (a1, a2):
        a.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    plt.tight_layout()
    plt.show()


def tabular_split(seed):
    g = torch.Generator().manual_seed(seed)
    return (*tabular(200, g), *tabular(2000, g))


tab = compare(tabular_split, 3, kinds=("rules", "uniform"))
plot(tab, "tabular toy: 200 training examples, 4 attributes, 3 classes")

# %% [markdown]
# ## The digits: 64 attributes
#
# The same comparison on scikit-learn's 8x8 digits (3 vs 5; with `FULL_SIZE`, all ten classes),
# 100 (300) training images. A rule of a small tree fixes only a few of the 64 pixels; the others
# are drawn over their whole range, so most new examples look nothing like digits, and the
# ensemble's vote on them says little about the digits themselves.

# %%
from sklearn.datasets import load_digits

digits = load_digits()
dx, dy = torch.tensor(digits.data, dtype=torch.float32), torch.tensor(digits.target)
if not FULL_SIZE:
    keep = (dy == 3) | (dy == 5)
    dx, dy = dx[keep], (dy[keep] == 5).long()
n_train = 300 if FULL_SIZE else 100


def digits_split(seed):
    p = torch.randperm(len(dx), generator=torch.Generator().manual_seed(seed))
    return dx[p[:n_train]], dy[p[:n_train]], dx[p[n_train:]], dy[p[n_train:]]


dig = compare(digits_split, int(dy.max()) + 1)
plot(dig, f"digits, {'10 classes' if FULL_SIZE else '3 vs 5'}: {n_train} training images, 64 pixels")

# %% [markdown]
# ## A CMM tree as rules
#
# What the user gets: one depth-3 tree, here on the tabular toy (attributes a0..a3).

# %%
x, y, _, _ = tabular_split(0)
tree, _, _, _ = cmm(x, y, 3, N_MODELS, N_NEW, 3, generator=torch.Generator().manual_seed(100))
print("\n".join(tree_rules(tree, [f"a{i}" for i in range(4)])))

# %% [markdown]
# ## Results
#
# Means over the draws above. On the tabular toy, what the paper claims shows once the trees are
# deep enough to hold the frontier (depth 4 and more in our runs): the CMM tree is about 3 points
# more accurate than the tree grown on the original examples, stays at or below the bagged
# ensemble, and agrees with the ensemble far more often (95 % against 88 %), at the price of more
# leaves when depth is not the limit; at depth 2-3 neither tree can follow the ensemble. On the
# digits the claim does not hold in our runs: the CMM tree agrees a little more with the ensemble
# but is not more accurate than the single tree, since rule-region examples spread over 64 pixels
# look nothing like digits. Limits: CART with a depth limit instead of C4.5RULES, the per-rule
# share of new examples and the number of members are the atlas's choices (the ICML text could not
# be read), and the toy is not one of the paper's UCI sets. (In the quick mode CI uses, the
# numbers mean little.)

# %%
{f"{data}: {name}, depth {d}": round(v, 1) for data, rows in (("tabular", tab), ("digits", dig))
 for d, r in rows.items() for name, v in r.items() if "leaves" not in name}
