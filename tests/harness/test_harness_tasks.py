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
