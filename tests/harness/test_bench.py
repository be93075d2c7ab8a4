"""`kdatlas bench`: the per-(task, method) files, runs keyed on task + method + settings + code + seed
(adding a method retrains nothing else), resumption after a kill, and the committed results."""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import pytest

from kdatlas import bench, recipes
from kdatlas.harness import get_task
from kdatlas.harness.tasks import weights_hash
from kdatlas.recipes import all_recipes, get_recipe
from kdatlas.results import load_results

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [0, 1]
TASK = "mnist1d"
METHODS = bench.bench_methods(TASK)[0]


class Interrupt(Exception):
    pass


def run(tmp: Path, methods=None, calls=None, **kw):
    kw.setdefault("task_overrides", bench.TINY[TASK])
    return bench.run_bench(TASK, methods=METHODS if methods is None else methods, seeds=SEEDS,
                           results_dir=tmp / "bench", runs_dir=tmp / "runs", progress=False,
                           on_run_done=None if calls is None else (lambda n, s, r: calls.append((n, s))),
                           log=lambda m: None, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted tiny run of every recipe (module scope: several tests read it)."""
    d = tmp_path_factory.mktemp("bench")
    calls: list = []
    return d, run(d, calls=calls), calls


def test_every_exemplar_has_a_recipe_that_runs_on_both_tasks():
    for pid in ("hinton2015distilling", "romero2014fitnets", "zagoruyko2016paying", "park2019relational",
                "tian2019contrastive", "zhao2022decoupled"):
        for task in bench.BENCH_TASKS:
            assert pid in bench.bench_methods(task)[0], (pid, task)


def test_contract_one_file_per_task_and_method(reference):
    d, summary, calls = reference
    out = d / "bench" / TASK
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(["task", "teacher", "baseline", *METHODS])
    assert summary == load_results(d / "bench", TASK) and summary["task"]["name"] == TASK
    task = get_task(TASK, **bench.TINY[TASK])
    info = json.loads((out / "task.json").read_text())
    assert info["key"] == task.key() and info["config"] == task.config and info["protocol"]["seeds"] == SEEDS
    assert info["metric"] == {"name": "top-1 accuracy", "unit": "%", "higher_is_better": True}
    assert "bit-identical" in info["reproducibility"] and info["environment"]["torch"]
    for name in ["teacher", "baseline", *METHODS]:
        e = json.loads((out / f"{name}.json").read_text())
        assert e["task"] == TASK and e["metric"]["name"] == "top-1 accuracy" and e["task_key"] == task.key()
        assert e["seeds"] == SEEDS and len(e["values"]) == 2 and all(0 <= v <= 100 for v in e["values"])
        assert e["mean"] == pytest.approx(statistics.fmean(e["values"]), abs=1e-3)
        assert e["std"] == pytest.approx(statistics.stdev(e["values"]), abs=1e-3)
        assert e["wall_s"] > 0
    for pid in METHODS:
        e = summary[pid]
        r = get_recipe(pid)
        assert e["settings"] == r.settings_for(TASK) and e["code"] == bench.code_of(r)
        assert e["key"] == bench.run_key(task, r, r.settings_for(TASK))
    assert sorted(calls) == sorted((n, s) for n in ["teacher", "baseline", *METHODS] for s in SEEDS)


def test_resume_after_a_kill_trains_nothing_twice_and_gives_the_same_numbers(reference, tmp_path):
    _, ref, ref_calls = reference
    first: list = []

    def stop_after_five(name, seed, rec):
        first.append((name, seed))
        if len(first) == 5:
            raise Interrupt

    with pytest.raises(Interrupt):
        bench.run_bench(TASK, methods=METHODS, seeds=SEEDS, task_overrides=bench.TINY[TASK],
                        results_dir=tmp_path / "bench", runs_dir=tmp_path / "runs", progress=False,
                        on_run_done=stop_after_five, log=lambda m: None)
    assert not list(tmp_path.rglob("*.tmp"))  # nothing half-written
    second: list = []
    summary = run(tmp_path, calls=second)
    assert set(first).isdisjoint(second) and sorted(first + second) == sorted(ref_calls)
    assert {k: v.get("values") for k, v in summary.items()} == {k: v.get("values") for k, v in ref.items()}
    third: list = []
    run(tmp_path, calls=third)
    assert third == []


def test_a_run_made_with_another_teacher_is_not_reused(tmp_path):
    import torch
    a = METHODS[0]
    before = run(tmp_path, methods=[a])
    assert before[a]["teacher_sha"] == before["teacher"]["sha"]
    task = get_task(TASK, **bench.TINY[TASK])
    path = task.teacher_path(SEEDS[0], tmp_path / "runs" / TASK / "teacher")
    state = torch.load(path, weights_only=True)  # another teacher: as if retrained on another machine
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name] + 0.5
    torch.save(state, path)
    calls: list = []
    after = run(tmp_path, methods=[a], calls=calls)
    assert calls == [(a, SEEDS[0])]  # the other seed's teacher did not change: its run is reused
    assert after[a]["teacher_sha"] == after["teacher"]["sha"] and after["teacher"]["sha"][0] != before["teacher"]["sha"][0]
    assert after["teacher"]["sha"][1:] == before["teacher"]["sha"][1:]


def test_adding_a_method_trains_only_that_method(tmp_path):
    a, b = METHODS[0], METHODS[1]
    run(tmp_path, methods=[a])
    calls: list = []
    summary = run(tmp_path, methods=[a, b], calls=calls)
    assert calls == [(b, s) for s in SEEDS]
    assert set(summary) == {"task", "teacher", "baseline", a, b}
    # changing one method's settings reruns that method only; the old runs stay on disk
    calls.clear()
    knob = next(iter(get_recipe(b).settings))
    value = get_recipe(b).settings[knob]
    new = value * 2 if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    run(tmp_path, methods=[a, b], calls=calls, settings={b: {knob: new}})
    assert calls == ([(b, s) for s in SEEDS] if new != value else [])


def test_a_different_task_configuration_reuses_nothing(tmp_path):
    run(tmp_path, methods=[METHODS[0]])
    calls: list = []
    run(tmp_path, methods=[METHODS[0]], calls=calls, task_overrides=bench.TINY[TASK] | {"epochs": 1})
    assert sorted(calls) == sorted((n, s) for n in ["teacher", "baseline", METHODS[0]] for s in SEEDS)


def test_the_run_key_covers_the_code(monkeypatch):
    task = get_task(TASK, **bench.TINY[TASK])
    r = get_recipe("hinton2015distilling")
    key = bench.run_key(task, r, r.settings_for(TASK))
    real = recipes.file_hash
    for edited in ("implementations/hinton2015distilling.py", "recipes/hinton2015distilling.py",
                   "recipes/__init__.py"):
        monkeypatch.setattr(recipes, "file_hash",
                            lambda p, e=edited: "edited" if str(p).endswith(e) else real(p))
        assert bench.run_key(task, r, r.settings_for(TASK)) != key, edited
    monkeypatch.setattr(recipes, "file_hash", real)
    import kdatlas.harness.tasks as tasks
    monkeypatch.setattr(tasks, "harness_code_hash", lambda: "edited")
    assert bench.run_key(task, r, r.settings_for(TASK)) != key  # the harness too
    assert bench.run_key(task, r, r.settings_for(TASK) | {"temperature": 1.0}) != key


def test_results_of_another_task_configuration_are_not_shown(reference, tmp_path):
    d, summary, _ = reference
    out = tmp_path / "bench" / TASK
    out.mkdir(parents=True)
    for name in ("task", "teacher", METHODS[0]):
        (out / f"{name}.json").write_text((d / "bench" / TASK / f"{name}.json").read_text())
    stale = json.loads((out / f"{METHODS[0]}.json").read_text()) | {"task_key": "0" * 12}
    (out / f"{METHODS[0]}.json").write_text(json.dumps(stale))
    assert set(load_results(tmp_path / "bench", TASK)) == {"task", "teacher"}  # the stale method is left out


def test_cli_parser_runs_the_bench(tmp_path):
    ap = argparse.ArgumentParser()
    bench.add_parser(ap.add_subparsers(dest="cmd", required=True))
    args = ap.parse_args(["bench", "--task", TASK, "--tiny", "--seeds", "0", "--methods", "hinton2015distilling",
                          "--results-dir", str(tmp_path / "b"), "--runs-dir", str(tmp_path / "runs"),
                          "--jobs", "1", "--no-progress"])
    assert args.fn(args) == 0
    out = tmp_path / "b" / TASK
    assert sorted(p.stem for p in out.glob("*.json")) == ["baseline", "hinton2015distilling", "task", "teacher"]
    assert json.loads((out / "task.json").read_text())["protocol"]["seeds"] == [0]
    task = get_task(TASK, **bench.TINY[TASK])  # the tiny teacher stays in the runs folder
    assert (tmp_path / "runs" / TASK / "teacher" / task.key() / "seed0.pt").exists()
    assert not (ROOT / "results" / "teachers" / TASK / task.key()).exists()


def test_unknown_method_or_setting_is_a_clear_error(tmp_path):
    with pytest.raises(LookupError, match="no recipe for nobody2099missing"):
        run(tmp_path, methods=["nobody2099missing"])
    with pytest.raises(ValueError, match="has no setting"):
        run(tmp_path, methods=["hinton2015distilling"], settings={"hinton2015distilling": {"tempreature": 2}})


# --------------------------------------------------------------------------- the committed results
@pytest.mark.parametrize("task_name", bench.BENCH_TASKS)
def test_committed_results_are_current_and_show_distillation(task_name):
    out = ROOT / "results" / "bench" / task_name
    assert (out / "task.json").exists(), f"{out}/task.json missing: run `kdatlas bench --task {task_name}`"
    task = get_task(task_name, single_thread=False)
    info = json.loads((out / "task.json").read_text())
    assert info["key"] == task.key(), f"task {task_name} or the harness changed: rerun `kdatlas bench`"
    data = load_results(ROOT / "results" / "bench", task_name)
    methods, _ = bench.bench_methods(task_name)
    missing = [pid for pid in methods if pid not in data]
    assert not missing, f"not benchmarked (or stale) on {task_name}: {missing}; rerun `kdatlas bench`"
    for pid in methods:
        r = get_recipe(pid)
        assert data[pid]["key"] == bench.run_key(task, r, r.settings_for(task_name)), \
            f"{pid}: its settings or code changed since the committed run; rerun `kdatlas bench`"
    # every method learned from the committed teachers, whose weights are those teacher.json names
    shas = data["teacher"]["sha"]
    for seed, sha in zip(data["teacher"]["seeds"], shas):
        path = ROOT / "results" / "teachers" / task_name / task.key() / f"seed{seed}.pt"
        assert path.exists() and path.with_suffix(".json").exists(), f"{path} is not committed"
        assert weights_hash(path) == sha and task.teacher_path(seed) == path
    for pid in methods:
        if get_recipe(pid).needs_teacher:
            assert data[pid]["teacher_sha"] == shas, f"{pid} learned from another teacher; rerun `kdatlas bench`"
    assert len(data["baseline"]["values"]) >= 5
    assert data["teacher"]["mean"] - data["baseline"]["mean"] >= 8
    kd, base = data["hinton2015distilling"], data["baseline"]
    assert kd["mean"] - base["mean"] > 2 * max(kd["std"], base["std"])


def test_tuned_weights_come_from_the_committed_selection():
    """Weights chosen on held-out data by benchmarks/select_weights.py: each recipe's settings on
    that task must be what the selection chose (one fact, one place to check)."""
    path = ROOT / "results" / "weight_selection.json"
    assert path.exists(), "results/weight_selection.json missing: run benchmarks/select_weights.py"
    sel = json.loads(path.read_text())
    for task_name, methods in sel["tasks"].items():
        for pid, entry in methods.items():
            best = max(entry["candidates"], key=lambda c: c["holdout_mean"])
            assert entry["chosen"] == best["settings"]
            s = get_recipe(pid).settings_for(task_name)
            for key, value in entry["chosen"].items():
                assert s[key] == value, (task_name, pid, key)


# Recipes that reuse another method's selected weight for the same loss term: (its pid, the setting it
# selected, the recipe's value of that setting). Moonshine's AT term is zagoruyko2016paying's at_loss on
# the same stage maps, weighted 3 beta / J.
BORROWED = {"crowley2017moonshine": ("zagoruyko2016paying", "at_weight", lambda s: 3 * s["beta"] / len(s["stages"]))}


def test_borrowed_weights_follow_the_selection():
    sel = json.loads((ROOT / "results" / "weight_selection.json").read_text())
    for pid, (source, key, value) in BORROWED.items():
        for task_name, methods in sel["tasks"].items():
            assert value(get_recipe(pid).settings_for(task_name)) == methods[source]["chosen"][key], (pid, task_name)


def test_every_recipe_loads_and_declares_its_shape():
    for pid, r in all_recipes().items():
        assert (r.phases is None) + (r.run is None) + (r.skip is None) == 2, pid
        assert (ROOT / "papers" / f"{pid}.yaml").exists(), f"recipe {pid} has no paper"


# --------------------------------------------------------------------------- a new task family plugs in
def _toy_task(c: dict, holdout: bool):
    """A task with its own data, models and a lower-is-better metric: nothing in the loop changes."""
    import torch
    from torch import nn
    from kdatlas.harness import Data, Metric, Task
    from kdatlas.harness.data import _indexed

    g = torch.Generator().manual_seed(c["data_seed"])
    x = torch.randn(64, 1, 8, generator=g)
    y = (x.mean(dim=(1, 2)) > 0).long()
    data = Data(_indexed(x[:48], y[:48]), _indexed(x[48:], y[48:]), 2, (1, 8), "toy")

    def error_rate(model, loader, device):
        from kdatlas.harness import evaluate
        return 100.0 - evaluate(model, loader, device)
    from kdatlas.harness import ConvNet
    return Task("toyerror", "a toy task scored by its error rate", data, data,
                lambda: ConvNet(1, (8, 16), num_classes=2), lambda: ConvNet(1, (2, 4), num_classes=2), c,
                metric=Metric("error rate", "%", False, error_rate))


def test_a_registered_task_with_its_own_metric_runs_in_the_bench(tmp_path):
    from kdatlas.harness import TASKS, register_task
    if "toyerror" not in TASKS:
        register_task("toyerror", {"data_seed": 0, "teacher_epochs": 1, "epochs": 1, "lr": 0.05,
                                   "batch_size": 16, "optimizer": "sgd", "weight_decay": 0.0})(_toy_task)
    # a recipe that declares no tasks (tasks=None) runs anywhere; the exemplars name theirs
    assert "hinton2015distilling" in bench.bench_methods("toyerror")[1]
    res = bench.run_bench("toyerror", methods=[], seeds=[0, 1], results_dir=tmp_path / "b",
                          runs_dir=tmp_path / "r", progress=False, log=lambda m: None)
    assert set(res) == {"task", "teacher", "baseline"}
    assert res["task"]["metric"] == {"name": "error rate", "unit": "%", "higher_is_better": False}
    assert res["baseline"]["metric"]["name"] == "error rate"


def test_results_from_another_teacher_are_left_out_but_teacher_free_methods_stay(tmp_path):
    d = tmp_path / TASK
    d.mkdir()
    entry = {"task_key": "k", "values": [1.0], "mean": 1.0, "std": 0.0}
    files = {"task": {"key": "k"}, "teacher": entry | {"sha": ["a", "b"]},
             "same": entry | {"teacher_sha": ["a", "b"]}, "other": entry | {"teacher_sha": ["a", "c"]},
             "peers": entry, "old_format": entry | {"teacher_sha": [None, None]}}
    for name, e in files.items():
        (d / f"{name}.json").write_text(json.dumps(e))
    assert set(load_results(tmp_path, TASK)) == {"task", "teacher", "same", "peers", "old_format"}


def test_a_recipe_that_imports_an_extra_harness_module_is_keyed_on_it(tmp_path, monkeypatch):
    # transforms.py is outside harness_code_hash's four files: a recipe importing it must key on it,
    # and a recipe importing only the four keeps its old key.
    task = get_task(TASK, **bench.TINY[TASK])
    r = get_recipe("hinton2015distilling")
    plain = bench.run_key(task, r, r.settings_for(TASK))
    source = r.module_path.read_text()
    for line in ("from kdatlas.harness.transforms import ROTATE4", "from kdatlas.harness import transforms",
                 "import kdatlas.harness.transforms"):
        module = tmp_path / "recipe.py"
        module.write_text(line + "\n" + source)
        monkeypatch.setattr(recipes.Recipe, "module_path", property(lambda self, m=module: m))
        assert bench.harness_modules_used(r) == ["transforms"], line
        key = bench.run_key(task, r, r.settings_for(TASK))
        assert key != plain
        real = bench.file_hash
        monkeypatch.setattr(bench, "file_hash", lambda p: "edited" if str(p).endswith("transforms.py") else real(p))
        assert bench.run_key(task, r, r.settings_for(TASK)) != key, line
        monkeypatch.setattr(bench, "file_hash", real)
    module.write_text("from kdatlas.harness.train import train\n" + source)
    assert bench.harness_modules_used(r) == []
