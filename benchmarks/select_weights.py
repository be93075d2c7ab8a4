r"""Choose the loss weights of AT and RKD on held-out data, never on the test set.

Why these two: their published weights are tied to the feature scales of the papers' own tasks.
AT's beta = 1e3 (at_weight = beta/2 = 500) was set for CIFAR WRN maps of 32x32..8x8 positions; on
MNIST-1D's 1-D maps (40/20/10 positions, 8-32 channels) it swamps the cross-entropy. RKD's 25/50 were
set for metric learning on 512-d embeddings; the embedded tasks' embeddings are 32-d or smaller. Every
other method keeps its published settings (its recipe, ``kdatlas.recipes.<paper id>``, says where
each comes from).

Protocol, per task: every candidate is trained exactly as in ``kdatlas bench`` (same data, budget,
seeds 0 and 1) and scored on the task's held-out training samples (``get_task(name, holdout=True)``:
training samples the teacher learned from and no student ever sees; the test set is never looked at).
The candidate with the best mean held-out score wins. The recipe then carries it as its per-task
override (``Recipe.tasks``), and a test checks that the two agree.

    .venv/bin/python benchmarks/select_weights.py                 # writes results/weight_selection.json
    .venv/bin/python benchmarks/select_weights.py --task digits   # one task (the others are kept)

Runs are keyed like the benchmark's (``results/runs/<task>/...``, holdout tasks have their own key),
so a rerun reuses what is already trained.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from kdatlas import bench
from kdatlas.atomic import write_json
from kdatlas.harness import get_task

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [0, 1]
GRID: dict[str, list[dict]] = {
    "zagoruyko2016paying": [{"at_weight": w} for w in (1.0, 10.0, 50.0, 100.0, 500.0)],
    "park2019relational": [{"distance_weight": d, "angle_weight": a} for d, a in ((1.0, 2.0), (5.0, 10.0), (25.0, 50.0))],
    "huang2017like": [{"nst_weight": w} for w in (0.5, 2.0, 10.0, 50.0)],
}


def select(task: str, grid: dict[str, list[dict]] = GRID, seeds: list[int] = SEEDS,
           runs_dir: Path | None = None, jobs: int = 2, task_overrides: dict | None = None,
           log=print) -> dict:
    """Train every candidate on ``task``'s held-out protocol; return {pid: {candidates, chosen}}."""
    runs = runs_dir or ROOT / "results" / "runs"
    out: dict = {}
    for pid, candidates in grid.items():
        rows = []
        for cand in candidates:
            with tempfile.TemporaryDirectory() as summaries:
                res = bench.run_bench(task, methods=[pid], seeds=seeds, settings={pid: cand}, holdout=True,
                                      task_overrides=task_overrides, results_dir=summaries, runs_dir=runs,
                                      jobs=jobs, progress=False, log=lambda *_: None)
            m, base = res[pid], res["baseline"]
            rows.append({"settings": cand, "holdout_mean": m["mean"], "holdout_values": m["values"],
                         "student_alone_holdout_mean": base["mean"]})
            log(f"{task:8s} {pid:22s} {json.dumps(cand)}  held-out {m['mean']:6.2f}  "
                f"(student alone {base['mean']:.2f})")
        best = max(rows, key=lambda r: r["holdout_mean"])
        out[pid] = {"candidates": rows, "chosen": best["settings"]}
    return out


def protocol(task: str) -> dict:
    t = get_task(task, holdout=True, single_thread=False)
    lo, hi = t.config["holdout_range"]
    return {"holdout": f"{task} training samples {lo}-{hi - 1} (never seen by a student; test set untouched)",
            "task_key": t.key(), "seeds": SEEDS, "budget": "the benchmark's (same data, epochs, optimizer)",
            "rule": "highest mean held-out score"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", nargs="+", default=bench.BENCH_TASKS)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "weight_selection.json")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    if "tasks" not in result:  # the one-task format of earlier versions is replaced
        result = {"tasks": {}, "protocol": {}, "wall_s": {}}
    for task in args.task:
        t0 = time.perf_counter()
        result["tasks"][task] = select(task, jobs=args.jobs)
        result["protocol"][task] = protocol(task)
        result["wall_s"][task] = round(time.perf_counter() - t0, 1)
        write_json(args.out, result)  # after each task: a later failure loses nothing
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
