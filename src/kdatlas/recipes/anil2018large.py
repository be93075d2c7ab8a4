"""Codistillation (Anil et al., 2018): a run= recipe that trains ``workers`` models in one process,
in lockstep, exactly as as many torch.distributed processes would (the test file checks the
two-process gloo run gives the same weights bit for bit); worker 0 is the seed's student, the row
the benchmark scores.

Worker r >= 1 starts from seed 10000 r + seed (worker 0 from the baseline's initial weights) and
reads the training set in its own order (``shard`` = False: every worker sees all of the students'
examples, so worker 0's budget is the student alone's; ``shard`` = True gives worker r the examples
r, r + n, ... as the paper's per-worker data). Each has the task's optimiser, learning rate, weight
decay and cosine schedule. Before step ``burn_in`` and at every ``exchange_every`` steps after it,
the workers exchange parameters; each trains on the cross-entropy plus ``distill_weight`` times the
cross-entropy to the others' stale copies' average prediction. Settings are ours (the paper's could
not be read; see the implementation's docstring): two workers, distillation weight 1, a burn-in of
one epoch and an exchange every epoch (``None``: the number of steps per epoch).

Several machines (or GPUs): ``benchmarks/codistill.py`` runs one worker per process under torchrun,
e.g. on each of two machines

    torchrun --nnodes=2 --nproc_per_node=1 --node_rank=<0 or 1> --rdzv_backend=c10d \\
        --rdzv_endpoint=<host of rank 0>:29500 benchmarks/codistill.py --task mnist1d --seed 1
"""
from __future__ import annotations

from typing import Callable

import torch
from torch.utils.data import Subset

from kdatlas.harness.data import make_loader
from kdatlas.harness.loop import History
from kdatlas.harness.train import cosine_schedule, make_optimizer
from kdatlas.implementations import anil2018large as impl
from kdatlas.recipes import Context, Recipe


def make_worker_model(ctx_task, seed: int, rank: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed if rank == 0 else 10_000 * rank + seed)
        return ctx_task.make_student().to(ctx_task.device)


def worker_loader(task, seed: int, rank: int, world: int, shard: bool):
    data = task.student_data.train
    n = len(data) - len(data) % world  # equal sizes: every process takes the same number of steps
    idx = list(range(rank, n, world)) if shard else list(range(len(data)))
    return make_loader(Subset(data, idx), task.batch_size, shuffle=True, seed=1000 * seed + rank)


def train_workers(task, seed: int, s: dict, ranks: list[int], world: int,
                  exchange: Callable[[list], list], models: dict | None = None,
                  evaluate: Callable | None = None) -> tuple[dict, History]:
    """Train the workers ``ranks`` (all of them in one process, or one per process) for the task's
    epochs. ``exchange(workers)`` returns the world's flat states (in-process: read from the
    workers; distributed: ``impl.exchange_parameters``). Returns ({rank: Codistiller}, History of
    the first local worker; ``evaluate(model)``, if given, scores it after every epoch)."""
    models = models or {}
    workers, opts, scheds, loaders = {}, {}, {}, {}
    for r in ranks:
        model = models.get(r) or make_worker_model(task, seed, r)
        loaders[r] = worker_loader(task, seed, r, world, s["shard"])
        every = s["exchange_every"] or len(loaders[r])
        burn_in = s["burn_in_epochs"] * len(loaders[r])
        workers[r] = impl.Codistiller(model, r, world, every, burn_in, s["distill_weight"], s["temperature"])
        opts[r] = make_optimizer(task.optimizer, list(model.parameters()), task.lr, task.weight_decay, 0.9)
        scheds[r] = cosine_schedule(opts[r], task.epochs * len(loaders[r]))
    first = ranks[0]
    hist, step = History(), 0
    for epoch in range(task.epochs):
        for w in workers.values():
            w.model.train()
        sums, n = {}, 0
        for batches in zip(*(loaders[r] for r in ranks)):
            if workers[first].due(step):
                states = exchange(list(workers.values()))
                for w in workers.values():
                    w.receive(states)
            for r, batch in zip(ranks, batches):
                x, y = batch[0].to(task.device), batch[1].to(task.device)
                terms = workers[r].loss(x, y, step)
                opts[r].zero_grad(set_to_none=True)
                sum(terms.values()).backward()
                opts[r].step()
                scheds[r].step()
                if r == first:
                    for k, v in terms.items():
                        sums[k] = sums.get(k, 0.0) + float(v.detach())
            step += 1
            n += 1
        means = {k: v / max(n, 1) for k, v in sums.items()}
        hist.train_loss.append(sum(means.values()))
        for k, v in means.items():
            hist.terms.setdefault(k, [float("nan")] * epoch).append(v)
        if evaluate is not None:
            hist.test_acc.append(evaluate(workers[first].model))
    return workers, hist


def in_process_exchange(workers: list) -> list:
    """What ``impl.exchange_parameters`` returns on every rank, read directly from the workers."""
    return [impl.flat_state(w.model) for w in sorted(workers, key=lambda w: w.rank)]


def run(ctx: Context, s: dict, track: bool = False):
    task, world = ctx.task, s["workers"]
    evaluate = (lambda m: task.metric.fn(m, task.test_loader, ctx.device)) if track else None
    workers, hist = train_workers(task, ctx.seed, s, list(range(world)), world, in_process_exchange,
                                  models={0: ctx.student}, evaluate=evaluate)
    return workers[0].model.eval(), hist


RECIPE = Recipe("anil2018large",
                settings={"workers": 2, "distill_weight": 1.0, "temperature": 1.0, "burn_in_epochs": 1,
                          "exchange_every": None, "shard": False},
                tasks={"mnist1d": {}, "digits": {}},
                run=run, needs_teacher=False)
