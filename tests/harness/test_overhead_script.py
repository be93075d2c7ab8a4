"""benchmarks/overhead.py: runs end to end on toy sizes, measures every recipe that trains in phases,
and the committed results/overhead.json is up to date with the recipes."""
from __future__ import annotations

import importlib.util
import json
import math
import random
from pathlib import Path

import pytest
import torch

from kdatlas.recipes import all_recipes

ROOT = Path(__file__).resolve().parents[2]
RESULT = ROOT / "results" / "overhead.json"


def _load():
    spec = importlib.util.spec_from_file_location("kdatlas_overhead", ROOT / "benchmarks" / "overhead.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _phase_recipes() -> dict:
    """The recipes overhead.py measures: one student step with a loss, with settings for cifar100."""
    return {pid: r for pid, r in all_recipes().items()
            if r.phases is not None and (r.tasks is None or "cifar100" in r.tasks)}


def _check_rows(rows: list[dict]) -> None:
    for r in rows:
        assert r["pairs"] >= 1 and r["floor_median_s"] > 0 and r["step_median_s"] > 0
        assert r["ci_low"] <= r["median_ratio"] <= r["ci_high"], r["name"]
        assert math.isclose(r["ci_half_width"], (r["ci_high"] - r["ci_low"]) / 2, abs_tol=1e-3)
        assert 0 < r["ci_coverage"] <= 1
        q = r["ratio_quartiles"]
        assert q == sorted(q) and q[0] <= r["ci_low"] and r["ci_high"] <= q[-1]
        if r["kind"] == "method":
            assert r["target_met"] == (r["ci_high"] <= 1.10)
            assert r["verdict"] in {"met", "not met", "undecided"}


@pytest.fixture(scope="module")
def ov():
    return _load()


def test_median_ci_is_distribution_free_order_statistics(ov):
    ci = ov.median_ci([3.0, 1.0, 2.0, 5.0, 4.0, 6.0])  # n = 6: min..max, coverage 1 - 2/64
    assert (ci["low"], ci["median"], ci["high"]) == (1.0, 3.5, 6.0)
    assert math.isclose(ci["coverage"], 1 - 2 / 64)
    values = list(range(1, 101))  # n = 100: ranks 40 and 61 (coverage 0.965)
    ci = ov.median_ci(values)
    assert (ci["low"], ci["high"]) == (40, 61) and 0.95 <= ci["coverage"] < 0.97
    # empirical coverage on a skewed distribution
    rng = random.Random(0)
    inside = 0
    for _ in range(400):
        ci = ov.median_ci([rng.expovariate(1.0) for _ in range(31)])
        inside += ci["low"] <= math.log(2) <= ci["high"]
    assert inside / 400 >= 0.93  # nominal >= 0.95; 400 draws leave about one point of noise
    assert ov.verdict({"low": 1.0, "high": 1.09}) == "met"
    assert ov.verdict({"low": 1.11, "high": 1.2}) == "not met"
    assert ov.verdict({"low": 1.05, "high": 1.12}) == "undecided"


def test_overhead_measures_every_phases_recipe_on_toy_sizes(ov):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        steps = ov.measure_steps(batch=4, size=8, student_name="resnet20", teacher_name="resnet20", num_classes=10,
                                 n_data=64, imagenet_n=256, overrides={"tian2019contrastive": {"num_negatives": 32}},
                                 warmup=1, min_pairs=6, max_pairs=6, reference_pairs=6, profile=False,
                                 log=lambda m: None)
        epochs = ov.measure_epochs(reps=1, n_train=128, log=lambda m: None)
    finally:
        torch.set_num_threads(threads)
    rows = steps["rows"]
    measured = {r["method"] for r in rows if r["kind"] == "method"}
    assert measured == set(_phase_recipes())
    assert set(steps["skipped"]) == set(all_recipes()) - set(_phase_recipes())
    assert all(isinstance(why, str) and why for why in steps["skipped"].values())
    # one row per phase (FitNets: hint and kd), the shares of a recipe add up to 1
    for pid in measured:
        shares = [r["epochs_share"] for r in rows if r.get("method") == pid and r["bank_size"] == 64]
        assert math.isclose(sum(shares), 1.0, abs_tol=0.01), pid
    assert [r["phase"] for r in rows if r.get("method") == "romero2014fitnets"] == ["hint", "kd"]
    crd = [r for r in rows if r.get("method") == "tian2019contrastive"]
    assert sorted(r["bank_size"] for r in crd) == [64, 256]
    assert rows[0]["name"] == "student alone" and rows[0]["kind"] == "reference"
    assert all(r["pairs"] == 6 and r["stopped_by"] in {"precision", "max_pairs"} for r in rows)
    assert steps["floor_median_s"] > 0
    _check_rows(rows)
    assert set(epochs["epoch_median_s"]) == {"student alone", "live teacher", "cached teacher"}
    assert epochs["ratio_to_student_alone"]["student alone"]["median"] == 1.0
    assert all(v > 0 for v in epochs["epoch_median_s"].values()) and epochs["cache_build_median_s"] > 0
    table = ov._table(steps, epochs)
    assert "95% CI" in table and "romero2014fitnets [hint]" in table and "cached teacher" in table


EXEMPLARS = {"hinton2015distilling", "romero2014fitnets", "zagoruyko2016paying", "park2019relational",
             "tian2019contrastive", "zhao2022decoupled"}


def test_committed_result_is_current_for_the_methods_it_lists():
    """Every method in the file still has a recipe with those phases; the six exemplars are measured.

    Methods added later may be missing from the file (a full run takes ~6 min per method on 2 cores):
    the Benchmarks page lists them as not measured, computed from the recipe files at build time."""
    data = json.loads(RESULT.read_text(encoding="utf-8"))
    steps = data["step"]
    rows = steps["rows"]
    assert steps["setup"]["batch"] == 128 and steps["setup"]["student"] == "resnet8x4"
    assert steps["setup"]["teacher"] == "resnet32x4" and not data["environment"]["quick"]
    methods = {r["method"] for r in rows if r["kind"] == "method"}
    assert EXEMPLARS <= methods <= set(_phase_recipes()), methods - set(_phase_recipes())
    assert set(steps["skipped"]) <= set(all_recipes()) - set(_phase_recipes())
    for pid in methods:  # at CIFAR size, one row per phase, the phases' shares adding up to 1
        cifar = [r for r in rows if r.get("method") == pid and r["bank_size"] == 50_000]
        assert cifar and len({r["phase"] for r in cifar}) == len(cifar), pid
        assert math.isclose(sum(r["epochs_share"] for r in cifar), 1.0, abs_tol=0.01), pid
        assert all(r["settings"] == all_recipes()[pid].settings_for("cifar100") for r in cifar), \
            f"{pid}'s settings changed since it was measured: benchmarks/overhead.py --methods {pid}"
    imagenet = [r for r in rows if r.get("method") == "tian2019contrastive" and r["bank_size"] == 1_281_167]
    assert len(imagenet) == 1
    r = imagenet[0]
    assert r["settings"]["num_negatives"] == 16384 and r["median_ratio"] > 0
    assert isinstance(r["target_met"], bool) and (r["target_met"] or "profile" in r)
    _check_rows(rows)
    assert set(data["epoch"]["ratio_to_student_alone"]) == {"student alone", "live teacher", "cached teacher"}


def test_merging_one_method_keeps_every_other_row(ov):
    old = {"rows": [{"kind": "method", "method": "a", "name": "a"}, {"kind": "method", "method": "b", "name": "b"},
                    {"kind": "reference", "name": "student alone"}],
           "skipped": {"c": "run= recipe", "d": "a survey"}, "setup": {"batch": 128}}
    new = {"rows": [{"kind": "method", "method": "b", "name": "b", "median_ratio": 1.0},
                    {"kind": "reference", "name": "student alone"}], "skipped": {"c": "now measured elsewhere"}}
    merged = ov.merge_steps(old, new, ["b", "c"], {"date": "2026-12-03", "methods": ["b", "c"]})
    assert [r["name"] for r in merged["rows"]] == ["a", "student alone", "b"]
    assert merged["rows"][-1] == {"kind": "method", "method": "b", "name": "b", "median_ratio": 1.0,
                                  "run": "2026-12-03"}
    assert merged["skipped"] == {"d": "a survey", "c": "now measured elsewhere"}
    assert merged["merged_runs"] == [{"date": "2026-12-03", "methods": ["b", "c"]}] and merged["setup"] == {"batch": 128}
    assert len(old["rows"]) == 3 and "merged_runs" not in old  # the old dict is left as it was
