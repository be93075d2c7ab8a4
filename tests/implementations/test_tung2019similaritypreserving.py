"""Claims of Tung & Mori (2019), similarity-preserving KD, checked on similarity_matrix / sp_loss."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.tung2019similaritypreserving import similarity_matrix, sp_loss
from kdatlas.testing import Case, catchers, seeded

# The silent-bug catchers (kdatlas.testing): a 4-d student and an 8-d teacher layer; SP compares only
# b x b matrices, so the widths may differ.
test_catchers = catchers(Case(loss=lambda s, t, x, y: sp_loss(s(x), t(x)), student=lambda: nn.Linear(6, 4),
                              teacher=lambda seed: seeded(lambda: nn.Linear(6, 8), seed), zero_when_equal=True))


def _rotation(dim, seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    return q


def test_two_sample_case_by_hand():
    # Student: q1 = (1, 0), q2 = (1, 1): G~ = [[1, 1], [1, 2]]; rows / (sqrt2, sqrt5).
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    g_s = torch.tensor([[1 / math.sqrt(2), 1 / math.sqrt(2)], [1 / math.sqrt(5), 2 / math.sqrt(5)]])
    assert torch.allclose(similarity_matrix(s), g_s)
    # Teacher: two orthogonal 3-d vectors of norms 1 and 2: G~ = diag(1, 4) -> G = identity.
    t = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    assert torch.allclose(similarity_matrix(t), torch.eye(2))
    expected = ((1 - 1 / math.sqrt(2)) ** 2 + 0.5 + 0.2 + (1 - 2 / math.sqrt(5)) ** 2) / 4  # ||.||_F^2 / b^2
    assert math.isclose(sp_loss(s, t).item(), expected, rel_tol=1e-6)


def test_rows_have_unit_norm_and_the_matrix_is_not_symmetric():
    # The normalisation is per row (Sec. 3), not of the whole matrix, so G is not symmetric.
    torch.manual_seed(0)
    a = torch.randn(6, 3, 4, 4)
    g = similarity_matrix(a)
    assert g.shape == (6, 6)
    assert torch.allclose(g.norm(dim=1), torch.ones(6), atol=1e-6)
    assert not torch.allclose(g, g.t(), atol=1e-4)


def test_only_batch_matrices_are_compared_so_any_layer_shapes_work():
    torch.manual_seed(1)
    s = torch.randn(5, 4, 3, 3, requires_grad=True)  # student: 4 channels, 3x3
    t = torch.randn(5, 64, 8, 8)  # teacher: 64 channels, 8x8
    loss = sp_loss(s, t)
    loss.backward()
    assert loss.dim() == 0 and s.grad.abs().sum() > 0
    assert torch.isfinite(sp_loss(torch.randn(5, 7), torch.randn(5, 3, 11)))  # flat and 1-D maps too


def test_invariant_to_rotation_channel_order_and_global_scale():
    torch.manual_seed(2)
    s, t = torch.randn(7, 2, 3, 3, dtype=torch.float64), torch.randn(7, 10, dtype=torch.float64)
    base = sp_loss(s, t)
    assert base > 1e-3
    flat = s.reshape(7, -1)
    assert torch.allclose(sp_loss(flat @ _rotation(18, 3), t), base, atol=1e-10)  # Q R: same Gram matrix
    assert torch.allclose(sp_loss(s[:, [1, 0]], t), base, atol=1e-10)  # channel order
    assert torch.allclose(sp_loss(25.0 * s, 0.01 * t), base, atol=1e-10)  # scale of either side


def test_zero_when_student_preserves_the_teachers_similarities():
    torch.manual_seed(3)
    t = torch.randn(9, 6, dtype=torch.float64)
    # a student in its own, larger space: the teacher padded, rotated and rescaled
    s = 4.0 * F.pad(t, (0, 10)) @ _rotation(16, 4)
    assert sp_loss(t.clone(), t).item() < 1e-14 and sp_loss(s, t).item() < 1e-14
    # ...but not for a stretch along one axis, which changes which pairs are similar
    stretched = t * torch.linspace(0.1, 3.0, 6, dtype=torch.float64)
    assert sp_loss(stretched, t) > 1e-4


def test_bounded_by_4_over_b_and_by_2_over_b_for_non_negative_activations():
    # Each row of G_T - G_S is a difference of unit vectors: squared norm <= 4, so L_SP <= 4b / b^2.
    # Post-ReLU activations give non-negative Gram rows, with a squared difference <= 2: L_SP <= 2 / b.
    torch.manual_seed(5)
    b = 8
    for seed in range(5):
        g = torch.Generator().manual_seed(10 + seed)
        assert sp_loss(torch.randn(b, 5, generator=g), torch.randn(b, 3, generator=g)).item() <= 4 / b
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        s_pos, t_pos = torch.rand(b, 6, generator=g).relu(), torch.randn(b, 9, generator=g).relu()
        assert sp_loss(s_pos, t_pos).item() <= 2 / b + 1e-7
    # one 1-D case by hand: G_S rows (1, 1)/sqrt2 twice; G_T rows (1, -1)/sqrt2 and (-1, 1)/sqrt2
    x, y = torch.tensor([[1.0], [1.0]]), torch.tensor([[1.0], [-1.0]])
    assert math.isclose(sp_loss(x, y).item(), (2 + 2) / 4, rel_tol=1e-6)


def test_pinned_against_repdistillers_computation_and_not_whole_matrix_normalisation():
    # RepDistiller's SP ("verified by original author"): F.normalize(Q Q^T) (dim 1), squared
    # difference summed, divided by bsz^2. Its commented-out first attempt divided the whole Gram
    # matrix by its norm instead; that is not the paper's loss.
    torch.manual_seed(6)
    s, t = torch.randn(6, 3, 5), torch.randn(6, 8, 5)
    qs, qt = s.view(6, -1), t.view(6, -1)
    row = F.normalize(qs @ qs.t()), F.normalize(qt @ qt.t())
    assert torch.allclose(sp_loss(s, t), ((row[1] - row[0]) ** 2).sum() / 36)
    whole = (qs @ qs.t()) / (qs @ qs.t()).norm(), (qt @ qt.t()) / (qt @ qt.t()).norm()
    assert not torch.isclose(sp_loss(s, t), ((whole[1] - whole[0]) ** 2).sum() / 36)


def test_zero_rows_give_no_nan():
    # An all-zero activation (a dead ReLU map) has a zero Gram row: floored, not divided by 0.
    s = torch.randn(4, 3)
    s[2] = 0.0
    s.requires_grad_()
    loss = sp_loss(s, torch.randn(4, 5))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_batch_sizes_must_agree():
    with pytest.raises(ValueError, match="batch sizes"):
        sp_loss(torch.randn(4, 3), torch.randn(5, 3))


def test_training_makes_the_students_similarities_the_teachers_class_blocks():
    # Three classes; the teacher's features cluster by class, the student's start unrelated to them.
    # Trained on L_SP alone, the student's same-class similarities rise above its cross-class ones.
    torch.manual_seed(8)
    y = torch.arange(24) % 3
    x = torch.randn(24, 10) + 2.0 * F.one_hot(y, 10).float()
    teacher = nn.Sequential(nn.Linear(10, 3), nn.ReLU())
    with torch.no_grad():
        teacher[0].weight.copy_(torch.eye(10)[:3] * 3.0)
        teacher[0].bias.zero_()
    student = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 4))
    same = (y[:, None] == y[None, :]) & ~torch.eye(24, dtype=torch.bool)

    def block_gap(model):
        g = similarity_matrix(model(x).detach())
        return (g[same].mean() - g[~same & ~torch.eye(24, dtype=torch.bool)].mean()).item()

    before, t_feats = block_gap(student), teacher(x).detach()
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        loss = sp_loss(student(x), t_feats)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert block_gap(student) > before + 0.05 and block_gap(student) > 0.5 * block_gap(teacher)
