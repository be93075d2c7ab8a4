r"""``kdatlas bench``: every implemented method on one small embedded task, same budget, several seeds.

What it does
------------
For each seed it trains the teacher, the student alone (``baseline``) and the student with each
implemented method, then writes ``results/benchmark.json``::

    {"task": ..., "config": ..., "protocol": ..., "environment": ...,
     "teacher":  {"mean", "std", "values", "wall_s", "wall_s_values"},
     "baseline": {...same...},
     "methods":  {paper_id: {...same..., "delta_vs_baseline", "settings"}},
     "skipped":  {paper_id: why}, "checks": {...}}

``values`` are per-seed test accuracies in percent (the model after the last epoch: no selection
on the test set), ``std`` is the sample standard deviation (n - 1), ``wall_s`` the mean training
time of one seed in seconds (on a 1-thread process; ``--jobs 2`` trains two seeds at once). Every seed
uses the same data; the seed sets the initial weights and the batch order. At a given seed the
baseline and every method start from the same student weights and see the same batches. CPU runs
are bit-reproducible for a given thread count (``cpu_threads`` in the config; the default 1 also
avoids two OpenMP threads spinning against each other on a shared 2-core machine, which was
measured to make small convolutions 10-50x slower).

Resumable: every finished (run, seed) is recorded at once in ``results/runs/bench/<config hash>/``
(a small JSON per run, the teacher as a ``weights_only`` state dict), each written to a temporary
file and moved into place with ``os.replace``. Kill the command and run it again: finished runs are
read back, not retrained. ``benchmark.json`` itself is written (atomically) only when all runs are done.
Changing anything that affects a run (data, models, budget, method settings) changes the hash.

Why the default task looks like this
------------------------------------
The benchmark must make distillation visible (teacher >= 10 points above the student alone, Hinton KD
more than two standard deviations above it) on two CPU cores in a few minutes. MNIST-1D (Greydanus,
2020) is generated offline and small 1-D CNNs learn it in seconds. What was tried (seeds in brackets):

- Teacher and student on all 4,000 training sequences: teacher ~98.8, student (8/16/32) ~94.6, KD
  +2.0 [3]. KD is visible but the gap is 4 points. A smaller student (4/8/16) opens the gap, but its
  seeds scatter (std up to 3) and the KD gain disappears [2].
- Teacher and students on the same 500 sequences (a label budget for everyone): teacher 95.6,
  student 85.4 +- 1.3, KD 88.8 +- 0.8 [5, 100 epochs]; 400 sequences: 94.1 / 83.5 / 87.7 [5]. KD
  passes, but the gap sits at 10-10.6 and the student's seed-to-seed spread (1.3-2.5 points; not
  test-set noise: it stays with a 5,000-sequence test set) makes either check flip on a bad draw.
  A deeper or wider teacher on 500 sequences tops out at ~96%.
- Chosen: the teacher learns from all 4,000 labelled training sequences, the students (alone or
  distilled) from the first 500 of them (50 per class), evaluated on the 1,000 test sequences. This
  is the setting distillation is for: a teacher trained with more data than the student can use,
  whose soft targets on the student's own 500 inputs carry what the missing labels would have
  said. No method sees extra inputs; only the teacher's outputs on the 500 differ from labels.
  First run of ``kdatlas bench`` [5]: teacher 98.74 +- 0.23, student alone 85.42 +- 1.28, Hinton KD
  92.34 +- 0.70 (gap 13.3 points; KD gain 6.9 against two std 2.6); 3.5 minutes with ``--jobs 2``.
  results/benchmark.json holds the current numbers; this text only explains the design.

Models: teacher ``mnist1d_teacher`` (widths 32/64/128, two convs per stage, 97 k parameters, 10
epochs), student ``mnist1d_student`` (8/16/32, one conv per stage, 2.4 k parameters, 100 epochs);
both have stage lengths 40/20/10 so feature methods pair stages one to one. SGD (nesterov, momentum
0.9, lr 0.05, cosine, weight decay 5e-4), batch 64. The teacher's outputs are cached once per seed
(the data is not augmented), so a distillation epoch costs about a student epoch. Method settings
are the published defaults (see ``DEFAULT_CONFIG["settings"]``), except the two loss weights that are
tied to the feature scales of the papers' own tasks: AT's ``at_weight`` and RKD's distance/angle
weights were chosen by ``benchmarks/select_weights.py`` on held-out training sequences 3000-3999
(never the test set; results/weight_selection.json). AT's published 500 (beta = 1e3) swamps the
cross-entropy on these 40/20/10-position 1-D maps (58% held-out against 84% for the student alone);
the best candidate, 1, leaves the student where it was: attention transfer gives nothing on this
task. RKD's published 25/50 came out best and are kept.

Methods and their inputs (this mapping lives here, never in ``implementations/``):
- hinton2015distilling: logits;  ce_weight * CE + kd_weight * kd_loss(z_s, z_t, T).
- romero2014fitnets: stage 1 (a fraction of the epochs): hint loss between the student's middle stage
  (through the file's ConvRegressor + ReLU) and the teacher's middle stage, optimising only the
  student's lower stages and the regressor; stage 2: fitnets_kd_loss on the logits.
- zagoruyko2016paying: CE + at_weight * sum over the 3 stage pairs of at_loss (same lengths).
- park2019relational: CE + distance_weight * rkd_distance_loss + angle_weight * rkd_angle_loss on the
  pooled penultimate embeddings.
- tian2019contrastive: CE + crd_weight * CRD (embedding heads + memory bank; needs sample indices).
- zhao2022decoupled: CE + warm-up * dkd_loss(z_s, z_t, y, ...), warm-up over a fraction of the epochs.
A method whose implementation file does not exist yet is skipped with a message.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import importlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from .harness import (Data, TeacherCache, build_model, evaluate, load_checkpoint, load_mnist1d,
                      save_checkpoint, seed_everything, train)

__all__ = ["DEFAULT_CONFIG", "TINY_CONFIG", "ADAPTERS", "Setup", "Stage", "probe", "run_bench", "add_parser",
           "config_hash", "load_task"]

METHOD_IDS = ["hinton2015distilling", "romero2014fitnets", "zagoruyko2016paying",
              "park2019relational", "tian2019contrastive", "zhao2022decoupled"]

DEFAULT_CONFIG: dict = {
    "task": "mnist1d",
    # teacher_n_train None: the teacher learns from every generated training sequence (4,000);
    # the students from the first n_train of them (the label budget).
    "data": {"num_samples": 5000, "train_split": 0.8, "teacher_n_train": None, "n_train": 500, "data_seed": 0},
    "teacher": "mnist1d_teacher",
    "student": "mnist1d_student",
    "seeds": [0, 1, 2, 3, 4],
    "teacher_epochs": 10,
    "epochs": 100,
    "batch_size": 64,
    "optimizer": "sgd",
    "lr": 0.05,
    "weight_decay": 5e-4,
    "cache_teacher": True,
    "cpu_threads": 1,
    "methods": METHOD_IDS,
    "settings": {
        "hinton2015distilling": {"temperature": 4.0, "ce_weight": 0.1, "kd_weight": 0.9},
        "romero2014fitnets": {"guided_stage": 1, "hint_stage": 1, "hint_weight": 1.0,
                              "hint_epochs_fraction": 0.2, "hint_optimizer": "adamw", "hint_lr": 1e-3,
                              "kd_weight": 4.0, "temperature": 3.0},
        "zagoruyko2016paying": {"stages": [0, 1, 2], "at_weight": 1.0, "p": 2.0},
        "park2019relational": {"distance_weight": 25.0, "angle_weight": 50.0},
        "tian2019contrastive": {"crd_weight": 0.8, "feat_dim": 128, "num_negatives": 256,
                                "nce_temperature": 0.07, "momentum": 0.5},
        "zhao2022decoupled": {"tckd_weight": 1.0, "nckd_weight": 8.0, "temperature": 4.0,
                              "warmup_fraction": 20 / 240},
    },
}

# For tests: seconds, not minutes. The numbers it produces mean nothing.
TINY_CONFIG: dict = copy.deepcopy(DEFAULT_CONFIG) | {
    "data": {"num_samples": 600, "train_split": 0.8, "teacher_n_train": None, "n_train": 96, "data_seed": 0},
    "seeds": [0, 1], "teacher_epochs": 1, "epochs": 2, "batch_size": 32,
}
TINY_CONFIG["settings"]["tian2019contrastive"] = dict(TINY_CONFIG["settings"]["tian2019contrastive"], num_negatives=16,
                                                      feat_dim=8)


def config_hash(config: dict) -> str:
    """Hash of everything that changes the result of one run (not the list of seeds or methods)."""
    key = {k: v for k, v in config.items() if k not in ("seeds", "methods")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- atomic files
def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# --------------------------------------------------------------------------- adapters
class Setup(NamedTuple):
    """What an adapter may know about a run: probe features (for sizing regressors and heads) and
    the training geometry."""

    student_features: list      # the student's features on two inputs (shapes matter, not values)
    teacher_features: list      # the teacher's, same inputs
    n_data: int                 # training set size (CRD's memory bank)
    steps_per_epoch: int
    epochs: int                 # the shared student budget


@dataclass
class Stage:
    """One call of ``train``: a loss, its share of the epochs and optional overrides."""

    name: str
    loss_fn: Callable
    epochs: int
    params: list | None = None             # None: the student's + the extra modules'
    extra_modules: tuple = ()
    optimizer: str | None = None           # None: the benchmark's optimizer and learning rate
    lr: float | None = None


@torch.no_grad()
def probe(model: nn.Module, x: torch.Tensor) -> list:
    """``model.forward_features(x)[0]`` in eval mode (BN statistics untouched), mode restored."""
    was = model.training
    feats, _ = model.eval().forward_features(x)
    model.train(was)
    return feats


def _ce(s, y):
    return F.cross_entropy(s.logits, y)


def _hinton(m, setup: Setup, student: nn.Module, s: dict) -> list[Stage]:
    def loss(so, to, y):
        return {"ce": s["ce_weight"] * _ce(so, y),
                "kd": s["kd_weight"] * m.kd_loss(so.logits, to.logits, s["temperature"])}
    return [Stage("kd", loss, setup.epochs)]


def _fitnets(m, setup: Setup, student: nn.Module, s: dict) -> list[Stage]:
    g, h = s["guided_stage"], s["hint_stage"]
    sf, tf = setup.student_features[g], setup.teacher_features[h]
    reg = m.ConvRegressor(sf.shape[1], tf.shape[1], tuple(sf.shape[2:]), tuple(tf.shape[2:]),
                          nonlinearity=nn.ReLU())  # the hint is a post-ReLU map

    def hint(so, to, y):
        return {"hint": s["hint_weight"] * m.hint_loss(reg(so.features[g]), to.features[h])}

    def kd(so, to, y):
        return {"kd": m.fitnets_kd_loss(so.logits, to.logits, y, s["kd_weight"], s["temperature"])}

    e1 = max(1, round(setup.epochs * s["hint_epochs_fraction"]))
    lower = [p for stage in student.stages[: g + 1] for p in stage.parameters()] + list(reg.parameters())
    # The hint loss is a sum over channels x positions (hundreds here): plain SGD at the shared learning
    # rate kills the regressor's ReLUs in one step. The paper trained with RMSProp, which does not see
    # the loss scale; AdamW is its closest relative in the harness.
    return [Stage("hint", hint, e1, params=lower, extra_modules=(reg,), optimizer=s["hint_optimizer"],
                  lr=s["hint_lr"]),
            Stage("kd", kd, max(1, setup.epochs - e1))]


def _at(m, setup: Setup, student: nn.Module, s: dict) -> list[Stage]:
    def loss(so, to, y):
        at = sum(m.at_loss(so.features[i], to.features[i], s["p"]) for i in s["stages"])
        return {"ce": _ce(so, y), "at": s["at_weight"] * at}
    return [Stage("at", loss, setup.epochs)]


def _rkd(m, setup: Setup, student: nn.Module, s: dict) -> list[Stage]:
    def loss(so, to, y):
        return {"ce": _ce(so, y),
                "distance": s["distance_weight"] * m.rkd_distance_loss(so.embedding, to.embedding),
                "angle": s["angle_weight"] * m.rkd_angle_loss(so.embedding, to.embedding)}
    return [Stage("rkd", loss, setup.epochs)]


def _crd(m, setup: Setup, student: nn.Module, s: dict) -> list[Stage]:
    s_dim, t_dim = setup.student_features[-1].shape[1], setup.teacher_features[-1].shape[1]
    crd = m.CRDLoss(s_dim, t_dim, setup.n_data, feat_dim=s["feat_dim"], num_negatives=s["num_negatives"],
                    nce_temperature=s["nce_temperature"], momentum=s["momentum"])

    def loss(so, to, y):
        return {"ce": _ce(so, y), "crd": s["crd_weight"] * crd(so.embedding, to.embedding, so.index)}
    return [Stage("crd", loss, setup.epochs, extra_modules=(crd,))]


def _dkd(m, setup: Setup, student: nn.Module, s: dict) -> list[Stage]:
    warm_steps = max(s["warmup_fraction"] * setup.epochs * setup.steps_per_epoch, 1e-9)
    step = [0]

    def loss(so, to, y):
        warm = min(step[0] / warm_steps, 1.0)  # the authors' linear warm-up of the DKD term
        step[0] += 1
        return {"ce": _ce(so, y),
                "dkd": warm * m.dkd_loss(so.logits, to.logits, y, s["tckd_weight"], s["nckd_weight"],
                                         s["temperature"])}
    return [Stage("dkd", loss, setup.epochs)]


Adapter = Callable[[object, Setup, nn.Module, dict], "list[Stage]"]
ADAPTERS: dict[str, Adapter] = {
    "hinton2015distilling": _hinton,
    "romero2014fitnets": _fitnets,
    "zagoruyko2016paying": _at,
    "park2019relational": _rkd,
    "tian2019contrastive": _crd,
    "zhao2022decoupled": _dkd,
}



def _import_method(paper_id: str):
    """The implementation module, or a string saying why it cannot be used."""
    if paper_id not in ADAPTERS:
        return f"no adapter in kdatlas.bench for {paper_id}"
    try:
        return importlib.import_module(f"kdatlas.implementations.{paper_id}")
    except ModuleNotFoundError as e:
        if e.name and e.name.endswith(paper_id):
            return f"implementations/{paper_id}.py does not exist yet"
        raise


# --------------------------------------------------------------------------- the benchmark
def load_task(config: dict) -> tuple[Data, Data]:
    """``(teacher_data, student_data)``: the same test set; the students' training sequences are the
    first ``n_train`` of the teacher's."""
    if config["task"] != "mnist1d":
        raise ValueError(f"unknown task {config['task']!r} (only 'mnist1d' is defined)")
    d = config["data"]
    kw = dict(seed=d["data_seed"], num_samples=d["num_samples"], train_split=d["train_split"])
    teacher_data = load_mnist1d(n_train=d.get("teacher_n_train"), **kw)
    student_data = load_mnist1d(n_train=d["n_train"], **kw)
    if d.get("holdout"):
        # Model selection (benchmarks/select_weights.py): score on training sequences [lo, hi) that no
        # student ever sees, never on the test set.
        lo, hi = d["holdout"]
        full = load_mnist1d(**kw).train
        if not d["n_train"] <= lo < hi <= len(full):
            raise ValueError(f"data.holdout {d['holdout']} must lie within [{d['n_train']}, {len(full)}]")
        x, y, _ = full.tensors
        held = TensorDataset(x[lo:hi], y[lo:hi], torch.arange(hi - lo))
        teacher_data = dataclasses.replace(teacher_data, test=held)
        student_data = dataclasses.replace(student_data, test=held)
    return teacher_data, student_data


