"""results/mutants/<id>.json (benchmarks/mutants.py) is current and every mutant is killed or justified."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdatlas.harness.tasks import file_hash

ROOT = Path(__file__).resolve().parents[2]
IMPLS = sorted(p.stem for p in (ROOT / "implementations").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("pid", IMPLS)
def test_implementation_was_mutated_on_its_current_code_and_nothing_survived(pid):
    path = ROOT / "results" / "mutants" / f"{pid}.json"
    assert path.exists(), f"{pid} was never mutation-checked: run benchmarks/mutants.py --ids {pid}"
    data = json.loads(path.read_text())
    h = data["hashes"]
    assert h["implementation"] == file_hash(ROOT / "implementations" / f"{pid}.py") and \
        h["tests"] == file_hash(ROOT / "tests" / "implementations" / f"test_{pid}.py"), \
        f"{pid} or its tests changed since the mutation run: benchmarks/mutants.py --ids {pid}"
    kinds = {r["kind"] for r in data["mutants"]}
    assert "swap" in kinds or data.get("no_swap"), \
        f"{pid}: no student/teacher argument pair was found to swap (declare MUTANTS_NO_SWAP in its test file)"
    survived = [r["where"] for r in data["mutants"] if not r["killed"] and not r["equivalent"]]
    assert not survived, f"{pid}: mutants the tests do not catch: {survived}"


def test_no_result_without_an_implementation():
    stale = sorted(p.stem for p in (ROOT / "results" / "mutants").glob("*.json") if p.stem not in IMPLS)
    assert not stale, f"results/mutants has files for papers without an implementation: {stale}"
