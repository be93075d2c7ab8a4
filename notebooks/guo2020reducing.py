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
# # Reducing the Teacher-Student Gap via Spherical Knowledge Distillation
#
# Guo et al. (2020) argue that part of what Hinton KD asks of a student is to be as *confident* as
# its teacher, i.e. to produce logit vectors with as large a spread, and that a small student pays
# for this with accuracy when the teacher is much larger (the capacity gap). Spherical KD (SKD)
# projects both logit vectors to a sphere of fixed radius before the usual KD and label losses, so
# only the direction of the logits, the teacher's ranking and ratios of classes, is transferred.
# This notebook measures the confidence gap on the atlas's MNIST-1D task, checks the invariance
# that removes it, and trains the student alone, with KD and with SKD on the same seeds.

# %%
# On Colab, install the atlas (harness + implementation files); locally the README set-up did it.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "kdatlas @ git+https://github.com/kd-atlas/kd-atlas"], check=True)

# %%
from kdatlas.harness import compare, eval_examples, get_task, n_params, plot_curves, setup, table
from kdatlas.recipes import get_recipe

FULL_SIZE = False  # True: the paper-scale CIFAR-100 run (GPU advised; downloads CIFAR-100)
QUICK = setup()    # True when KDATLAS_QUICK=1 (CI sets it): a CI-sized budget, numbers that mean little
task = get_task("cifar100" if FULL_SIZE else "mnist1d", quick=QUICK)
SEEDS = (1,)  # a seed: the student's initial weights and batches
teacher, teacher_score = task.teacher(seed=0)  # trained once, then read from the disk cache
recipe = get_recipe("guo2020reducing")
settings = recipe.settings_for(task.name)
print(task.description)
print(f"teacher: {teacher_score:.1f}{task.metric.unit}, {n_params(teacher):,} parameters; "
      f"student: {n_params(task.new_student()):,} parameters")
print("recipe settings:", settings)

# %% [markdown]
# ## The projection
#
# `sphere_normalize` (the official README's `layer_norm(z) * multiplier`):
# $\hat z = m\,(z - \bar z)/\operatorname{std}(z)$, mean 0 and standard deviation $m$ for every
# sample. A logit vector and any $a z + b$ with $a > 0$ land on the same point, so the student may
# be as unconfident as it likes. The loss is
# $(1-\alpha)\,\mathrm{CE}(\hat z_s, y) + \alpha T^2\,\mathrm{KL}(\mathrm{softmax}(\hat z_t/T)\,\|\,\mathrm{softmax}(\hat z_s/T))$
# (`skd_loss`), run by the recipe `kdatlas.recipes.guo2020reducing` with the README's $T = 4$,
# $m = 2$ and $\alpha = 0.9$ (untuned). Below: a teacher's logits for one test sequence, a copy with
# a fifth of the confidence, and both projected.

# %%
import matplotlib.pyplot as plt
import torch

from kdatlas.implementations.guo2020reducing import skd_loss, sphere_normalize
from kdatlas.implementations.hinton2015distilling import kd_loss

x, y = eval_examples(task, 256)
with torch.no_grad():
    zt = teacher(x.to(task.device)).cpu()
z, weak = zt[:1], 0.2 * zt[:1] + 1.0
fig, axes = plt.subplots(1, 2, figsize=(10, 2.8), sharex=True)
classes = torch.arange(z.shape[1])
axes[0].bar(classes - 0.2, z[0], 0.4, label="teacher logits")
axes[0].bar(classes + 0.2, weak[0], 0.4, label="0.2 z + 1 (a less confident copy)")
axes[1].bar(classes - 0.2, sphere_normalize(z, settings["multiplier"])[0], 0.4, label="teacher, projected")
axes[1].bar(classes + 0.2, sphere_normalize(weak, settings["multiplier"])[0], 0.4, label="copy, projected")
for ax in axes:
    ax.set_xlabel("class")
    ax.legend(fontsize=7)
plt.tight_layout()
plt.show()
print(f"KD(T=4) between the two: {kd_loss(weak, z, 4.0).item():.3f}; "
      f"SKD's KD term: {skd_loss(weak, z, None)['skd'].item():.2e}")

# %% [markdown]
# ## The student alone, with KD and with SKD
#
# Same architecture, initial weights and batches for each seed; KD is the atlas's Hinton recipe
# (T = 4, weights 0.1 / 0.9, the same $\alpha$ as SKD's). `FULL_SIZE` switches to
# ResNet32x4 -> ResNet8x4 on CIFAR-100. The paper also reports that SKD is robust to the
# temperature; the default run adds both methods at $T = 1$ (skipped in the quick mode CI runs).

# %%
import dataclasses

methods = {"KD (T=4)": "hinton2015distilling", "SKD (T=4)": recipe}
if not QUICK and not FULL_SIZE:
    kd = get_recipe("hinton2015distilling")
    methods |= {"KD (T=1)": dataclasses.replace(kd, settings=kd.settings | {"temperature": 1.0}),
                "SKD (T=1)": dataclasses.replace(recipe, settings=recipe.settings | {"temperature": 1.0})}
res = compare(task, teacher, methods, seeds=SEEDS, teacher_score=teacher_score)
plot_curves(res)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The confidence gap, measured
#
# The spread (standard deviation over the classes) of each model's raw logits on 256 test
# sequences. KD pulls the student's spread toward the teacher's; SKD leaves it free, since only the
# projected logits enter its loss. Whether the freedom buys accuracy is the comparison above.

# %%
spreads = {"teacher": zt.std(1)}
for label in ("student alone", "KD (T=4)", "SKD (T=4)"):
    model = res.model(label).eval()
    with torch.no_grad():
        spreads[label] = model(x.to(task.device)).cpu().std(1)
plt.figure(figsize=(6, 3))
plt.boxplot(list(spreads.values()), showfliers=False)
plt.xticks(range(1, len(spreads) + 1), list(spreads), fontsize=8)
plt.ylabel("std of the logits over classes")
plt.tight_layout()
plt.show()
print({k: round(v.median().item(), 2) for k, v in spreads.items()})

# %% [markdown]
# ## Results
#
# Final test accuracy (the atlas benchmark runs the T = 4 comparison over five seeds: the site's
# "Reproduced" page); one seed here, so a gap of a point or two is within seed noise. Limits of this
# toy: the teacher is a 1-D CNN of about 100k parameters and the student about 2k, trained on the
# students' 500 sequences; the paper's gap is ResNet152 -> ResNet18 on ImageNet. The capacity-gap
# sweep over teacher sizes that motivates the paper is not run here: the benchmark has one teacher
# per task. Measured when this notebook was written (one seed): student alone 84.5, KD 91.1, SKD 93.0
# at T = 4, and 85.6 / 87.2 at T = 1; the median logit spread was 4.04 for the teacher, 4.06 for the
# KD student (KD copies the confidence), 3.59 alone and 0.28 for SKD: with nothing in the loss tying
# the scale of the raw logits, the SKD student's drifts to small values, harmless for its argmax but
# a reason not to read its raw softmax as a calibrated probability.

# %%
table(res)
