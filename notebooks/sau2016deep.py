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
# # Deep Model Compression: Distilling Knowledge from Noisy Teachers
#
# Sau & Balasubramanian (2016) keep Ba & Caruana's logit regression (the student fits the teacher's
# pre-softmax outputs with a squared error) and make the teacher noisy: on a random fraction
# $\alpha$ of the steps its logits are multiplied by $(1 + \xi)$, $\xi \sim \mathcal N(0, \sigma^2)$
# per class. A teacher perturbed afresh at every step plays the part of many teachers and
# regularises the student. This notebook shows what the perturbation does to the targets, what it
# does (and does not do) to the gradient, and then trains the atlas's MNIST-1D student alone, with
# the clean teacher (ba2013deep) and with the noisy one, on the same seeds.

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
SEEDS = (1,)  # a seed: the student's initial weights, its batches and the teacher's noise
teacher, teacher_score = task.teacher(seed=0)  # trained once, then read from the disk cache
recipe = get_recipe("sau2016deep")
settings = recipe.settings_for(task.name)
print(task.description)
print(f"teacher: {teacher_score:.1f}{task.metric.unit}, {n_params(teacher):,} parameters; "
      f"student: {n_params(task.new_student()):,} parameters")
print("recipe settings:", settings)

# %% [markdown]
# ## What the noisy teacher hands the student
#
# `perturb_logits` from the implementation file on the teacher's logits for four test sequences.
# The noise is multiplicative, so its spread is $\sigma\lvert z_c\rvert$: the confident logits move
# most, logits near zero hardly move, and a logit changes sign only when $\xi < -1$
# (probability $\Phi(-1/\sigma)$, 0.08% at the recipe's $\sigma \approx 0.32$). The bars span the
# 5th to 95th percentile of 2,000 draws.

# %%
import dataclasses

import matplotlib.pyplot as plt
import torch

from kdatlas.implementations.sau2016deep import expected_noisy_loss, noisy_teacher_loss, perturb_logits

x, y = eval_examples(task, 4)
with torch.no_grad():
    z = teacher(x.to(task.device)).cpu()
g = torch.Generator().manual_seed(0)
draws = torch.stack([perturb_logits(z, settings["noise_std"], generator=g) for _ in range(2000)])
lo, hi = draws.quantile(0.05, dim=0), draws.quantile(0.95, dim=0)
fig, axes = plt.subplots(1, 4, figsize=(11, 2.6), sharey=True)
classes = torch.arange(z.shape[1])
for i, ax in enumerate(axes):
    ax.bar(classes, z[i], color="lightgray", label="clean $z_t$")
    ax.errorbar(classes, z[i], yerr=torch.stack([z[i] - lo[i], hi[i] - z[i]]), fmt="none", ecolor="C3",
                capsize=2, label=r"$(1+\xi) z_t$, 90% range")
    ax.set_title(f"test example {i}, label {int(y[i])}", fontsize=9)
    ax.set_xlabel("class")
axes[0].set_ylabel("teacher logit")
axes[0].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## In expectation the noise adds a constant
#
# $\mathbb E_\xi \lVert z_s - (1+\xi) z_t\rVert^2 = \lVert z_s - z_t\rVert^2 + \sigma^2\lVert z_t\rVert^2$:
# the extra term does not depend on the student, so the *average* gradient of a noisy step is the
# clean one, and the noise acts only through the spread it adds to each step's gradient (a
# regulariser of the kind SGD noise is). The plot checks this on the four examples above, with the
# student's logits set to zero: the running Monte Carlo mean of the loss approaches the closed form,
# and the gradient of single noisy steps scatters around the clean gradient.

# %%
zs = torch.zeros_like(z, requires_grad=True)
g = torch.Generator().manual_seed(1)
losses, grads = [], []
for _ in range(500):
    loss = noisy_teacher_loss(zs, z, settings["noise_std"], 1.0, generator=g)
    losses.append(loss.item())
    grads.append(torch.autograd.grad(loss, zs)[0][0])
