"""Claims of Ahn et al. (2019), variational information distillation, checked on gaussian_nll /
VIDRegressor / vid_loss."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.ahn2019variational import VIDRegressor, gaussian_nll, vid_loss
from kdatlas.testing import Case, catchers, seeded


class _Student(nn.Module):
    """A conv layer and its VID regressor: what the student side trains (the regressor is learned)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.vid = VIDRegressor(4, 16)

    def forward(self, x):
        return self.body(x)


test_catchers = catchers(Case(
    loss=lambda s, t, x, y: vid_loss(s(x), t(x), s.vid),
    student=_Student,
    teacher=lambda seed: seeded(lambda: nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU()), seed),
    x=lambda: torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0)),
    zero_when_equal="a negative log-likelihood: with mu(s) = t it is still 0.5 * log sigma^2 per entry, "
                    "and the student here is a narrower layer with a regressor, not a copy of the teacher"))


def test_variance_is_softplus_plus_eps_and_always_positive():
    reg = VIDRegressor(3, 4, eps=1e-5)
    with torch.no_grad():
        reg.alpha.copy_(torch.tensor([-1e4, -3.0, 0.0, 2.0]))
    v = reg.variance()
    assert (v > 0).all()
    assert torch.allclose(v, torch.log1p(torch.exp(reg.alpha)) + 1e-5)
    assert v[0].item() == pytest.approx(1e-5)  # softplus -> 0, eps keeps the variance positive
    assert torch.isfinite(gaussian_nll(torch.zeros(1, 4, 2, 2), v, torch.ones(1, 4, 2, 2)))


def test_initial_variance_is_the_chosen_one():
    # RepDistiller: the variance starts at init_pred_var = 5 (alpha = softplus^{-1}(5 - eps))
    assert torch.allclose(VIDRegressor(3, 6).variance(), torch.full((6,), 5.0), atol=1e-5)
    assert torch.allclose(VIDRegressor(3, 6, init_variance=0.5).variance(), torch.full((6,), 0.5), atol=1e-5)


def test_loss_is_the_gaussian_nll_up_to_a_constant():
    torch.manual_seed(0)
    mean, target = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    var = torch.tensor([0.5, 2.0, 7.0])
    dist = torch.distributions.Normal(mean, var.sqrt().view(1, 3, 1, 1))
    exact = -dist.log_prob(target).mean()
    assert torch.allclose(gaussian_nll(mean, var, target) + 0.5 * math.log(2 * math.pi), exact, atol=1e-6)


def test_hand_case():
    # one entry per channel: c=0: var 1, residual 2 -> 0.5 * (0 + 4) = 2; c=1: var e^2, residual 0 -> 0.5 * 2 = 1
    mean = torch.tensor([0.0, 3.0]).view(1, 2, 1)
    target = torch.tensor([2.0, 3.0]).view(1, 2, 1)
    var = torch.tensor([1.0, math.exp(2.0)])
    assert gaussian_nll(mean, var, target).item() == pytest.approx((2.0 + 1.0) / 2)


def test_reduction_is_the_papers_sum_divided_by_c_h_w():
    # the paper sums log sigma_c + r^2/(2 sigma_c^2) over c, h, w; this file (RepDistiller) averages
    torch.manual_seed(1)
    mean, target = torch.randn(3, 5, 4, 2), torch.randn(3, 5, 4, 2)
    var = torch.rand(5) + 0.1
    sig = var.sqrt().view(1, 5, 1, 1)
    paper = (sig.log() + (target - mean).pow(2) / (2 * sig**2)).sum((1, 2, 3)).mean()  # per sample, batch mean
    assert torch.allclose(gaussian_nll(mean, var, target), paper / (5 * 4 * 2), atol=1e-6)


def test_with_unit_variance_it_is_half_the_fitnets_hint():
    torch.manual_seed(2)
    mean, target = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    assert torch.allclose(gaussian_nll(mean, torch.ones(4), target), 0.5 * F.mse_loss(mean, target))


def test_the_optimal_variance_is_the_mean_squared_residual_of_each_channel():
    # d/d var of 0.5 (log var + r^2 / var) is zero at var = mean r^2: at that alpha the gradient vanishes
    torch.manual_seed(3)
    reg = VIDRegressor(3, 4)
    s, t = torch.randn(8, 3, 5, 5), 3.0 * torch.randn(8, 4, 5, 5)
    with torch.no_grad():
        resid = (t - reg.mean(s)).pow(2).mean((0, 2, 3))
        reg.alpha.copy_(torch.log(torch.expm1(resid - reg.eps)))
    assert torch.allclose(reg.variance(), resid, rtol=1e-5)
    vid_loss(s, t, reg).backward()
    assert reg.alpha.grad.abs().max() < 1e-5
    # ...and moving any variance away from it raises the loss
    base = vid_loss(s, t, reg).item()
    with torch.no_grad():
        reg.alpha[1] += 0.3
    assert vid_loss(s, t, reg).item() > base


def test_unpredictable_channels_get_a_large_variance_and_a_small_pull():
    # The heteroscedastic point of the paper: a teacher channel the student can predict gets a small
    # variance; pure noise gets a large one, so its squared error is down-weighted by 1 / sigma^2.
    g = torch.Generator().manual_seed(4)
    s = torch.randn(64, 3, 4, 4, generator=g)
    predictable = s[:, :1] * 2.0 - s[:, 1:2]  # a linear function of the student's channels
    noise = 2.0 * torch.randn(64, 1, 4, 4, generator=g)
    t = torch.cat([predictable, noise], 1)
    reg = seeded(lambda: VIDRegressor(3, 2, hidden=16), 0)
    opt = torch.optim.Adam(reg.parameters(), lr=0.02)  # alpha starts at softplus^-1(5): room to move
    for _ in range(800):
        opt.zero_grad()
        vid_loss(s, t, reg).backward()
        opt.step()
    v = reg.variance().detach()
    assert v[0] < 0.2 and v[1] > 2.0  # noise of std 2 -> variance near 4
    assert v[1] / v[0] > 10


def test_regressor_handles_sequences_and_images_and_sizes_must_match():
    assert vid_loss(torch.randn(2, 3, 10), torch.randn(2, 7, 10), VIDRegressor(3, 7, dim=1)).shape == ()
    assert VIDRegressor(3, 7).mean(torch.randn(2, 3, 4, 4)).shape == (2, 7, 4, 4)
    with pytest.raises(ValueError, match="spatial"):
        vid_loss(torch.randn(2, 3, 4, 4), torch.randn(2, 7, 2, 2), VIDRegressor(3, 7))
    with pytest.raises(ValueError, match="dim"):
        VIDRegressor(3, 7, dim=3)
