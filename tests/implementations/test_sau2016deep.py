"""Claims of Sau & Balasubramanian (2016), noisy teachers, checked on perturb_logits / noisy_teacher_loss."""
import math

import pytest
import torch
from torch import nn

from kdatlas.implementations.ba2013deep import mimic_loss
from kdatlas.implementations.sau2016deep import (expected_noisy_loss, noisy_targets, noisy_teacher_loss,
                                                 perturb_logits)
from kdatlas.testing import Case, catchers, seeded

SIGMA = 0.1 ** 0.5


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _teacher(seed):
    return seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5)), seed)


# The silent-bug catchers, on the always-noisy path (alpha = 1) and on the clean one (alpha = 0).
test_catchers_noisy = catchers(Case(
    loss=lambda s, t, x, y: noisy_teacher_loss(s(x), t(x), SIGMA, 1.0, generator=_gen()),
    student=lambda: nn.Linear(6, 5), teacher=_teacher,
    zero_when_equal="a perturbed target differs from the teacher's logits, so a copy of the teacher "
                    "does not reach zero (the alpha = 0 case below checks the zero)"))
test_catchers_clean = catchers(Case(
    loss=lambda s, t, x, y: noisy_teacher_loss(s(x), t(x), SIGMA, 0.0, generator=_gen()),
    student=lambda: nn.Linear(6, 5), teacher=_teacher, zero_when_equal=True))


def test_no_noise_or_no_coin_is_ba_and_caruanas_logit_regression():
    torch.manual_seed(0)
    zs, zt = torch.randn(7, 5), torch.randn(7, 5) * 3
    clean = mimic_loss(zs, zt)
    assert torch.equal(noisy_teacher_loss(zs, zt, 0.0, 1.0, generator=_gen()), clean)
    assert torch.equal(noisy_teacher_loss(zs, zt, SIGMA, 0.0, generator=_gen()), clean)
    assert torch.equal(noisy_teacher_loss(zs, zt, SIGMA, 0.0, generator=_gen(), per_sample=True), clean)
    assert not torch.allclose(noisy_teacher_loss(zs, zt, SIGMA, 1.0, generator=_gen()), clean)


def test_loss_by_hand_and_on_a_reproduced_draw():
    # The formula on a given xi: z_t = (2, -1), xi = (0.5, -1) -> z_t' = (3, 0); z_s = (1, 1):
    # 1/2 * ((1 - 3)^2 + (1 - 0)^2) = 2.5.
    zt, zs = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 1.0]])
    assert math.isclose((0.5 * (zs - zt * (1 + torch.tensor([0.5, -1.0]))).pow(2).sum()).item(), 2.5)
    # The same formula on the implementation's own draw, reproduced from the generator: one coin
    # (alpha = 1 always perturbs), then xi ~ sigma * N(0, 1) per class.
    g = _gen(4)
    torch.rand((1, 1), generator=g)
    xi = torch.randn(1, 2, generator=g) * 0.7
    assert torch.allclose(noisy_teacher_loss(zs, zt, 0.7, 1.0, generator=_gen(4)),
                          0.5 * (zs - zt * (1 + xi)).pow(2).sum())
    assert torch.allclose(perturb_logits(zt, 0.7, generator=_gen(3)),
                          zt * (1 + torch.randn(1, 2, generator=_gen(3)) * 0.7))


def test_the_noise_is_multiplicative_gaussian_per_element():
    z = torch.full((200, 500), 2.0)
    xi = perturb_logits(z, 0.3, generator=_gen(1)) / z - 1
    assert abs(xi.mean().item()) < 3e-3
    assert abs(xi.std().item() - 0.3) < 3e-3
    # independent across classes and samples: neighbouring entries uncorrelated
    assert abs(torch.corrcoef(torch.stack([xi[:, :-1].flatten(), xi[:, 1:].flatten()]))[0, 1].item()) < 0.01
    assert abs(torch.corrcoef(torch.stack([xi[:-1].flatten(), xi[1:].flatten()]))[0, 1].item()) < 0.01


def test_zero_logits_stay_zero_and_signs_flip_only_below_minus_one():
    z = torch.zeros(10, 10)
    assert torch.equal(perturb_logits(z, 5.0, generator=_gen()), z)
    z = torch.ones(400, 500)
    flipped = (perturb_logits(z, 0.5, generator=_gen(2)) < 0).float().mean().item()
    p = 0.5 * math.erfc(2 / math.sqrt(2))  # P(xi < -1) = Phi(-1 / sigma) = Phi(-2) = 0.0228
    assert abs(flipped - p) < 0.002


