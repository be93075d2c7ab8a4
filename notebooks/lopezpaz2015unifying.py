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
# # Unifying Distillation and Privileged Information
#
# Lopez-Paz, Bottou, Schölkopf & Vapnik (2016) show that Hinton's distillation and Vapnik's
# learning using privileged information are one procedure, *generalized distillation*: train a
# teacher on a description $x^\star$ of each training example that will not exist at test time,
# soften its predictions, and train the student on the ordinary features $x$ to fit a mix of the
# labels and the teacher's soft labels (Eq. 4). This notebook reruns the paper's four synthetic
# experiments (Sec. 5: logistic regression, $d = 50$, 200 training samples, $\lambda = T = 1$),
# sweeps the imitation weight $\lambda$, and runs Hinton's case ($x^\star = x$) on the atlas's
# MNIST-1D task.

# %%
# On Colab, install the atlas (harness + implementation files); locally the README set-up did it.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "kdatlas @ git+https://github.com/kd-atlas/kd-atlas"], check=True)

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from kdatlas.harness import compare, get_task, n_params, plot_curves, setup, table
from kdatlas.implementations.lopezpaz2015unifying import (fit_softmax_regression, predict, soft_targets,
                                                          standardize, synthetic)
from kdatlas.recipes import get_recipe

FULL_SIZE = False  # True: the paper's 100 partitions and 10,000 test samples (a few minutes on a CPU)
QUICK = setup()    # True when KDATLAS_QUICK=1 (CI sets it): a CI-sized budget, numbers that mean little
torch.set_num_threads(1)  # many small matrix products: one thread is fastest
PARTITIONS = 100 if FULL_SIZE else (4 if QUICK else 10)
N_TEST = 10_000 if FULL_SIZE else 2_000
STEPS = 500 if QUICK else 2_000  # full-batch RMSprop updates at 1e-3 (2,000: as many as the authors' Keras runs made)

# %% [markdown]
# ## The four kinds of privileged information (Sec. 5)
#
# `synthetic(k, alpha, n)` draws $(x^\star, x, y)$ for a random hyperplane $\alpha \sim \mathcal N(0, I_{50})$:
#
# 1. **clean labels**: $x^\star = \langle\alpha, x\rangle$, the exact distance to the boundary, while the labels are noisy;
# 2. **clean features**: $x = x^\star + \varepsilon$, labels from $x^\star$;
# 3. **relevant features**: $x^\star$ = the 3 coordinates of $x$ the label depends on;
# 4. **sample-dependent relevant features**: a different 3 coordinates per sample (weights in
#    $x^\star$'s own order: the paper's formula, read literally, would make the label no function
#    of $x^\star$ and its 96% teacher impossible; see the implementation's docstring).
#
# Each partition is one problem; all partitions are fitted at once (a leading batch dimension).
# Every model is a softmax regression trained on standardised features, the teacher on $x^\star$,
# the students on $x$. For the student, Eq. 4 is the cross-entropy against the mixed target
# $(1-\lambda)\,y + \lambda\,s$, so one fit covers several $\lambda$ at once.

# %%
LAMBDAS = (0.0, 0.5, 1.0)


def experiment(k, seed=0):
    g = torch.Generator().manual_seed(seed)
    tr, te = [], []
    for _ in range(PARTITIONS):
        alpha = torch.randn(50, generator=g)
        tr.append(synthetic(k, alpha, 200, g))
        te.append(synthetic(k, alpha, N_TEST, g))
    stack = lambda split, i: torch.stack([t[i] for t in split])  # noqa: E731
    xs_tr, xs_te = standardize(stack(tr, 0), stack(te, 0))
    x_tr, x_te = standardize(stack(tr, 1), stack(te, 1))
    y_tr, y_te = stack(tr, 2), stack(te, 2)
    onehot = F.one_hot(y_tr, 2).float()
    teacher = fit_softmax_regression(xs_tr, onehot, STEPS)               # step 1: on x* only
    s = soft_targets(predict(teacher, xs_tr), temperature=1.0)          # step 2: T = 1
    lam = torch.tensor(LAMBDAS).view(-1, 1, 1, 1)
    students = fit_softmax_regression(x_tr.expand(len(LAMBDAS), *x_tr.shape), (1 - lam) * onehot + lam * s, STEPS)
    acc = lambda logits: (logits.argmax(-1) == y_te).float().mean(-1) * 100  # noqa: E731  per partition
    return {"privileged": acc(predict(teacher, xs_te)), "by_lambda": acc(predict(students, x_te))}


