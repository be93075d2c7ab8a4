"""The committed notebook timings (results/budgets.json, written by benchmarks/budgets.py) cover every
notebook and meet the targets: quick run (what CI runs) <= 15 s, default run <= 60 s, both with the
task's teacher cached (a teacher is trained once per task, not per notebook; see benchmarks/budgets.py). A new or slower notebook fails here until its measurement is rerun and passes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUDGETS = ROOT / "results" / "budgets.json"
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.py"))
RERUN = "rerun: flock /tmp/kdatlas-cpu.lock .venv/bin/python benchmarks/budgets.py"


@pytest.fixture(scope="module")
def budgets() -> dict:
    assert BUDGETS.exists(), f"results/budgets.json is missing; {RERUN}"
    return json.loads(BUDGETS.read_text(encoding="utf-8"))


def test_targets_are_the_issue_s(budgets):
    assert budgets["targets"]["quick_s"] <= 15 and budgets["targets"]["default_s"] <= 60
    assert budgets["machine"]["nproc"] >= 1 and budgets["machine"]["cpu_model"]


def test_every_notebook_is_measured(budgets):
    missing = sorted(set(NOTEBOOKS) - set(budgets["notebooks"]))
    assert not missing, f"no timing for notebooks/{', '.join(missing)}; {RERUN}"


@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_notebook_meets_its_budget(budgets, nb):
    row = budgets["notebooks"].get(nb)
    if row is None:
        pytest.fail(f"no timing for notebooks/{nb}.py; {RERUN}")
    t = budgets["targets"]
    assert row["quick_s"] <= t["quick_s"], f"{nb}: quick run {row['quick_s']} s > {t['quick_s']} s"
    assert row["default_s"] <= t["default_s"], f"{nb}: default run {row['default_s']} s > {t['default_s']} s"
