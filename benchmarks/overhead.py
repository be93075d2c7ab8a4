r"""What distillation costs on top of training the student, measured on whole training steps.

Part 1: one training step at CIFAR size
---------------------------------------
Batch 128 of 3x32x32 inputs, 100 classes, resnet8x4 student, resnet32x4 teacher, on this machine's
CPU, seeded random inputs (the values do not change the cost). For every recipe of
``kdatlas.recipes.all_recipes()`` that trains in phases, its settings on the "cifar100" task
(``recipe.settings_for("cifar100")``: FitNets guides stage 2 by stage 2, AT pairs the three residual
groups, CRD keeps 16,384 negatives) and its phases, built from a ``Context`` made by
``make_context`` on a synthetic task of 50,000 random images. Recipes with ``run=`` or ``skip=`` are
listed as skipped, with the reason.

A *method step* is what ``kdatlas.harness.train`` does per batch: the student's
``forward_features``, the live teacher's forward under ``torch.no_grad()`` (not the cache: at CIFAR
size the inputs are augmented), the phase's loss, backward, and the phase's optimiser (the task's SGD
with momentum and nesterov, or the phase's own, e.g. FitNets' AdamW hint phase) over the student and
the phase's modules. The *floor* is what every distillation step pays at least: a cross-entropy
student step plus the same teacher forward. A multi-phase recipe (FitNets) has one row per phase,
with the phase's share of the epochs; the phase with the larger share dominates training.

Protocol. After two warm-up steps of every configuration, the configurations take turns (their order
shuffled in every round): each turn is one *pair*, a floor step and a method step back to back, in a
random order (seeded), and gives one ratio method / floor. Pairing cancels the slow drifts of a
shared machine (another job starting, the CPU clock changing): both steps of a pair see the same
machine. A configuration keeps adding pairs until the 95% confidence interval of its median ratio
has a half-width of at most 0.03, or it has ``--max-pairs`` pairs, or the time budget runs out.
The interval is distribution-free: with n ratios sorted, [r_(k), r_(n+1-k)] for the largest k with
P(Binomial(n, 1/2) <= k - 1) <= 0.025; it covers the true median with probability at least 95%
(the exact coverage is in the JSON) whatever the distribution of the ratios. The interval is
checked after every pair, so the stopping is sequential; that lowers the true coverage somewhat,
which is why at least ``--min-pairs`` pairs are always taken.

How to read it. "median ratio 1.04 [1.02, 1.07]" means a method step costs 4% more than the floor,
and with 95% confidence between 2% and 7%. The target, a step within 10% of the floor, counts as met
only when the interval's UPPER bound is <= 1.10 ("met"); "not met" when its lower bound is above
1.10; "undecided" when the interval straddles 1.10 (more pairs would decide it). A half-width of
0.03 makes the interval 0.06 wide: narrow enough to tell a free method (about 1.00) from one at the
limit (1.10). A row that stopped on ``max_pairs`` or the time budget says so (``stopped_by``) and
carries the half-width it reached. Threads: ``--threads`` (default 1), recorded in the JSON; on a
shared 2-core machine two torch threads made the pair ratios scatter twice as much as one thread
(pilot, CRD against the floor, 8 pairs: sd 0.31 with 2 threads, 0.15 with 1).

CRD at ImageNet size: the same CRD recipe with M = 1,281,167 training samples (two memory banks of
M x 128 floats, 1.3 GB); the models stay at CIFAR size, since what grows with M is the bank. Its
ratio must be <= 1.10 too. Any configuration whose target is not met is profiled
(``torch.profiler``, a few steps; the ops with the most self time per step are in the JSON).

Part 2: one epoch on MNIST-1D
-----------------------------
``get_task("mnist1d")``'s teacher and student models (random weights; the cost does not depend on
them), Hinton KD (the recipe's loss and settings) through ``kdatlas.harness.train``, one epoch over
the 4,000 training sequences of the teacher's data (the students' 500 are an epoch of 8 steps, too
short to time): the student alone, the student with the live teacher, and with the cached teacher
(``TeacherCache``: outputs computed once, looked up by sample index). The three modes run in a
shuffled order in every rep; ratios to the student alone per rep, the median and its interval as
above. The task runs single-threaded, as the benchmark does (``get_task`` sets one torch thread).

Measured (results/overhead.json), 2 CPUs (``nproc``), "AMD EPYC" (/proc/cpuinfo), a VM shared with
other jobs (load average about 1 throughout), torch 2.14.1, 1 thread in Part 1, deterministic
algorithms on (as in every harness run), 2,243 s in all, run as
``flock /tmp/kdatlas-cpu.lock .venv/bin/python benchmarks/overhead.py --threads 1 --max-pairs 40
--min-pairs 12 --budget-s 2100``. Floor median 5.14 s (the student alone: 0.37 of it; the teacher's
forward is the rest)::

    configuration                  phase (share)  pairs  median  95% CI          half-width  target
    hinton2015distilling           kd (1.0)          12   0.991  [0.954, 1.011]  0.028       met
    park2019relational             rkd (1.0)         21   1.050  [1.000, 1.075]  0.038       met
    romero2014fitnets              hint (0.2)        17   0.963  [0.934, 0.992]  0.029       met
    romero2014fitnets              kd (0.8)          21   1.026  [0.974, 1.049]  0.038       met
    tian2019contrastive *          crd (1.0)         14   1.023  [0.939, 1.076]  0.068       met
    tian2019contrastive (M=1.28M)* crd (1.0)         15   1.024  [0.987, 1.056]  0.035       met
    zagoruyko2016paying            at (1.0)          21   1.018  [0.990, 1.080]  0.045       met
    zhao2022decoupled              dkd (1.0)         21   1.012  [0.971, 1.039]  0.034       met

Precision reached: the time budget stopped most rows at 21 pairs, before the 0.03 goal (half-widths
0.028-0.045 for the methods near the floor; pair ratios scattered with an interquartile range of
about 0.08). Every method is within 10% of the floor with 95% confidence (upper bounds <= 1.08).

(*) CRD, remeasured on 2026-12-03 with ``--methods tian2019contrastive --threads 1 --max-pairs 40
--min-pairs 12 --budget-s 840`` (merged into the file; its rows carry ``"run"``), after the recipe
turned on ``shared_negatives`` at CIFAR size, on another VM (AMD EPYC, family 25 model 1, AVX2; no
other job holding the lock), whose floor median was 10.1 s, not 5.1 s: ratios are per pair, so the
rows compare. The first run (per-anchor negatives, the authors' sampling) cost 2.36x [2.26, 2.50]
at M = 50,000 and 2.34x [2.29, 2.46] at M = 1.28M: each anchor's 16,385 candidate rows were
gathered into a (128, 16,385, 128) float tensor, 1.07 GB per side, two sides per step; writing it
(``aten::fill_`` under deterministic algorithms) and reading it (``aten::bmm``) was the cost, not
the bank's size. With one shared set of 16,384 rows per step the loss scores a (128, 128) @
(128, 16,384) product: 1.023 [0.939, 1.076] at M = 50,000 and 1.024 [0.987, 1.056] at M = 1.28M,
both within 10% of the floor (the time budget stopped them at 14-15 pairs, half-widths 0.068 and
0.035). An earlier remeasure the same day, with other jobs loading the machine, gave 1.024
[1.001, 1.049] and 1.046 [0.999, 1.124] (undecided), the file keeps the later one. Timed alone
(deterministic algorithms, one thread, B = 128, M = 1.28M), CRDLoss forward + backward takes about
0.14 s, 1-3% of the floor. Part 2, one epoch of 4,000 sequences: live teacher 2.58x the student
alone [2.21, 2.66], cached teacher 1.37x [1.23, 1.44].

    .venv/bin/python benchmarks/overhead.py                     # writes results/overhead.json
    .venv/bin/python benchmarks/overhead.py --quick --out /tmp/o.json   # a few pairs, minutes
    flock /tmp/kdatlas-cpu.lock .venv/bin/python benchmarks/overhead.py  # on a shared machine
    .venv/bin/python benchmarks/overhead.py --methods <id>      # one method, merged into the file

The docs' Benchmarks page shows results/overhead.json; rerun this script after adding or changing a
method (a test checks that the rows it has match the recipes' current settings).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from kdatlas import bench
from kdatlas.atomic import write_json
from kdatlas.harness import (Data, Outputs, Progress, Task, TeacherCache, build_model, get_task, model_outputs,
                             pool, seed_everything, train)
from kdatlas.harness.train import make_optimizer  # the optimiser train() builds, so steps match it
from kdatlas.recipes import all_recipes, make_context, phase_epochs

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.10            # a method step within 10% of the floor
HALF_WIDTH = 0.03        # stop adding pairs once the 95% CI of the median ratio is this narrow
IMAGENET_N = 1_281_167   # ImageNet-1k training images: CRD's memory banks at that size
CIFAR_N = 50_000
BASE = dict(lr=0.05, optimizer="sgd", weight_decay=5e-4, momentum=0.9)  # the cifar100 task's budget


# --------------------------------------------------------------------------- statistics
def median_ci(values: list[float], level: float = 0.95) -> dict:
    """Median of ``values`` and its distribution-free confidence interval from order statistics.

    [v_(k), v_(n+1-k)] (sorted, 1-indexed) with the largest k such that P(B <= k-1) <= (1-level)/2,
    B ~ Binomial(n, 1/2); its coverage is 1 - 2 P(B <= k-1) >= level. Below n = 6 no k reaches 95%:
    then k = 1 (min to max) and the coverage says how much less it is."""
    v = sorted(values)
    n = len(v)
    if n == 0:
        raise ValueError("no values")
    tail, k = 0.0, 0
    while k < n:
        p = math.comb(n, k) / 2 ** n
        if tail + p > (1 - level) / 2:
            break
        tail += p
        k += 1
    k = max(k, 1)
    tail = sum(math.comb(n, j) for j in range(k)) / 2 ** n
    low, high = v[k - 1], v[n - k]
    return {"median": statistics.median(v), "low": low, "high": high, "half_width": (high - low) / 2,
            "coverage": 1 - 2 * tail, "n": n}


def quartiles(values: list[float]) -> list[float]:
    v = sorted(values)
    if len(v) < 2:
        return [v[0]] * 5
    q = statistics.quantiles(v, n=4, method="inclusive")
    return [v[0], q[0], q[1], q[2], v[-1]]


def verdict(ci: dict, target: float = TARGET) -> str:
    if ci["high"] <= target:
        return "met"
    if ci["low"] > target:
        return "not met"
    return "undecided"


# --------------------------------------------------------------------------- the synthetic task
class RandomImages(Dataset):
    """``n`` seeded random images of ``shape`` with labels and indices; nothing is stored."""

    def __init__(self, n: int, shape: tuple, num_classes: int):
        self.n, self.shape, self.num_classes = n, tuple(shape), num_classes

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(int(i))
        return torch.randn(self.shape, generator=g), int(torch.randint(self.num_classes, (), generator=g)), i


def synthetic_task(n_data: int, student_name: str, teacher_name: str, num_classes: int, size: int,
                   batch: int) -> Task:
    """A stand-in for the cifar100 task: same models and budget, ``n_data`` random images."""
    shape = (3, size, size)
    data = Data(RandomImages(n_data, shape, num_classes), RandomImages(batch, shape, num_classes), num_classes,
                shape, "random-images", augmented=True)
    config = {"teacher": teacher_name, "student": student_name, "teacher_epochs": 240, "epochs": 240,
              "batch_size": batch, "lr": BASE["lr"], "optimizer": BASE["optimizer"],
              "weight_decay": BASE["weight_decay"]}
    return Task("cifar100", f"synthetic stand-in for CIFAR-100: {n_data} random {shape} images",
                data, data, lambda: build_model(teacher_name, num_classes=num_classes),
                lambda: build_model(student_name, num_classes=num_classes), config)


# --------------------------------------------------------------------------- one step
class Config:
    """One timed configuration: a student, its loss (None: cross-entropy), its optimiser, its batches."""

    def __init__(self, name: str, student, teacher, loss, params, optimizer: str, lr: float, n_data: int,
                 batches: list, steps_per_epoch: int, epochs: int, modules=(), **info):
        self.name, self.student, self.teacher, self.loss = name, student, teacher, loss
        self.modules = list(modules)
        params = [p for p in params if p.requires_grad]
        self.opt = make_optimizer(optimizer, params, lr, BASE["weight_decay"], BASE["momentum"])
        self.batches, self.n_data = batches, n_data
        self.order = torch.randperm(n_data, generator=torch.Generator().manual_seed(0))  # an epoch's indices
        self.cursor = 0
        self.steps_per_epoch, self.epochs, self.n_step = steps_per_epoch, epochs, 0
        self.info = info
        self.last_loss = float("nan")
        student.train()
        for m in self.modules:
            m.train()

    def _indices(self, b: int):
        if self.cursor + b > self.n_data:
            self.cursor = 0
        idx = self.order[self.cursor:self.cursor + b]
        self.cursor += b
        return idx

    def step(self) -> float:
        """One step as ``kdatlas.harness.train`` takes it; returns its wall seconds."""
        x, y = self.batches[self.n_step % len(self.batches)]
        idx = self._indices(len(y))
        progress = Progress(self.n_step, self.n_step // self.steps_per_epoch, self.steps_per_epoch, self.epochs)
        t0 = time.perf_counter()
        feats, logits = self.student.forward_features(x)
        s_out = Outputs(logits, feats, pool(feats[-1]), idx)
        t_out = None
        if self.teacher is not None:
            with torch.no_grad():
                t_out = model_outputs(self.teacher, x, idx)
        loss = {"ce": F.cross_entropy(logits, y)} if self.loss is None else self.loss(s_out, t_out, y, progress)
        terms = loss if isinstance(loss, dict) else {"loss": loss}
        total = sum(terms.values())
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        dt = time.perf_counter() - t0
        self.last_loss = float(total.detach())
        self.n_step += 1
        return dt


def _profile(cfg: Config, steps: int = 2, top: int = 8) -> dict:
    """Where a configuration's step spends its time: the ops with the most self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    cfg.step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        wall = sum(cfg.step() for _ in range(steps))
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    return {"steps": steps, "step_s": round(wall / steps, 4),
            "top_ops": [{"op": e.key, "self_s_per_step": round(e.self_cpu_time_total / 1e6 / steps, 4),
                         "calls_per_step": e.count / steps} for e in events[:top]]}


