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
# # Using a Neural Network to Approximate an Ensemble of Classifiers
#
# Zeng & Martinez (2000) replace a bagged or boosted ensemble by one neural network, the
# *approximator*, trained to reproduce the ensemble's outputs on the training inputs and on extra
# generated ones, so that storage and run time are those of a single model. This notebook bags ten
# copies of the atlas's MNIST-1D student, trains approximators of the same size on the outputs of
# the first N members, and plots test accuracy against N for the ensemble, its best member and the
# approximator, together with how often each agrees with the ensemble.

# %%
# On Colab, install the atlas (harness + implementation files); locally the README set-up did it.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "kdatlas @ git+https://github.com/kd-atlas/kd-atlas"], check=True)

# %%
from kdatlas.harness import get_task, n_params, setup
from kdatlas.recipes import get_recipe, make_context

FULL_SIZE = False  # True: the benchmark's full budget (100 epochs per network) and three seeds
QUICK = setup()    # True when KDATLAS_QUICK=1 (CI sets it): a CI-sized budget, numbers that mean little
# 30 epochs per network by default keeps the notebook near a minute on a laptop CPU (eleven trainings
# per approximator size); the benchmark runs the recipe at the task's 100 epochs.
task = get_task("mnist1d", quick=QUICK) if QUICK or FULL_SIZE else get_task("mnist1d", epochs=30)
SEEDS = (1, 2, 3) if FULL_SIZE else (1,)
recipe = get_recipe("zeng2000using")
settings = recipe.settings_for(task.name, **({"members": 3} if QUICK else {}))  # quick: 3 members
print(task.description, f"({task.epochs} epochs per network)")
print(f"every member and the approximator: the task's student, {n_params(task.new_student()):,} parameters")
print("recipe settings:", settings)

# %% [markdown]
# ## Set-up
#
# The recipe `kdatlas.recipes.zeng2000using` trains `members` = 10 students, each from its own
# initial weights on its own bootstrap replicate of the 500 training sequences (bagging). It then
# draws as many new inputs as there are training inputs with `random_instances` (every one of the
# 40 positions drawn independently from that position's training values: the RANDOM generator the
# letter's method is reported to resemble), labels the original plus new inputs with the ensemble's
# averaged softmax (`ensemble_probs`), and trains the approximator on those targets with
# `approximation_loss` (a cross-entropy to the ensemble's distribution, no temperature). Here the
# steps are called one by one so that approximators of ensembles of 1, 3 and 10 members share the
# same members. The letter's own text could not be read: see the implementation's docstring for
# what is taken from where.

# %%
import statistics

import matplotlib.pyplot as plt
import torch

from kdatlas.implementations.zeng2000using import Ensemble, ensemble_probs
from kdatlas.recipes.zeng2000using import train_approximator, train_members, transfer_set

SIZES = tuple(sorted({1, 3, settings["members"]}))
x_test, y_test, _ = task.student_data.test.tensors


def agreement(model, reference):
    with torch.no_grad():
        return 100.0 * (model.eval()(x_test).argmax(-1) == reference).float().mean().item()


rows = {k: {n: [] for n in SIZES} for k in ("ensemble", "best member", "approximator",
                                              "member agrees", "approximator agrees")}
alone, no_extra = [], []
for seed in SEEDS:
    ctx = make_context(task, None, seed)
    members, _ = train_members(ctx, settings)
    alone.append(task.score(task.train_student(seed=seed)[0]))  # the same student trained on the labels
    for n in SIZES:
        ens = members[:n]
        decision = ensemble_probs(ens, x_test).argmax(-1)
        rows["ensemble"][n].append(task.score(Ensemble(ens)))
        rows["best member"][n].append(max(task.score(m) for m in ens))
        rows["member agrees"][n].append(statistics.fmean(agreement(m, decision) for m in ens))
        ctx_n = make_context(task, None, seed)  # a fresh approximator: the seed's initial weights
        train_approximator(ctx_n, transfer_set(ctx_n, settings, ens))
        rows["approximator"][n].append(task.score(ctx_n.student))
        rows["approximator agrees"][n].append(agreement(ctx_n.student, decision))
    # the same approximator of the whole ensemble without the RANDOM inputs (the originals only)
    ctx_0 = make_context(task, None, seed)
    train_approximator(ctx_0, transfer_set(ctx_0, settings | {"extra": 0.0}, members))
    no_extra.append(task.score(ctx_0.student))

# %% [markdown]
# ## Accuracy and agreement against the ensemble size
#
# Left: test accuracy (mean over the seeds). The dotted line is the student trained on the labels
# alone; the cross, the approximator of all the members trained on the original inputs only. Right: how often a network's test prediction is the ensemble's (for members, the mean over
# the members); the approximator of a one-member ensemble learns that member's outputs.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
for name, marker in (("ensemble", "s-"), ("best member", "o--"), ("approximator", "^-")):
    ax1.plot(SIZES, [statistics.fmean(rows[name][n]) for n in SIZES], marker, label=name)
ax1.axhline(statistics.fmean(alone), color="gray", ls=":", label="student on labels")
ax1.scatter([SIZES[-1]], [statistics.fmean(no_extra)], marker="x", color="C2", zorder=3,
            label="approximator, no RANDOM inputs")
ax1.set_xlabel("ensemble members N")
ax1.set_ylabel(f"test {task.metric.name} ({task.metric.unit})")
ax1.legend(fontsize=8)
for name, marker in (("member agrees", "o--"), ("approximator agrees", "^-")):
    ax2.plot(SIZES, [statistics.fmean(rows[name][n]) for n in SIZES], marker, label=name)
ax2.set_xlabel("ensemble members N")
ax2.set_ylabel("agreement with the ensemble (%)")
ax2.legend(fontsize=8)
for ax in (ax1, ax2):
    ax.set_xticks(SIZES)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Results
#
# One seed by default (the atlas benchmark runs the recipe over 5 seeds at the full budget: the
# site's "Reproduced" page). The letter's claim is that the approximator, at the cost of one
# member, keeps accuracy similar to the whole ensemble. In our MNIST-1D runs it does not: the
# bagged ensemble beats its members by several points, but the approximator stays near a single
# member, below the ensemble and below the student trained on the labels, with or without the
# RANDOM inputs (the tests show the claim on a small 2-D toy, where one network does stand in for
# the ensemble). Limits of this toy: members of a 2.4k-parameter student trained on bootstrap
# replicates of 500 sequences (each much weaker than the student on all of them), only bagging (no
# boosting), the averaged-softmax targets and the cross-entropy are the atlas's choices where the
# letter could not be read, and RANDOM inputs on a sequence task are far from the data. (In the
# quick mode CI uses, the numbers mean nothing.)

# %%
def fmt(v):
    return f"{statistics.fmean(v):.1f} +- {statistics.stdev(v):.1f}" if len(v) > 1 else f"{v[0]:.1f}"


{"student on labels": fmt(alone), f"approximator N={SIZES[-1]}, no RANDOM inputs": fmt(no_extra)} | {f"{name}, N={n}": fmt(v[n]) for name, v in rows.items() for n in SIZES}
