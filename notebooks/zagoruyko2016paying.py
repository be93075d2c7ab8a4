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
# # Paying More Attention to Attention: Improving the Performance of Convolutional Neural Networks via Attention Transfer
#
# Zagoruyko & Komodakis (2016) summarise a feature map by where it is active, the channel sum of
# $|A_c|^2$, and train the student so that its L2-normalised maps match the teacher's at layers of
# equal spatial size. Channel counts may differ, so no adapter is needed. This notebook uses the
# atlas's embedded task (MNIST-1D, generated offline: a teacher that learned from 4,000 labelled
# sequences, students that only have the first 500), where an attention map is a curve over the
# positions of a sequence. It trains the student alone and with attention transfer (AT), shows the
# maps side by side, and says plainly what the results table shows: on this task AT does not make
# the student more accurate.

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
# `attention_map` and `at_loss` come from the implementation file; data, models and the training
# loop from `kdatlas.harness`. `embedded_task` is the atlas benchmark's task (`kdatlas bench`): the
# teacher (widths 32/64/128, 97 k parameters) learns from all 4,000 training sequences, the students
# (8/16/32, 2.4 k parameters) from the first 500. Both networks have three stages of 40, 20 and 10
# positions, paired stage by stage as the paper pairs the groups of residual blocks.
#
# The weight: `at_loss` averages over batch and positions (as the authors' code does), and the paper
# multiplies it by $\beta/2 = 500$, a value set for CIFAR maps of 32x32 to 8x8 positions. On these
# 40/20/10-position 1-D maps, 500 swamps the cross-entropy; the benchmark chose the weight on
# held-out training sequences (never the test set) among 1 to 500, and the best was 1, the smallest
# candidate (`results/weight_selection.json`: the published 500 scored 58% on the held-out sequences,
# the student alone 84%). The notebook trains the benchmark's weight 1; add 500.0 to `AT_WEIGHTS` to
# watch the published weight swamp the labels (about 10 s more). `FULL_SIZE`: ResNet32x4 -> ResNet8x4
# on CIFAR-100 with the published weight on the outputs of the three groups of residual blocks.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from kdatlas.harness import embedded_task
from kdatlas.implementations.zagoruyko2016paying import at_loss, attention_map

task = embedded_task(quick=QUICK, full_size=FULL_SIZE)
print(task.description)
P = 2.0
AT_STAGES = [1, 2, 3] if FULL_SIZE else [0, 1, 2]  # ResNet: the 3 groups (0 is the stem); MNIST-1D: 3 stages
AT_WEIGHTS = [500.0] if FULL_SIZE else [1.0]  # the paper's beta/2; the benchmark's held-out choice

# %% [markdown]
# ## Teacher, student alone, students with attention transfer
#
# Same architecture, same initial weights, same batches. An AT student minimises
# $\mathrm{CE} + \frac{\beta}{2}\sum_j \mathrm{AT}_j$ over the paired stages $j$.

# %%
teacher, teacher_acc = task.train_teacher(seed=0)
print(f"teacher test accuracy: {teacher_acc:.1f}%")
student, h_alone = task.train_student(seed=1)


def at_objective(weight):
    def loss(s, t, y):
        at = sum(at_loss(s.features[j], t.features[j], P) for j in AT_STAGES)
        return {"ce": F.cross_entropy(s.logits, y), "at": weight * at}
    return loss


at_students, at_histories = {}, {}
for w in AT_WEIGHTS:
    at_students[w], at_histories[w] = task.train_student(seed=1, teacher=teacher, loss_fn=at_objective(w))

fig, axes = plt.subplots(1, 2, figsize=(10, 3))
axes[0].plot(range(1, len(h_alone.test_acc) + 1), h_alone.test_acc, label="student alone")
for w, h in at_histories.items():
    axes[0].plot(range(1, len(h.test_acc) + 1), h.test_acc, label=f"AT, weight {w:g}")
    axes[1].plot(range(1, len(h.terms["ce"]) + 1), h.terms["ce"], label=f"CE (AT weight {w:g})")
    axes[1].plot(range(1, len(h.terms["at"]) + 1), h.terms["at"], "--", label=f"weight x AT (AT weight {w:g})")
axes[1].plot(range(1, len(h_alone.train_loss) + 1), h_alone.train_loss, "k:", label="CE (student alone)")
axes[0].axhline(teacher_acc, color="gray", ls=":", label="teacher")
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("test accuracy (%)")
axes[0].legend()
axes[1].set_xlabel("epoch")
axes[1].set_ylabel("mean training loss term")
axes[1].set_yscale("log")
axes[1].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Attention maps (Sec. 3.1)
#
# The map of a stage is $\sum_c A_c^2$ over the channels, L2-normalised. On MNIST-1D it is a curve
# over the 40, 20 or 10 positions of a stage: the teacher's (4x wider at every stage), the student
# alone's and the AT students', for one test sequence (top), and for 32 test sequences as images,
# one row per sequence, at the first stage (bottom). With `FULL_SIZE` the maps are 2-D images of
# the first test images.

