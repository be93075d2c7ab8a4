"""Claims of Huang & Wang (2017), neuron selectivity transfer, checked on selectivity / mmd2 / nst_loss."""
import math

import pytest
import torch
from torch import nn

from kdatlas.implementations.huang2017like import kernel_matrix, mmd2, nst_loss, selectivity
from kdatlas.testing import Case, catchers, seeded

# The silent-bug catchers (kdatlas.testing): conv maps of a 4-channel student and a 16-channel
# teacher (NST compares distributions of channel patterns, so the widths may differ).
test_catchers = catchers(Case(
    loss=lambda s, t, x, y: nst_loss(s(x), t(x)),
    student=lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()),
    teacher=lambda seed: seeded(lambda: nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU()), seed),
    x=lambda: torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0)),
    zero_when_equal=True))


def _one(rows):  # a (1, C, HW) map from a list of channel rows
    return torch.tensor([rows], dtype=torch.float64)


def test_mmd_by_hand_poly_and_linear():
    # Teacher channels e1, e2 (2 positions); the student's single channel [3, 3] -> [1, 1]/sqrt(2).
    t, s = _one([[1.0, 0.0], [0.0, 1.0]]), _one([[3.0, 3.0]])
    # poly d=2, c=0: TT mean of [[1,0],[0,1]] = 1/2; SS = 1; TS = (1/sqrt2)^2 = 1/2 -> 1/2 + 1 - 2 * 1/2
    assert math.isclose(nst_loss(s, t).item(), 0.5, rel_tol=1e-9)
    # linear: 1/2 + 1 - 2/sqrt(2) = ||mean_T - mean_S||^2 = 2 (1/2 - 1/sqrt2)^2
    lin = 1.5 - 2.0 / math.sqrt(2.0)
    assert math.isclose(nst_loss(s, t, kernel="linear").item(), lin, rel_tol=1e-9)
    assert math.isclose(lin, 2 * (0.5 - 1 / math.sqrt(2.0)) ** 2, rel_tol=1e-9)
    # poly with c: ((x^T y + c)^2): TT (1 + 0 + 0 + 1 + 2 c (...)) spelled out for c = 1
    c = 1.0
    tt = ((1 + c) ** 2 * 2 + c**2 * 2) / 4
    ss = (1 + c) ** 2
    ts = (1 / math.sqrt(2) + c) ** 2
    assert math.isclose(nst_loss(s, t, c=c).item(), tt + ss - 2 * ts, rel_tol=1e-9)


def test_patterns_are_normalised_per_channel_over_positions():
    torch.manual_seed(0)
    a = torch.randn(2, 5, 4, 3)
    p = selectivity(a)
    assert p.shape == (2, 5, 12)
    assert torch.allclose(p.norm(dim=2), torch.ones(2, 5), atol=1e-6)
    # rescaling one channel changes nothing; rescaling one position does (per position != per channel)
    t = torch.randn(2, 7, 4, 3)
    scaled = a.clone()
    scaled[:, 2] *= 10.0
    assert torch.allclose(nst_loss(scaled, t), nst_loss(a, t), atol=1e-6)
    pos = a.clone()
    pos[..., 0, 0] *= 10.0
    assert not torch.allclose(nst_loss(pos, t), nst_loss(a, t), atol=1e-4)


def test_linear_kernel_is_the_distance_of_the_mean_patterns():
    torch.manual_seed(1)
    s, t = torch.randn(3, 6, 5, 5, dtype=torch.float64), torch.randn(3, 10, 5, 5, dtype=torch.float64)
    ms, mt = selectivity(s).mean(1), selectivity(t).mean(1)
    assert torch.allclose(nst_loss(s, t, kernel="linear"), (ms - mt).pow(2).sum(1).mean())


def test_poly2_is_gram_matching_of_positions_the_style_transfer_link():
    # d = 2, c = 0: MMD^2 = || F_T^T F_T / C_T - F_S^T F_S / C_S ||_F^2 (HW x HW Gram matrices).
    torch.manual_seed(2)
    s, t = torch.randn(3, 6, 4, 4, dtype=torch.float64), torch.randn(3, 10, 4, 4, dtype=torch.float64)
    fs, ft = selectivity(s), selectivity(t)
    gs = fs.transpose(1, 2) @ fs / fs.shape[1]
    gt = ft.transpose(1, 2) @ ft / ft.shape[1]
    assert torch.allclose(nst_loss(s, t), (gt - gs).pow(2).sum((1, 2)).mean())