# --------------------------------------------------------------------------- part 1
def build_configs(batch: int = 128, size: int = 32, student_name: str = "resnet8x4",
                  teacher_name: str = "resnet32x4", num_classes: int = 100, n_data: int = CIFAR_N,
                  imagenet_n: int | None = IMAGENET_N, overrides: dict | None = None, seed: int = 1,
                  methods: list[str] | None = None):
    """(floor, [method configs], skipped {paper id: reason}, teacher); ``methods``: only these recipes."""
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(batch, 3, size, size, generator=gen), torch.randint(num_classes, (batch,), generator=gen))
               for _ in range(4)]
    seed_everything(0)
    teacher = build_model(teacher_name, num_classes=num_classes).eval().requires_grad_(False)
    tasks = {n: synthetic_task(n, student_name, teacher_name, num_classes, size, batch)
             for n in {n_data, imagenet_n} - {None}}

    def ctx_for(n):
        return make_context(tasks[n], teacher, seed)

    base = ctx_for(n_data)
    floor = Config("floor", base.student, teacher, None, base.student.parameters(), BASE["optimizer"], BASE["lr"],
                   n_data, batches, base.steps_per_epoch, base.epochs, kind="floor")
    alone_student = ctx_for(n_data).student
    configs = [Config("student alone", alone_student, None, None, alone_student.parameters(), BASE["optimizer"],
                      BASE["lr"], n_data, batches, base.steps_per_epoch, base.epochs, kind="reference")]
    skipped = {}
    overrides = overrides or {}
    for pid, recipe in all_recipes().items():
        if methods is not None and pid not in methods:
            continue
        if recipe.phases is None:
            skipped[pid] = recipe.skip if recipe.skip is not None else \
                "run= recipe (its own loop, not one student step with a loss); not measured here"
            continue
        if recipe.tasks is not None and "cifar100" not in recipe.tasks:
            skipped[pid] = (f"its recipe declares no cifar100 settings (tasks: {', '.join(recipe.tasks)}); "
                            "not measured at CIFAR size")
            continue
        settings = recipe.settings_for("cifar100", **overrides.get(pid, {}))
        sizes = [(n_data, "")]
        if pid == "tian2019contrastive" and imagenet_n is not None:
            sizes.append((imagenet_n, f" (M={imagenet_n:,})"))
        for n, suffix in sizes:
            ctx = ctx_for(n)
            phases = recipe.phases(ctx, settings)
            epochs = phase_epochs([p.share for p in phases], ctx.epochs)
            for ph, ep in zip(phases, epochs):
                name = pid + suffix + (f" [{ph.name}]" if len(phases) > 1 else "")
                params = ph.params if ph.params is not None else \
                    [*ctx.student.parameters(), *(p for m in ph.modules for p in m.parameters())]
                configs.append(Config(name, ctx.student, teacher, ph.loss, params, ph.optimizer or BASE["optimizer"],
                                      BASE["lr"] if ph.lr is None else ph.lr, n, batches, ctx.steps_per_epoch, ep,
                                      modules=ph.modules, kind="method", method=pid, phase=ph.name,
                                      phase_epochs=ep, epochs_share=round(ep / ctx.epochs, 3),
                                      bank_size=n, settings=settings))
    return floor, configs, skipped, teacher


