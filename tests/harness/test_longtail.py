"""The long-tailed split (CIFAR-LT's exponential profile), its shot groups and metric, task digits_lt."""
import math

import pytest
import torch
from torch import nn

from kdatlas.harness import get_task
from kdatlas.harness.data import make_loader
from kdatlas.harness.longtail import long_tail_counts, long_tail_indices, shot_accuracy, shot_groups
from kdatlas.harness.tasks import task_groups


def test_counts_follow_the_exponential_profile():
    counts = long_tail_counts(100, 10, 10)
    assert counts == [100, 77, 59, 46, 35, 27, 21, 16, 12, 10]
    assert counts[0] / counts[-1] == 10  # the imbalance ratio: largest over smallest class
    assert long_tail_counts(500, 100, 10)[-1] == 5 and long_tail_counts(7, 1, 3) == [7, 7, 7]
    for c, n in enumerate(counts):  # a geometric decay by 10 ** (-1/9) per class, floored
        exact = 100 * 0.1 ** (c / 9)
        assert exact - 1 < n <= exact + 1e-6
    with pytest.raises(ValueError, match="imbalance >= 1"):
        long_tail_counts(100, 0.5, 10)


def test_indices_keep_the_first_samples_of_each_class_in_order():
    y = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2])
    idx = long_tail_indices(y, [2, 1, 1])
    assert idx.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="class 1 has 2 samples, the long-tailed profile asks for 3"):
        long_tail_indices(y, [1, 3, 1])


def test_shot_groups_partition_the_classes_by_size():
    g = shot_groups([100, 77, 59, 46, 35, 27, 21, 16, 12, 10], many=40, few=20)
    assert g == {"many": [0, 1, 2, 3], "medium": [4, 5, 6], "few": [7, 8, 9]}
    with pytest.raises(ValueError, match="must not exceed"):
        shot_groups([5, 3], many=2, few=4)


class _Fixed(nn.Module):
    """Predicts class 0 for every input: right on class 0 only."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.cat([torch.ones(len(x), 1), torch.zeros(len(x), 2)], 1) + 0 * self.w


def test_shot_accuracy_on_a_hand_checked_case():
    y = torch.tensor([0, 0, 1, 2, 2, 2])
    ds = torch.utils.data.TensorDataset(torch.zeros(6, 1), y, torch.arange(6))
    model = _Fixed().train()
    acc = shot_accuracy(model, make_loader(ds, 4, shuffle=False), {"many": [0], "medium": [1], "few": [2]})
    assert acc == {"all": pytest.approx(100 * 2 / 6), "many": 100.0, "medium": 0.0, "few": 0.0}
    assert model.training  # mode restored
    assert math.isnan(shot_accuracy(model, make_loader(ds, 4, shuffle=False), {"empty": [7]})["empty"])


def test_the_digits_lt_task_is_tailed_for_everyone_and_tested_on_every_digit():
    task = get_task("digits_lt", quick=True)
    y = task.student_data.train.tensors[1]
    assert torch.bincount(y, minlength=10).tolist() == [100, 77, 59, 46, 35, 27, 21, 16, 12, 10]
    assert task.teacher_data is task.student_data  # the long-tail protocol: no larger labelled set
    full = get_task("digits", quick=True)
    assert torch.equal(task.test_loader.dataset.tensors[1], full.test_loader.dataset.tensors[1])
    assert task_groups(task) == {"many": [0, 1, 2, 3], "medium": [4, 5, 6], "few": [7, 8, 9]}
    held = get_task("digits_lt", holdout=True)
    xs, ys = held.test_loader.dataset.tensors[:2]
    assert torch.bincount(ys).tolist() == [20] * 10
    train_x = task.student_data.train.tensors[0]
    assert not (xs.flatten(1)[:, None] == train_x.flatten(1)[None]).all(-1).any()  # none of them trained on
    assert get_task("digits_lt", imbalance=1.0).student_data.train.tensors[1].bincount().tolist() == [100] * 10


def test_the_long_tail_code_is_part_of_the_task_key(monkeypatch):
    import inspect

    from kdatlas.harness import longtail
    key = get_task("digits_lt").key()
    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda o: real(o) + ("\nx = 1\n" if o is longtail else ""))
    assert get_task("digits_lt").key() != key
