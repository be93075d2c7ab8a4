"""Claims of Guo et al. (2020), spherical KD, checked on sphere_normalize / match_teacher_std / skd_loss."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.guo2020reducing import match_teacher_std, skd_loss, sphere_normalize
from kdatlas.implementations.hinton2015distilling import kd_loss
from kdatlas.testing import Case, catchers, seeded


def _teacher(seed):
    return seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5)), seed)


test_catchers = catchers(Case(loss=lambda s, t, x, y: skd_loss(s(x), t(x), y), student=lambda: nn.Linear(6, 5),
                              teacher=_teacher, zero_when_equal=True))
test_catchers_teacher_std = catchers(Case(loss=lambda s, t, x, y: skd_loss(s(x), t(x), y, mode="teacher_std"),
                                          student=lambda: nn.Linear(6, 5), teacher=_teacher, zero_when_equal=True,
                                          zero_tol=1e-5))


def test_projection_by_hand():
    # z = (1, 2, 3): mean 2, biased variance 2/3 -> z_hat = m * (-1, 0, 1) / sqrt(2/3).
    z = torch.tensor([[1.0, 2.0, 3.0]])
    expected = 2.0 * torch.tensor([[-1.0, 0.0, 1.0]]) / math.sqrt(2 / 3)
    assert torch.allclose(sphere_normalize(z, multiplier=2.0), expected, atol=1e-5)
    out = sphere_normalize(torch.randn(50, 10) * 7 + 3, multiplier=2.5)
    assert torch.allclose(out.mean(1), torch.zeros(50), atol=1e-5)
    assert torch.allclose(out.pow(2).mean(1).sqrt(), torch.full((50,), 2.5), atol=1e-4)  # std m
    assert torch.allclose(out.norm(dim=1), torch.full((50,), 2.5 * math.sqrt(10)), atol=1e-3)  # radius m sqrt(C)


def test_confidence_is_removed_affine_maps_of_either_side_leave_the_loss_unchanged():
    # The paper's point: z -> a z + b (a > 0, per sample) changes a logit vector's confidence only.
    torch.manual_seed(0)
    zs, zt, y = torch.randn(6, 8, dtype=torch.float64), torch.randn(6, 8, dtype=torch.float64), torch.arange(6)
    a = torch.rand(6, 1, dtype=torch.float64) * 5 + 0.2
    b = torch.randn(6, 1, dtype=torch.float64) * 3
    base = skd_loss(zs, zt, y)
    for k in ("ce", "skd"):
        assert torch.allclose(skd_loss(a * zs + b, zt, y)[k], base[k], atol=1e-6)
        assert torch.allclose(skd_loss(zs, a * zt + b, y)[k], base[k], atol=1e-6)
    # Hinton KD is not invariant: a sharper teacher changes it.
    assert not torch.allclose(kd_loss(zs, 3 * zt, 4.0), kd_loss(zs, zt, 4.0), atol=1e-3)


def test_zero_kd_when_the_student_is_a_less_confident_copy_of_the_teacher_unlike_hinton_kd():
    torch.manual_seed(1)
    zt = 6 * torch.randn(5, 10)
    zs = 0.2 * zt + 1.0  # same ranking and ratios, a fifth of the confidence
    assert skd_loss(zs, zt, None)["skd"].abs() < 1e-6
    assert skd_loss(zs, zt, None, mode="teacher_std")["skd"].abs() < 1e-5
    assert kd_loss(zs, zt, 4.0) > 0.1


def test_projection_keeps_the_argmax_and_the_ranking():
    torch.manual_seed(2)
    z = torch.randn(100, 10) * 4
    assert torch.equal(sphere_normalize(z).argsort(1), z.argsort(1))
    assert torch.equal(match_teacher_std(z, torch.randn(100, 10)).argsort(1), z.argsort(1))


def test_loss_by_hand_is_the_weighted_ce_plus_t2_kl_on_projected_logits():
    torch.manual_seed(3)
    zs, zt, y = torch.randn(4, 5), torch.randn(4, 5) * 3, torch.tensor([0, 1, 2, 3])
    T, alpha, m = 3.0, 0.7, 2.5
    proj = lambda z: m * (z - z.mean(1, keepdim=True)) / z.var(1, unbiased=False, keepdim=True).sqrt()  # noqa: E731
    hs, ht = proj(zs), proj(zt)
    p_t = F.softmax(ht / T, 1)
    kl = (p_t * (p_t.log() - F.log_softmax(hs / T, 1))).sum(1).mean()
    out = skd_loss(zs, zt, y, temperature=T, alpha=alpha, multiplier=m)
    assert torch.allclose(out["skd"], alpha * T ** 2 * kl, rtol=1e-5)
    assert torch.allclose(out["ce"], (1 - alpha) * F.cross_entropy(hs, y), rtol=1e-5)
    assert set(skd_loss(zs, zt, None)) == {"skd"}


def test_teacher_std_mode_is_hinton_kd_when_the_student_already_has_the_teachers_spread():
    torch.manual_seed(4)
    zt = torch.randn(6, 7) * 4
    zs = torch.randn(6, 7)
    zs = zs / zs.std(1, keepdim=True) * zt.std(1, keepdim=True)  # same per-sample std as the teacher
    out = skd_loss(zs, zt, None, temperature=4.0, alpha=1.0, mode="teacher_std")["skd"]
    assert torch.allclose(out, kd_loss(zs, zt, 4.0), atol=1e-5)
    # and it keeps the teacher's confidence: a sharper teacher changes the loss (the sphere mode does not)
    assert not torch.allclose(skd_loss(zs, 3 * zt, None, mode="teacher_std")["skd"], skd_loss(zs, zt, None, mode="teacher_std")["skd"])


def test_the_teacher_side_is_detached_in_both_projections():
    zs, zt = torch.randn(4, 5, requires_grad=True), torch.randn(4, 5, requires_grad=True)
    assert not match_teacher_std(zs.detach(), zt).requires_grad  # public on its own: no graph to the teacher
    match_teacher_std(zs, zt).sum().backward()
    assert zt.grad is None and zs.grad is not None
    sum(skd_loss(zs, zt, torch.arange(4)).values()).backward()
    assert zt.grad is None


def test_the_multiplier_acts_as_a_temperature_on_the_sphere():
    # On the sphere only m / T matters: (m, T) and (2m, 2T) give the same KL (times T^2).
    torch.manual_seed(5)
    zs, zt = torch.randn(5, 6), torch.randn(5, 6)
    a = skd_loss(zs, zt, None, temperature=2.0, multiplier=1.0, alpha=1.0)["skd"] / 2.0 ** 2
    b = skd_loss(zs, zt, None, temperature=4.0, multiplier=2.0, alpha=1.0)["skd"] / 4.0 ** 2
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [({"mode": "unit"}, "mode"), ({"alpha": 1.2}, "alpha"),
                                           ({"multiplier": 0.0}, "multiplier")])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        skd_loss(torch.randn(2, 3), torch.randn(2, 3), None, **kwargs)
