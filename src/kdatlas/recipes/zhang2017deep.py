"""Deep Mutual Learning: how the harness runs implementations/zhang2017deep.py.

No teacher: a cohort of ``peers`` copies of the task's student architecture, each from its own
initial weights (peer 0 is the benchmark's student of this seed, with the baseline's initial weights;
peer k >= 1 is drawn from seed 10000 k + seed), learns from the student's training set with one
optimiser each (the task's optimiser, learning rate, weight decay and cosine schedule, as ``train``
gives a student alone), updated one after another on every mini-batch (``impl.dml_step``, Algorithm
1). Peer 0 is the model the benchmark scores; the paper reports every peer of the cohort.

Settings: ``peers`` = 2 and ``kl_weight`` = 1 are the paper's main setting (cohorts of two networks;
the loss has no weight on the KL term, Sec. 2.1). ``kl_weight`` = 0 trains the same peers
independently, on the same batches (the paper's "independent" baseline; the notebook uses it).
"""
from __future__ import annotations


import torch

from kdatlas.harness.loop import History, loop
from kdatlas.harness.train import cosine_schedule, make_optimizer  # what train() gives a student alone
from kdatlas.implementations import zhang2017deep as impl
from kdatlas.recipes import Context, Recipe


def make_peers(ctx: Context, n: int) -> list:
    """Peer 0: the context's student; peer k: the task's student from seed 10000 k + seed."""
    peers = [ctx.student]
    for k in range(1, n):
        with torch.random.fork_rng(devices=[]):  # the global RNG is left as it was
            torch.manual_seed(10_000 * k + ctx.seed)
            peers.append(ctx.task.make_student().to(ctx.device))
    return peers


def train_cohort(ctx: Context, s: dict, track: bool = False, progress: bool = False) -> tuple[list, History, list]:
    """Train the cohort; returns (peers, History, per-epoch test scores of every peer if ``track``).

    ``History.test_acc`` is peer 0's score per epoch when ``track``; the terms are ``ce_k``/``kl_k``."""
    task = ctx.task
    peers = make_peers(ctx, s["peers"])
    opts = [make_optimizer(task.optimizer, list(p.parameters()), task.lr, task.weight_decay, 0.9) for p in peers]
    loader = task.student_loader(ctx.seed)
    scheds = [cosine_schedule(o, ctx.epochs * len(loader)) for o in opts]  # as in train()
    scores: list = []

    def step(batch, progress_):
        x, y = batch[0], batch[1]
        terms = impl.dml_step(peers, opts, x, y, kl_weight=s["kl_weight"])
        return {f"{name}_{k}": v for k, t in enumerate(terms) for name, v in t.items()}

    def evaluate():
        scores.append([task.metric.fn(p, task.test_loader, ctx.device) for p in peers])
        return scores[-1][0]

    hist = loop(step, loader, epochs=ctx.epochs, models=peers, schedulers=scheds, device=ctx.device,
                evaluate=evaluate if track else None, progress=progress, desc=f"zhang2017deep s{ctx.seed}")
    return peers, hist, scores


def run(ctx: Context, s: dict):
    peers, hist, _ = train_cohort(ctx, s)
    return peers[0], hist


RECIPE = Recipe("zhang2017deep", settings={"peers": 2, "kl_weight": 1.0},
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {}}, run=run, needs_teacher=False)
