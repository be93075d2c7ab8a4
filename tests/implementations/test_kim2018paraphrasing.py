"""Claims of Kim, Park & Kwak (2018), factor transfer, checked on the paraphraser, the factors and the recipe.

The accuracy claim (FT beats the student alone) is measured by the benchmark, five seeds per task."""
import math

import pytest
import torch
from torch import nn

from kdatlas.implementations.kim2018paraphrasing import (Paraphraser, Translator, factor, factor_transfer_loss,
                                                          reconstruction_loss)
from kdatlas.testing import Case, catchers, seeded

_PARA = seeded(lambda: Paraphraser(4, 0.5, dim=1), 7).eval().requires_grad_(False)
_TRANS = seeded(lambda: Translator(3, 2, dim=1), 8)


def _teacher(seed):
    return seeded(lambda: nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.BatchNorm1d(4), nn.ReLU()), seed)


test_catchers = catchers(Case(
    loss=lambda s, t, x, y: factor_transfer_loss(_TRANS(s(x)), _PARA.encode(t(x))),
    student=lambda: nn.Conv1d(2, 3, 3, padding=1), teacher=_teacher,
    zero_when_equal="the student's factor comes from the translator, the teacher's from the paraphraser: two "
                    "different maps of the same features, so a copy of the teacher does not reach zero",
    x=lambda: torch.randn(8, 2, 6, generator=torch.Generator().manual_seed(0))))


def test_the_official_architecture_shapes_in_1d_and_2d():
    p = Paraphraser(16, 0.5, dim=1)
    x = torch.randn(3, 16, 10)
    assert p.factor_channels == 8 and p.encode(x).shape == (3, 8, 10) and p(x).shape == x.shape
    assert Translator(6, 8, dim=1)(torch.randn(3, 6, 10)).shape == (3, 8, 10)
    p2 = Paraphraser(12, 0.5, dim=2)
    assert p2.encode(torch.randn(2, 12, 4, 4)).shape == (2, 6, 4, 4)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in p.modules())  # no BN: commented out in the code
    assert sum(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.1 for m in p.modules()) == 6
    with pytest.raises(ValueError, match="rate"):
        Paraphraser(1, 0.1)


def test_factors_are_flattened_and_unit_norm_per_sample():
    x = torch.randn(4, 3, 5)
    f = factor(x)
    assert f.shape == (4, 15) and torch.allclose(f.norm(dim=1), torch.ones(4))


def test_the_transfer_distance_by_hand():
    # Two samples of two-entry factors: (3, 4) -> (0.6, 0.8) vs (1, 0); (0, 2) -> (0, 1) vs (0, 1).
    fs = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    ft = torch.tensor([[5.0, 0.0], [0.0, 7.0]])
    expected = (abs(0.6 - 1.0) + abs(0.8 - 0.0) + 0 + 0) / 4  # mean over batch and entries (nn.L1Loss)
    assert math.isclose(factor_transfer_loss(fs, ft).item(), expected, rel_tol=1e-6)


def test_zero_and_invariant_for_positive_rescaling_of_either_factor():
    torch.manual_seed(1)
    fs, ft = torch.randn(5, 4, 3), torch.randn(5, 4, 3)
    a, b = torch.rand(5, 1, 1) * 4 + 0.1, torch.rand(5, 1, 1) * 4 + 0.1
    assert torch.allclose(factor_transfer_loss(a * fs, b * ft), factor_transfer_loss(fs, ft), atol=1e-6)
    assert factor_transfer_loss(a * ft, ft) < 1e-7
    assert factor_transfer_loss(-ft, ft) > 0.1  # a negative scale is not the same direction


def test_reconstruction_loss_variants_and_it_trains_only_the_paraphraser():
    torch.manual_seed(2)
    p = Paraphraser(4, 0.5, dim=1)
    x = torch.randn(6, 4, 5, requires_grad=True)
    out = p(x.detach())
    assert torch.allclose(reconstruction_loss(p, x), (out - x.detach()).abs().mean())
    assert torch.allclose(reconstruction_loss(p, x, p=2), (out - x.detach()).pow(2).mean())
    reconstruction_loss(p, x).backward()
    assert x.grad is None and all(q.grad is not None for q in p.parameters())
    with pytest.raises(ValueError, match="p must"):
        reconstruction_loss(p, x, p=3)


def test_stage_one_learns_to_reconstruct_and_hands_over_a_frozen_paraphraser():
    from kdatlas.harness import get_task
    from kdatlas.harness.train import TeacherCache
    from kdatlas.recipes import get_recipe, make_context
    from kdatlas.recipes.kim2018paraphrasing import train_paraphraser

    task = get_task("mnist1d", quick=True)
    teacher = task.make_teacher().eval().requires_grad_(False)
    cache = TeacherCache.build(teacher, task.student_data.train)
    para, hist = train_paraphraser(make_context(task, teacher, 1), get_recipe("kim2018paraphrasing").settings_for("mnist1d", paraphraser_epochs=15), cache)
    rec = hist.terms["reconstruction"]
    assert rec[-1] < 0.8 * rec[0], rec                                  # it learns (AdamW; see the recipe)
    assert not para.training and not any(q.requires_grad for q in para.parameters())
    assert para.factor_channels == round(0.5 * cache.features[-1].shape[1])


def test_the_recipe_leaves_the_teacher_untouched_and_logs_both_stages():
    from kdatlas.harness import get_task
    from kdatlas.recipes import get_recipe, run_recipe

    task = get_task("mnist1d", quick=True, epochs=2)
    teacher = task.make_teacher().eval().requires_grad_(False)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    _, hist = run_recipe(get_recipe("kim2018paraphrasing"), task, teacher, 1, settings={"paraphraser_epochs": 2})
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert {"reconstruction", "ce", "ft"} <= set(hist.terms)
    assert [name for name, _ in hist.phases] == ["paraphraser", "student"]