def measure_steps(batch: int = 128, size: int = 32, student_name: str = "resnet8x4",
                  teacher_name: str = "resnet32x4", num_classes: int = 100, n_data: int = CIFAR_N,
                  imagenet_n: int | None = IMAGENET_N, overrides: dict | None = None, warmup: int = 2,
                  min_pairs: int = 12, max_pairs: int = 40, half_width: float = HALF_WIDTH,
                  reference_pairs: int = 12, budget_s: float | None = None, seed: int = 0,
                  profile: bool = True, methods: list[str] | None = None, log=print) -> dict:
    """Part 1 (see the module docstring): interleaved floor/method pairs until each CI is narrow."""
    t_start = time.perf_counter()
    floor, configs, skipped, _ = build_configs(batch, size, student_name, teacher_name, num_classes, n_data,
                                               imagenet_n, overrides, methods=methods)
    log(f"  {len(configs)} configurations, {len(skipped)} skipped; warm-up")
    for c in [floor, *configs]:
        for _ in range(warmup):
            c.step()
    rng = random.Random(seed)
    pairs = {c.name: [] for c in configs}  # (floor s, method s, floor first)
    cap = {c.name: (min(reference_pairs, max_pairs) if c.info["kind"] == "reference" else max_pairs) for c in configs}
    stop = {}
    active = list(configs)
    rnd = 0
    while active:
        rnd += 1
        rng.shuffle(active)
        for c in list(active):
            first_floor = rng.random() < 0.5
            if first_floor:
                tf, tm = floor.step(), c.step()
            else:
                tm, tf = c.step(), floor.step()
            pairs[c.name].append((tf, tm, first_floor))
            n = len(pairs[c.name])
            ci = median_ci([m / f for f, m, _ in pairs[c.name]])
            over = budget_s is not None and time.perf_counter() - t_start > budget_s
            why = ("precision" if n >= min_pairs and ci["half_width"] <= half_width else
                   "max_pairs" if n >= cap[c.name] else "time_budget" if over and n >= min(min_pairs, cap[c.name])
                   else None)
            if why:
                stop[c.name] = why
                active.remove(c)
        log(f"  round {rnd}: {len(active)} configurations still adding pairs "
            f"({time.perf_counter() - t_start:.0f} s)")

    rows = []
    for c in configs:
        ps = pairs[c.name]
        ratios = [m / f for f, m, _ in ps]
        ci = median_ci(ratios)
        row = {"name": c.name, **{k: v for k, v in c.info.items() if k != "settings"},
               "pairs": len(ps), "stopped_by": stop[c.name],
               "floor_median_s": round(statistics.median(f for f, _, _ in ps), 4),
               "step_median_s": round(statistics.median(m for _, m, _ in ps), 4),
               "median_ratio": round(ci["median"], 4), "ci_low": round(ci["low"], 4), "ci_high": round(ci["high"], 4),
               "ci_half_width": round(ci["half_width"], 4), "ci_coverage": round(ci["coverage"], 4),
               "ratio_quartiles": [round(q, 4) for q in quartiles(ratios)],
               "floor_first_share": round(sum(ff for _, _, ff in ps) / len(ps), 3),
               "last_loss_finite": math.isfinite(c.last_loss)}
        if c.info["kind"] == "method":
            row["target_met"] = ci["high"] <= TARGET
            row["verdict"] = verdict(ci)
            row["settings"] = c.info["settings"]
            if profile and not row["target_met"]:
                log(f"  profiling {c.name} (target not met)")
                row["profile"] = _profile(c)
        rows.append(row)
    floor_all = [f for ps in pairs.values() for f, _, _ in ps]
    return {"setup": {"batch": batch, "input": [3, size, size], "num_classes": num_classes, "n_data": n_data,
                      "imagenet_n_data": imagenet_n, "student": student_name, "teacher": teacher_name,
                      "device": "cpu", "torch_threads": torch.get_num_threads(), "warmup_steps": warmup,
                      "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                      "min_pairs": min_pairs, "max_pairs": max_pairs, "reference_pairs": reference_pairs,
                      "half_width_goal": half_width, "time_budget_s": budget_s, "order_seed": seed,
                      "optimizer": "the phase's: the task's SGD (lr 0.05, momentum 0.9, nesterov, weight decay "
                                   "5e-4) unless the phase names its own (FitNets hint: AdamW, lr 1e-3)",
                      "inputs": "4 seeded random batches, cycled; sample indices walk a seeded permutation of n_data"},
            "protocol": "pairs of (floor step, method step) back to back in a seeded random order; ratio = method / "
                        "floor per pair; configurations take turns in a shuffled order every round",
            "floor": "student step (forward_features, cross-entropy, backward, optimiser step) + the teacher's "
                     "forward under torch.no_grad()",
            "precision": f"95% distribution-free CI of the median per-pair ratio (order statistics, Binomial(n, 1/2)); "
                         f"pairs are added until its half-width is <= {half_width} or max_pairs; stopping is "
                         f"checked after every pair (sequential), so the true coverage is somewhat below the "
                         f"nominal one given per row",
            "target": f"step <= {TARGET} x floor, judged by the CI's upper bound: 'met' if ci_high <= {TARGET}, "
                      f"'not met' if ci_low > {TARGET}, else 'undecided'",
            "floor_median_s": round(statistics.median(floor_all), 4),
            "rows": rows, "skipped": skipped, "wall_s": round(time.perf_counter() - t_start, 1)}


