r"""``kdatlas bench``: every method with a recipe, on each registered task, same budget, several seeds.

What it writes
--------------
For each task, ``results/bench/<task>/``::

    task.json       the task (description, configuration, key, metric), protocol, environment,
                    what a rerun reproduces
    teacher.json    the teacher's scores over the seeds
    baseline.json   the student alone (cross-entropy on the labels)
    <paper_id>.json one file per method: {"name", "task", "metric", "seeds", "values", "mean", "std",
                    "wall_s", "wall_s_values", "settings", "key", "code", "task_key"}

``values`` are per-seed scores in the task's metric (``metric`` names it; the model after the last
epoch: no selection on the test set), ``std`` the sample standard deviation (n - 1), ``wall_s`` the
mean training time of one seed (one thread per run). Every seed uses the same data; the seed sets the
initial weights and the batch order; at a given seed the baseline and every method start from the
same student weights and see the same batches.

Keys and resumption
-------------------
Each (name, seed) run is recorded at once in ``results/runs/<task>/<name>/<key>/seed<s>.json``,
written atomically (not committed). The key of a method's run hashes the task's configuration and
harness code (``Task.key()``), the method's settings on that task, and its code: the implementation
file, the recipe file and the recipe runner (their ``ast``, so prose edits do not count), and any
harness module the recipe imports beyond data/models/loop/train (``kdatlas.harness.transforms``). So adding
method N+1 trains only method N+1; editing a recipe reruns that recipe; editing the harness reruns
everything. Kill the command and rerun it: finished runs are read back, not retrained.

Teachers: the teachers' checkpoints (``weights_only`` state dicts, one per seed) are committed in
``results/teachers/<task>/<task key>/``, and every method learns from those very weights on any
machine. Each method's record carries ``teacher_sha`` (the hash of its teacher's tensors, also in
``teacher.json`` as ``sha``); a run made with another teacher is not reused.

Reproducibility: on the CPU with one thread, the same key and teacher give bit-identical per-seed
numbers on the same machine type and torch version (checked: a rerun of all 80 runs on one VM gave
the committed values exactly). Across machines, the CPU's instruction set changes the floating-point
order of some kernels, and per-seed numbers differ: on a second AMD EPYC VM (same torch, same keys,
one thread) the MNIST-1D teacher of seed 0 scored 98.6 instead of 98.9 and the student alone 84.5
instead of 85.3 at seed 1; the 16 means (teacher, student alone and six methods on two tasks) moved
by 0.0 to 2.2 points, at most 1.7 of the runs' standard deviations. That is why the teachers are
committed rather than retrained: every machine then distils from the same teacher, and what a rerun
elsewhere reproduces is each mean +- std within about two std, not the per-seed values.
``task.json`` records the CPU (model name, family/model, SIMD flags) and torch version.

Tasks and their design: ``kdatlas.harness.tasks`` (why MNIST-1D and the digits canvas look as they do).
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from .atomic import write_json
from .harness import get_task
from .harness.tasks import Task, file_hash, weights_hash
from .results import load_results
from .recipes import BASELINE, Recipe, all_recipes, get_recipe, run_recipe

__all__ = ["run_bench", "add_parser", "run_key", "code_of", "harness_modules_used", "bench_methods", "TINY", "BENCH_TASKS", "load_results"]

BENCH_TASKS = ["mnist1d", "digits"]
SEEDS = [0, 1, 2, 3, 4]
# For tests: seconds, not minutes. The numbers it produces mean nothing.
TINY = {"mnist1d": {"num_samples": 600, "n_train": 96, "teacher_epochs": 1, "epochs": 2, "batch_size": 32},
        "digits": {"n_train": 96, "teacher_epochs": 1, "epochs": 2, "batch_size": 32}}


_HARNESS = Path(__file__).resolve().parent / "harness"
_KEYED_HARNESS = {"data", "models", "loop", "train"}  # in Task.key() through harness_code_hash()


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def harness_modules_used(recipe: Recipe) -> list[str]:
    """The ``kdatlas.harness`` modules a recipe imports beyond the four that ``Task.key()`` already
    hashes (data, models, loop, train): e.g. ``transforms``. Read from the recipe file's imports."""
    if not recipe.module_path.exists():  # the baseline, recipes built in tests
        return []
    tree = ast.parse(recipe.module_path.read_text(encoding="utf-8"))
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "kdatlas.harness":
            used.update(a.name for a in node.names if (_HARNESS / f"{a.name}.py").exists())
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kdatlas.harness."):
            used.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            used.update(a.name.split(".")[2] for a in node.names if a.name.startswith("kdatlas.harness."))
    return sorted(used - _KEYED_HARNESS)


