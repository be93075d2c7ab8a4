"""Claims of Su & Maji (2016), cross quality distillation, checked on degrade / cross_quality_loss / train_cqd.

The accuracy claim on degraded inputs (the CQD student beats the same student trained on degraded
inputs alone) is shown in the notebook; the benchmark does not run it (its rows are scored on clean
inputs: see the recipe)."""
import math

import pytest
import torch
from torch import nn

from kdatlas.implementations.su2016adapting import cross_quality_loss, degrade
from kdatlas.testing import Case, catchers, seeded


def _teacher(seed):
    return seeded(lambda: nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                        nn.Linear(16, 5)), seed)


# The student sees the degraded copy, the teacher the clean input of the same examples.
test_catchers = catchers(Case(
    loss=lambda s, t, x, y: cross_quality_loss(s(degrade(x.view(-1, 1, 8), "lowres", 2)), t(x.view(-1, 1, 8)), y),
    student=lambda: nn.Sequential(nn.Flatten(), nn.Linear(8, 5)), teacher=_teacher,
    zero_when_equal="the student's input is degraded and the teacher's clean, so a copy of the teacher still "
                    "differs from it",
    x=lambda: torch.randn(8, 8, generator=torch.Generator().manual_seed(0))))


def test_lowres_is_piecewise_constant_and_factor_one_is_the_identity():
    x = torch.arange(8.0).view(1, 1, 8)
    assert torch.equal(degrade(x, "lowres", 2), torch.tensor([[[0.5, 0.5, 2.5, 2.5, 4.5, 4.5, 6.5, 6.5]]]))
    assert torch.equal(degrade(x, "lowres", 1), x)
    img = torch.randn(2, 3, 4, 4)
    d = degrade(img, "lowres", 2)
    assert torch.allclose(d[..., 0::2, 0::2], d[..., 1::2, 1::2]) and torch.allclose(d.mean(), img.mean(), atol=1e-6)
    with pytest.raises(ValueError, match="divide"):
        degrade(torch.randn(1, 1, 7), "lowres", 2)
    with pytest.raises(ValueError, match="kind"):
        degrade(x, "blur")


def test_noise_has_the_requested_spread_and_follows_the_generator():
    x = torch.zeros(200, 1, 50)
    a = degrade(x, "noise", noise_std=0.3, generator=torch.Generator().manual_seed(1))
    b = degrade(x, "noise", noise_std=0.3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and abs(a.std().item() - 0.3) < 0.01


def test_loss_by_hand_and_without_labels():
    zs, zt, y = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([1])
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)  # KL((1/4, 3/4) || (1/2, 1/2)) at T = 1
    out = cross_quality_loss(zs, zt, y, ce_weight=0.5, kd_weight=2.0, temperature=1.0)
    assert math.isclose(out["cqd"].item(), 2.0 * kl, rel_tol=1e-6)
    assert math.isclose(out["ce"].item(), 0.5 * math.log(2.0), rel_tol=1e-6)
    assert set(cross_quality_loss(zs, zt, None)) == {"cqd"}  # pure distillation: no label needed


def test_the_pairing_is_the_method_shuffling_one_side_changes_the_loss():
    torch.manual_seed(2)
    zs, zt = torch.randn(6, 4), torch.randn(6, 4) * 3
    base = cross_quality_loss(zs, zt, None)["cqd"]
    assert not torch.allclose(cross_quality_loss(zs, zt[torch.randperm(6)], None)["cqd"], base)
    with pytest.raises(ValueError, match="paired"):
        cross_quality_loss(zs, zt[:5], None)


def test_train_cqd_feeds_the_teacher_clean_and_the_student_degraded_copies_of_one_batch():
    from kdatlas.harness import get_task
    from kdatlas.implementations import su2016adapting as impl
    from kdatlas.recipes.su2016adapting import SETTINGS, train_cqd

    task = get_task("mnist1d", quick=True, epochs=1)
    teacher = task.make_teacher().eval().requires_grad_(False)
    seen_t, seen_s = [], []
    teacher.register_forward_hook(lambda m, i, o: seen_t.append(i[0].clone()))
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    orig = impl.degrade
    impl.degrade = lambda x, *a, **k: (seen_s.append((x.clone(), orig(x, *a, **k))), seen_s[-1][1])[1]
    try:
        train_cqd(task, teacher, 1)
    finally:
        impl.degrade = orig
    assert len(seen_t) == len(seen_s) == len(task.student_loader(1))
    for t_in, (clean, degraded) in zip(seen_t, seen_s):
        assert torch.equal(t_in, clean) and not torch.equal(t_in, degraded)  # same examples, two qualities
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert SETTINGS["kd_weight"] > 0
