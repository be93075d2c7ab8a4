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
# # Knowledge distillation: A good teacher is patient and consistent
#
# Beyer et al. (2022) read distillation as *function matching*: the student should agree with the
# teacher on as much of the input space as possible. So both models see exactly the same,
# aggressively augmented input (the same random crop, then mixup with another image), the
# teacher's output is computed on that input at every step, the loss is the KL at temperature 1
# with no labels, and training runs for a long time. This notebook shows the four input designs the
# paper compares on the atlas's MNIST-1D task and trains the same student under each.

# %%
# On Colab, install the atlas (harness + implementation files); locally the README set-up did it.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "kdatlas @ git+https://github.com/kd-atlas/kd-atlas"], check=True)

# %%
import dataclasses

import matplotlib.pyplot as plt
import torch

from kdatlas.harness import compare, eval_examples, get_task, n_params, plot_curves, setup, table
from kdatlas.implementations.beyer2021knowledge import VARIANTS, make_views
from kdatlas.recipes import get_recipe

FULL_SIZE = False  # True: all four designs at four times the epochs (patience; minutes on a CPU, not BiT on ImageNet)
QUICK = setup()  # True when KDATLAS_QUICK=1 (CI sets it): a CI-sized budget, numbers that mean little
PATIENCE = 4.0 if FULL_SIZE else 1.0  # multiplies the task's epochs for every design; the paper's point needs >> 1
task = get_task("mnist1d", quick=QUICK)
teacher, teacher_score = task.teacher(seed=0)  # trained once, then read from the disk cache
recipe = get_recipe("beyer2021knowledge")
settings = recipe.settings_for(task.name, patience=PATIENCE)
print(task.description)
print(f"teacher: {teacher_score:.1f}{task.metric.unit}, {n_params(teacher):,} parameters; "
      f"student: {n_params(task.new_student()):,} parameters")
print("recipe settings:", settings)

# %% [markdown]
# ## The four designs
#
# `make_views(x, variant, ...)` returns the teacher's and the student's input for one step. Shown
# for one test sequence (in a batch of eight, since mixup mixes each sequence with its neighbour in
# the batch): the clean input, and what each model sees. Only "consistent" and
# "function_matching" give both models the same input; function matching adds mixup, which moves
# the inputs off the data, where the teacher's function is still defined and worth matching.

# %%
x, _ = eval_examples(task, 8)
fig, axes = plt.subplots(1, 4, figsize=(13, 2.4), sharey=True)
for ax, v in zip(axes, VARIANTS):
    t_in, s_in = make_views(x, v, settings["max_shift"], torch.Generator().manual_seed(0))
    ax.plot(x[0, 0], color="lightgray", lw=3, label="clean")
    ax.plot(t_in[0, 0], label="teacher's input")
    ax.plot(s_in[0, 0], ls="--", label="student's input")
    ax.set_title(v, fontsize=9)
axes[0].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The same student under each design
#
# The recipe `kdatlas.recipes.beyer2021knowledge` with `variant` set: the task's optimiser and
# budget (times `PATIENCE`), the KL at T = 1, no labels; the student alone for reference. One seed,
# same initial weights and batches. To keep the default run under a minute, `RUN` holds two of
# the four designs, the two ends of the paper's comparison; add "independent_noise" and
# "consistent" to run them too.

# %%
RUN = VARIANTS if FULL_SIZE else ("fixed_teacher", "function_matching")
methods = {v: dataclasses.replace(recipe, settings=settings | {"variant": v}) for v in RUN}
res = compare(task, teacher, methods, seeds=(1,), teacher_score=teacher_score)
plot_curves(res)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Results
#
# When this notebook was written (one seed, the task's 100 epochs, all four designs): fixed teacher
# 89.3, independent noise 91.9, consistent 91.6, function matching 94.1, the paper's ordering, with
# Hinton KD (T = 4, labels) at 91.1 and the student alone 84.5. The paper's second claim, patience, needs far
# longer schedules than the benchmark's budget (it trains for thousands of epochs); set `PATIENCE`
# above 1 to train every variant longer. In the quick mode CI runs, the budget is a few epochs and
# function matching trails the fixed teacher: its inputs are harder to fit, which is the paper's
# reason for patience. Limits: the crop is a random shift of the sequence, and the teacher is a
# small 1-D CNN, not BiT on ImageNet.

# %%
table(res)