def _summary(records: list[dict]) -> dict:
    vals = [r["acc"] for r in records]
    walls = [r["wall_s"] for r in records]
    return {"mean": round(statistics.fmean(vals), 3),
            "std": round(statistics.stdev(vals), 3) if len(vals) > 1 else 0.0,
            "values": [round(v, 3) for v in vals],
            "wall_s": round(statistics.fmean(walls), 3), "wall_s_values": [round(w, 3) for w in walls]}


def run_bench(config: dict | None = None, out: str | Path = "results/benchmark.json",
              runs_dir: str | Path = "results/runs/bench", device: str | None = "cpu", jobs: int = 1,
              progress: bool = True, on_run_done: Callable[[str, int, dict], None] | None = None,
              log: Callable[[str], None] = print) -> dict:
    """Run (or resume) the benchmark; returns the summary that was written to ``out``.

    ``jobs`` > 1 runs that many seeds at once, one process each (spawned, ``cpu_threads`` threads
    each); the numbers do not depend on it. ``on_run_done(name, seed, record)`` is called after each
    newly finished run when ``jobs == 1`` (the tests use it to interrupt the benchmark); ``name`` is
    "teacher", "baseline" or a paper id.
    """
    config = copy.deepcopy(DEFAULT_CONFIG if config is None else config)
    if device is None:
        from .harness import default_device
        device = str(default_device())
    run_root = Path(runs_dir) / config_hash(config)
    run_root.mkdir(parents=True, exist_ok=True)
    _write_json(run_root / "config.json", config)

    methods, skipped = [], {}
    for pid in config["methods"]:
        mod = _import_method(pid)
        if isinstance(mod, str):
            skipped[pid] = mod
            log(f"skip {pid}: {mod}")
        else:
            methods.append(pid)

    seeds = list(config["seeds"])
    if jobs > 1 and len(seeds) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(jobs, len(seeds)), mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_run_seed, config, s, methods, str(run_root), device, False, None, print)
                       for s in seeds]
            fresh = sum(f.result() for f in futures)
    else:
        fresh = sum(_run_seed(config, s, methods, run_root, device, progress, on_run_done, log) for s in seeds)

    records = {name: [json.loads((run_root / f"{name}-seed{s}.json").read_text()) for s in seeds]
               for name in ["teacher", "baseline", *methods]}
    log(f"{fresh} new run(s), {sum(map(len, records.values())) - fresh} reused")
    summary = _assemble(config, records, methods, skipped, device)
    _write_json(Path(out), summary)
    log(f"wrote {out}")
    return summary