running = torch.tensor(losses).cumsum(0) / torch.arange(1, 501)
grads = torch.stack(grads)
clean_grad = (zs.detach() - z)[0] / len(z)
fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3))
a.plot(running, label="running mean of noisy losses")
a.axhline(expected_noisy_loss(zs, z, settings["noise_std"]).item(), color="k", ls="--", label="closed form")
a.axhline(0.5 * z.pow(2).sum(1).mean().item(), color="gray", ls=":", label="clean loss")
a.set_xlabel("steps")
a.legend(fontsize=8)
for c in range(z.shape[1]):
    b.scatter(torch.full((len(grads),), c) + 0.15 * torch.randn(len(grads)), grads[:, c], s=2, alpha=0.3, color="C0")
b.scatter(classes, clean_grad, color="C3", marker="_", s=300, label="clean gradient")
b.set_xlabel("class")
b.set_ylabel("d loss / d student logit (example 0)")
b.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The student alone, with the clean teacher, with the noisy teacher
#
# The same architecture, initial weights and batches for each seed; the clean arm is the recipe of
# ba2013deep (the same loss without noise). The recipe's $\sigma^2 = 0.1$, $\alpha = 0.5$ (one coin
# per mini-batch) are a third-party port's defaults, not confirmed as the paper's (its text could not
# be read). `FULL_SIZE` switches to ResNet32x4 -> ResNet8x4 on CIFAR-100.

# %%
res = compare(task, teacher, {"clean teacher (ba2013deep)": "ba2013deep", "noisy teacher": recipe},
              seeds=SEEDS, teacher_score=teacher_score)
plot_curves(res)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Accuracy against the noise level
#
# $\alpha = 1$ (every step noisy) and $\sigma$ from 0 (the clean teacher above) up; one seed each, skipped
# in the quick mode CI runs. The paper reports that some noise helps, most in small-data regimes;
# whether this toy shows it is read off the plot and said in the results below.

# %%
sigmas = () if QUICK or FULL_SIZE else (0.3, 1.0)
noisy = {f"sigma={s}": dataclasses.replace(recipe, settings=settings | {"noise_std": s, "apply_prob": 1.0})
         for s in sigmas}
sweep = compare(task, teacher, noisy, seeds=SEEDS, baseline=False) if sigmas else None
if sweep:  # sigma = 0 is the clean teacher of the comparison above
    acc = [res.summary("clean teacher (ba2013deep)")[0]] + [sweep.summary(k)[0] for k in noisy]
    plt.figure(figsize=(5, 3))
    plt.plot((0.0,) + sigmas, acc, "o-", label="noisy teacher, alpha = 1")
    plt.axhline(res.summary("student alone")[0], color="gray", ls=":", label="student alone")
    plt.xlabel(r"noise $\sigma$")
    plt.ylabel(f"test {task.metric.name} ({task.metric.unit})")
    plt.legend(fontsize=8)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## Results
#
# Final test accuracy of the comparison above (the atlas benchmark runs it over five seeds: the
# site's "Reproduced" page). With one seed a gap of a point or two is within seed noise. On this toy
# the noise does not buy accuracy. Measured when this notebook was written (one seed): student alone
# 84.5, clean teacher 95.2, the recipe's noisy teacher ($\alpha = 0.5$) 94.7, and with every step
# noisy 95.4 at $\sigma = 0.3$ and 92.9 at 1.0 (94.5 at 0.6 in a longer sweep): flat, then falling,
# while regressing the teacher's logits at all is worth ten points. That fits the identity above: the
# noise leaves the mean gradient alone, so a gain could only come from the regularising spread, and
# the clean mimic student, which sees 500 sequences, is already close to its teacher's 98.6. A one-off
# check on a small MLP toy (a random deep teacher, 60 examples, three seeds; not kept as a test)
# showed no gain either. The paper's settings (its
# sigma and alpha, its CIFAR-10 students) could not be read, so this is not a failed reproduction of
# its numbers, only a toy where the effect does not appear.

# %%
table(res)