def test_linear_matches_only_means_poly2_also_second_moments():
    # Teacher patterns {e1, e2, -e1, -e2}, student {e1, -e1}: same (zero) mean, different spread.
    t = _one([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    s = _one([[1.0, 0.0], [-1.0, 0.0]])
    assert nst_loss(s, t, kernel="linear").item() < 1e-12
    # Gram: teacher I/2, student e1 e1^T -> ||diag(1/2, 1/2) - diag(1, 0)||^2 = 1/2
    assert math.isclose(nst_loss(s, t).item(), 0.5, rel_tol=1e-9)
    assert nst_loss(s, t, kernel="gaussian").item() > 1e-3


def test_invariant_to_channel_order_and_count():
    torch.manual_seed(3)
    s = torch.randn(2, 6, 5, 5)
    t = torch.randn(2, 9, 5, 5)
    ps, pt = torch.randperm(6), torch.randperm(9)
    for kernel in ("linear", "poly", "gaussian"):
        assert torch.allclose(nst_loss(s[:, ps], t[:, pt], kernel), nst_loss(s, t, kernel), atol=1e-6)
        # a teacher 4x wider whose channels repeat the student's has the same distribution: zero
        assert nst_loss(s, s.repeat(1, 4, 1, 1), kernel).item() < 1e-6
        assert nst_loss(s, t, kernel).item() > 1e-4  # ...and not for any wide teacher


def test_mmd_is_nonnegative_and_zero_for_identical_sets():
    torch.manual_seed(4)
    for _ in range(5):
        x, y = torch.randn(2, 5, 8), torch.randn(2, 7, 8)
        for kernel in ("linear", "poly", "gaussian"):
            assert (mmd2(x, y, kernel=kernel) >= -1e-6).all()
            assert mmd2(x, x.clone(), kernel=kernel).abs().max() < 1e-5


def test_gaussian_kernel_by_hand():
    a = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    b = torch.tensor([[[1.0, 0.0]]])
    k = kernel_matrix(a, b, kernel="gaussian", sigma=2.0)
    assert torch.allclose(k.squeeze(), torch.exp(-torch.tensor([1.0, 1.0]) / 8.0))


def test_follows_the_authors_code_up_to_the_constant_teacher_term():
    # symbol/transfer.py: mean (f_S f_S^T)^2 - 2 mean (f_S f_T^T)^2, no teacher-teacher sum. This file
    # adds that sum (a constant for the student): same gradient, value shifted by it.
    torch.manual_seed(5)
    s = torch.randn(3, 4, 5, 5, requires_grad=True)
    t = torch.randn(3, 12, 5, 5)
    fs, ft = selectivity(s), selectivity(t)
    code = ((fs @ fs.transpose(1, 2)).pow(2).mean((1, 2)) - 2 * (fs @ ft.transpose(1, 2)).pow(2).mean((1, 2))).mean()
    ours = nst_loss(s, t)
    const = (ft @ ft.transpose(1, 2)).pow(2).mean((1, 2)).mean()
    assert torch.allclose(ours, code + const, atol=1e-6)
    g_code, = torch.autograd.grad(code, s)
    g_ours, = torch.autograd.grad(nst_loss(s, t), s)
    assert torch.allclose(g_code, g_ours, atol=1e-6)


def test_spatial_sizes_must_match_and_kernels_are_named():
    with pytest.raises(ValueError, match="spatial"):
        nst_loss(torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4))
    with pytest.raises(ValueError, match="batches"):
        nst_loss(torch.randn(2, 4, 4, 4), torch.randn(3, 4, 4, 4))
    with pytest.raises(ValueError, match="kernel"):
        nst_loss(torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4), kernel="rbf")
    # 1-D maps (sequences) work the same way
    assert nst_loss(torch.randn(2, 3, 10), torch.randn(2, 8, 10)).shape == ()


def test_training_on_nst_alone_pulls_the_students_patterns_onto_the_teachers():
    # The mechanism: a conv layer half as wide trained only on NST against a fixed one ends with
    # selectivity patterns distributed like the teacher's (MMD^2 down to under a quarter).
    g = torch.Generator().manual_seed(6)
    x = torch.randn(16, 3, 6, 6, generator=g)
    teacher = seeded(lambda: nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU()), 0).requires_grad_(False)
    student = seeded(lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()), 1)
    opt = torch.optim.Adam(student.parameters(), lr=0.02)
    with torch.no_grad():
        t_feat = teacher(x)
    start = nst_loss(student(x), t_feat).item()
    for _ in range(200):
        opt.zero_grad()
        nst_loss(student(x), t_feat).backward()
        opt.step()
    end = nst_loss(student(x), t_feat).item()
    assert end < 0.25 * start