# %%
x = next(iter(task.test_loader))[0][:32].to(task.device)
nets = {"teacher": teacher, "student alone": student} | {f"AT, weight {w:g}": m for w, m in at_students.items()}
maps = {}
for name, net in nets.items():
    net.eval()
    with torch.no_grad():
        feats, _ = net.forward_features(x)
    maps[name] = [attention_map(feats[j], P).view(len(x), *feats[j].shape[2:]).cpu() for j in AT_STAGES]

if x.dim() == 3:  # MNIST-1D: (B, 1, 40) sequences, maps over L positions
    fig, axes = plt.subplots(1, len(AT_STAGES) + 1, figsize=(14, 2.8))
    axes[0].plot(x[0, 0].cpu())
    axes[0].set_title("input sequence")
    for k, j in enumerate(AT_STAGES):
        for name, m in maps.items():
            axes[k + 1].plot(m[k][0], label=name, lw=2 if name == "teacher" else 1)
        axes[k + 1].set_title(f"stage {j}: {maps['teacher'][k].shape[1]} positions")
        axes[k + 1].set_xlabel("position")
    axes[-1].legend(fontsize=7)
    plt.tight_layout()
    plt.show()

    fig, axes = plt.subplots(1, len(maps), figsize=(3 * len(maps), 3.2), sharey=True)
    for ax, (name, m) in zip(axes, maps.items()):
        ax.imshow(m[0], aspect="auto", cmap="viridis")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(f"position (stage {AT_STAGES[0]})")
    axes[0].set_ylabel("test sequence")
    plt.tight_layout()
    plt.show()
else:  # FULL_SIZE: images, maps over H x W
    rows, k = 4, 0  # the first paired stage
    fig, axes = plt.subplots(rows, len(maps) + 1, figsize=(2 * (len(maps) + 1), 2 * rows))
    for r in range(rows):
        axes[r, 0].imshow(x[r, 0].cpu(), cmap="gray")
        for c, (name, m) in enumerate(maps.items(), start=1):
            axes[r, c].imshow(m[k][r], cmap="jet")
            if r == 0:
                axes[r, c].set_title(name, fontsize=9)
        for ax in axes[r]:
            ax.axis("off")
    axes[0, 0].set_title("input")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# How close are the maps? The AT distance (`at_loss`, unweighted) to the teacher on the whole test
# set, per stage:

# %%
def at_distance(net, stage):
    net.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for xb, *_ in task.test_loader:
            fs, _ = net.forward_features(xb.to(task.device))
            ft, _ = teacher.forward_features(xb.to(task.device))
            total += at_loss(fs[stage], ft[stage], P).item() * len(xb)
            n += len(xb)
    return total / n


distances = {name: [at_distance(net, j) for j in AT_STAGES] for name, net in nets.items() if name != "teacher"}

# %% [markdown]
# ## Results
#
# One seed here; the atlas benchmark (`kdatlas bench`, shown on the site's "Reproduced" page) runs
# this same task over five seeds for every implemented method, AT with weight 1.
#
# On this task attention transfer does not beat the student alone. At the held-out-selected weight 1
# the AT student's maps move part of the way towards the teacher's (the distances below), and its
# accuracy stays within the student's seed-to-seed spread: in a single run it can land a little above
# or below the student alone, and the benchmark's five-seed mean for AT is not above the student
# alone's. At the published weight 500 (add it to `AT_WEIGHTS` above) the maps are pulled much closer
# to the teacher's, but the AT term swamps the labels and the accuracy drops. Why the paper's effect does
# not carry over is a guess, not something this notebook measures: the maps here have only 40, 20 and
# 10 positions along one axis, and where a sequence's activity sits may say little about its class
# in MNIST-1D, whose patterns are shifted and scaled at random; the teacher's logits carry more of
# what it knows (compare KD on the "Reproduced" page). The paper's gains are on CIFAR-10 and ImageNet,
# with 2-D maps of WRNs and ResNets.
# (In the quick mode CI uses, the budget is too small for the numbers to mean anything.)

# %%
print("| model | test accuracy (%) | " + " | ".join(f"AT distance, stage {j}" for j in AT_STAGES) + " |")
print("|---|---:|" + "---:|" * len(AT_STAGES))
print(f"| teacher | {teacher_acc:.1f} |" + " 0 |" * len(AT_STAGES))
for name, h in [("student alone", h_alone)] + [(f"AT, weight {w:g}", h) for w, h in at_histories.items()]:
    label = "student alone" if name == "student alone" else f"student + {name}"
    print(f"| {label} | {h.test_acc[-1]:.1f} | " + " | ".join(f"{d:.4f}" for d in distances[name]) + " |")
