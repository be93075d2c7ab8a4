r"""How long each notebook takes, quick (CI) and default, and what CI would take at 109 papers.

Targets (issue 8): a notebook's default run <= 60 s, its quick run (``KDATLAS_QUICK=1``, what CI
runs) <= 15 s, on a 2-core machine. tests/harness/test_budgets_committed.py checks the committed
results/budgets.json against them, so a slow new notebook fails CI through this measurement, not
through a timed test: rerun this script after adding or changing a notebook.

What is timed. Each notebook's source of truth (notebooks/<id>.py, read by jupytext) is executed
top to bottom by nbclient in a fresh Python 3 kernel, as nbval does in CI; the time is the wall
clock of the whole execution, kernel start included. The environment of the kernel sets
``KDATLAS_CACHE`` to a temporary folder (the teacher cache) and ``KDATLAS_QUICK=1`` for the quick
run (unset for the default run).

Cold and warm. A notebook's teacher is trained on its first run and read from the cache after
(``Task.teacher``). *Cold*: the cache is empty, the run trains the teacher. *Warm*: the teacher is
cached. Quick: every notebook is run cold (its own empty cache) and then warm. Default: the
notebooks run in order in one cache; the first notebook of each task is run cold and then again
warm, the others warm. Both targets apply to the WARM run: a teacher is trained once per task and
machine (CI: once per task for the whole suite; a reader: on the first notebook of a task), not
once per notebook, so it is a per-task cost, listed as ``teacher_s`` and counted once in the CI
projection; the cold times are in the JSON too (``quick.cold_s``; ``default.cold_s`` where
measured, else ``default.cold_estimate_s`` = warm + the task's teacher).

CI projection (``ci_projection``): the rest of CI's ``make test`` measured here too:
``kdatlas validate`` and ``pytest tests`` (serially, ``KDATLAS_QUICK=1``, junit durations per
test). A test is *per paper* when its id names one of the papers that have a notebook
(tests/implementations/test_<id>.py, the conventions tests parametrised by paper); the others are
fixed. Model, at N = 109 papers, each with a notebook:

    serial(N) = fixed_tests + validate + quick teachers (once per task)
                + N * (mean per-paper test time + mean warm quick notebook time)
    ci_wall(N) ~ serial(N) / 2      (pytest -n 2: two workers, files spread evenly; an ideal)

Not modelled: tests whose fixed cost grows with the number of papers (the site build, validation
of every record), which are counted once at today's size, and the browser test where Chromium is
missing (skipped here).

    flock /tmp/kdatlas-cpu.lock .venv/bin/python benchmarks/budgets.py         # results/budgets.json
    .venv/bin/python benchmarks/budgets.py --only hinton2015distilling --skip-suite --out /tmp/b.json
    ... budgets.py --only romero2014fitnets --merge --skip-suite   # re-measure one, keep the other rows

Run it under the lock on a shared machine: timings under contention are wrong.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kdatlas.atomic import write_json  # noqa: E402

TARGETS = {"quick_s": 15.0, "default_s": 60.0}
N_PAPERS = 109


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import torch
    return {"nproc": nproc, "cpu_model": cpu, "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "load_avg_at_start": list(os.getloadavg())}


def teacher_files(cache: Path) -> set[str]:
    return {str(p.relative_to(cache)) for p in cache.rglob("seed*.pt")}


def execute(py: Path, quick: bool, cache: Path, timeout: int) -> dict:
    """Run notebook ``py`` in a fresh kernel; its wall time, whether it trained a teacher, slow cells."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(py)
    env_before = {k: os.environ.get(k) for k in ("KDATLAS_QUICK", "KDATLAS_CACHE", "MPLBACKEND")}
    os.environ["KDATLAS_CACHE"] = str(cache)
    os.environ.pop("MPLBACKEND", None)
    if quick:
        os.environ["KDATLAS_QUICK"] = "1"
    else:
        os.environ.pop("KDATLAS_QUICK", None)
    before = teacher_files(cache)
    error = None
    try:
        t0 = time.perf_counter()
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(py.parent)}}).execute()
        except Exception as e:  # a failing notebook is recorded (and misses its target), the others still run
            error = f"{type(e).__name__}: {str(e)[-2000:]}"
        wall = time.perf_counter() - t0
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    cells = []
    for i, cell in enumerate(nb.cells):
        ex = cell.get("metadata", {}).get("execution", {})
        a, b = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
        if cell.cell_type == "code" and a and b:
            d = (datetime.fromisoformat(b.replace("Z", "+00:00")) - datetime.fromisoformat(a.replace("Z", "+00:00")))
            first = next((ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#")), "")
            cells.append({"cell": i, "s": round(d.total_seconds(), 2), "first_line": first[:80]})
    cells.sort(key=lambda c: -c["s"])
    trained = sorted(teacher_files(cache) - before)
    out = {"wall_s": round(wall, 2), "trained_teachers": trained, "slowest_cells": cells[:3]}
    if error is not None:
        out["error"] = error
    return out


def teacher_seconds(cache: Path) -> dict:
    """Training seconds of each teacher in the cache (its record's wall_s), by task folder."""
    import json
    out = {}
    for meta in cache.rglob("seed*.json"):
        task = meta.relative_to(cache).parts[1] if meta.relative_to(cache).parts[0] == "teachers" else "?"
        out[task] = round(json.loads(meta.read_text())["wall_s"], 2)
    return out


def measure_notebooks(paths: list[Path], timeout: int, log) -> tuple[dict, dict]:
    rows: dict[str, dict] = {p.stem: {} for p in paths}
    teachers: dict[str, dict] = {"quick": {}, "default": {}}
    # quick: cold (own empty cache), then warm
    for p in paths:
        with tempfile.TemporaryDirectory(prefix="kdatlas-budget-") as d:
            cold = execute(p, True, Path(d), timeout)
            warm = execute(p, True, Path(d), timeout)
            teachers["quick"].update(teacher_seconds(Path(d)))
        rows[p.stem]["quick"] = {"cold_s": cold["wall_s"], "warm_s": warm["wall_s"],
                                 "trained_teachers": cold["trained_teachers"], "slowest_cells_cold": cold["slowest_cells"]}
        rows[p.stem]["errors"] = [r["error"] for r in (cold, warm) if "error" in r]
        log(f"quick   {p.stem}: cold {cold['wall_s']:.1f} s, warm {warm['wall_s']:.1f} s")
    # default: one cache; the first notebook of each task cold, then warm; the others warm
    with tempfile.TemporaryDirectory(prefix="kdatlas-budget-") as d:
        cache = Path(d)
        for p in paths:
            runs = [execute(p, False, cache, timeout)]
            row = {"trained_teachers": runs[0]["trained_teachers"]}
            if runs[0]["trained_teachers"]:
                row["cold_s"] = runs[0]["wall_s"]
                runs.append(execute(p, False, cache, timeout))
            row["warm_s"], row["slowest_cells"] = runs[-1]["wall_s"], runs[-1]["slowest_cells"]
            rows[p.stem]["default"] = row
            rows[p.stem]["errors"] += [r["error"] for r in runs if "error" in r]
            log(f"default {p.stem}: warm {row['warm_s']:.1f} s" + (f", cold {row['cold_s']:.1f} s" if "cold_s" in row else ""))
        teachers["default"].update(teacher_seconds(cache))
    return rows, teachers


def measure_suite(paper_ids: list[str], log) -> dict:
    env = os.environ | {"KDATLAS_QUICK": "1"}
    exe = Path(sys.executable).parent
    t0 = time.perf_counter()
    subprocess.run([str(exe / "kdatlas"), "validate"], cwd=ROOT, env=env, check=False, capture_output=True)
    validate_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="kdatlas-budget-") as d:
        xml = Path(d) / "junit.xml"
        env["KDATLAS_CACHE"] = str(Path(d) / "cache")
        t0 = time.perf_counter()
        proc = subprocess.run([str(exe / "pytest"), "tests", "-q", "-p", "no:cacheprovider", "-n", "0",
                               f"--junitxml={xml}", "-o", "junit_family=xunit2"], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        cases = ET.parse(xml).getroot().iter("testcase")
        per_paper: dict[str, float] = {pid: 0.0 for pid in paper_ids}
        fixed, n_fixed, n_paper, n_skipped = 0.0, 0, 0, 0
        for c in cases:
            t = float(c.get("time") or 0.0)
            n_skipped += c.find("skipped") is not None
            ident = f"{c.get('classname')}::{c.get('name')}"
            pid = next((p for p in paper_ids if p in ident), None)
            if pid is None:
                fixed, n_fixed = fixed + t, n_fixed + 1
            else:
                per_paper[pid] += t
                n_paper += 1
    tail = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    log(f"suite: {wall:.1f} s wall ({tail[0] if tail else proc.returncode}); validate {validate_s:.1f} s")
    return {"validate_s": round(validate_s, 2), "pytest_wall_s": round(wall, 2), "pytest_rc": proc.returncode,
            "pytest_summary": tail[0] if tail else "", "fixed_tests_s": round(fixed, 2), "fixed_tests": n_fixed,
            "per_paper_tests": n_paper, "skipped": n_skipped,
            "per_paper_test_s": {k: round(v, 2) for k, v in per_paper.items()}}


def derive(row: dict) -> dict:
    """The row's target numbers from its raw measurements (the warm runs; see the docstring)."""
    q, d = row["quick"]["warm_s"], row["default"]["warm_s"]
    head = {"quick_s": q, "default_s": d,
            "meets_target": not row.get("errors") and q <= TARGETS["quick_s"] and d <= TARGETS["default_s"]}
    return head | {k: v for k, v in row.items() if k not in head}


def projection(notebooks: dict, teachers: dict, suite: dict) -> dict:
    nb_warm = statistics.fmean(r["quick"]["warm_s"] for r in notebooks.values())
    per_paper_tests = statistics.fmean(suite["per_paper_test_s"].values())
    teachers_once = sum(teachers["quick"].values())
    fixed = suite["fixed_tests_s"] + suite["validate_s"] + teachers_once
    serial = fixed + N_PAPERS * (per_paper_tests + nb_warm)
    return {
        "papers": N_PAPERS,
        "model": "serial = fixed tests + kdatlas validate + quick teachers once per task + papers x (mean "
                 "per-paper test time + mean warm quick notebook time); ci_wall ~ serial / 2 (pytest -n 2, an "
                 "ideal split). Fixed costs that grow with the catalogue (site build, validation) are counted "
                 "at today's size; skipped tests (e.g. the browser test without Chromium) cost nothing here.",
        "mean_quick_notebook_warm_s": round(nb_warm, 2),
        "mean_per_paper_tests_s": round(per_paper_tests, 2),
        "quick_teachers_once_s": round(teachers_once, 2),
        "serial_s": round(serial, 1),
        "ci_wall_estimate_s": round(serial / 2, 1),
        "today": {"papers_with_notebooks": len(notebooks),
                  "serial_s": round(fixed + sum(suite["per_paper_test_s"].values())
                                    + sum(r["quick"]["warm_s"] for r in notebooks.values()), 1)},
        "suite": suite,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "results" / "budgets.json"))
    ap.add_argument("--only", nargs="*", help="notebook ids (default: every notebooks/*.py)")
    ap.add_argument("--merge", action="store_true",
                    help="keep --out's rows (and suite timing, with --skip-suite) for what is not re-measured")
    ap.add_argument("--skip-suite", action="store_true", help="do not time kdatlas validate + pytest tests")
    ap.add_argument("--timeout", type=int, default=600, help="per cell, seconds")
    args = ap.parse_args()

    def log(msg: str) -> None:
        print(msg, flush=True)

    import json
    old = json.loads(Path(args.out).read_text()) if args.merge and Path(args.out).exists() else {}
    paths = sorted((ROOT / "notebooks").glob("*.py"))
    if args.only is not None:  # --only with no ids (and --merge): re-derive the rows, measure nothing
        paths = [p for p in paths if p.stem in set(args.only)]
    info = machine()
    log(f"{info['nproc']} cores, {info['cpu_model']}, load {info['load_avg_at_start']}")
    t_start = time.perf_counter()
    rows, teachers = measure_notebooks(paths, args.timeout, log)
    for mode in ("quick", "default"):
        teachers[mode] = old.get("teacher_s", {}).get(mode, {}) | teachers[mode]
    notebooks = {k: v for k, v in old.get("notebooks", {}).items() if (ROOT / "notebooks" / f"{k}.py").exists()}
    for pid, r in rows.items():
        q, dflt = r["quick"], r["default"]
        trained = dflt["trained_teachers"] or q["trained_teachers"]
        task = trained[0].split("/")[1] if trained and trained[0].startswith("teachers/") else None
        cold_est = dflt.get("cold_s") or (dflt["warm_s"] + teachers["default"][task] if task in teachers["default"] else None)
        notebooks[pid] = {
            "errors": r["errors"],
            "task": task,
            "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "quick": q,
            "default": dflt | {"cold_estimate_s": round(cold_est, 2) if cold_est is not None else None},
        }
    notebooks = {k: derive(v) for k, v in sorted(notebooks.items())}
    out = {
        "what": "Wall seconds of each notebook (nbclient, fresh kernel, kernel start included), quick "
                "(KDATLAS_QUICK=1, what CI runs) and default; see benchmarks/budgets.py's docstring.",
        "targets": TARGETS | {"applies_to": "warm runs (the task's teacher already in the cache): a teacher is "
                                            "trained once per task and machine, not once per notebook; the cold "
                                            "runs are listed too (quick.cold_s, default.cold_s or cold_estimate_s) "
                                            "and the CI projection counts each quick teacher once"},
        "machine": info,
        "teacher_s": teachers,
        "notebooks": notebooks,
    }
    suite = measure_suite(sorted(notebooks), log) if not args.skip_suite else old.get("ci_projection", {}).get("suite")
    if suite:
        out["ci_projection"] = projection(notebooks, teachers, suite)
    out["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    write_json(args.out, out)
    log(f"wrote {args.out}")
    for pid, r in notebooks.items():
        log(f"{pid:24s} quick {r['quick_s']:6.1f} s (target {TARGETS['quick_s']:g})  default {r['default_s']:6.1f} s "
            f"(target {TARGETS['default_s']:g})  {'ok' if r['meets_target'] else 'MISSES'}")


if __name__ == "__main__":
    main()