# --------------------------------------------------------------------------- part 2
def measure_epochs(reps: int = 9, n_train: int | None = None, seed: int = 0, log=print) -> dict:
    """Part 2: one epoch, student alone / live teacher / cached teacher, on the mnist1d task's models."""
    task = get_task("mnist1d")  # sets one torch thread, as the benchmark runs
    recipe = all_recipes()["hinton2015distilling"]
    data = task.teacher_data
    if n_train is not None:
        from torch.utils.data import TensorDataset
        x, y, _ = data.train.tensors
        data = Data(TensorDataset(x[:n_train], y[:n_train], torch.arange(n_train)), data.test, data.num_classes,
                    data.input_shape, data.name)
    seed_everything(0)
    teacher = task.make_teacher().eval().requires_grad_(False)
    ctx = make_context(task, teacher, seed=1)
    (phase,) = recipe.phases(ctx, recipe.settings_for("mnist1d"))

    def epoch(teacher_in) -> float:
        student = task.new_student(1)
        h = train(student, data.loaders(task.batch_size, seed=0)[0], epochs=1, lr=task.lr, optimizer=task.optimizer,
                  weight_decay=task.weight_decay, loss_fn=None if teacher_in is None else phase.loss,
                  teacher=teacher_in, device="cpu", progress=False)
        return h.wall_s

    modes = ["student alone", "live teacher", "cached teacher"]
    rng = random.Random(seed)
    times = {m: [] for m in modes}
    builds = []
    for rep in range(reps + 1):  # rep 0 warms up
        t0 = time.perf_counter()
        cache = TeacherCache.build(teacher, data.train, device="cpu")
        build = time.perf_counter() - t0
        order = modes[:]
        rng.shuffle(order)
        got = {m: epoch({"student alone": None, "live teacher": teacher, "cached teacher": cache}[m]) for m in order}
        if rep:
            builds.append(build)
            for m in modes:
                times[m].append(got[m])
    ratios = {}
    for m in modes:
        ci = median_ci([a / b for a, b in zip(times[m], times["student alone"])])
        ratios[m] = {"median": round(ci["median"], 3), "ci_low": round(ci["low"], 3), "ci_high": round(ci["high"], 3),
                     "coverage": round(ci["coverage"], 3)}
    log(f"  {reps} reps done")
    return {"setup": {"task": "mnist1d", "data": f"the task's teacher_data.train ({len(data.train)} sequences)",
                      "batch": task.batch_size, "teacher": task.config["teacher"], "student": task.config["student"],
                      "loss": "hinton2015distilling (recipe loss, mnist1d settings)", "reps": reps,
                      "warmup_reps": 1, "torch_threads": torch.get_num_threads()},
            "epoch_median_s": {m: round(statistics.median(ts), 4) for m, ts in times.items()},
            "ratio_to_student_alone": ratios,
            "precision": "per-rep ratios to the student alone (modes in a shuffled order every rep); median and its "
                         "distribution-free CI (coverage per entry)",
            "cache_build_median_s": round(statistics.median(builds), 4)}