def _run_seed(config: dict, seed: int, methods: list[str], run_root, device: str, progress: bool,
              on_run_done, log) -> int:
    """Every missing run of one seed; returns how many were trained. Each run is recorded at once."""
    run_root, device = Path(run_root), torch.device(device)
    threads = torch.get_num_threads()
    if device.type == "cpu" and config.get("cpu_threads"):
        torch.set_num_threads(config["cpu_threads"])  # restored on the way out
    try:
        return _train_seed(config, seed, methods, run_root, device, progress, on_run_done, log)
    finally:
        torch.set_num_threads(threads)


def _train_seed(config, seed, methods, run_root, device, progress, on_run_done, log) -> int:
    fresh = 0

    def done(name: str) -> bool:
        return (run_root / f"{name}-seed{seed}.json").exists()

    def finish(name: str, acc: float, wall: float) -> None:
        nonlocal fresh
        rec = {"name": name, "seed": seed, "acc": acc, "wall_s": wall}
        _write_json(run_root / f"{name}-seed{seed}.json", rec)
        fresh += 1
        log(f"{name:>22s}  seed {seed}  {acc:6.2f}%  {wall:6.1f}s")
        if on_run_done is not None:
            on_run_done(name, seed, rec)

    def train_loader():  # a fresh loader per call: every stage sees the seed's batch order
        return data.loaders(config["batch_size"], seed=seed)[0]

    todo = [name for name in ["baseline", *methods] if not done(name)]
    ckpt = run_root / f"teacher-seed{seed}.pt"
    if done("teacher") and ckpt.exists() and not todo:
        return fresh
    teacher_data, data = load_task(config)
    _, test_loader = data.loaders(config["batch_size"], seed=seed)
    if done("teacher") and ckpt.exists():
        teacher = load_checkpoint(build_model(config["teacher"], num_classes=data.num_classes), ckpt)
    else:
        seed_everything(seed)
        teacher = build_model(config["teacher"], num_classes=data.num_classes)
        t0 = time.perf_counter()
        train(teacher, teacher_data.loaders(config["batch_size"], seed=seed)[0], epochs=config["teacher_epochs"],
              lr=config["lr"],
              optimizer=config["optimizer"], weight_decay=config["weight_decay"], device=device,
              progress=progress, desc=f"teacher s{seed}")
        wall = time.perf_counter() - t0
        save_checkpoint(teacher, ckpt)  # before the record: a record always has its checkpoint
        finish("teacher", evaluate(teacher, test_loader, device), wall)
    teacher.to(device).eval()

    teacher_for_training = None
    for name in todo:
        seed_everything(seed)
        student = build_model(config["student"], num_classes=data.num_classes)
        t0 = time.perf_counter()
        if name == "baseline":
            stages = [Stage("ce", None, config["epochs"])]
        else:
            if teacher_for_training is None:  # built once per seed, timed with the first method
                teacher_for_training = (TeacherCache.build(teacher, data.train, device=device)
                                        if config["cache_teacher"] else teacher)
            x = torch.stack([data.train[i][0] for i in range(2)]).to(device)
            setup = Setup(probe(student.to(device), x), probe(teacher, x), len(data.train),
                          len(train_loader()), config["epochs"])
            mod = importlib.import_module(f"kdatlas.implementations.{name}")
            stages = ADAPTERS[name](mod, setup, student, config["settings"][name])
        for st in stages:
            train(student, train_loader(), epochs=st.epochs, lr=config["lr"] if st.lr is None else st.lr,
                  optimizer=st.optimizer or config["optimizer"], weight_decay=config["weight_decay"],
                  loss_fn=st.loss_fn, teacher=None if name == "baseline" else teacher_for_training,
                  params=st.params, extra_modules=st.extra_modules, device=device, progress=progress,
                  desc=f"{name} {st.name} s{seed}")
        wall = time.perf_counter() - t0
        finish(name, evaluate(student, test_loader, device), wall)
    return fresh


