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
# Romero et al. (2014) train a student that is thinner and deeper than its teacher in two stages:
# first its lower half learns to predict the teacher's middle-layer output (the hint) through a
# convolutional regressor, then the whole student is trained with knowledge distillation from those
# weights. This notebook runs both stages on the scikit-learn digits (no download) with the harness's
# training loop, plots the hint-stage curve, and compares a thin deep student trained alone, with KD
# only, and with hints + KD.

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
# data, the models and `train`, which takes `params=` for stage 1 (the student's lower stages and the
# regressor only). Default: a 16/32/64 teacher with one conv per stage and a 4/8/16 student with four
# convs per stage (thinner and deeper). Hint = the teacher's middle stage, guided layer = the
# student's middle stage, as in the paper. `FULL_SIZE`: ResNet32x4 -> ResNet8x4 on CIFAR-100.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.harness import (ConvNet, evaluate, load_cifar, load_digits_canvas, resnet8x4,
                             resnet32x4, seed_everything, train)
from kdatlas.implementations.romero2014fitnets import (ConvRegressor, fitnets_kd_loss, hint_loss,
                                                        regressor_kernel_size)

seed_everything(0)
if FULL_SIZE:
    data = load_cifar("data", name="cifar100", download=True)
    make_teacher, make_student = (lambda: resnet32x4(num_classes=100)), (lambda: resnet8x4(num_classes=100))
    t_epochs, hint_epochs, s_epochs = 240, 40, 240
    HINT = GUIDED = 2  # the middle of the stem + 3 groups
    lr, batch = 0.05, 64
else:
    data = load_digits_canvas(canvas=8, seed=0, n_train=300 if QUICK else None)
    make_teacher = lambda: ConvNet(2, (16, 32, 64), num_classes=10)  # noqa: E731
    make_student = lambda: ConvNet(2, (4, 8, 16), num_classes=10, blocks=4)  # noqa: E731
    t_epochs, hint_epochs, s_epochs = (1, 1, 1) if QUICK else (5, 3, 8)
    HINT = GUIDED = 1  # middle stage of three
    lr, batch = 0.05, 64
train_loader, test_loader = data.loaders(batch_size=batch, seed=0)
# A fresh loader per run: every model sees the same batches in the same order.
fresh_train_loader = lambda: data.loaders(batch_size=batch, seed=0)[0]  # noqa: E731
device = "cuda" if FULL_SIZE and torch.cuda.is_available() else "cpu"
KD_WEIGHT, TAU = 4.0, 3.0
HINT_LR = 1e-2  # stage 1 uses AdamW (the paper: RMSProp); the summed hint loss is large for SGD at 0.05

# %%
seed_everything(0)
teacher = make_teacher()
train(teacher, fresh_train_loader(), epochs=t_epochs, lr=lr, device=device, progress=False)
teacher_acc = evaluate(teacher, test_loader, device)
n_params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
print(f"teacher {teacher_acc:.1f}% ({n_params(teacher):,} parameters); "
      f"student {n_params(make_student()):,} parameters")

# %% [markdown]
# ## The regressor (Sec. 2.2)
#
# The kernel is chosen so that a convolution without padding maps the guided layer's spatial size
# to the hint's: $N_{g,i} - k_i + 1 = N_{h,i}$. Here both middle stages are 4x4, so $k = 1$; a guided
# layer of 8x8 would need a 5x5 kernel. Its $k_1 k_2 O_h O_g$ weights are far fewer than a fully
# connected regressor's.

# %%
x0 = next(iter(train_loader))[0][:2].to(device)
teacher.eval()
with torch.no_grad():
    t_feats, _ = teacher.forward_features(x0)
s_feats, _ = make_student().to(device).forward_features(x0)
g_shape, h_shape = s_feats[GUIDED].shape, t_feats[HINT].shape
print("guided", tuple(g_shape[1:]), "hint", tuple(h_shape[1:]),
      "kernel", regressor_kernel_size(g_shape[2:], h_shape[2:]),
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
# runs the whole student forward; the upper layers get no gradient and no update.)

# %%
seed_everything(1)
fitnet = make_student()
regressor = new_regressor()
lower_params = [p for stage in fitnet.stages[: GUIDED + 1] for p in stage.parameters()]
h_hint = train(fitnet, fresh_train_loader(), epochs=hint_epochs, lr=HINT_LR, optimizer="adamw", device=device,
               teacher=teacher, weight_decay=0.0,
               cache_teacher=not data.augmented, extra_modules=[regressor],
               params=lower_params + list(regressor.parameters()), progress=False,
               loss_fn=lambda s, t, y: {"hint": hint_loss(regressor(s.features[GUIDED]), t.features[HINT])})

# %% [markdown]
# ## Stage 2: KD of the whole student, and the baselines

# %%
def kd_objective(s, t, y):
    return {"kd": fitnets_kd_loss(s.logits, t.logits, y, kd_weight=KD_WEIGHT, temperature=TAU)}


h_fitnet = train(fitnet, fresh_train_loader(), epochs=s_epochs, lr=lr, test_loader=test_loader, device=device,
                 teacher=teacher, cache_teacher=not data.augmented, loss_fn=kd_objective, progress=False)

seed_everything(1)
alone = make_student()
h_alone = train(alone, fresh_train_loader(), epochs=s_epochs, lr=lr, test_loader=test_loader, device=device,
                progress=False)

seed_everything(1)
kd_only = make_student()
h_kd = train(kd_only, fresh_train_loader(), epochs=s_epochs, lr=lr, test_loader=test_loader, device=device,
             teacher=teacher, cache_teacher=not data.augmented, loss_fn=kd_objective, progress=False)

fig, axes = plt.subplots(1, 2, figsize=(10, 3))
axes[0].plot(range(1, hint_epochs + 1), h_hint.train_loss, "o-")
axes[0].set_xlabel("stage-1 epoch")
axes[0].set_ylabel("hint loss (1/2 ||u_h - r(v_g)||^2)")
for h, name in [(h_alone, "thin deep student alone"), (h_kd, "KD only"), (h_fitnet, "hints + KD (FitNets)")]:
    axes[1].plot(range(1, s_epochs + 1), h.test_acc, label=name)
axes[1].axhline(teacher_acc, color="gray", ls=":", label="teacher")
axes[1].set_xlabel("stage-2 epoch")
axes[1].set_ylabel("test accuracy (%)")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Results
#
# The paper's claim is about optimisation: hints make thin, deep students trainable. On this toy the
# gap depends on the seed and the budget; the paper's gains are on CIFAR-10/100, SVHN and MNIST.

# %%
print("| model | parameters | test accuracy (%) |")
print("|---|---:|---:|")
for name, m, acc in [("teacher", teacher, teacher_acc), ("thin deep student alone", alone, h_alone.test_acc[-1]),
                     ("student + KD only", kd_only, h_kd.test_acc[-1]),
                     ("student + hints + KD (FitNets)", fitnet, h_fitnet.test_acc[-1])]:
    print(f"| {name} | {n_params(m):,} | {acc:.1f} |")
