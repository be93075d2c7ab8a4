"""Zeng & Martinez (2000): one network approximating a bagged ensemble, as run by the benchmark.

A run= recipe with no task teacher (``needs_teacher=False``): the "teacher" is an ensemble the
recipe trains itself, as the letter does. Steps, each calling implementations/zeng2000using.py:

1. ``members`` networks of the task's student architecture (member k from seed 10000 (k + 1) + seed),
   each trained on its own bootstrap replicate of the student's training set (bagging), with what
   ``train`` gives a student alone (the task's optimiser, learning rate, weight decay, epochs).
2. ``extra`` x n_train new inputs drawn with ``impl.random_instances`` (RANDOM) from the student's
   training inputs.
3. The ensemble's targets (``impl.ensemble_probs``, ``combine``) on the original plus new inputs.
4. The approximator, the benchmark's student of this seed (the baseline's initial weights), trained
   with ``impl.approximation_loss`` on that enlarged set for the task's epochs (an epoch is a pass
   over the enlarged set: (1 + extra) times the student's steps). It is what the run returns:
   one network, 1/``members`` of the ensemble's parameters.

Settings: ``members`` = 10 (the letter's ensembles of ten networks, as Bucilua et al. 2006, Sec. 5,
report it); ``extra`` = 1.0 (synthetic data "comparable to the size of the initial train set", same
source); ``combine`` = "average" (the atlas's choice: the letter's targets were not readable).
"""
from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from kdatlas.harness.data import make_loader
from kdatlas.harness.loop import History
from kdatlas.harness.train import train
from kdatlas.implementations import zeng2000using as impl
from kdatlas.recipes import Recipe

MEMBER_SEED_STRIDE = 10_000  # member k's initial weights: 10000 (k + 1) + seed; its bootstrap: the same seed


def _fit_kw(task, track: bool = False) -> dict:
    return dict(epochs=task.epochs, lr=task.lr, optimizer=task.optimizer, weight_decay=task.weight_decay,
                device=task.device, progress=False, metric=task.metric.fn,
                test_loader=task.test_loader if track else None)


def train_members(ctx, s, track: bool = False) -> tuple[list, list]:
    """Step 1, bagging: (members in eval mode, their Histories)."""
    task = ctx.task
    x, y, _ = task.student_data.train.tensors
    members, hists = [], []
    for k in range(s["members"]):
        seed_k = MEMBER_SEED_STRIDE * (k + 1) + ctx.seed
        idx = impl.bootstrap_indices(len(x), torch.Generator().manual_seed(seed_k))
        data = TensorDataset(x[idx], y[idx], torch.arange(len(idx)))
        member = task.new_student(seed_k).to(task.device)
        hists.append(train(member, make_loader(data, task.batch_size, seed=seed_k), **_fit_kw(task, track)))
        members.append(member.eval().requires_grad_(False))
    return members, hists


def transfer_set(ctx, s, members) -> TensorDataset:
    """Steps 2-3: the training inputs plus ``extra`` x n new RANDOM ones, with the ensemble's targets
    (the dataset's second field; its third is the index)."""
    x = ctx.task.student_data.train.tensors[0]
    n_new = round(s["extra"] * len(x))
    x_new = impl.random_instances(x, n_new, torch.Generator().manual_seed(ctx.seed))
    x_all = torch.cat([x, x_new]).to(ctx.device)
    targets = impl.ensemble_probs(members, x_all, s["combine"]).cpu()
    return TensorDataset(x_all.cpu(), targets, torch.arange(len(x_all)))


def train_approximator(ctx, data: TensorDataset, track: bool = False) -> History:
    """Step 4: ``ctx.student`` regresses the ensemble's targets on the transfer set."""
    def loss(so, to, t, progress):  # t: the loader's second field, the ensemble's targets
        return {"approx": impl.approximation_loss(so.logits, t)}
    return train(ctx.student, make_loader(data, ctx.task.batch_size, seed=ctx.seed), loss_fn=loss,
                 **_fit_kw(ctx.task, track))


def run(ctx, s):
    members, hists = train_members(ctx, s)
    hist = History()
    for k, h in enumerate(hists):
        hist.extend(h, f"member {k}")
    hist.extend(train_approximator(ctx, transfer_set(ctx, s, members)), "approximator")
    return ctx.student, hist


RECIPE = Recipe("zeng2000using", settings={"members": 10, "extra": 1.0, "combine": "average"},
                tasks={"mnist1d": {}, "digits": {}}, run=run, needs_teacher=False)