def test_in_expectation_the_noise_adds_a_constant_so_the_mean_gradient_is_the_clean_one():
    # E ||z_s - (1 + xi) z_t||^2 = ||z_s - z_t||^2 + sigma^2 ||z_t||^2 (our derivation, the regulariser reading).
    torch.manual_seed(5)
    zs, zt = torch.randn(4, 6, dtype=torch.float64, requires_grad=True), 3 * torch.randn(4, 6, dtype=torch.float64)
    g = _gen(6)
    n = 20_000
    losses, grads = [], torch.zeros_like(zs)
    for _ in range(n // 100):
        rep_s = zs.repeat(100, 1)  # 100 independent draws per pass
        loss = noisy_teacher_loss(rep_s, zt.repeat(100, 1), SIGMA, 1.0, generator=g)
        (gs,) = torch.autograd.grad(loss, zs)
        losses.append(loss.item())
        grads += gs
    mc = sum(losses) / len(losses)
    assert math.isclose(mc, expected_noisy_loss(zs, zt, SIGMA).item(), rel_tol=5e-3)
    clean_grad = (zs.detach() - zt) / 4
    assert torch.allclose(grads / (n // 100), clean_grad, atol=5e-3)
    # the variance, not the mean, is what the noise adds: one noisy gradient is far from the clean one
    (one,) = torch.autograd.grad(noisy_teacher_loss(zs, zt, SIGMA, 1.0, generator=g), zs)
    assert (one - clean_grad).abs().max() > 0.05


def test_alpha_is_the_fraction_of_noisy_batches_or_of_noisy_samples():
    z = torch.ones(16, 5)
    g = _gen(7)
    batches = [noisy_targets(z, 0.5, 0.3, generator=g) for _ in range(3000)]
    noisy = [(b != z).any(dim=1) for b in batches]
    assert all(bool(r.all()) or not bool(r.any()) for r in noisy)  # per batch: all rows or none
    assert abs(sum(bool(r.all()) for r in noisy) / 3000 - 0.3) < 0.03
    rows = torch.stack([(noisy_targets(z, 0.5, 0.3, generator=g, per_sample=True) != z).any(dim=1)
                        for _ in range(1000)])
    assert abs(rows.float().mean().item() - 0.3) < 0.015
    assert ((rows.sum(1) > 0) & (rows.sum(1) < 16)).float().mean() > 0.9  # mixed batches


def test_targets_are_detached_and_the_teacher_untouched():
    zt = torch.randn(3, 4, requires_grad=True)
    before = zt.detach().clone()
    out = noisy_targets(zt, SIGMA, 1.0, generator=_gen())
    assert not out.requires_grad
    assert not perturb_logits(zt, SIGMA, generator=_gen()).requires_grad  # public on its own too
    assert torch.equal(zt.detach(), before)
    zs = torch.randn(3, 4, requires_grad=True)
    expected_noisy_loss(zs, zt, SIGMA).backward()  # the closed form, too, trains only the student
    assert zt.grad is None and zs.grad is not None


@pytest.mark.parametrize("kwargs, match", [({"noise_std": -0.1, "apply_prob": 0.5}, "noise_std"),
                                           ({"noise_std": 0.1, "apply_prob": 1.5}, "apply_prob")])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        noisy_teacher_loss(torch.zeros(2, 3), torch.zeros(2, 3), **kwargs)


def test_the_recipe_is_reproducible_per_seed_and_differs_across_seeds():
    from types import SimpleNamespace
    from kdatlas.recipes import get_recipe

    recipe = get_recipe("sau2016deep")
    s = recipe.settings_for("mnist1d", apply_prob=1.0)
    zt = torch.randn(8, 10)
    so, to = SimpleNamespace(logits=torch.zeros(8, 10)), SimpleNamespace(logits=zt)

    def losses(seed):
        ctx = SimpleNamespace(seed=seed, device=torch.device("cpu"))
        (phase,) = recipe.phases(ctx, s)
        return [phase.loss(so, to, None, 0.0)["noisy_mimic"].item() for _ in range(3)]

    a, b, c = losses(1), losses(1), losses(2)
    assert a == b and a != c and len(set(a)) == 3  # fresh noise every step, same stream per seed