def code_of(recipe: Recipe) -> dict:
    """The code a recipe's runs are keyed on: :meth:`Recipe.code_hash`, plus the hashes of the extra
    harness modules it imports (only when it imports any, so other recipes keep their keys)."""
    code = recipe.code_hash()
    used = harness_modules_used(recipe)
    if used:
        code = code | {"harness": {m: file_hash(_HARNESS / f"{m}.py") for m in used}}
    return code


def run_key(task: Task, recipe: Recipe, settings: dict) -> str:
    """The key of one method's runs on ``task`` (see the module docstring)."""
    return _sha({"task": task.key(), "name": recipe.paper_id, "settings": settings, "code": code_of(recipe)})


def bench_methods(task_name: str) -> tuple[list[str], dict[str, str]]:
    """(paper ids that run on ``task_name``, {paper id: why not} for the other recipes)."""
    run, skipped = [], {}
    for pid, r in all_recipes().items():
        if r.skip is not None:
            skipped[pid] = r.skip
        elif r.tasks is not None and task_name not in r.tasks:
            skipped[pid] = f"its recipe does not run on {task_name} (tasks: {', '.join(r.tasks)})"
        else:
            run.append(pid)
    return run, skipped


# --------------------------------------------------------------------------- one run (in a worker or here)
_TASKS: dict = {}


def _task(name: str, quick: bool, overrides: dict, device: str, holdout: bool = False) -> Task:
    k = json.dumps([name, quick, overrides, device, holdout], sort_keys=True)
    if k not in _TASKS:  # data generated once per process
        _TASKS[k] = get_task(name, quick=quick, holdout=holdout, **overrides)
        _TASKS[k].device = torch.device(device)
    return _TASKS[k]


