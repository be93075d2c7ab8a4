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
# # Towards Understanding Knowledge Distillation
#
# Phuong & Lampert (2019) study distillation in the one setting where it can be solved exactly:
# binary classification with a linear teacher $w_*$, whose soft labels are
# $t(x) = \sigma(w_*^\top x)$, and a linear (or deep linear) student trained by gradient descent
# on the cross-entropy to those soft labels. They trace the student's success to three factors:
# the *optimisation bias* of gradient descent, the *data geometry* near the teacher's decision
# boundary, and *strong monotonicity* (more transfer data never hurts). This notebook computes
# that setting in float64 with the functions of the implementation file; no network is trained
# and nothing is downloaded, so the "paper-scale" switch only makes the problem larger.

# %%
# On Colab, install the atlas (harness + implementation files); locally the README set-up did it.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "kdatlas @ git+https://github.com/kd-atlas/kd-atlas"], check=True)

# %%
import math

import matplotlib.pyplot as plt
import torch

from kdatlas.harness import setup
from kdatlas.harness.report import Table
from kdatlas.implementations import phuong2019towards as impl

FULL_SIZE = False  # True: input dimension 200 and more seeds (still a CPU run of seconds to minutes)
QUICK = setup()    # True when KDATLAS_QUICK=1 (CI sets it): fewer seeds and steps, numbers that mean little
D = 200 if FULL_SIZE else 50                   # input dimension d
SEEDS = 3 if QUICK else (20 if FULL_SIZE else 10)
STEPS = 600 if QUICK else 3000                 # full-batch gradient-descent steps, step size 1 / smoothness
GAP = 0.1                                      # radians: the angular gap at the boundary (second geometry)
F64 = torch.float64
print(f"d = {D}, {SEEDS} seeds, {STEPS} gradient steps")


def problem(n, seed, gap=0.0):
    """A teacher w_* (norm 2) and n transfer inputs (standard normal, or with an angular gap)."""
    g = torch.Generator().manual_seed(seed)
    w_star = 2 * torch.nn.functional.normalize(torch.randn(D, generator=g, dtype=F64), dim=0)
    return impl.sample_inputs(n, w_star, gap=gap, generator=g), w_star