results = {k: experiment(k) for k in (1, 2, 3, 4)}
rows = {}
for k, r in results.items():
    regular, distilled = r["by_lambda"][0], r["by_lambda"][-1]  # lambda = 0 is the student alone
    rows[k] = {name: f"{v.mean():.1f} ± {v.std():.1f}" for name, v in
               (("privileged (teacher on x*)", r["privileged"]), ("regular (x alone)", regular),
                ("distilled (lambda = 1)", distilled))}
print(f"ours: {PARTITIONS} partitions, {N_TEST} test samples each, accuracy % (mean ± std over partitions)")
for k, row in rows.items():
    print(f"experiment {k}:", row)

# %% [markdown]
# Compare with the paper's Sec. 5 numbers, listed on this paper's page in the atlas
# (privileged / regular / distilled: 96 / 88 / 95, 90 / 68 / 70, 98 / 89 / 97 and 96 / 55 / 56).
# Ours come from our own runs with the protocol above, not from the paper.

# %% [markdown]
# ## How much to imitate
#
# Test accuracy of the student against the imitation weight $\lambda$ (0: the labels only, 1: the
# teacher's soft labels only), mean over partitions, the teacher's accuracy on $x^\star$ dashed.
# Where $x^\star$ carries information about the labels that $x$ cannot give on 200 samples (1: which
# labels are noise; 3: which features matter), more imitation is better; where it does not (2: the
# noise on $x$ is independent of $x^\star$), imitation neither helps nor hurts, the paper's causal
# argument.

# %%
fig, axes = plt.subplots(1, 4, figsize=(13, 2.8), sharey=True)
titles = {1: "1. clean labels", 2: "2. clean features", 3: "3. relevant features", 4: "4. per-sample relevant"}
for ax, (k, r) in zip(axes, results.items()):
    ax.plot(LAMBDAS, r["by_lambda"].mean(-1), "o-", label="student on x")
    ax.axhline(r["privileged"].mean(), color="gray", ls="--", label="teacher on x*")
    ax.set_title(titles[k], fontsize=9)
    ax.set_xlabel(r"imitation $\lambda$")
axes[0].set_ylabel("test accuracy (%)")
axes[0].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Hinton's case on MNIST-1D
#
# With $x^\star = x$ generalized distillation is Hinton's distillation with the student's softmax
# at temperature 1 (Eq. 4). The recipe `kdatlas.recipes.lopezpaz2015unifying` runs it with the
# paper's $\lambda = T = 1$: the student fits the teacher's probabilities and never sees a label.
# Same architecture, initial weights and batches as the student alone.

# %%
task = get_task("mnist1d", quick=QUICK)
teacher, teacher_score = task.teacher(seed=0)  # trained once, then read from the disk cache
print(task.description)
print(f"teacher: {teacher_score:.1f}{task.metric.unit}, {n_params(teacher):,} parameters; "
      f"student: {n_params(task.new_student()):,} parameters")
res = compare(task, teacher, {"generalized distillation (x* = x)": get_recipe("lopezpaz2015unifying")},
              seeds=(1,), teacher_score=teacher_score)
plot_curves(res)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Results
#
# The synthetic table above is ours: the paper's protocol (logistic regression, 200 training
# samples, $\lambda = T = 1$) on fewer partitions by default (`FULL_SIZE` runs the paper's 100) and
# full-batch RMSprop instead of Keras' mini-batches. When this notebook was written, the `FULL_SIZE`
# run (100 partitions, 10,000 test samples) gave 95.2 / 86.1 / 95.2 (experiment 1), 88.0 / 67.7 / 67.8
# (2) and 97.9 / 86.0 / 97.9 (3): the paper's ordering, and its values within 3 points (our regular
# students are 2-3 points weaker). Experiment 4 gave 97.7 / 50.9 / 51.0, the paper 96 / 55 / 56: the
# student on $x$ is at chance with or without the teacher, the paper's point that useful privileged
# information is not enough when the student's function class cannot express what it says. The
# MNIST-1D run is Hinton's case, not privileged information: at $\lambda = T = 1$ the student fits
# the teacher's unsoftened probabilities, nearly one-hot for a 98.6% teacher, and lands where the
# student alone does (84.4 vs 84.5, one seed, when this was written); the benchmark runs it over
# five seeds (the site's "Reproduced" page).

# %%
table(res)
