"""The task registry: data, models, budget and metric per task; overrides, holdout, the teacher cache."""
from __future__ import annotations

import json

import pytest
import torch

from kdatlas.harness import ACCURACY, TASKS, Metric, get_task, load_mnist1d, register_task
from kdatlas.harness.tasks import MNIST1D, Task


def test_registry_has_the_benchmark_tasks_and_rejects_unknown_names_and_settings():
    assert {"mnist1d", "digits", "cifar100"} <= set(TASKS)
    with pytest.raises(ValueError, match="unknown task 'nope'.*mnist1d"):
        get_task("nope")
    with pytest.raises(ValueError, match="no setting 'epoch'.*epochs"):
        get_task("mnist1d", quick=True, epoch=3)
    with pytest.raises(ValueError, match="already registered"):
        register_task("mnist1d", {})(lambda c, h: None)


def test_students_learn_from_a_prefix_of_the_teachers_data_and_share_its_test_set():
    for name in ("mnist1d", "digits"):
        task = get_task(name, quick=True, single_thread=False)
        xt, yt, _ = task.teacher_data.train.tensors
        xs, ys, _ = task.student_data.train.tensors
        assert len(xs) < len(xt) and torch.equal(xs, xt[: len(xs)]) and torch.equal(ys, yt[: len(ys)])
        assert torch.equal(task.teacher_data.test.tensors[0], task.student_data.test.tensors[0])
        assert "quick mode" in task.description and task.metric is ACCURACY


def test_student_data_equals_the_direct_loader():
    """The one-generation shortcut gives exactly what load_mnist1d(n_train=...) gives."""
    task = get_task("mnist1d", quick=True, single_thread=False)
    c = task.config
    ref = load_mnist1d(seed=c["data_seed"], num_samples=c["num_samples"], train_split=c["train_split"],
                       n_train=c["n_train"])
    for a, r in zip(task.student_data.train.tensors, ref.train.tensors):
        assert torch.equal(a, r)


@pytest.mark.parametrize("name", ["mnist1d", "digits"])
def test_holdout_is_training_data_no_student_sees(name):
    task = get_task(name, holdout=True, single_thread=False)
    lo, hi = task.config["holdout_range"]
    full = get_task(name, single_thread=False).teacher_data.train.tensors[0]
    assert torch.equal(task.student_data.test.tensors[0], full[lo:hi])
    assert lo >= len(task.student_data.train) and "held-out" in task.description
    with pytest.raises(ValueError, match="holdout"):  # overlaps the students' training samples
        get_task(name, holdout=True, holdout_range=[10, hi], single_thread=False)


def test_key_changes_with_every_knob_and_only_with_them():
    a = get_task("mnist1d", quick=True, single_thread=False)
    assert a.key() == get_task("mnist1d", quick=True, single_thread=False).key()
    assert a.key() != get_task("mnist1d", quick=True, epochs=9, single_thread=False).key()
    assert a.key() != get_task("mnist1d", single_thread=False).key()
    assert set(a.config) == set(MNIST1D)


def test_same_seed_same_student_and_the_teacher_changes_the_result():
    task = get_task("mnist1d", quick=True, epochs=1, single_thread=False)
    teacher, acc, wall = task.train_teacher(seed=0)
    assert not teacher.training and 0 <= acc <= 100 and wall > 0
    a, _ = task.train_student(seed=3)
    b, _ = task.train_student(seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))

    def distill(s, t, y, progress):
        return torch.nn.functional.mse_loss(s.logits, t.logits)
    c, hist = task.train_student(seed=3, teacher=teacher, loss_fn=distill)
    assert not all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values()))
    assert len(hist.test_acc) == 1


def test_new_student_matches_train_student_start_and_a_student_can_be_continued():
    task = get_task("mnist1d", quick=True, single_thread=False)
    fresh = task.new_student(seed=5)
    ref = task.new_student(seed=5)
    assert all(torch.equal(p, q) for p, q in zip(fresh.parameters(), ref.parameters()))
    lower = list(fresh.stages[0].parameters())
    top_before = fresh.fc.weight.detach().clone()
    same, hist = task.train_student(student=fresh, seed=5, epochs=1, lr=0.01, params=lower)
    assert same is fresh and len(hist.train_loss) == 1
    assert torch.equal(fresh.fc.weight, top_before)  # only the named parameters moved
    assert not torch.equal(lower[0], next(ref.stages[0].parameters()))  # ... and they did move


def test_teacher_is_trained_once_then_read_back_from_the_cache(tmp_path, monkeypatch):
    task = get_task("mnist1d", quick=True, teacher_epochs=1, single_thread=False)
    rec: dict = {}
    t1, s1 = task.teacher(seed=0, cache_dir=tmp_path, progress=False, record=rec)
    path = task.teacher_path(0, tmp_path)
    assert path.exists() and json.loads(path.with_suffix(".json").read_text())["score"] == s1 == rec["score"]
    monkeypatch.setattr(Task, "train_teacher", lambda *a, **k: pytest.fail("retrained a cached teacher"))
    t2, s2 = task.teacher(seed=0, cache_dir=tmp_path, progress=False)
    assert s2 == s1 and not t2.training and all(not p.requires_grad for p in t2.parameters())
    assert all(torch.equal(a, b) for a, b in zip(t1.state_dict().values(), t2.state_dict().values()))
    other = get_task("mnist1d", quick=True, teacher_epochs=2, single_thread=False)
    assert other.teacher_path(0, tmp_path) != path  # another configuration, another teacher
    assert not list(tmp_path.rglob("*.tmp"))


def test_metric_describes_itself_and_a_task_scores_with_its_own_metric():
    task = get_task("mnist1d", quick=True, single_thread=False)
    assert ACCURACY.describe() == {"name": "top-1 accuracy", "unit": "%", "higher_is_better": True}
    task.metric = Metric("always seven", "", True, lambda model, loader, device: 7.0)
    assert task.score(task.new_student(0)) == 7.0


def test_code_hash_ignores_prose_but_not_code():
    from kdatlas.harness.tasks import source_hash
    base = source_hash('"""Module."""\ndef f(x):\n    """Doc."""\n    return x + 1  # one\n')
    assert source_hash('def f(x):\n    # a fixed comment\n    return x + 1\n') == base
    assert source_hash('"""Other prose."""\ndef f(x):\n    """Other."""\n    return x + 1\n') == base
    assert source_hash('def f(x):\n    return x + 2\n') != base
    assert source_hash('def f(x):\n    "not a docstring"; return x + 1\n') == base  # a leading string is one
    assert source_hash('def f(x):\n    y = "doc"\n    return x + 1\n') != base
