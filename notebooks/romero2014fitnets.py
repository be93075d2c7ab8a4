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
# # FitNets: Hints for Thin Deep Nets
#
# Romero et al. (2014) train a student that is thinner than its teacher in two stages: first its
# lower half learns to predict the teacher's middle-layer output (the hint) through a convolutional
# regressor, then the whole student is trained with knowledge distillation from those weights. This
# notebook runs both stages on the atlas's embedded task (MNIST-1D, generated offline: a teacher that
# learned from 4,000 labelled sequences, students that only have the first 500), plots the
# hint-stage curve, and compares the student trained alone, with the KD stage only, and with hints +
# KD.

# %%
# On Colab, install the atlas (harness + implementation files); locally the README set-up did it.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "kdatlas @ git+https://github.com/kd-atlas/kd-atlas"], check=True)

# %%
import os
FULL_SIZE = False  # True: the paper-scale CIFAR-100 run (GPU advised; downloads CIFAR-100)
QUICK = os.environ.get("KDATLAS_QUICK") == "1"  # CI sets this to shrink the budget

# %% [markdown]
# ## Set-up
#
# From the implementation file: `ConvRegressor` (kernel from the sizes, Sec. 2.2), `hint_loss`
# (Eq. 3) and `fitnets_kd_loss` (Eq. 2, with the authors' $\tau=3$, $\lambda=4$). From the harness:
# the task and `train`, which takes `params=` for stage 1 (the student's lower stages and the
# regressor only). `embedded_task` is the atlas benchmark's task (`kdatlas bench`): teacher widths
# 32/64/128 with two convolutions per stage (97 k parameters), student 8/16/32 with one (2.4 k
# parameters). So the student here is thinner but not deeper than the teacher: the paper's "thin and
# deep" FitNets are not what this task tests. Hint = the teacher's middle stage, guided layer = the
# student's middle stage, as in the paper. The settings are the benchmark's: the hint stage takes the
# first 20% of the student's epochs with AdamW at learning rate $10^{-3}$ (the paper used RMSProp;
# plain SGD at the shared rate kills the regressor's ReLUs on this summed loss), the KD stage the
# rest. `FULL_SIZE`: ResNet32x4 -> ResNet8x4 on CIFAR-100, hint and guided layer = the output of the
# second group of residual blocks (as RepDistiller does).

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

from kdatlas.harness import embedded_task
from kdatlas.implementations.romero2014fitnets import (ConvRegressor, fitnets_kd_loss, hint_loss,
                                                        regressor_kernel_size)

task = embedded_task(quick=QUICK, full_size=FULL_SIZE)
print(task.description)
HINT = GUIDED = 2 if FULL_SIZE else 1  # ResNets: stem + 3 groups; MNIST-1D: the middle of 3 stages
KD_WEIGHT, TAU = 4.0, 3.0
HINT_EPOCHS = max(1, round(0.2 * task.student_epochs))
KD_EPOCHS = max(1, task.student_epochs - HINT_EPOCHS)
HINT_OPTIMIZER, HINT_LR = "adamw", 1e-3

# %%
teacher, teacher_acc = task.train_teacher(seed=0)
n_params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
print(f"teacher {teacher_acc:.1f}% ({n_params(teacher):,} parameters); "
      f"student {n_params(task.make_student()):,} parameters")

# %% [markdown]
# ## The regressor (Sec. 2.2)
#
# The kernel is chosen so that a convolution without padding maps the guided layer's spatial size
# to the hint's: $N_{g,i} - k_i + 1 = N_{h,i}$. Here both middle stages have the same size, so
# $k = 1$; a guided layer of 40 positions against a hint of 20 would need a kernel of 21 (8x8 against
# 4x4: 5x5). Its $k_1 k_2 O_h O_g$ weights are far fewer than a fully connected regressor's.

# %%
x0 = next(iter(task.student_loader(seed=0)))[0][:2].to(task.device)
with torch.no_grad():
    t_feats, _ = teacher.eval().forward_features(x0)
    s_feats, _ = task.make_student().to(task.device).eval().forward_features(x0)
g_shape, h_shape = s_feats[GUIDED].shape, t_feats[HINT].shape
print("guided", tuple(g_shape[1:]), "hint", tuple(h_shape[1:]),
      "kernel", regressor_kernel_size(g_shape[2:], h_shape[2:]),
      "| 40 -> 20 positions would need", regressor_kernel_size((40,), (20,)),
      "| 8x8 -> 4x4 would need", regressor_kernel_size((8, 8), (4, 4)))


def new_regressor():
    # The hint is a post-ReLU map, and the paper wants r to end in the same non-linearity.
    return ConvRegressor(g_shape[1], h_shape[1], tuple(g_shape[2:]), tuple(h_shape[2:]), nonlinearity=nn.ReLU())


