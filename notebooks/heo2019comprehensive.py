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
# # A Comprehensive Overhaul of Feature Distillation
#
# Heo et al. (2019) rebuild feature distillation around the ReLU. The student copies the teacher's
# map *before* the ReLU at the end of each stage; the teacher's map passes through a *margin ReLU*
# that keeps its positive responses and replaces each channel's negative ones by one margin (the
# mean of that channel's negative responses, from the teacher's BatchNorm); and a *partial L2*
# distance ignores a student response that is already below a non-positive target, since the ReLU
# would erase that difference anyway. This notebook uses the atlas's MNIST-1D task (1-D sequences;
# a teacher that learned from more labelled sequences than the students get). It checks the margin
# against the teacher's actual responses, trains the student alone and the OFD student on the same
# seed, and says what the toy can and cannot show.

# %%
# On Colab, install the atlas (harness + implementation files); locally the README set-up did it.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "kdatlas @ git+https://github.com/kd-atlas/kd-atlas"], check=True)

# %%
from kdatlas.harness import compare, eval_examples, get_task, n_params, plot_curves, plot_terms, setup, table
from kdatlas.recipes import get_recipe

# FULL_SIZE = True asks for CIFAR-100, which the recipe does not list (it says so): a residual stage's
# pre-ReLU map is the sum before its last ReLU, not a BatchNorm output, so it is not wired up yet.
FULL_SIZE = False
QUICK = setup()    # True when KDATLAS_QUICK=1 (CI sets it): a CI-sized budget, numbers that mean little
task = get_task("cifar100" if FULL_SIZE else "mnist1d", quick=QUICK)
SEEDS = (1,)  # a seed: the student's initial weights and batches (one: the 60 s budget)
teacher, teacher_score = task.teacher(seed=0)  # trained once, then read from the disk cache
recipe = get_recipe("heo2019comprehensive")
settings = recipe.settings_for(task.name)       # the method's settings live in the recipe
print(task.description)
print(f"teacher: {teacher_score:.1f}{task.metric.unit}, {n_params(teacher):,} parameters; "
      f"student: {n_params(task.new_student()):,} parameters")
print("recipe settings:", settings)

# %% [markdown]
# ## Set-up
#
# The recipe `kdatlas.recipes.heo2019comprehensive` trains in one phase, as the authors' CIFAR-100
# script: cross-entropy plus `ofd_weight` times the sum over the three stages (weights 1/4, 1/2, 1)
# of `ofd_loss`, the partial L2 between the student's pre-ReLU map through an `OFDConnector`
# (1x1 convolution + BN to the teacher's width) and the teacher's pre-ReLU map through the margin
# ReLU. The pre-ReLU maps are the output of each stage's last BatchNorm, read by forward hooks (the
# harness returns post-ReLU maps).

# %% [markdown]
# ## The margin (teacher transform)
#
# For each channel the margin is $\mathbb{E}[x \mid x < 0]$ of a normal with the BatchNorm's shift
# $\beta_c$ and scale $|\gamma_c|$: the official code's Gaussian model of the channel's pre-ReLU
# response. Left: one channel of the teacher's last stage on 512 test sequences (the one closest to
# half negative), with its margin and
# the actual mean of its negative responses. Right: the same two numbers for every channel of that
# stage; on the diagonal, the Gaussian model is right.

# %%
import matplotlib.pyplot as plt
import torch

from kdatlas.implementations.heo2019comprehensive import last_batchnorm, margin_from_bn, pre_relu_maps

x_probe = eval_examples(task, 512)[0].to(task.device)
bn = last_batchnorm(teacher.stages[-1])
(t_pre,) = pre_relu_maps(teacher, x_probe, [bn])
margin = margin_from_bn(bn.weight, bn.bias).cpu()
per_channel = t_pre.transpose(0, 1).flatten(1).cpu()  # (channels, samples x positions)
neg_mean = torch.tensor([row[row < 0].mean().item() if (row < 0).any() else float("nan") for row in per_channel])
c = int(torch.argmin(((per_channel < 0).float().mean(1) - 0.5).abs()))  # the channel closest to half negative
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
axes[0].hist(per_channel[c].numpy(), bins=60, color="grey")
axes[0].axvline(margin[c], color="C3", label=f"margin {margin[c]:.2f}")
axes[0].axvline(neg_mean[c], color="C0", ls="--", label=f"mean of x < 0: {neg_mean[c]:.2f}")
axes[0].set_xlabel(f"pre-ReLU response, channel {c}"), axes[0].legend(fontsize=8)
axes[1].scatter(neg_mean, margin, s=8)
lo = float(torch.cat([neg_mean, margin]).nan_to_num(0.0).min())
axes[1].plot([lo, 0], [lo, 0], "k-", lw=0.5)
axes[1].set_xlabel("measured mean of the negative responses"), axes[1].set_ylabel("margin from the BN parameters")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Student alone vs OFD
#
# Same architecture; for each seed, the same initial weights and batches. Right: the two loss terms
# of the OFD run (weighted as in the loss).

# %%
res = compare(task, teacher, {"OFD": recipe}, seeds=SEEDS, teacher_score=teacher_score)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
plot_curves(res, ax=axes[0])
plot_terms(res.runs["OFD"][0].history, ax=axes[1], title="OFD: loss terms")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Results
#
# Final test accuracy for the seed above. The atlas benchmark runs OFD over five seeds on both tasks
# (the site's "Reproduced" page). Limits of this toy: tiny 1-D CNNs with plain conv-BN-ReLU stages
# (the paper's are wide ResNets, PyramidNets and ImageNet ResNets), whose last-stage map is short;
# the distillation weight is the authors' CIFAR-100 value, not re-tuned; one seed. (In the quick
# mode CI uses, the budget is too small for the numbers to mean anything.)

# %%
table(res)