# --------------------------------------------------------------------------- output
def _table(steps: dict, epochs: dict) -> str:
    s = steps["setup"]
    lines = [f"One training step: batch {s['batch']}, {s['student']} student, {s['teacher']} teacher, "
             f"{s['torch_threads']} CPU threads; floor median {steps['floor_median_s']:.3f} s", "",
             "| configuration | phase (epochs share) | pairs | floor median s | step median s | median ratio | "
             "95% CI | half-width | target <= 1.10 (CI upper) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in steps["rows"]:
        phase = f"{r['phase']} ({r['epochs_share']})" if r.get("phase") else ""
        target = r.get("verdict", "(reference)")
        lines.append(f"| {r['name']} | {phase} | {r['pairs']} | {r['floor_median_s']:.3f} | {r['step_median_s']:.3f} | "
                     f"{r['median_ratio']:.3f} | [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {r['ci_half_width']:.3f} | "
                     f"{target} |")
    for pid, why in steps["skipped"].items():
        lines.append(f"| {pid} | skipped: {why} | | | | | | | |")
    lines += ["", f"Precision: {steps['precision']}.", f"Target: {steps['target']}."]
    for r in steps["rows"]:
        if "profile" in r:
            ops = ", ".join(f"{o['op']} {o['self_s_per_step']:.3f} s" for o in r["profile"]["top_ops"][:5])
            lines.append(f"Profile of {r['name']} (step {r['profile']['step_s']:.3f} s): {ops}")
    e = epochs["setup"]
    lines += ["", f"One epoch on MNIST-1D ({e['data']}, batch {e['batch']}, {e['torch_threads']} thread)", "",
              "| mode | median s | x student alone | 95% CI |", "|---|---|---|---|"]
    for m, v in epochs["epoch_median_s"].items():
        r = epochs["ratio_to_student_alone"][m]
        lines.append(f"| {m} | {v:.3f} | {r['median']:.3f} | [{r['ci_low']:.3f}, {r['ci_high']:.3f}] |")
    lines.append(f"| (building the cache, once) | {epochs['cache_build_median_s']:.3f} | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "overhead.json")
    ap.add_argument("--max-pairs", type=int, default=40, help="most pairs per configuration (default 40)")
    ap.add_argument("--min-pairs", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads in Part 1 (default 1: on a shared 2-core machine two threads made the "
                         "pair ratios scatter twice as much)")
    ap.add_argument("--budget-s", type=float, default=None, help="stop adding pairs after this many seconds")
    ap.add_argument("--epoch-reps", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 6 pairs each, no ImageNet-size CRD")
    ap.add_argument("--methods", nargs="+", help="measure only these recipes (with the floor and the student-alone "
                                                 "reference) and merge their rows into --out; Part 2 is kept")
    args = ap.parse_args(argv)
    if args.methods:
        return _merge_methods(args)
    if args.quick:
        args.max_pairs, args.min_pairs, args.epoch_reps = 6, 6, 3
    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    print(f"part 1: CIFAR-size steps ({args.threads} threads)")
    steps = measure_steps(max_pairs=args.max_pairs, min_pairs=args.min_pairs, budget_s=args.budget_s,
                          reference_pairs=min(12, args.max_pairs), imagenet_n=None if args.quick else IMAGENET_N)
    print("part 2: MNIST-1D epochs")
    epochs = measure_epochs(reps=args.epoch_reps)
    result = {"step": steps, "epoch": epochs,
              "environment": _environment(load0, args.quick),
              "total_s": round(time.perf_counter() - t0, 1)}
    write_json(args.out, result)
    print(_table(steps, epochs))
    print(f"wrote {args.out} in {result['total_s']} s")
    return 0


def _environment(load0, quick: bool) -> dict:
    return {"torch": torch.__version__, "python": platform.python_version(), "cpu": bench._cpu_model(),
            "nproc": len(os.sched_getaffinity(0)), "device": "cpu", "load_average_start": [round(x, 2) for x in load0],
            "load_average_end": [round(x, 2) for x in os.getloadavg()], "quick": quick}


def merge_steps(old: dict, new: dict, methods: list[str], run_info: dict) -> dict:
    """``old``'s Part 1 with the rows and skips of ``methods`` replaced by ``new``'s (tagged with the run's
    date); the run is appended to ``merged_runs``. Returns a new dict; ``old`` is not modified."""
    rows = [dict(r, run=run_info["date"]) for r in new["rows"] if r["kind"] == "method"]
    out = dict(old, rows=[r for r in old["rows"] if r.get("method") not in methods] + rows,
               skipped={k: v for k, v in old["skipped"].items() if k not in methods} | new["skipped"])
    out["merged_runs"] = [*old.get("merged_runs", []), run_info]
    return out


def _merge_methods(args) -> int:
    """Part 1 for ``args.methods`` only; their rows replace the old ones in ``args.out``, every other row
    (and Part 2) stays. Each row keeps its own floor and pairs, so rows of different runs compare: the
    ratio is per pair. The run is recorded under ``step.merged_runs``."""
    unknown = sorted(set(args.methods) - set(all_recipes()))
    if unknown:
        raise SystemExit(f"no recipe for {', '.join(unknown)}")
    if not args.out.exists():
        raise SystemExit(f"{args.out} does not exist: run the whole benchmark once first")
    old = json.loads(args.out.read_text(encoding="utf-8"))
    torch.set_num_threads(args.threads)
    load0, t0 = os.getloadavg(), time.perf_counter()
    imagenet = None if args.quick else IMAGENET_N
    new = measure_steps(max_pairs=args.max_pairs, min_pairs=args.min_pairs, budget_s=args.budget_s,
                        reference_pairs=min(12, args.max_pairs), imagenet_n=imagenet, methods=args.methods)
    run_info = {"methods": sorted(args.methods), "date": time.strftime("%Y-%m-%d"), "wall_s": new["wall_s"],
                "floor_median_s": new["floor_median_s"], "environment": _environment(load0, args.quick),
                "student_alone": next(r for r in new["rows"] if r["kind"] == "reference")}
    steps = old["step"] = merge_steps(old["step"], new, args.methods, run_info)
    old["total_s"] = round(old.get("total_s", 0) + time.perf_counter() - t0, 1)
    write_json(args.out, old)
    print(_table(steps, old["epoch"]))
    print(f"merged {', '.join(args.methods)} into {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
