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
# # Improved Knowledge Distillation via Teacher Assistant
#
# Mirzadeh et al. (2020) observe that a student learns less from a teacher much larger than itself
# (the capacity gap), and insert a teacher assistant (TA) of intermediate size: the teacher is
# distilled into the TA, which is then frozen and distilled into the student. This notebook runs
# that chain on the atlas's MNIST-1D task (teacher 32/64/128, assistant 16/32/64, student 8/16/32)
# and compares the student alone, direct KD from the teacher and TAKD on the same seeds, with the
# same loss and settings in both distillations: only the path differs.

# %%
# On Colab, install the atlas (harness + implementation files); locally the README set-up did it.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "kdatlas @ git+https://github.com/kd-atlas/kd-atlas"], check=True)

# %%
from kdatlas.harness import compare, get_task, n_params, plot_curves, setup, table
from kdatlas.harness.report import Run
from kdatlas.recipes import get_recipe, make_context
from kdatlas.recipes.mirzadeh2019improved import intermediate_model, train_chain

FULL_SIZE = False  # True: ResNet32x4 -> ResNet20x4 -> ResNet8x4 on CIFAR-100 (GPU advised; downloads CIFAR-100)
QUICK = setup()    # True when KDATLAS_QUICK=1 (CI sets it): a CI-sized budget, numbers that mean little
task = get_task("cifar100" if FULL_SIZE else "mnist1d", quick=QUICK)
SEEDS = (1,)  # a seed: the student's initial weights and batches (one: the 60 s budget; the benchmark runs 5)
teacher, teacher_score = task.teacher(seed=0)  # trained once, then read from the disk cache
recipe = get_recipe("mirzadeh2019improved")
settings = recipe.settings_for(task.name)       # the method's settings live in the recipe
student0 = task.new_student()
assistant0 = intermediate_model(student0, teacher, settings["ta_ratio"])
print(task.description)
print(f"teacher {n_params(teacher):,} parameters ({teacher_score:.1f}{task.metric.unit}); assistant "
      f"{n_params(assistant0):,} (widths {assistant0.feature_channels}); student {n_params(student0):,}")
print("recipe settings:", settings)

# %% [markdown]
# ## Set-up
#
# Each arrow of the chain is the same loss (`takd_loss`, the paper's Eq. 3):
# $(1-\lambda)\,\mathrm{CE} + \lambda\,\tau^2\,\mathrm{KL}(\mathrm{softmax}(a_t/\tau)\,\Vert\,\mathrm{softmax}(a_s/\tau))$,
# with the $\tau$ and $\lambda$ printed above: the atlas's Hinton KD settings (the paper tunes them
# per run). The assistant is distilled from the teacher on the student's training sequences with
# the student's budget, then frozen; the student is distilled from it with the same budget. The
# recipe's docstring says how the assistant's size is derived from the task's two models.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

res = compare(task, teacher, {"KD (teacher -> student)": "hinton2015distilling"}, seeds=SEEDS,
              teacher_score=teacher_score)
# The recipe's chain for the first seed: teacher -> assistant -> student (what the benchmark runs per seed).
chain, hists = train_chain(make_context(task, teacher, SEEDS[0]), settings, track=True)
assistant = chain[1]  # distilled from the teacher, then frozen
students = {SEEDS[0]: (chain[2], hists[1])}
for seed, (model, hist) in students.items():
    res.runs.setdefault("TAKD (teacher -> TA -> student)", []).append(
        Run("TAKD (teacher -> TA -> student)", seed, model, hist, hist.test_acc[-1]))
res.runs["assistant (TA, from the teacher)"] = [Run("assistant (TA, from the teacher)", SEEDS[0], assistant, hists[0],
                                                    hists[0].test_acc[-1])]

# %% [markdown]
# ## Learning curves
#
# Test accuracy per epoch (one seed). The assistant's curve is
# its own distillation from the teacher (one run, the first seed's); the TAKD students' is the
# second step.

# %%
plot_curves(res)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## How closely can the student follow its teacher?
#
# The paper's explanation of the gap: a teacher far larger than the student computes a function
# the student cannot mimic, so its soft targets are partly wasted. On the test set (never trained
# on), the KL at the recipe's temperature between each distilled student and the model it was
# distilled from (lower: it follows more closely), and between the TAKD student and the teacher.

# %%
@torch.no_grad()
def kl(model, reference, t=settings["temperature"]):
    total, n = 0.0, 0
    for xb, *_ in task.test_loader:
        xb = xb.to(task.device)
        zs, zr = model.eval()(xb), reference.eval()(xb)
        total += float(F.kl_div(F.log_softmax(zs / t, 1), F.log_softmax(zr / t, 1), log_target=True, reduction="sum"))
        n += len(xb)
    return total / n


takd_students = [model for model, _ in students.values()]
pairs = {"KD student vs teacher": [kl(r.model, teacher) for r in res.runs["KD (teacher -> student)"]],
         "TAKD student vs its TA": [kl(m, assistant) for m in takd_students],
         "TAKD student vs teacher": [kl(m, teacher) for m in takd_students],
         "TA vs teacher": [kl(assistant, teacher)]}
plt.figure(figsize=(5.5, 2.6))
plt.barh(list(pairs), [sum(v) / len(v) for v in pairs.values()])
plt.xlabel(f"KL at T={settings['temperature']:g}, test, per sample")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Results
#
# Final test accuracy of one seed (the standard deviation reads 0: it is not measured). The atlas
# benchmark runs five seeds on MNIST-1D and the digits canvas (the site's "Reproduced" page), where
# the students' seed-to-seed spread is about a point: a gap between the KD and TAKD rows of one
# seed is not evidence. Limits of this toy: one assistant of one size, a 1-D synthetic task
# on which direct KD already closes much of the gap, and the paper's gains (Table 1: under a point
# to a few points on CIFAR and ImageNet) are of the size of the seed spread here. The paper's own
# chains use plain CNNs and ResNets on CIFAR-10/100 and ImageNet, with tau and lambda tuned per run.
# (In the quick mode CI uses, the budget is too small for the numbers to mean anything.)

# %%
table(res)
