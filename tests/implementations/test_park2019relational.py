"""Claims of Park et al. (2019), Relational KD, checked on rkd_distance_loss / rkd_angle_loss."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.park2019relational import (
    RKDLoss,
    angle_potential,
    pairwise_distance_potential,
    rkd_angle_loss,
    rkd_distance_loss,
)
from kdatlas.testing import Case, catchers, seeded

# The silent-bug catchers (kdatlas.testing) on both terms: 4-d student, 8-d teacher embeddings.
test_catchers = catchers(Case(loss=lambda s, t, x, y: RKDLoss()(s(x), t(x)), student=lambda: nn.Linear(6, 4),
                              teacher=lambda seed: seeded(lambda: nn.Linear(6, 8), seed), zero_when_equal=True))


def _huber(x, y):
    d = abs(x - y)
    return 0.5 * d * d if d <= 1 else d - 0.5


def _rotation(dim, seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    return q


def test_three_point_case_by_hand():
    # Teacher: a 3-4-5 right triangle. Student: the isosceles right triangle with legs 1.
    t = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mu_t, mu_s = (3 + 4 + 5) / 3, (1 + 1 + math.sqrt(2)) / 3
    pairs = [(3 / mu_t, 1 / mu_s), (4 / mu_t, 1 / mu_s), (5 / mu_t, math.sqrt(2) / mu_s)]
    expected_d = sum(_huber(a, b) for a, b in pairs) / 3  # 6 ordered pairs = 3 pairs twice
    assert math.isclose(rkd_distance_loss(s, t).item(), expected_d, rel_tol=1e-5)
    # Angles at each vertex: teacher cos 0 (right angle), 3/5, 4/5; student 0, 1/sqrt2, 1/sqrt2.
    # 6 ordered triplets of distinct points = each vertex twice (i and k swapped).
    r = 1 / math.sqrt(2)
    expected_a = (_huber(0, 0) + _huber(3 / 5, r) + _huber(4 / 5, r)) / 3
    assert math.isclose(rkd_angle_loss(s, t).item(), expected_a, rel_tol=1e-5)
    # the potentials themselves: psi_D(a, c) = 4 / mu, angle at b between a and c
    assert math.isclose(pairwise_distance_potential(t)[0, 2].item(), 4 / mu_t, rel_tol=1e-6)
    assert math.isclose(angle_potential(t)[1, 0, 2].item(), 3 / 5, rel_tol=1e-6)


def test_huber_switches_to_linear_beyond_one():
    # Large relational gaps are penalised linearly (|x - y| - 1/2), not quadratically.
    t = torch.tensor([[0.0], [1.0], [2.0], [30.0]])
    s = torch.tensor([[0.0], [10.0], [20.0], [30.0]])
    psi_t, psi_s = pairwise_distance_potential(t), pairwise_distance_potential(s)
    off = ~torch.eye(4, dtype=torch.bool)
    expected = sum(_huber(a, b) for a, b in zip(psi_s[off].tolist(), psi_t[off].tolist())) / 12
    assert (psi_s - psi_t).abs().max() > 1
    assert math.isclose(rkd_distance_loss(s, t).item(), expected, rel_tol=1e-5)


def test_distance_loss_invariant_to_scale_and_translation_of_either_embedding():
    torch.manual_seed(0)
    s, t = torch.randn(10, 6, dtype=torch.float64), torch.randn(10, 4, dtype=torch.float64)
    base = rkd_distance_loss(s, t)
    assert base > 1e-3
    for s2, t2 in [(7.0 * s, t), (s, 0.01 * t), (s + 5.0, t - 3.0), (3 * s + torch.randn(6, dtype=torch.float64), t)]:
        assert torch.allclose(rkd_distance_loss(s2, t2), base, atol=1e-10)
    # distances are also unchanged by a rotation
    assert torch.allclose(rkd_distance_loss(s @ _rotation(6, 1), t), base, atol=1e-10)


def test_angle_loss_invariant_to_scale_translation_and_rotation():
    torch.manual_seed(1)
    s, t = torch.randn(9, 5, dtype=torch.float64), torch.randn(9, 7, dtype=torch.float64)
    base = rkd_angle_loss(s, t)
    assert base > 1e-3
    q_s, q_t = _rotation(5, 2), _rotation(7, 3)
    for s2, t2 in [(0.1 * s, t), (s, 40.0 * t), (s - 2.0, t + 1.0), (s @ q_s, t @ q_t), (2 * s @ q_s + 1, t)]:
        assert torch.allclose(rkd_angle_loss(s2, t2), base, atol=1e-10)


def test_zero_when_student_is_the_teacher_up_to_scale_rotation_translation_even_across_dims():
    torch.manual_seed(2)
    t = torch.randn(12, 8, dtype=torch.float64)
    # student in 12 dims: the teacher padded with zeros, rotated, scaled and shifted
    s = 3.0 * F.pad(t, (0, 4)) @ _rotation(12, 4) + 0.5
    for student in (t.clone(), 5.0 * t, t @ _rotation(8, 5), s):
        assert rkd_distance_loss(student, t).item() < 1e-12
        assert rkd_angle_loss(student, t).item() < 1e-12
    # ...but not for an anisotropic stretch, which changes distances and angles
    stretched = t * torch.linspace(0.2, 3.0, 8, dtype=torch.float64)
    assert rkd_distance_loss(stretched, t) > 1e-4 and rkd_angle_loss(stretched, t) > 1e-4


def test_different_embedding_dimensions_give_a_scalar_and_student_gradients():
    torch.manual_seed(3)
    s = torch.randn(6, 3, requires_grad=True)
    t = torch.randn(6, 50)
    loss = rkd_distance_loss(s, t) + rkd_angle_loss(s, t)
    loss.backward()
    assert loss.dim() == 0 and s.grad.shape == (6, 3) and s.grad.abs().sum() > 0


def test_identical_points_give_no_nan():
    torch.manual_seed(4)
    s = torch.randn(5, 4)
    s[1] = s[0]  # zero distance between two distinct examples
    s = s.requires_grad_()
    t = torch.randn(5, 6)
    t[3] = t[2]
    loss = rkd_distance_loss(s, t) + 2 * rkd_angle_loss(s, t)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    # all points identical: mu = 0 is floored, still finite
    same = torch.ones(4, 3, requires_grad=True)
    loss2 = rkd_distance_loss(same, torch.randn(4, 3)) + rkd_angle_loss(same, torch.randn(4, 3))
    loss2.backward()
    assert torch.isfinite(loss2) and torch.isfinite(same.grad).all()


def test_pinned_reduction_mean_over_distinct_tuples_vs_the_authors_full_average():
    # The authors' code averages Huber over all B^2 (B^3) entries, degenerate tuples included, and
    # takes mu over the non-zero distances; the paper sums over tuples of distinct examples. This
    # file: mean over distinct tuples = paper's sum / #tuples = code's value * B^2/(B(B-1)) etc.
    torch.manual_seed(6)
    b = 7
    s, t = torch.randn(b, 3, dtype=torch.float64), torch.randn(b, 5, dtype=torch.float64)

    def code_style_distance(x):
        d = torch.cdist(x, x)
        return d / d[d > 0].mean()

    def code_style_angle(x):
        e = F.normalize(x.unsqueeze(0) - x.unsqueeze(1), dim=2)
        return torch.bmm(e, e.transpose(1, 2))

    code_d = F.smooth_l1_loss(code_style_distance(s), code_style_distance(t))
    code_a = F.smooth_l1_loss(code_style_angle(s), code_style_angle(t))
    assert torch.allclose(rkd_distance_loss(s, t), code_d * b * b / (b * (b - 1)), atol=1e-10)
    assert torch.allclose(rkd_angle_loss(s, t), code_a * b**3 / (b * (b - 1) * (b - 2)), atol=1e-10)


def test_module_weights_are_the_papers_and_scale_the_terms():
    torch.manual_seed(7)
    s, t = torch.randn(6, 4), torch.randn(6, 4)
    m = RKDLoss()
    assert (m.distance_weight, m.angle_weight) == (1.0, 2.0)
    terms = RKDLoss(distance_weight=25.0, angle_weight=50.0)(s, t)
    assert torch.isclose(terms["distance"], 25.0 * rkd_distance_loss(s, t))
    assert torch.isclose(terms["angle"], 50.0 * rkd_angle_loss(s, t))


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="batch sizes"):
        rkd_distance_loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="flat"):
        rkd_angle_loss(torch.randn(4, 3, 2), torch.randn(4, 3))
    with pytest.raises(ValueError, match="at least 3"):
        rkd_angle_loss(torch.randn(2, 3), torch.randn(2, 3))


def test_training_transfers_the_structure():
    torch.manual_seed(8)
    teacher = nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 8))
    student = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 3))
    teacher.eval().requires_grad_(False)
    x = torch.randn(16, 5)
    crit = RKDLoss()
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        with torch.no_grad():
            t = teacher(x)
        loss = sum(crit(student(x), t).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
