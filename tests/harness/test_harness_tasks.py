"""embedded_task(): the notebooks' set-up is the benchmark's task and replays runs exactly."""
from __future__ import annotations

import torch

from kdatlas.harness import embedded_task


def test_students_learn_from_a_prefix_of_the_teachers_data_and_share_its_test_set():
    task = embedded_task(quick=True, single_thread=False)
    xt, yt, _ = task.teacher_data.train.tensors
    xs, ys, _ = task.student_data.train.tensors
    assert len(xs) < len(xt) and torch.equal(xs, xt[: len(xs)]) and torch.equal(ys, yt[: len(ys)])
    assert torch.equal(task.teacher_data.test.tensors[0], task.student_data.test.tensors[0])
    assert "quick mode" in task.description


def test_same_seed_same_student_and_the_teacher_changes_the_result():
    task = embedded_task(quick=True, single_thread=False)
    task.student_epochs = 1
    teacher, acc = task.train_teacher(seed=0)
    assert not teacher.training and 0 <= acc <= 100
    a, _ = task.train_student(seed=3)
    b, _ = task.train_student(seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))

    def distill(s, t, y):
        return torch.nn.functional.mse_loss(s.logits, t.logits)
    c, hist = task.train_student(seed=3, teacher=teacher, loss_fn=distill)
    assert not all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values()))
    assert len(hist.test_acc) == 1


def test_new_student_matches_train_student_start_and_a_student_can_be_continued():
    task = embedded_task(quick=True, single_thread=False)
    fresh = task.new_student(seed=5)
    ref = task.new_student(seed=5)
    assert all(torch.equal(p, q) for p, q in zip(fresh.parameters(), ref.parameters()))
    lower = list(fresh.stages[0].parameters())
    top_before = fresh.fc.weight.detach().clone()
    same, hist = task.train_student(student=fresh, seed=5, epochs=1, lr=0.01, params=lower)
    assert same is fresh and len(hist.train_loss) == 1
    assert torch.equal(fresh.fc.weight, top_before)  # only the named parameters moved
    assert not torch.equal(lower[0], next(ref.stages[0].parameters()))  # ... and they did move


def test_student_data_equals_the_benchmark_loader():
    """The one-generation shortcut gives exactly what load_mnist1d(n_train=...) gives."""
    from kdatlas.harness import load_mnist1d
    from kdatlas.harness.tasks import EMBEDDED_BUDGET, QUICK_BUDGET
    task = embedded_task(quick=True, single_thread=False)
    b = EMBEDDED_BUDGET | QUICK_BUDGET
    ref = load_mnist1d(seed=0, num_samples=b["num_samples"], train_split=0.8, n_train=b["n_train"])
    for a, r in zip(task.student_data.train.tensors, ref.train.tensors):
        assert torch.equal(a, r)