# %% [markdown]
# ## Optimisation bias: which minimiser gradient descent finds
#
# With fewer transfer points than dimensions ($n < d$) many students fit the soft labels
# exactly: any $w$ with $Xw = Xw_*$. The gradient $\frac1n X^\top(\sigma(Xw) - \sigma(Xw_*))$
# always lies in the span of the data, so gradient descent from zero stays there and converges to
# the one minimiser in it, the projection $Pw_*$ of the teacher onto the span. Below: the distance
# of the iterates to $Pw_*$ and to $w_*$, for $n = d/2$ and for $n = 2d$ (where $P$ is the
# identity and the student recovers the teacher).

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
for ax, n in zip(axes, (D // 2, 2 * D)):
    x, w_star = problem(n, seed=0)
    p = impl.projection_onto_span(x, w_star)
    w, chunk, rows = torch.zeros(D, dtype=F64), max(1, STEPS // 30), []
    for k in range(0, STEPS + 1, chunk):
        rows.append((k, (w - p).norm().item(), (w - w_star).norm().item()))
        w = impl.distill_linear(x, w_star, steps=chunk, init=w)
    k, to_p, to_t = zip(*rows)
    ax.semilogy(k, to_p, label=r"$\|w_t - P w_*\|$")
    ax.semilogy(k, to_t, "--", label=r"$\|w_t - w_*\|$")
    ax.set_title(f"n = {n}, d = {D}")
    ax.set_xlabel("gradient step")
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# A deep linear student $\sigma(W_3 W_2 W_1 x)$ has the same bias in its end-to-end vector: the
# gradient of the first layer also lies in the data span, so the part of $W_1$ outside it keeps
# its initial value, and the end-to-end vector lands near $Pw_*$ when $W_1$ starts small. The gap
# shrinks with the initial scale:

# %%
x, w_star = problem(D // 5, seed=1)
p = impl.projection_onto_span(x, w_star)
scales = (0.3, 0.1, 0.03)
gaps = []
for scale in scales:
    w, _ = impl.distill_deep_linear(x, w_star, depth=3, width=16, steps=STEPS // 2, lr=0.5, init_scale=scale,
                                    generator=torch.Generator().manual_seed(1))
    gaps.append(((w - p).norm() / p.norm()).item())
Table(["initial scale of each layer", "|w_end-to-end - P w*| / |P w*|"],
      [[f"{s:g}", f"{g:.3g}"] for s, g in zip(scales, gaps)], ["r", "r"])

# %% [markdown]
# ## Data geometry and strong monotonicity: risk against the number of transfer points
#
# The risk is the probability that student and teacher disagree. For standard normal inputs it is
# the angle between $w$ and $w_*$ over $\pi$; the second geometry removes every input within
# `GAP` radians of the teacher's boundary (as if the classes were separated by a margin in angle),
# and its risk is estimated on 5,000 fresh inputs of the same distribution. Each point is the mean
# over the seeds; the comparison is logistic regression on the teacher's hard labels, trained by
# the same gradient descent on the same inputs.

# %%
NS = [5, 10, 20, 35, 50, 75, 100, 200] if not QUICK else [5, 20, 50, 100]
NS = [n * D // 50 for n in NS]
curves = {}
for gap in (0.0, GAP):
    for n in NS:
        xs, ws, tests = [], [], []
        for seed in range(SEEDS):
            x, w_star = problem(n, seed=1000 + seed, gap=gap)
            xs.append(x)
            ws.append(w_star)
            if gap > 0:
                tests.append(impl.sample_inputs(5000, w_star, gap=gap, generator=torch.Generator().manual_seed(seed)))
        x, w_star = torch.stack(xs), torch.stack(ws)
        students = {"soft labels (distillation)": impl.distill_linear(x, w_star, steps=STEPS),
                    "hard labels": impl.hard_label_linear(x, w_star, steps=STEPS),
                    "limit P w* (theory)": impl.distillation_limit(x, w_star)}
        for name, w in students.items():
            risk = (impl.angle(w, w_star) / math.pi if gap == 0
                    else impl.transfer_risk(torch.stack(tests), w, w_star))
            curves.setdefault((gap, name), []).append(risk.mean().item())

fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), sharey=True)
for ax, gap in zip(axes, (0.0, GAP)):
    for name, style in (("soft labels (distillation)", "o-"), ("limit P w* (theory)", "k:"), ("hard labels", "s--")):
        ax.plot(NS, [max(r, 1e-4) for r in curves[(gap, name)]], style, label=name)
    ax.axvline(D, color="gray", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("transfer points n (vertical line: n = d)")
    ax.set_title("standard normal inputs" if gap == 0 else f"no inputs within {gap} rad of the boundary")
axes[0].set_ylabel("risk (disagreement with the teacher), floor 1e-4")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %%
Table(["n", *[f"{name}, {'gap' if gap else 'isotropic'}" for gap in (0.0, GAP)
              for name in ("soft labels (distillation)", "hard labels")]],
      [[str(n), *[f"{curves[(gap, name)][i]:.3g}" for gap in (0.0, GAP)
                  for name in ("soft labels (distillation)", "hard labels")]] for i, n in enumerate(NS)],
      ["r"] * 5)

# %% [markdown]
# ## What this shows, and its limits
#
# Soft labels say how far each transfer point is from the teacher's boundary, not only on which
# side it lies, so each point pins down one linear constraint on the student ($w^\top x_i =
# w_*^\top x_i$): gradient descent keeps the projection of the teacher onto the span of the data,
# the student with the smallest angle to the teacher among those the data can reach, and it
# recovers the teacher once $n \ge d$ (near $n = d$ the data matrix is worst conditioned, so a
# fixed number of steps may stop short of the limit: the dotted line is where gradient descent is
# heading). With hard labels the same gradient descent has only signs to go on, and on standard
# normal inputs it still disagrees with the teacher at $n = 4d$. The distilled student's risk falls as $n$ grows
# (strong monotonicity; for nested transfer sets and standard normal inputs it cannot rise at
# all), and much faster when no input lies near the boundary (data geometry): there a student
# within the gap's angle of the teacher disagrees with it nowhere. Limits: this is the paper's
# idealised setting (a linear teacher that the student can represent, noiseless soft labels,
# full-batch gradient descent); its risk bound itself, and its exact conditions for deep linear
# students, are not reproduced here, and what this implies for deep non-linear networks is the
# question of papers such as Stanton et al. (2021).
