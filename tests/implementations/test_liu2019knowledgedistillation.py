"""Claims of Liu et al. (2019), IRG, checked on irg_edges / irg_transformation and the three losses."""
import math

import pytest
import torch
from torch import nn

from kdatlas.implementations.liu2019knowledgedistillation import (
    IRGLoss,
    irg_edge_loss,
    irg_edges,
    irg_transformation,
    irg_transformation_loss,
    irg_vertex_loss,
    match_width,
)
from kdatlas.testing import Case, catchers, seeded


class TinyNet(nn.Module):
    """Three linear 'stages' (the feature list) and a classifier: forward -> (features, logits)."""

    def __init__(self, widths=(4, 8, 16), classes=5):
        super().__init__()
        dims = (6, *widths)
        self.stages = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.Tanh()) for a, b in zip(dims, dims[1:]))
        self.fc = nn.Linear(widths[-1], classes)

    def forward(self, x):
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats, self.fc(x)


def _irg(s, t, x, y):
    (fs, zs), (ft, zt) = s(x), t(x)
    return IRGLoss()(fs, ft, zs, zt)


# The silent-bug catchers on all three terms: student widths 4/8/16, teacher 6/12/24.
test_catchers = catchers(Case(loss=_irg, student=lambda: TinyNet((4, 8, 16)),
                              teacher=lambda seed: seeded(lambda: TinyNet((6, 12, 24)), seed), zero_when_equal=True))


def _rotation(dim, seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    return q


def test_edges_by_hand_on_three_points():
    # Points 0, (3, 0), (0, 4): squared distances 9, 16, 25; the largest (25) normalises.
    f = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    expected = torch.tensor([[0, 9, 16], [9, 0, 25], [16, 25, 0]]) / 25.0
    assert torch.allclose(irg_edges(f), expected)
    assert torch.allclose(irg_edges(f, normalize=False), expected * 25)
    # edge loss against a unit right triangle (squared distances 1, 1, 2; max 2): mean of 9 entries
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    a_s = torch.tensor([[0, 1, 1], [1, 0, 2], [1, 2, 0]]) / 2.0
    assert math.isclose(irg_edge_loss(s, f).item(), ((a_s - expected) ** 2).mean().item(), rel_tol=1e-6)


def test_transformation_and_vertex_by_hand():
    # Three instances move by 1, 2 and 4 (squared 1, 4, 16) between two 1-d layers: Lambda = (1, 4, 16) / 16.
    a = torch.tensor([[0.0], [0.0], [0.0]])
    b = torch.tensor([[1.0], [-2.0], [4.0]])
    assert torch.allclose(irg_transformation(a, b), torch.tensor([1 / 16, 4 / 16, 1.0]))
    # student: all move the same distance -> Lambda_S = (1, 1, 1); loss = mean of squared gaps
    lam_s = torch.ones(3)
    gap = ((lam_s - torch.tensor([1 / 16, 4 / 16, 1.0])) ** 2).mean()
    loss = irg_transformation_loss([(a, torch.tensor([[1.0], [1.0], [-1.0]]))], [(a, b)])
    assert math.isclose(loss.item(), gap.item(), rel_tol=1e-6)
    # vertex: mean over batch and classes of squared logit gaps
    zs, zt = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [1.0, 3.0]])
    assert math.isclose(irg_vertex_loss(zs, zt).item(), (1 + 4 + 1 + 9) / 4, rel_tol=1e-6)


def test_edges_symmetric_zero_diagonal_and_invariant_to_rotation_translation_and_global_scale():
    torch.manual_seed(0)
    f = torch.randn(9, 5, dtype=torch.float64)
    a = irg_edges(f)
    assert torch.allclose(a, a.T) and torch.all(a.diagonal() == 0) and math.isclose(a.max().item(), 1.0)
    for g in (f @ _rotation(5, 1), f + 3.0, 0.01 * f, 40 * f @ _rotation(5, 2) - 1):
        assert torch.allclose(irg_edges(g), a, atol=1e-12)
    # ...so the edge loss is zero for a student that is the teacher up to those, even in other widths
    t = torch.randn(10, 6, dtype=torch.float64)
    s = 7.0 * torch.nn.functional.pad(t, (0, 3)) @ _rotation(9, 3) + 2.0
    assert irg_edge_loss(s, t).item() < 1e-20
    # but not for an anisotropic stretch (distances change)
    assert irg_edge_loss(t * torch.linspace(0.2, 3.0, 6, dtype=torch.float64), t) > 1e-4


def test_maps_are_globally_pooled_before_the_distances_as_in_the_official_code():
    torch.manual_seed(1)
    maps = torch.randn(6, 4, 5, 5)
    assert torch.allclose(irg_edges(maps), irg_edges(maps.mean((2, 3))))
    seq = torch.randn(6, 8, 10)
    assert torch.allclose(irg_transformation(maps, seq), irg_transformation(maps.mean((2, 3)), seq.mean(-1)))


