"""Reading the benchmark's result files (``results/bench/<task>/*.json``); no torch needed.

``kdatlas.bench`` writes them, the site reads them through here."""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["load_results", "load_all_results", "REFERENCES"]

REFERENCES = ("teacher", "baseline")  # the two reference rows beside the methods


def load_results(results_dir: str | Path, task: str) -> dict:
    """{"task": task.json, "teacher": ..., "baseline": ..., paper_id: ...} of one task; {} if absent.

    A file whose ``task_key`` differs from the task's (produced under another task configuration or
    harness), or a method's file whose ``teacher_sha`` is not the committed teacher's ``sha`` (it
    learned from another teacher), is left out: stale numbers are never shown beside current ones."""
    d = Path(results_dir) / task
    if not (d / "task.json").exists():
        return {}
    info = json.loads((d / "task.json").read_text(encoding="utf-8"))
    out = {"task": info}
    for p in sorted(d.glob("*.json")):
        if p.name != "task.json":
            e = json.loads(p.read_text(encoding="utf-8"))
            if e.get("task_key") == info["key"]:
                out[p.stem] = e
    sha = out.get("teacher", {}).get("sha")
    for name in [n for n, e in out.items() if any(e.get("teacher_sha") or [])]:  # methods with a teacher
        if sha is not None and out[name]["teacher_sha"] != sha:
            del out[name]
    return out


def load_all_results(root: str | Path) -> dict[str, dict]:
    """{task name: load_results(...)} for every task folder under ``results/bench`` (sorted)."""
    base = Path(root) / "results" / "bench"
    if not base.is_dir():
        return {}
    return {d.name: r for d in sorted(base.iterdir()) if d.is_dir() and (r := load_results(base, d.name))}