def _assemble(config, records, methods, skipped, device) -> dict:
    teacher_data, data = load_task(config)
    base = _summary(records["baseline"])
    out_methods = {}
    for pid in methods:
        e = _summary(records[pid])
        e["delta_vs_baseline"] = round(e["mean"] - base["mean"], 3)
        e["settings"] = config["settings"][pid]
        out_methods[pid] = e
    teacher = _summary(records["teacher"])
    checks = {"teacher_minus_baseline": round(teacher["mean"] - base["mean"], 3)}
    if "hinton2015distilling" in out_methods:
        kd = out_methods["hinton2015distilling"]
        checks["kd_gain"] = kd["delta_vs_baseline"]
        checks["two_std"] = round(2 * max(kd["std"], base["std"]), 3)
        checks["kd_gain_exceeds_two_std"] = kd["delta_vs_baseline"] > checks["two_std"]
    d = config["data"]
    return {
        "task": {"name": config["task"], "dataset": data.name, "input_shape": list(data.input_shape),
                 "num_classes": data.num_classes, "teacher": config["teacher"], "student": config["student"],
                 "description": f"MNIST-1D generated offline; the teacher learns from {len(teacher_data.train)} "
                                f"labelled training sequences, every student from the first {len(data.train)} "
                                f"of them; {len(data.test)} test sequences (why: see the kdatlas.bench "
                                "module docstring)."},
        "config": config,
        "protocol": {"seeds": config["seeds"], "epochs": config["epochs"],
                     "teacher_epochs": config["teacher_epochs"], "n_train": len(data.train),
                     "teacher_n_train": len(teacher_data.train),
                     "n_test": len(data.test), "num_samples_generated": d["num_samples"],
                     "selection": "last epoch (no model selection on the test set)",
                     "std": "sample standard deviation over seeds (n - 1)",
                     "wall_s": "mean training seconds per seed (teacher caching included for methods)",
                     "config_hash": config_hash(config)},
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "device": str(device), "machine": platform.machine(),
                        "threads_per_run": config.get("cpu_threads") or torch.get_num_threads()},
        "teacher": teacher,
        "baseline": base,
        "methods": out_methods,
        "skipped": skipped,
        "checks": checks,
    }