def test_transformation_invariant_to_a_common_scale_and_rotation_of_both_layers():
    torch.manual_seed(2)
    a, b = torch.randn(8, 4, dtype=torch.float64), torch.randn(8, 4, dtype=torch.float64)
    lam = irg_transformation(a, b)
    q = _rotation(4, 4)
    assert torch.allclose(irg_transformation(3 * a @ q, 3 * b @ q), lam, atol=1e-12)
    assert torch.allclose(irg_transformation(a + 1.5, b + 1.5), lam, atol=1e-12)
    # a layer that leaves every instance where it was has no transformation (0, not NaN)
    assert torch.equal(irg_transformation(a, a.clone()), torch.zeros(8, dtype=torch.float64))


def test_match_width_averages_adjacent_channel_groups():
    f = torch.arange(12.0).reshape(2, 6)
    assert torch.equal(match_width(f, 3), torch.tensor([[0.5, 2.5, 4.5], [6.5, 8.5, 10.5]]))
    assert torch.equal(match_width(f, 6), f)
    with pytest.raises(ValueError, match="multiple"):
        match_width(f, 4)
    # different widths between the two layers: the wider one is averaged down
    a, b = torch.randn(5, 2), torch.randn(5, 4)
    lam = (a - match_width(b, 2)).pow(2).sum(-1)
    assert torch.allclose(irg_transformation(a, b), lam / lam.max())


def test_pinned_exact_gradient_through_the_max_not_the_caffe_backward():
    # The official Caffe layers treat max A as a constant in backward and send each entry's gradient
    # to its row instance only; this file differentiates A / max A exactly. Pin: autograd agrees with
    # finite differences, and differs from the Caffe-style gradient.
    torch.manual_seed(3)
    s = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randn(5, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: irg_edge_loss(x, t), (s,))
    exact, = torch.autograd.grad(irg_edge_loss(s, t), s)
    with torch.no_grad():
        raw = (s.unsqueeze(1) - s.unsqueeze(0)).pow(2).sum(-1)
        m = raw.max()
        g_a = 2 * (raw / m - irg_edges(t)) / 25  # d loss / d A_ij for the mean over 25 entries
        caffe = torch.einsum("ij,ijd->id", g_a, s.unsqueeze(1) - s.unsqueeze(0)) * 2 / m
    assert not torch.allclose(exact, caffe, atol=1e-6)


def test_pinned_reduction_against_the_caffe_euclidean_loss():
    # Caffe's EuclideanLoss on the (n, n) edge blob is sum / (2 n); this file's mean is sum / n^2.
    torch.manual_seed(4)
    n = 7
    s, t = torch.randn(n, 3, dtype=torch.float64), torch.randn(n, 5, dtype=torch.float64)
    caffe = (irg_edges(s) - irg_edges(t)).pow(2).sum() / (2 * n)
    assert torch.allclose(irg_edge_loss(s, t), caffe * 2 / n)


def test_module_weights_layers_and_terms():
    torch.manual_seed(5)
    fs = [torch.randn(6, c) for c in (2, 4, 8)]
    ft = [torch.randn(6, c) for c in (3, 6, 12)]
    zs, zt = torch.randn(6, 5), torch.randn(6, 5)
    m = IRGLoss()
    assert (m.vertex_weight, m.edge_weight, m.transformation_weight) == (0.1, 5.0, 5.0)
    assert m.edge_layers == (1, 2) and m.transformation_pairs == ((1, 2),)
    terms = IRGLoss(1.0, 2.0, 3.0, edge_layers=(0, 2), transformation_pairs=((0, 1), (1, 2)))(fs, ft, zs, zt)
    assert torch.isclose(terms["vertex"], irg_vertex_loss(zs, zt))
    assert torch.isclose(terms["edge"], 2.0 * (irg_edge_loss(fs[0], ft[0]) + irg_edge_loss(fs[2], ft[2])) / 2)
    tr = (irg_transformation_loss([(fs[0], fs[1])], [(ft[0], ft[1])])
          + irg_transformation_loss([(fs[1], fs[2])], [(ft[1], ft[2])])) / 2
    assert torch.isclose(terms["transformation"], 3.0 * tr)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="logit shapes"):
        irg_vertex_loss(torch.randn(4, 3), torch.randn(4, 5))
    with pytest.raises(ValueError, match="batch sizes"):
        irg_edge_loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="same"):
        irg_transformation_loss([], [])


def test_identical_instances_give_finite_values_and_gradients():
    s = torch.ones(4, 3, requires_grad=True)  # all distances 0: max floored
    loss = irg_edge_loss(s, torch.randn(4, 3)) + irg_transformation_loss([(s, 2 * s)], [(torch.randn(4, 3),) * 2])
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_training_transfers_the_graph_and_the_transformation():
    torch.manual_seed(6)
    teacher = TinyNet((12, 24, 48)).eval().requires_grad_(False)
    student = TinyNet((4, 8, 16))
    x = torch.randn(32, 6)
    crit = IRGLoss(vertex_weight=0.0, edge_weight=1.0, transformation_weight=1.0)
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    with torch.no_grad():
        ft, zt = teacher(x)
    first = last = None
    for _ in range(60):
        fs, zs = student(x)
        terms = crit(fs, ft, zs, zt)
        loss = terms["edge"] + terms["transformation"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
        last = loss.item()
    assert last < 0.5 * first
