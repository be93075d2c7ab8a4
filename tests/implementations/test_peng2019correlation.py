"""Claims of Peng et al. (2019), correlation congruence, checked on taylor_rbf_kernel / cc_loss."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.peng2019correlation import cc_loss, taylor_rbf_kernel
from kdatlas.testing import Case, catchers, seeded

# The silent-bug catchers (kdatlas.testing): 4-d student, 8-d teacher embeddings (CC compares n x n
# matrices, so the dimensions may differ).
test_catchers = catchers(Case(loss=lambda s, t, x, y: cc_loss(s(x), t(x)), student=lambda: nn.Linear(6, 4),
                              teacher=lambda seed: seeded(lambda: nn.Linear(6, 8), seed), zero_when_equal=True))


def _rotation(dim, seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    return q


def test_two_instance_case_by_hand():
    # gamma = 0.4, P = 2: k = e^{-0.8} (1 + 0.8 c + 0.32 c^2) for the cosine c.
    e = math.exp(-0.8)
    t = torch.tensor([[1.0, 0.0], [0.0, 5.0]], dtype=torch.float64)  # orthogonal: c = 0 off the diagonal
    s = torch.tensor([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0]], dtype=torch.float64)  # same direction: c = 1
    k1 = e * (1 + 0.8 + 0.32)
    assert torch.allclose(taylor_rbf_kernel(t), torch.tensor([[k1, e], [e, k1]], dtype=torch.float64))
    assert torch.allclose(taylor_rbf_kernel(s), torch.full((2, 2), k1, dtype=torch.float64))
    expected = 2 * (k1 - e) ** 2 / 4  # two differing entries, 1/n^2
    assert math.isclose(cc_loss(s, t).item(), expected, rel_tol=1e-12)


def test_taylor_expansion_converges_to_the_gaussian_rbf_on_unit_vectors():
    torch.manual_seed(0)
    f = F.normalize(torch.randn(6, 5, dtype=torch.float64), dim=1)
    gamma = 0.4
    rbf = torch.exp(-gamma * torch.cdist(f, f).pow(2))
    errors = [(taylor_rbf_kernel(f, gamma, order) - rbf).abs().max().item() for order in (1, 2, 4, 12)]
    assert errors[0] > errors[1] > errors[2] > errors[3] and errors[3] < 1e-10
    assert torch.allclose(taylor_rbf_kernel(f, gamma, exact=True), rbf, atol=1e-12)
    # order 2 with gamma = 0.4 is already close: |remainder| <= e^{-0.8} 0.8^3 / 3! e^{0.8} on |c| <= 1
    assert errors[1] <= 0.8**3 / 6 + 1e-12


def test_order_limits_zero_carries_nothing_and_one_matches_cosines():
    torch.manual_seed(1)
    s, t = torch.randn(7, 3, dtype=torch.float64), torch.randn(7, 9, dtype=torch.float64)
    assert cc_loss(s, t, order=0).item() < 1e-15  # a constant kernel: no correlation to transfer
    cos = lambda x: F.normalize(x, dim=1) @ F.normalize(x, dim=1).t()  # noqa: E731
    w = math.exp(-0.8) * 0.8
    assert torch.allclose(cc_loss(s, t, order=1), w**2 * (cos(t) - cos(s)).pow(2).mean(), atol=1e-14)


def test_invariant_to_per_instance_scale_and_rotation_across_dimensions():
    torch.manual_seed(2)
    s, t = torch.randn(8, 4, dtype=torch.float64), torch.randn(8, 10, dtype=torch.float64)
    base = cc_loss(s, t)
    assert base > 1e-4
    scales = torch.rand(8, 1, dtype=torch.float64) * 5 + 0.2
    for s2, t2 in [(scales * s, t), (s, 3.0 * t), (s @ _rotation(4, 3), t @ _rotation(10, 4))]:
        assert torch.allclose(cc_loss(s2, t2), base, atol=1e-14)


def test_zero_when_the_student_keeps_the_teachers_correlations():
    torch.manual_seed(3)
    t = torch.randn(9, 6, dtype=torch.float64)
    s = 0.5 * F.pad(t, (0, 2)) @ _rotation(8, 5)  # another dimension, scale and orientation
    assert cc_loss(t.clone(), t).item() < 1e-15 and cc_loss(s, t).item() < 1e-15
    assert cc_loss(torch.randn(9, 8, dtype=torch.float64), t) > 1e-4


def test_follows_the_papers_kernel_not_repdistillers_emailed_variant():
    # RepDistiller's Correlation: d = |f_s - f_t| on embeddings of one dimension, then the mean over
    # consecutive samples of sum_k d_i[k] d_{i+1}[k]. It depends on the batch order and on the
    # embeddings themselves (not only on their relations); the paper's CC does neither.
    torch.manual_seed(4)
    s, t = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)

    def repdistiller(f_s, f_t):
        d = (f_s - f_t).abs()
        return (d[:-1] * d[1:]).sum(1).mean()

    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    assert torch.allclose(cc_loss(s[perm], t[perm]), cc_loss(s, t), atol=1e-14)  # a batch permutation
    assert not torch.allclose(repdistiller(s[perm], t[perm]), repdistiller(s, t))
    q = _rotation(5, 6)
    assert torch.allclose(cc_loss(s @ q, t), cc_loss(s, t), atol=1e-14)  # a rotation of one space
    assert not torch.allclose(repdistiller(s @ q, t), repdistiller(s, t))
    assert not torch.isclose(cc_loss(s, t), repdistiller(s, t))


def test_zero_vectors_give_no_nan_and_batch_sizes_must_agree():
    s = torch.randn(4, 3)
    s[0] = 0.0
    s.requires_grad_()
    loss = cc_loss(s, torch.randn(4, 6))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    with pytest.raises(ValueError, match="batch sizes"):
        cc_loss(torch.randn(4, 3), torch.randn(5, 3))


def test_training_transfers_the_teachers_correlations():
    # The teacher's embeddings of 3 classes are tightly clustered; the student trained on L_CC alone
    # reproduces the pattern: its same-class kernel values rise above its cross-class ones.
    torch.manual_seed(5)
    y = torch.arange(24) % 3
    x = torch.randn(24, 6)
    teacher_emb = 3.0 * F.one_hot(y, 12).float() + 0.3 * torch.randn(24, 12)
    student = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 5))
    same = (y[:, None] == y[None, :]) & ~torch.eye(24, dtype=torch.bool)
    other = y[:, None] != y[None, :]

    def gap(emb):
        k = taylor_rbf_kernel(emb)
        return (k[same].mean() - k[other].mean()).item()

    before = gap(student(x).detach())
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses = []
    for _ in range(200):
        loss = cc_loss(student(x), teacher_emb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert gap(student(x).detach()) > before + 0.1 and gap(student(x).detach()) > 0.7 * gap(teacher_emb)
