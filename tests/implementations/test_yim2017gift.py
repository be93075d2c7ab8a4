"""Claims of Yim et al. (2017), FSP matrices, checked on fsp_matrix / fsp_matrices / fsp_loss / the connector."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.yim2017gift import FSPConnector, fsp_loss, fsp_matrices, fsp_matrix
from kdatlas.testing import Case, catchers, seeded


class _Stages(nn.Module):
    """Two conv stages (the second strided) returning both maps, like the harness's forward_features."""

    def __init__(self, c1=4, c2=6):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, c1, 3, padding=1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU())

    def forward(self, x):
        h = self.a(x)
        return [h, self.b(h)]


# The catchers (kdatlas.testing). The student has the teacher's widths, as in the paper (no connector).
test_catchers = catchers(Case(
    loss=lambda s, t, x, y: fsp_loss(fsp_matrices(s(x)), fsp_matrices(t(x))),
    student=lambda: _Stages(), teacher=lambda seed: seeded(lambda: _Stages(), seed),
    x=lambda: torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(0)),
    zero_when_equal=True))


def test_fsp_of_a_single_position_is_the_outer_product():
    a = torch.tensor([1.0, -2.0]).view(1, 2, 1, 1)
    b = torch.tensor([3.0, 0.5, 4.0]).view(1, 3, 1, 1)
    assert torch.allclose(fsp_matrix(a, b)[0], torch.outer(a.flatten(), b.flatten()))


def test_fsp_by_hand_averages_over_positions():
    # two positions: F^1 channel maps [1, 2] and [0, 1]; F^2 channel map [3, -1]
    a = torch.tensor([[[1.0, 2.0], [0.0, 1.0]]])  # (1, 2 channels, 2 positions) - a 1-D map
    b = torch.tensor([[[3.0, -1.0]]])
    # G_11 = (1*3 + 2*(-1)) / 2 = 0.5 ; G_21 = (0*3 + 1*(-1)) / 2 = -0.5
    assert torch.allclose(fsp_matrix(a, b), torch.tensor([[[0.5], [-0.5]]]))


def test_invariant_to_one_spatial_permutation_of_both_maps():
    torch.manual_seed(0)
    a, b = torch.randn(2, 4, 5, 5), torch.randn(2, 7, 5, 5)
    perm = torch.randperm(25)
    pa = a.flatten(2)[..., perm].view_as(a)
    pb = b.flatten(2)[..., perm].view_as(b)
    assert torch.allclose(fsp_matrix(pa, pb), fsp_matrix(a, b), atol=1e-6)
    # ...but not to a permutation of one map only: the FSP relates the two layers position by position
    assert not torch.allclose(fsp_matrix(pa, b), fsp_matrix(a, b), atol=1e-3)


def test_reduction_is_the_papers_sum_divided_by_m_n_per_pair():
    # Eq. 2 sums the squared entries; this file (RepDistiller) averages them. Pinned, pair by pair.
    torch.manual_seed(1)
    gs = [torch.randn(3, 4, 6), torch.randn(3, 6, 8)]
    gt = [torch.randn(3, 4, 6), torch.randn(3, 6, 8)]
    paper = [(t - s).pow(2).sum((1, 2)).mean() for s, t in zip(gs, gt)]  # 1/N sum_x ||G_T - G_S||^2
    assert torch.allclose(fsp_loss(gs, gt), paper[0] / 24 + paper[1] / 48)
    assert torch.allclose(fsp_loss(gs, gt, weights=[2.0, 0.0]), 2 * paper[0] / 24)


def test_connector_is_linear_in_the_fsp_matrix():
    # a bias-free 1x1 conv W on each map turns G into W_a G W_b^T
    torch.manual_seed(2)
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)
    conn = FSPConnector([3, 5], [7, 9])
    pa, pb = conn([a, b])
    wa, wb = conn.weights
    assert pa.shape == (2, 7, 4, 4) and pb.shape == (2, 9, 4, 4)
    assert torch.allclose(fsp_matrix(pa, pb), wa @ fsp_matrix(a, b) @ wb.T, atol=1e-5)
    # the same 1x1 conv as nn.functional.conv2d
    assert torch.allclose(pa, F.conv2d(a, wa[:, :, None, None]), atol=1e-6)


def test_consecutive_pairs_pool_the_larger_map():
    torch.manual_seed(3)
    f = [torch.randn(2, 4, 8, 8), torch.randn(2, 6, 4, 4), torch.randn(2, 5, 4, 4)]
    g = fsp_matrices(f)
    assert [tuple(x.shape) for x in g] == [(2, 4, 6), (2, 6, 5)]
    assert torch.allclose(g[0], fsp_matrix(F.adaptive_avg_pool2d(f[0], (4, 4)), f[1]))
    # 1-D maps (sequences) work the same way
    g1 = fsp_matrices([torch.randn(2, 3, 20), torch.randn(2, 4, 10)])
    assert g1[0].shape == (2, 3, 4)


def test_widths_must_match_without_a_connector_and_spatial_sizes_in_a_pair():
    with pytest.raises(ValueError, match="widths"):
        fsp_loss([torch.randn(2, 3, 4)], [torch.randn(2, 6, 8)])
    with pytest.raises(ValueError, match="spatial"):
        fsp_matrix(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2))
    with pytest.raises(ValueError, match="against"):
        fsp_loss([torch.randn(2, 3, 4)], [])


def test_zero_for_a_student_equal_to_the_teacher_and_positive_otherwise():
    t = seeded(lambda: _Stages(), 0)
    x = torch.randn(4, 3, 6, 6)
    assert fsp_loss(fsp_matrices(copy.deepcopy(t)(x)), fsp_matrices(t(x))).item() == 0.0
    assert fsp_loss(fsp_matrices(seeded(lambda: _Stages(), 1)(x)), fsp_matrices(t(x))).item() > 1e-4


def test_stage_one_makes_the_students_flow_like_the_teachers():
    # Stage 1 alone (the paper's setting: equal widths, no labels) brings the FSP matrices close.
    g = torch.Generator().manual_seed(4)
    x = torch.randn(32, 3, 6, 6, generator=g)
    teacher = seeded(lambda: _Stages(), 0).requires_grad_(False)
    student = seeded(lambda: _Stages(), 1)
    with torch.no_grad():
        gt = fsp_matrices(teacher(x))
    opt = torch.optim.Adam(student.parameters(), lr=0.01)
    start = fsp_loss(fsp_matrices(student(x)), gt).item()
    for _ in range(300):
        opt.zero_grad()
        fsp_loss(fsp_matrices(student(x)), gt).backward()
        opt.step()
    assert fsp_loss(fsp_matrices(student(x)), gt).item() < 0.1 * start
