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
# # Deep Mutual Learning
#
# Zhang, Xiang, Hospedales & Lu (2018) drop the pre-trained teacher: two (or more) untrained
# networks learn together, each from the labels and from the other's class posterior. Every
# network is a student and a teacher at once. This notebook trains a cohort of two copies of the
# atlas's MNIST-1D student, once independently and once with mutual learning, from the same initial
# weights and on the same batches, and looks at what the paper says mutual learning does: better
# peers, and softer (higher-entropy) posteriors.

# %%
# On Colab, install the atlas (harness + implementation files); locally the README set-up did it.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "kdatlas @ git+https://github.com/kd-atlas/kd-atlas"], check=True)

# %%
from kdatlas.harness import History, get_task, n_params, plot_curves, setup, table
from kdatlas.harness.report import Comparison, Run
from kdatlas.recipes import get_recipe, make_context
from kdatlas.recipes.zhang2017deep import train_cohort

FULL_SIZE = False  # True: two ResNet8x4 peers on CIFAR-100 (GPU advised; downloads CIFAR-100)
QUICK = setup()    # True when KDATLAS_QUICK=1 (CI sets it): a CI-sized budget, numbers that mean little
task = get_task("cifar100" if FULL_SIZE else "mnist1d", quick=QUICK)
SEEDS = (1,) if FULL_SIZE or QUICK else (1, 2)  # a seed: the peers' initial weights and the batches
recipe = get_recipe("zhang2017deep")
settings = recipe.settings_for(task.name)       # the method's settings live in the recipe
print(task.description)
print(f"each peer: {n_params(task.new_student()):,} parameters; no teacher is trained or used")
print("recipe settings:", settings)

# %% [markdown]
# ## Set-up
#
# Network $k$ minimises its own loss (Sec. 2.1; Sec. 2.3 for $K$ peers)
#
# $$L_{\Theta_k} = L_{C_k} + \frac{1}{K-1}\sum_{l\neq k} D_{KL}(p_l \,\Vert\, p_k),$$
#
# with the peers' posteriors $p_l$ as fixed targets. On each mini-batch the networks are updated
# one after another (Algorithm 1): network 1 takes a step, its posterior is recomputed, then
# network 2 takes a step against the new one. `impl.dml_step` does exactly this; the recipe
# `kdatlas.recipes.zhang2017deep` gives each peer the optimiser and schedule a student alone gets.
# Peer 1 is the benchmark's student of the seed: with `kl_weight=0` it is trained exactly as the
# student alone, so the independent cohort is the baseline.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

runs = {}  # (mode, seed) -> (peers, History, per-epoch test scores of each peer)
for seed in SEEDS:
    for mode, kl_weight in (("independent", 0.0), ("DML", settings["kl_weight"])):
        runs[mode, seed] = train_cohort(make_context(task, None, seed), settings | {"kl_weight": kl_weight},
                                        track=True)

# %% [markdown]
# ## Learning curves
#
# Test accuracy of each peer per epoch (mean over the seeds, the band spans the seeds), and, on
# the right, the KL term each DML peer minimises on its training batches.

# %%
n_peers = settings["peers"]
curves = {f"{mode} peer {k + 1}": [History(test_acc=[s[k] for s in runs[mode, seed][2]]) for seed in SEEDS]
          for mode in ("independent", "DML") for k in range(n_peers)}
fig, (ax, ax_kl) = plt.subplots(1, 2, figsize=(11, 3.4))
plot_curves(curves, task, ax=ax, title="test accuracy per peer")
for k in range(n_peers):
    kl = [runs["DML", seed][1].terms[f"kl_{k}"] for seed in SEEDS]
    ax_kl.plot(range(1, len(kl[0]) + 1), [sum(v) / len(v) for v in zip(*kl)], label=f"DML peer {k + 1}")
ax_kl.set_xlabel("epoch"); ax_kl.set_ylabel("KL(p_other || p_self), train"); ax_kl.set_yscale("log")
ax_kl.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Softer posteriors
#
# The paper's reading of why mutual learning helps: each network is pulled towards its peer's
# posterior, which puts probability on the classes the peer finds plausible, so the networks end
# with higher-entropy predictions (a regulariser towards wider minima). Mean entropy of each peer's
# posterior on the test set, in nats (log 10 = 2.3 for a uniform posterior over 10 classes):

# %%
@torch.no_grad()
def mean_entropy(model):
    total, n = 0.0, 0
    for xb, *_ in task.test_loader:
        p = F.softmax(model.eval()(xb.to(task.device)), 1)
        total += float(-(p * p.clamp_min(1e-12).log()).sum())
        n += len(xb)
    model.train()
    return total / n


entropy = {label: sum(mean_entropy(runs[label.split(" peer ")[0], seed][0][int(label[-1]) - 1]) for seed in SEEDS)
           / len(SEEDS) for label in curves}
plt.figure(figsize=(5, 2.6))
plt.barh(list(entropy), list(entropy.values()))
plt.xlabel("mean posterior entropy, test (nats)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Results
#
# Final test accuracy of each peer, mean and standard deviation over the seeds above (the atlas
# benchmark runs peer 1 over five seeds on MNIST-1D and the digits canvas: the site's "Reproduced"
# page). "independent peer 1" is the student alone. Read the gap between the rows against their
# spreads: with two seeds, a gap smaller than about two standard deviations is not evidence, and on
# this toy the gain is small next to the seed spread. Limits of this toy: a 1-D synthetic task, 500
# labelled sequences, two identical tiny CNNs; the paper's own results are on CIFAR-100 and
# Market-1501 with ResNets, MobileNets, InceptionV1 and WRNs, and it reports larger gains for
# cohorts of more networks. (In the quick mode CI uses, the budget is too small for the numbers to
# mean anything.)

# %%
res = Comparison(task)
for label in curves:
    mode, k = label.split(" peer ")[0], int(label[-1]) - 1
    for seed in SEEDS:
        peers, hist, scores = runs[mode, seed]
        res.runs.setdefault(label, []).append(Run(label, seed, peers[k], hist, scores[-1][k]))
table(res, extra={"posterior entropy (test, nats)": entropy})