print("regressor weights:", new_regressor().conv.weight.numel(),
      "| fully connected would need:", g_shape[1:].numel() * h_shape[1:].numel())

# %% [markdown]
# ## Stage 1: hint training (Algorithm 1)
#
# Only the student's stages up to the guided layer and the regressor are optimised. (The harness
# runs the whole student forward; the upper layers get no gradient and no update.) The two stages
# continue one student: it is created once (`task.new_student`, the same initial weights as the other
# students) and passed to both calls of `task.train_student`, which keep the task's seed and batches.

# %%
fitnet = task.new_student(seed=1)
regressor = new_regressor()
lower_params = [p for stage in fitnet.stages[: GUIDED + 1] for p in stage.parameters()]
_, h_hint = task.train_student(
    student=fitnet, seed=1, teacher=teacher, epochs=HINT_EPOCHS, lr=HINT_LR, optimizer=HINT_OPTIMIZER,
    extra_modules=[regressor], params=lower_params + list(regressor.parameters()),
    loss_fn=lambda s, t, y: {"hint": hint_loss(regressor(s.features[GUIDED]), t.features[HINT])})

# %% [markdown]
# ## Stage 2: KD of the whole student, and the baselines
#
# Stage 2 minimises Eq. 2, $\mathrm{CE} + \lambda\,H(P_T^\tau, P_S^\tau)$, over the whole student for
# the remaining epochs. Baselines from the same initial weights and batches: the student alone, and
# the KD stage alone for the full budget (no hints), which separates what the hints add.

# %%
def kd_objective(s, t, y):
    return {"kd": fitnets_kd_loss(s.logits, t.logits, y, kd_weight=KD_WEIGHT, temperature=TAU)}


_, h_fitnet = task.train_student(student=fitnet, seed=1, teacher=teacher, epochs=KD_EPOCHS, loss_fn=kd_objective)
alone, h_alone = task.train_student(seed=1)
kd_only, h_kd = task.train_student(seed=1, teacher=teacher, loss_fn=kd_objective)

fig, axes = plt.subplots(1, 2, figsize=(10, 3))
axes[0].plot(range(1, HINT_EPOCHS + 1), h_hint.terms["hint"], "o-", ms=3)
axes[0].set_xlabel("stage-1 epoch")
axes[0].set_ylabel("hint loss (1/2 ||u_h - r(v_g)||^2)")
axes[1].plot(range(1, len(h_alone.test_acc) + 1), h_alone.test_acc, label="student alone")
axes[1].plot(range(1, len(h_kd.test_acc) + 1), h_kd.test_acc, label="KD stage only (no hints)")
axes[1].plot(range(HINT_EPOCHS + 1, HINT_EPOCHS + len(h_fitnet.test_acc) + 1), h_fitnet.test_acc,
             label="hints, then KD (FitNets)")
axes[1].axvline(HINT_EPOCHS + 0.5, color="gray", lw=0.8)
axes[1].axhline(teacher_acc, color="gray", ls=":", label="teacher")
axes[1].set_xlabel("epoch (FitNets: hint stage, then KD stage)")
axes[1].set_ylabel("test accuracy (%)")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Results
#
# One seed here; the atlas benchmark (`kdatlas bench`, shown on the site's "Reproduced" page) runs
# the FitNets student (hints, then KD) over five seeds on this same task. The paper's claim is about
# optimisation: hints make thin and deep students trainable where KD alone struggles. This student
# is shallow and trains well by itself, so that claim is not tested here. What the table shows: both
# students that learn from the teacher end well above the student alone, and the KD-stage-only row
# tells how much of that comes from Eq. 2 without any hint. Whether the hint stage adds to it (it
# also takes a fifth of the budget away from the KD stage) one seed does not settle: in a check over
# student seeds 1-4 made while writing this notebook, hints then KD finished ahead of the KD stage
# alone for two seeds and behind for the other two. The paper's results are on CIFAR-10/100, SVHN
# and MNIST. (In the quick mode CI uses, the budget is too small for the numbers to mean anything.)

# %%
print("| model | parameters | test accuracy (%) |")
print("|---|---:|---:|")
for name, m, acc in [("teacher", teacher, teacher_acc), ("student alone", alone, h_alone.test_acc[-1]),
                     ("student + KD stage only (Eq. 2, no hints)", kd_only, h_kd.test_acc[-1]),
                     ("student + hints, then KD (FitNets)", fitnet, h_fitnet.test_acc[-1])]:
    print(f"| {name} | {n_params(m):,} | {acc:.1f} |")
