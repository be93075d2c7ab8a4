"""results/mutants.json (benchmarks/mutants.py) is current and every mutant is killed or justified."""
from __future__ import annotations

import json
from pathlib import Path

from kdatlas.harness.tasks import file_hash

ROOT = Path(__file__).resolve().parents[2]


def test_every_implementation_was_mutated_on_its_current_code_and_nothing_survived():
    path = ROOT / "results" / "mutants.json"
    assert path.exists(), "results/mutants.json missing: run benchmarks/mutants.py"
    data = json.loads(path.read_text())
    impls = sorted(p.stem for p in (ROOT / "implementations").glob("*.py") if not p.name.startswith("_"))
    missing = [pid for pid in impls if pid not in data["implementations"]]
    assert not missing, f"never mutation-checked: {missing}; run benchmarks/mutants.py --ids {' '.join(missing)}"
    for pid in impls:
        h = data["hashes"][pid]
        assert h["implementation"] == file_hash(ROOT / "implementations" / f"{pid}.py") and \
            h["tests"] == file_hash(ROOT / "tests" / "implementations" / f"test_{pid}.py"), \
            f"{pid} or its tests changed since the mutation run: benchmarks/mutants.py --ids {pid}"
        kinds = {r["kind"] for r in data["mutants"] if r["paper_id"] == pid}
        assert "swap" in kinds, f"{pid}: no student/teacher argument pair was found to swap"
    survived = [(r["paper_id"], r["where"]) for r in data["mutants"] if not r["killed"] and not r["equivalent"]]
    assert not survived, f"mutants the tests do not catch: {survived}"
