"""DLB (Shen et al., 2022): self-distillation from the last mini-batch, no teacher.

A run= recipe (``needs_teacher=False``): the benchmark's student of the seed (the baseline's initial
weights and batch order) is trained with ``impl.dlb_step`` on every batch of the student's loader:
the previous batch is run again next to the new one, its logits from the previous iteration
(stored, detached) are the soft targets, and one optimiser step is taken per loader batch with the
task's optimiser, learning rate, weight decay and cosine schedule, as ``train`` gives a student
alone. The store carries over epoch boundaries, as in the authors' code, so only the run's first
step is plain cross-entropy. On an augmented task the repeated samples are re-read from the dataset
(a fresh augmentation, the code's second view); the embedded tasks are not augmented, so the second
visit sees the same input.

Settings: ``temperature`` = 3 and ``alpha`` = 1 (the implementation's docstring says where they come
from; neither is confirmed in the paper's text)."""
from __future__ import annotations

import torch

from kdatlas.harness.loop import loop
from kdatlas.harness.train import cosine_schedule, make_optimizer  # what train() gives a student alone
from kdatlas.implementations import shen2022selfdistillation as impl
from kdatlas.recipes import Context, Recipe


def train_dlb(ctx: Context, s: dict, track: bool = False, progress: bool = False, on_step=None):
    """Train ``ctx.student``; returns (student, History). ``track``: the test metric per epoch.
    ``on_step(last_before, batch, terms)``: called after every step (the notebook's bookkeeping)."""
    task, model = ctx.task, ctx.student
    opt = make_optimizer(task.optimizer, list(model.parameters()), task.lr, task.weight_decay, 0.9)
    loader = task.student_loader(ctx.seed)
    sched = cosine_schedule(opt, ctx.epochs * len(loader))  # as in train()
    data, last = task.student_data.train, impl.LastBatch()

    def step(batch, progress_):
        x, y, idx = batch
        repeat_x = None
        if task.student_data.augmented and not last.empty:  # second visit: a fresh augmentation
            repeat_x = torch.stack([data[int(i)][0] for i in last.index]).to(x.device)
        before = impl.LastBatch(last.x, last.y, last.index, last.logits)
        terms = impl.dlb_step(model, opt, x, y, last, index=idx, repeat_x=repeat_x,
                              temperature=s["temperature"], alpha=s["alpha"])
        if on_step is not None:
            on_step(before, batch, terms)
        return terms

    hist = loop(step, loader, epochs=ctx.epochs, models=[model], schedulers=[sched], device=ctx.device,
                evaluate=(lambda: task.metric.fn(model, task.test_loader, ctx.device)) if track else None,
                progress=progress, desc=f"shen2022selfdistillation s{ctx.seed}")
    return model, hist


def run(ctx: Context, s: dict):
    return train_dlb(ctx, s)


RECIPE = Recipe("shen2022selfdistillation", settings={"temperature": 3.0, "alpha": 1.0},
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {}}, run=run, needs_teacher=False)