# --------------------------------------------------------------------------- command line
def _root() -> Path:
    try:
        from .catalog import find_root
        return find_root()
    except Exception:
        return Path.cwd()


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``kdatlas bench`` on an ``argparse`` subparsers object (sets ``fn``)."""
    p = subparsers.add_parser("bench", help="train teacher, student and every implemented method; "
                                            "write results/benchmark.json (resumable)")
    p.add_argument("--tiny", action="store_true", help="the seconds-long test configuration")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2 3 4)")
    p.add_argument("--methods", nargs="+", help="paper ids (default: all with an adapter)")
    p.add_argument("--epochs", type=int, help="student epochs (default 100)")
    p.add_argument("--out", type=Path, help="output JSON (default results/benchmark.json)")
    p.add_argument("--runs-dir", type=Path, help="per-run records (default results/runs/bench)")
    p.add_argument("--device", default="cpu", help="cpu (default: reproducible), cuda, mps or auto")
    p.add_argument("--jobs", type=int, default=2, help="seeds trained at once, one process each (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    p.set_defaults(fn=cmd_bench)
    return p


def cmd_bench(args: argparse.Namespace) -> int:
    config = copy.deepcopy(TINY_CONFIG if args.tiny else DEFAULT_CONFIG)
    if args.seeds:
        config["seeds"] = args.seeds
    if args.methods:
        config["methods"] = args.methods
    if args.epochs:
        config["epochs"] = args.epochs
    root = _root()
    run_bench(config, out=args.out or root / "results" / "benchmark.json",
              runs_dir=args.runs_dir or root / "results" / "runs" / "bench",
              device=None if args.device == "auto" else args.device, jobs=args.jobs,
              progress=not args.no_progress and args.jobs == 1)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kdatlas")
    add_parser(ap.add_subparsers(dest="cmd", required=True))
    args = ap.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
