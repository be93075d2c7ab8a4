"""`kdatlas bench`: the JSON contract, resumability after an interruption, atomic writes, and the
committed results/benchmark.json against the default configuration."""
from __future__ import annotations

import argparse
import copy
import json
import statistics
from pathlib import Path

import pytest
import torch

from kdatlas import bench

ROOT = Path(__file__).resolve().parents[2]
IMPLEMENTED = [pid for pid in bench.ADAPTERS if (ROOT / "implementations" / f"{pid}.py").exists()]
MISSING = "nobody2099missing"  # an adapter whose implementation file does not exist


class Interrupt(Exception):
    pass


def tiny(**changes) -> dict:
    cfg = copy.deepcopy(bench.TINY_CONFIG)
    cfg["methods"] = [*bench.METHOD_IDS, MISSING, "doe2020example"]
    cfg.update(changes)
    return cfg


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted tiny run (module scope: several tests read it)."""
    mp = pytest.MonkeyPatch()
    mp.setitem(bench.ADAPTERS, MISSING, bench.ADAPTERS["hinton2015distilling"])
    d = tmp_path_factory.mktemp("bench")
    calls = []
    try:
        summary = bench.run_bench(tiny(), out=d / "benchmark.json", runs_dir=d / "runs", progress=False,
                                  on_run_done=lambda n, s, r: calls.append((n, s)), log=lambda m: None)
    finally:
        mp.undo()
    return d, summary, calls


def test_contract(reference):
    d, summary, calls = reference
    on_disk = json.loads((d / "benchmark.json").read_text())
    assert on_disk == summary
    cfg = tiny()
    assert on_disk["config"] == cfg
    assert on_disk["protocol"]["seeds"] == cfg["seeds"] and on_disk["protocol"]["epochs"] == cfg["epochs"]
    assert on_disk["protocol"]["n_train"] == cfg["data"]["n_train"]
    assert set(on_disk["methods"]) == set(IMPLEMENTED)
    assert "does not exist yet" in on_disk["skipped"][MISSING]
    assert "no adapter" in on_disk["skipped"]["doe2020example"]
    for pid in bench.METHOD_IDS:
        if pid not in IMPLEMENTED:
            assert "does not exist yet" in on_disk["skipped"][pid]
    entries = [on_disk["teacher"], on_disk["baseline"], *on_disk["methods"].values()]
    for e in entries:
        assert len(e["values"]) == len(cfg["seeds"]) and all(0 <= v <= 100 for v in e["values"])
        assert e["mean"] == pytest.approx(statistics.fmean(e["values"]), abs=1e-3)
        assert e["std"] == pytest.approx(statistics.stdev(e["values"]), abs=1e-3)
        assert e["wall_s"] > 0
    for pid, e in on_disk["methods"].items():
        assert e["settings"] == cfg["settings"][pid]
        assert e["delta_vs_baseline"] == pytest.approx(e["mean"] - on_disk["baseline"]["mean"], abs=1e-3)
    assert len(calls) == len(cfg["seeds"]) * (2 + len(IMPLEMENTED))  # teacher, baseline, methods


def test_resume_after_interruption(reference, tmp_path, monkeypatch):
    _, ref, ref_calls = reference
    monkeypatch.setitem(bench.ADAPTERS, MISSING, bench.ADAPTERS["hinton2015distilling"])
    out, runs = tmp_path / "benchmark.json", tmp_path / "runs"
    first: list = []

    def stop_after_five(name, seed, rec):
        first.append((name, seed))
        if len(first) == 5:  # crosses a seed boundary with 4 implemented methods or fewer
            raise Interrupt

    with pytest.raises(Interrupt):
        bench.run_bench(tiny(), out=out, runs_dir=runs, progress=False, on_run_done=stop_after_five,
                        log=lambda m: None)
    assert not out.exists()  # the summary is only written once everything is done
    assert not list(runs.rglob("*.tmp"))
    second: list = []
    summary = bench.run_bench(tiny(), out=out, runs_dir=runs, progress=False,
                              on_run_done=lambda n, s, r: second.append((n, s)), log=lambda m: None)
    assert set(first).isdisjoint(second)  # nothing finished is trained again
    assert sorted(first + second) == sorted(ref_calls)
    # resuming changes nothing in the numbers: same values as the uninterrupted run
    for key in ("teacher", "baseline"):
        assert summary[key]["values"] == ref[key]["values"]
    assert {k: v["values"] for k, v in summary["methods"].items()} == \
           {k: v["values"] for k, v in ref["methods"].items()}
    third: list = []
    bench.run_bench(tiny(), out=out, runs_dir=runs, progress=False,
                    on_run_done=lambda n, s, r: third.append((n, s)), log=lambda m: None)
    assert third == []
    # a changed budget is a different benchmark: nothing is reused
    assert bench.config_hash(tiny(epochs=3)) != bench.config_hash(tiny())
    assert bench.config_hash(tiny(seeds=[0, 1, 2])) == bench.config_hash(tiny())


def test_json_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "benchmark.json"
    bench._write_json(path, {"complete": True})

    def broken_dump(obj, f, **kw):
        f.write('{"half": ')
        raise OSError("disk full")

    monkeypatch.setattr(bench.json, "dump", broken_dump)
    with pytest.raises(OSError):
        bench._write_json(path, {"complete": False})
    assert json.loads(path.read_text()) == {"complete": True}
    assert [p.name for p in tmp_path.iterdir()] == ["benchmark.json"]


def test_cli_parser_runs_the_bench(tmp_path):
    ap = argparse.ArgumentParser()
    bench.add_parser(ap.add_subparsers(dest="cmd", required=True))
    args = ap.parse_args(["bench", "--tiny", "--seeds", "0", "--methods", "hinton2015distilling",
                          "--out", str(tmp_path / "b.json"), "--runs-dir", str(tmp_path / "runs"), "--no-progress"])
    assert args.fn(args) == 0
    data = json.loads((tmp_path / "b.json").read_text())
    assert list(data["methods"]) == ["hinton2015distilling"] and data["protocol"]["seeds"] == [0]


def test_committed_benchmark_is_current_and_shows_distillation():
    path = ROOT / "results" / "benchmark.json"
    if not path.exists():
        pytest.skip("results/benchmark.json not generated yet (run `kdatlas bench`)")
    data = json.loads(path.read_text())
    assert data["config"] == bench.DEFAULT_CONFIG, "DEFAULT_CONFIG changed: rerun `kdatlas bench`"
    stale = [pid for pid in IMPLEMENTED if pid not in data["methods"]]
    assert not stale, f"implemented but not benchmarked: {stale}; rerun `kdatlas bench`"
    assert len(data["baseline"]["values"]) == len(bench.DEFAULT_CONFIG["seeds"]) >= 5
    assert data["teacher"]["mean"] - data["baseline"]["mean"] >= 10
    kd, base = data["methods"]["hinton2015distilling"], data["baseline"]
    assert kd["mean"] - base["mean"] > 2 * max(kd["std"], base["std"])


def test_tuned_weights_come_from_the_committed_selection():
    """AT's and RKD's weights are chosen on held-out data by benchmarks/select_weights.py; the
    benchmark's configuration must use what that selection chose (one fact, one place to check)."""
    path = ROOT / "results" / "weight_selection.json"
    assert path.exists(), "results/weight_selection.json missing: run benchmarks/select_weights.py"
    selection = json.loads(path.read_text())["methods"]
    for pid, entry in selection.items():
        best = max(entry["candidates"], key=lambda c: c["holdout_mean"])
        assert entry["chosen"] == best["settings"]
        for key, value in entry["chosen"].items():
            assert bench.DEFAULT_CONFIG["settings"][pid][key] == value, (pid, key)