def _run_one(task_args: tuple, name: str, seed: int, settings: dict | None, runs_dir: str,
             progress: bool, teachers_dir: str | None = None) -> dict:
    """Train (or read back) one (name, seed); returns its record.

    A method's record carries ``teacher_sha``, the hash of the teacher's weights it learned from; a
    record made with another teacher (retrained on another machine) is not reused."""
    task = _task(*task_args)
    root = Path(runs_dir) / task.name
    teacher_root = Path(teachers_dir) / task.name if teachers_dir is not None else root / "teacher"
    if name == "teacher":
        rec: dict = {}
        task.teacher(seed, cache_dir=teacher_root, progress=progress, record=rec)
        return rec | {"sha": weights_hash(task.teacher_path(seed, teacher_root))}
    recipe = BASELINE if name == "baseline" else get_recipe(name)
    s = recipe.settings_for(task.name, **(settings or {}))
    key = run_key(task, recipe, s)
    path = root / name / key / f"seed{seed}.json"
    teacher, sha = None, None
    if recipe.needs_teacher:
        teacher, _ = task.teacher(seed, cache_dir=teacher_root, progress=progress)
        sha = weights_hash(task.teacher_path(seed, teacher_root))
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("teacher_sha") == sha:
            return old | {"cached": True}
    t0 = time.perf_counter()
    student, _ = run_recipe(recipe, task, teacher, seed, settings=settings, progress=progress)
    wall = time.perf_counter() - t0
    rec = {"name": name, "seed": seed, "score": task.score(student), "wall_s": wall, "key": key, "settings": s,
           "teacher_sha": sha}
    write_json(path, rec)
    return rec | {"cached": False}


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- the benchmark
def _summary(task: Task, name: str, records: list[dict], extra: dict) -> dict:
    vals = [r["score"] for r in records]
    walls = [r["wall_s"] for r in records]
    return {"name": name, "task": task.name, "metric": task.metric.describe(), "task_key": task.key(),
            "seeds": [r["seed"] for r in records],
            "mean": round(statistics.fmean(vals), 3),
            "std": round(statistics.stdev(vals), 3) if len(vals) > 1 else 0.0,
            "values": [round(v, 3) for v in vals],
            "wall_s": round(statistics.fmean(walls), 3), "wall_s_values": [round(w, 3) for w in walls],
            **extra}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_id() -> str:
    """CPU family/model and the SIMD extensions that change which kernels torch runs."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            k = k.strip()
            if k in ("cpu family", "model", "flags") and k not in info:
                info[k] = v.strip()
    except OSError:
        return platform.processor() or "unknown"
    simd = sorted(f for f in info.get("flags", "").split() if f.startswith(("avx", "amx", "fma", "sse4")))
    return f"family {info.get('cpu family', '?')} model {info.get('model', '?')}; {' '.join(simd)}"


def _task_record(task: Task, seeds: list[int], device: str, threads: int) -> dict:
    d = task.student_data
    return {"name": task.name, "description": task.description, "key": task.key(), "config": task.config,
            "metric": task.metric.describe(), "dataset": d.name, "input_shape": list(d.input_shape),
            "num_classes": d.num_classes, "n_train": len(d.train), "teacher_n_train": len(task.teacher_data.train),
            "n_test": len(d.test),
            "protocol": {"seeds": seeds, "epochs": task.epochs, "teacher_epochs": task.teacher_epochs,
                         "selection": "last epoch (no model selection on the test set)",
                         "std": "sample standard deviation over seeds (n - 1)",
                         "wall_s": "mean training seconds per seed, one thread per run (teacher excluded)"},
            "environment": {"torch": torch.__version__, "python": platform.python_version(), "device": device,
                            "machine": platform.machine(), "cpu": _cpu_model(), "cpu_id": _cpu_id(),
                            "threads_per_run": threads},
            "reproducibility": "Teachers: the committed checkpoints (results/teachers), identical everywhere. "
                               "Same key, teacher, CPU (cpu_id), torch version and thread count: bit-identical "
                               "per-seed numbers. Another CPU: per-seed numbers may differ (floating-point "
                               "order); the mean +- std transfers within about two std (see kdatlas.bench)."}


def run_bench(task: str = "mnist1d", methods: list[str] | None = None, seeds: list[int] | None = None,
              quick: bool = False, task_overrides: dict | None = None, settings: dict | None = None,
              results_dir: str | Path = "results/bench", runs_dir: str | Path = "results/runs",
              teachers_dir: str | Path | None = None, device: str = "cpu", jobs: int = 1, threads: int = 1, progress: bool = True, holdout: bool = False,
              on_run_done: Callable[[str, int, dict], None] | None = None,
              log: Callable[[str], None] = print) -> dict:
    """Run (or resume) the benchmark on one task; returns {name: summary} as written to disk.

    ``methods``: paper ids (default: every recipe that runs on the task). ``settings``: {paper id:
    overrides}. ``jobs`` > 1 trains that many runs at once, one spawned process each with
    ``threads`` threads; the numbers do not depend on it. ``on_run_done(name, seed, record)`` is
    called after each run in this process when ``jobs == 1`` (the tests use it to interrupt).
    ``holdout``: score on the task's held-out training samples instead of its test set (model
    selection, ``benchmarks/select_weights.py``; a different task key, so never mixed with test runs).
    ``teachers_dir``: where the teachers' checkpoints live (``kdatlas bench``: the committed
    ``results/teachers``; default: inside ``runs_dir``)."""
    seeds = list(SEEDS if seeds is None else seeds)
    default, skipped = bench_methods(task)
    methods = default if methods is None else list(methods)
    for pid in list(methods):
        if pid in skipped:
            log(f"skip {pid}: {skipped[pid]}")
            methods.remove(pid)
    task_args = (task, quick, dict(task_overrides or {}), device, holdout)
    t = _task(*task_args)
    out_dir = Path(results_dir) / t.name
    names = ["teacher", "baseline", *methods]
    settings = settings or {}
    jobs_list = [(n, s) for n in names for s in seeds]
    records: dict[str, dict[int, dict]] = {n: {} for n in names}
    tdir = None if teachers_dir is None else str(teachers_dir)

    def finished(name: str, seed: int, rec: dict) -> None:
        records[name][seed] = rec
        if not rec.get("cached"):
            log(f"{t.name:>8s} {name:>22s}  seed {seed}  {rec['score']:7.2f}  {rec['wall_s']:6.1f}s")
        if len(records[name]) == len(seeds):  # this name is complete: its file now
            recs = [records[name][s] for s in seeds]
            extra = {}
            if name == "teacher":
                extra = {"sha": [r["sha"] for r in recs]}
            elif name != "baseline":
                r = get_recipe(name)
                extra = {"settings": recs[0]["settings"], "key": recs[0]["key"], "code": code_of(r)}
                if r.needs_teacher:  # a method without a teacher (DML's peers) has none to name
                    extra["teacher_sha"] = [rec["teacher_sha"] for rec in recs]
            write_json(out_dir / f"{name}.json", _summary(t, name, recs, extra))

    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        from tqdm.auto import tqdm
        if jobs > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                     initargs=(threads,)) as pool:
                # teachers first: every other run of a seed reads its teacher from the cache
                for phase in (["teacher"], names[1:]):
                    futs = {pool.submit(_run_one, task_args, n, s, settings.get(n), str(runs_dir), False, tdir): (n, s)
                            for n, s in jobs_list if n in phase}
                    for f in tqdm(as_completed(futs), total=len(futs), desc=f"{t.name} {phase[0]}...",
                                  disable=not progress, leave=False):
                        finished(*futs[f], f.result())
        else:
            for n, s in tqdm(jobs_list, desc=t.name, disable=not progress, leave=False):
                rec = _run_one(task_args, n, s, settings.get(n), str(runs_dir), progress, tdir)
                finished(n, s, rec)
                if on_run_done is not None and not rec.get("cached"):
                    on_run_done(n, s, rec)
    finally:
        torch.set_num_threads(threads_before)
    fresh = sum(not r.get("cached") for per in records.values() for r in per.values())
    log(f"{t.name}: {fresh} new run(s), {len(jobs_list) - fresh} reused; wrote {out_dir}/")
    write_json(out_dir / "task.json", _task_record(t, seeds, device, threads))
    return load_results(Path(results_dir), t.name)


# --------------------------------------------------------------------------- command line
def _root() -> Path:
    try:
        from .catalog import find_root
        return find_root()
    except Exception:
        return Path.cwd()


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``kdatlas bench`` on an ``argparse`` subparsers object (sets ``fn``)."""
    p = subparsers.add_parser("bench", help="train teacher, student alone and every method with a recipe; "
                                            "write results/bench/<task>/ (resumable)")
    p.add_argument("--task", nargs="+", default=BENCH_TASKS, help=f"tasks (default: {' '.join(BENCH_TASKS)})")
    p.add_argument("--tiny", action="store_true", help="the seconds-long test configuration")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2 3 4)")
    p.add_argument("--methods", nargs="+", help="paper ids (default: every recipe that runs on the task)")
    p.add_argument("--results-dir", type=Path, help="summaries (default results/bench)")
    p.add_argument("--runs-dir", type=Path, help="per-run records (default results/runs)")
    p.add_argument("--teachers-dir", type=Path, help="teachers' checkpoints (default: results/teachers, committed; "
                                                     "with --tiny or --runs-dir: inside the runs folder)")
    p.add_argument("--device", default="cpu", help="cpu (default: reproducible), cuda or mps")
    p.add_argument("--jobs", type=int, default=2, help="runs trained at once, one process each (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    p.set_defaults(fn=cmd_bench)
    return p


def _teachers_dir(args: argparse.Namespace, root: Path) -> Path | None:
    """The committed results/teachers, for the benchmark proper only: a --tiny run or one with its own
    --runs-dir keeps its teachers inside the runs folder (None), never beside the committed ones."""
    return None if args.tiny or args.runs_dir else root / "results" / "teachers"


def cmd_bench(args: argparse.Namespace) -> int:
    root = _root()
    for task in args.task:
        run_bench(task, methods=args.methods, seeds=args.seeds, task_overrides=TINY.get(task) if args.tiny else None,
                  results_dir=args.results_dir or root / "results" / "bench",
                  runs_dir=args.runs_dir or root / "results" / "runs",
                  teachers_dir=args.teachers_dir or _teachers_dir(args, root), device=args.device, jobs=args.jobs,
                  progress=not args.no_progress)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kdatlas")
    add_parser(ap.add_subparsers(dest="cmd", required=True))
    args = ap.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
