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
# # Contrastive Representation Distillation
#
# CRD trains the student so that a critic can tell, from a pair of embeddings, whether the
# student's and the teacher's representations come from the same input (a positive) or from two
# different inputs (negatives, drawn from a memory bank of every training sample). Maximising the
# critic's log-likelihood maximises a lower bound on the mutual information between the two
# representations. This notebook trains a teacher, a small student alone and the student with CRD
# on MNIST-1D (generated offline), and follows the alignment CRD builds: the cosine similarity of
# the teacher's and student's embeddings of the *same* input rises above that of *different* inputs.

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
# `CRDLoss` holds the two embedding heads (linear + L2 normalisation, 128 dimensions) and one
# memory bank per side (one row per training sample, momentum 0.5). Its defaults follow the
# authors' code where it differs from the paper (see the implementation's docstring). The
# objective is CE + 0.8 * CRD, the weight of the authors' CIFAR-100 runs; the loss needs each
# sample's index in the training set, which the harness's loaders provide.

# %%
import torch
import torch.nn.functional as F
import matplotlib.pyplot as plt

from kdatlas.harness import (evaluate, load_cifar, load_mnist1d, mnist1d_student, mnist1d_teacher,
                             resnet8x4, resnet32x4, seed_everything, train)
from kdatlas.implementations.tian2019contrastive import CRDLoss

CRD_WEIGHT = 0.8
torch.set_num_threads(min(2, os.cpu_count() or 1))
seed_everything(0)
if FULL_SIZE:
    data = load_cifar("data", "cifar100", augment=True, download=True)
    make_teacher, make_student = (lambda: resnet32x4(num_classes=100)), (lambda: resnet8x4(num_classes=100))
    TEACHER_EPOCHS, EPOCHS, NEGATIVES, CACHE = 240, 240, 16384, False
else:
    # 500 labelled training sequences; 1,000 test sequences (300 in quick mode)
    data = load_mnist1d(n_train=500, num_samples=1500 if QUICK else 5000)
    make_teacher, make_student = mnist1d_teacher, mnist1d_student
    TEACHER_EPOCHS, EPOCHS, NEGATIVES, CACHE = (1, 1, 256, True) if QUICK else (20, 40, 4096, True)
train_loader, test_loader = data.loaders(batch_size=64, seed=0)

# %% [markdown]
# ## Teacher, student alone, CRD student

# %%
teacher = make_teacher()
train(teacher, train_loader, epochs=TEACHER_EPOCHS, progress=False)
teacher.eval()

seed_everything(1)
alone = make_student()
train(alone, train_loader, epochs=EPOCHS, progress=False)

seed_everything(1)  # same initialisation and batch order as the student alone
student = make_student()
with torch.no_grad():
    x0 = train_loader.dataset[:2][0] if not FULL_SIZE else torch.stack([data.train[i][0] for i in range(2)])
    dims = student.eval().embedding(x0).shape[1], teacher.embedding(x0).shape[1]
crd = CRDLoss(*dims, num_data=len(data.train), num_negatives=NEGATIVES)
log = {"positive": [], "negative": []}  # cosine in the critic's space, per training step


def crd_objective(student_out, teacher_out, targets):
    loss = crd(student_out.embedding, teacher_out.embedding, student_out.index)
    with torch.no_grad():  # same input vs the other inputs of the batch (off-diagonal)
        s, t = crd.embed(student_out.embedding, teacher_out.embedding)
        cos = s @ t.T
        off = ~torch.eye(len(cos), dtype=torch.bool, device=cos.device)
        log["positive"].append(cos.diagonal().mean().item())
        log["negative"].append(cos[off].mean().item())
    return {"ce": F.cross_entropy(student_out.logits, targets), "crd": CRD_WEIGHT * loss}


hist = train(student, train_loader, epochs=EPOCHS, loss_fn=crd_objective, teacher=teacher,
             cache_teacher=CACHE, progress=False)
print({k: [round(v[0], 2), round(v[-1], 2)] for k, v in hist.terms.items()}, "(first and last epoch)")

# %% [markdown]
# ## Alignment of teacher and student embeddings
#
# Left: during training, the mean cosine similarity between $g^S(S)$ and $g^T(T)$ for the same
# input (positive pairs) and for different inputs of the batch (negative pairs). Right: the same
# on the test set after training, as histograms: the critic separates the two.

# %%
steps_per_epoch = len(log["positive"]) // max(EPOCHS, 1)
epoch_mean = lambda v: [sum(v[i:i + steps_per_epoch]) / steps_per_epoch for i in range(0, len(v), steps_per_epoch)]

with torch.no_grad():
    if FULL_SIZE:
        x_test = torch.stack([data.test[i][0] for i in range(2000)])
    else:
        x_test = data.test[:][0]
    s, t = crd.eval().embed(student.eval().embedding(x_test), teacher.embedding(x_test))
    cos = s @ t.T
    off = ~torch.eye(len(cos), dtype=torch.bool)
    pos_test, neg_test = cos.diagonal(), cos[off]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ax1.plot(epoch_mean(log["positive"]), label="same input (positive)")
ax1.plot(epoch_mean(log["negative"]), label="different inputs (negative)")
ax1.set_xlabel("epoch"), ax1.set_ylabel(r"cosine of $g^S(S)$ and $g^T(T)$"), ax1.legend()
ax2.hist(neg_test.numpy(), bins=50, density=True, alpha=0.6, label="different inputs")
ax2.hist(pos_test.numpy(), bins=50, density=True, alpha=0.6, label="same input")
ax2.set_xlabel("cosine on the test set"), ax2.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Results

# %%
# How often the teacher embedding closest to a student embedding (in the critic's space) is the
# one of the same test input: chance is 1 / (number of test inputs).
retrieval = (cos.argmax(dim=1) == torch.arange(len(cos))).float().mean().item() * 100
rows = [("teacher", evaluate(teacher, test_loader)), ("student alone", evaluate(alone, test_loader)),
        ("CRD student", evaluate(student, test_loader))]
print("| model | test acc. (%) |")
print("|---|---|")
for name, acc in rows:
    print(f"| {name} | {acc:.1f} |")
print(f"\nCRD student, test set: mean cosine same input {pos_test.mean():.3f}, different inputs "
      f"{neg_test.mean():.3f}; teacher retrieved from the student embedding: {retrieval:.1f}% "
      f"(chance {100 / len(cos):.2f}%)")
