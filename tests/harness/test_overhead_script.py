"""benchmarks/overhead.py runs end to end on toy sizes and reports every implemented method."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from kdatlas import bench

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("kdatlas_overhead", ROOT / "benchmarks" / "overhead.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_overhead_measures_floor_and_every_method():
    ov = _load()
    steps = ov.measure_steps(batch=4, size=8, reps=1, student_name="resnet20", teacher_name="resnet20",
                             num_classes=10, n_data=64, loss_reps=1, log=lambda m: None)
    names = [r["name"] for r in steps["rows"]]
    assert names[:2] == ["student alone", "floor"]
    measured = {r["method"] for r in steps["rows"] if r["method"]}
    implemented = {pid for pid in bench.METHOD_IDS if (ROOT / "implementations" / f"{pid}.py").exists()}
    assert measured == implemented and set(steps["skipped"]) == set(bench.METHOD_IDS) - implemented
    floor = next(r for r in steps["rows"] if r["name"] == "floor")
    assert floor["ratio_to_floor"] == 1.0 and all(r["step_min_s"] > 0 for r in steps["rows"])
    assert all(r["loss_s"] > 0 and r["ratio_to_floor"] > 1 for r in steps["rows"] if r["method"])
    epochs = ov.measure_epochs(reps=1, n_train=64, log=lambda m: None)
    assert set(epochs["epoch_s"]) == {"student alone", "live teacher", "cached teacher"}
    assert epochs["ratio_to_student_alone"]["student alone"] == 1.0
    assert "step" in ov._table(steps, epochs)
