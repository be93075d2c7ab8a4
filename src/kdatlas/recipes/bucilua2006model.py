"""Bucilua, Caruana & Niculescu-Mizil (2006), model compression with MUNGE, as run by the benchmark.

A run= recipe. The model to compress is the task's teacher (a larger network trained on more data:
the paper compresses any "slower, larger, but better performing model", Sec. 2; its experiments use
ensemble-selection ensembles, which the notebook imitates with a bagged ensemble). Steps, each
calling implementations/bucilua2006model.py:

1. Pseudo data from the student's training inputs: ``impl.munge`` with ``multiplier`` passes
   (``generator`` = "munge"), or ``impl.random_marginals`` (``generator`` = "random", Sec. 2.1), the
   same number of examples.
2. The transfer set: the training inputs plus the pseudo data (Sec. 3.2), every input labelled
   with the teacher's softmax probabilities (eval mode, no gradient).
3. The student of this seed (the baseline's initial weights) trained with
   ``impl.compression_loss`` (squared error to the probabilities) for the task's epochs, an epoch
   being a pass over the transfer set: (1 + ``multiplier``) times the student's steps.

Settings: ``multiplier`` = 9 (10x the real data; the paper's curves rise up to 100x, Fig. 2, at a
cost the benchmark's CPU budget does not allow); ``p`` = 0.5 and ``s`` = 1.0 are the atlas's choice
(the paper gives no values); ``generator`` = "munge" (the paper's method; "random" is its baseline).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from kdatlas.harness.data import make_loader
from kdatlas.harness.train import train
from kdatlas.implementations import bucilua2006model as impl
from kdatlas.recipes import Recipe


@torch.no_grad()
def label(model, x, batch_size: int = 512):
    """The model's softmax probabilities on ``x`` (eval mode; its mode is restored)."""
    was = model.training
    model.eval()
    out = torch.cat([F.softmax(model(x[i:i + batch_size]), -1) for i in range(0, len(x), batch_size)])
    model.train(was)
    return out


def transfer_set(ctx, s, model) -> TensorDataset:
    """Steps 1-2: (inputs, ``model``'s probabilities, index) on the real plus pseudo inputs."""
    x = ctx.task.student_data.train.tensors[0]
    gen = torch.Generator().manual_seed(ctx.seed)
    if s["generator"] == "munge":
        pseudo = impl.munge(x, s["multiplier"], p=s["p"], s=s["s"], generator=gen)
    elif s["generator"] == "random":
        pseudo = impl.random_marginals(x, s["multiplier"] * len(x), generator=gen)
    else:
        raise ValueError(f"generator must be 'munge' or 'random', got {s['generator']!r}")
    x_all = torch.cat([x, pseudo]).to(ctx.device)
    return TensorDataset(x_all.cpu(), label(model, x_all).cpu(), torch.arange(len(x_all)))


def train_mimic(ctx, data: TensorDataset, track: bool = False):
    """Step 3: ``ctx.student`` regresses the probabilities on the transfer set; returns its History."""
    task = ctx.task

    def loss(so, to, probs, progress):  # probs: the loader's second field
        return {"mimic": impl.compression_loss(so.logits, probs)}
    return train(ctx.student, make_loader(data, task.batch_size, seed=ctx.seed), loss_fn=loss, epochs=task.epochs,
                 lr=task.lr, optimizer=task.optimizer, weight_decay=task.weight_decay, device=task.device,
                 progress=False, metric=task.metric.fn, test_loader=task.test_loader if track else None)


def run(ctx, s):
    hist = train_mimic(ctx, transfer_set(ctx, s, ctx.teacher))
    return ctx.student, hist


RECIPE = Recipe("bucilua2006model", settings={"multiplier": 9, "p": 0.5, "s": 1.0, "generator": "munge"},
                tasks={"mnist1d": {}, "digits": {}}, run=run)