def test_holdout_never_overlaps_the_students_sequences():
    cfg = tiny()
    cfg["data"] = dict(cfg["data"], holdout=[200, 300])
    teacher_data, data = bench.load_task(cfg)
    assert len(data.test) == 100 and len(data.train) == cfg["data"]["n_train"]
    full = bench.load_task(tiny())[0].train.tensors[0]
    assert torch.equal(data.test.tensors[0], full[200:300])
    cfg["data"]["holdout"] = [50, 300]  # overlaps the first n_train sequences the students learn from
    with pytest.raises(ValueError, match="holdout"):
        bench.load_task(cfg)


def test_notebook_task_is_the_benchmark_task():
    """The notebooks' embedded_task() and kdatlas bench must describe the same experiment."""
    from kdatlas.harness import EMBEDDED_BUDGET
    c = bench.DEFAULT_CONFIG
    assert EMBEDDED_BUDGET == {"num_samples": c["data"]["num_samples"], "n_train": c["data"]["n_train"],
                               "teacher_epochs": c["teacher_epochs"], "student_epochs": c["epochs"],
                               "lr": c["lr"], "batch_size": c["batch_size"]}
    assert (c["teacher"], c["student"], c["data"]["teacher_n_train"]) == ("mnist1d_teacher", "mnist1d_student", None)
