"""The Reproduced page and the paper pages read benchmark results per task, metric name included,
and never show a result produced under another task configuration."""
from __future__ import annotations

import json

from kdatlas.catalog import load_catalog
from kdatlas.results import load_all_results
from kdatlas.site import page_reproduced, reproduced_section


def _entry(name: str, values: list[float], key: str = "k1") -> dict:
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return {"name": name, "task": "toyseg", "task_key": key, "values": values, "mean": mean, "std": std,
            "wall_s": 1.0, "seeds": [0, 1]}


def _write(root, task: str, metric: dict, entries: dict) -> None:
    d = root / "results" / "bench" / task
    d.mkdir(parents=True)
    info = {"name": task, "key": "k1", "description": f"the {task} task", "metric": metric, "config": {"epochs": 3},
            "protocol": {"seeds": [0, 1], "selection": "last epoch", "std": "sample"},
            "environment": {"torch": "2.x", "cpu": "a CPU", "threads_per_run": 1}, "reproducibility": "same key"}
    (d / "task.json").write_text(json.dumps(info))
    for name, e in entries.items():
        (d / f"{name}.json").write_text(json.dumps(e))


def test_reproduced_page_names_the_metric_and_drops_stale_results(tmp_path):
    _write(tmp_path, "toyseg", {"name": "mIoU", "unit": "%", "higher_is_better": True},
           {"teacher": _entry("teacher", [90.0, 92.0]), "baseline": _entry("baseline", [60.0, 62.0]),
            "hinton2015distilling": _entry("hinton2015distilling", [70.0, 71.0]),
            "zhao2022decoupled": _entry("zhao2022decoupled", [99.0, 99.0], key="old")})
    bench = load_all_results(tmp_path)
    assert set(bench["toyseg"]) == {"task", "teacher", "baseline", "hinton2015distilling"}
    cat = load_catalog()
    page = page_reproduced(bench, cat)
    assert "## toyseg" in page and "| Model | mIoU (%) |" in page and "accuracy" not in page.split("## Loss")[0]
    assert "+9.50" in page  # KD minus student alone
    assert "Teacher minus student alone: +30.00" in page
    assert "99.00" not in page  # the stale DKD file is not shown
    section = "\n".join(reproduced_section("hinton2015distilling", bench, "papers"))
    assert "mIoU (%)" in section and "70.50 ± 0.71" in section
    assert reproduced_section("zhao2022decoupled", bench, "papers") == []
