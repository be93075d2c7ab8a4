"""Claims of Passalis & Tefas (2018), probabilistic knowledge transfer, checked on pkt_loss."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.passalis2018learning import cosine_kernel, pkt_conditional_probs, pkt_loss
from kdatlas.testing import Case, catchers, seeded

# The silent-bug catchers (kdatlas.testing): 4-d student, 8-d teacher embeddings.
test_catchers = catchers(Case(loss=lambda s, t, x, y: pkt_loss(s(x), t(x)), student=lambda: nn.Linear(6, 4),
                              teacher=lambda seed: seeded(lambda: nn.Linear(6, 8), seed), zero_when_equal=True))


def _rotation(dim, seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    return q


def test_three_point_case_by_hand():
    # Teacher: e1, e1, e2 (cosines 1, 0, 0): K = [[1, 1, .5], [1, 1, .5], [.5, .5, 1]].
    t = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    k = torch.tensor([[1, 1, .5], [1, 1, .5], [.5, .5, 1]], dtype=torch.float64)
    assert torch.allclose(cosine_kernel(t), k)
    # the authors' code: rows / their sums (2.5, 2.5, 2); the paper: diagonal dropped first
    p_code = k / k.sum(1, keepdim=True)
    p_paper = torch.tensor([[0, 2 / 3, 1 / 3], [2 / 3, 0, 1 / 3], [.5, .5, 0]], dtype=torch.float64)
    assert torch.allclose(pkt_conditional_probs(t), p_code)
    assert torch.allclose(pkt_conditional_probs(t, exclude_self=True), p_paper)
    # Student: three orthogonal directions, every cosine 0: K = 1 on the diagonal, 1/2 elsewhere.
    s = torch.eye(3, dtype=torch.float64)
    q_code = torch.tensor([[.5, .25, .25], [.25, .5, .25], [.25, .25, .5]], dtype=torch.float64)
    q_paper = (1 - torch.eye(3, dtype=torch.float64)) / 2
    expected_code = sum(p_code[i, j] * math.log(p_code[i, j] / q_code[i, j]) for i in range(3) for j in range(3)) / 9
    pairs = [(i, j) for i in range(3) for j in range(3) if i != j]
    expected_paper = sum(p_paper[i, j] * math.log(p_paper[i, j] / q_paper[i, j]) for i, j in pairs) / 9
    assert math.isclose(pkt_loss(s, t, eps=0.0).item(), expected_code, rel_tol=1e-9)
    assert math.isclose(pkt_loss(s, t, eps=0.0, exclude_self=True).item(), expected_paper, rel_tol=1e-9)


def test_conditional_probabilities_are_distributions():
    torch.manual_seed(0)
    f = torch.randn(7, 5)
    for exclude in (False, True):
        p = pkt_conditional_probs(f, exclude_self=exclude)
        assert torch.allclose(p.sum(1), torch.ones(7)) and (p >= 0).all()
    assert torch.equal(torch.diagonal(pkt_conditional_probs(f, exclude_self=True)), torch.zeros(7))


def test_invariant_to_per_sample_scale_and_rotation_not_to_translation():
    # The cosine kernel sees only directions: each sample's positive scale and a rotation of either
    # space change nothing; a shift of the space changes the directions, hence the loss.
    torch.manual_seed(1)
    s, t = torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 9, dtype=torch.float64)
    base = pkt_loss(s, t)
    assert base > 1e-4
    scales = torch.rand(8, 1, dtype=torch.float64) * 10 + 0.1
    for s2, t2 in [(scales * s, t), (s, 0.01 * scales * t), (s @ _rotation(5, 2), t @ _rotation(9, 3))]:
        assert torch.allclose(pkt_loss(s2, t2), base, atol=1e-12)
    assert not torch.allclose(pkt_loss(s + 3.0, t), base, atol=1e-4)


def test_zero_when_the_student_keeps_the_teachers_directions_even_in_another_dimension():
    torch.manual_seed(2)
    t = torch.randn(10, 6, dtype=torch.float64)
    s = 2.0 * F.pad(t, (0, 3)) @ _rotation(9, 4)
    for student in (t.clone(), s):
        assert abs(pkt_loss(student, t).item()) < 1e-12
        assert abs(pkt_loss(student, t, exclude_self=True).item()) < 1e-12
    assert pkt_loss(torch.randn(10, 9, dtype=torch.float64), t) > 1e-4


def test_non_negative_a_kl_divergence_per_row():
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        s, t = torch.randn(6, 3, generator=g), torch.randn(6, 4, generator=g)
        assert pkt_loss(s, t, eps=0.0) >= 0 and pkt_loss(s, t, eps=0.0, exclude_self=True) >= 0


def test_pinned_to_the_authors_code_not_the_papers_self_excluding_sum():
    # Written out as passalis/probabilistic_kt nn/pkt.py computes it: features / (norm + eps), NaN -> 0,
    # cosine matrix, (c + 1) / 2, rows / row sums (self term kept), mean of p log((p + eps) / (q + eps)).
    torch.manual_seed(3)
    s, t, eps = torch.randn(9, 4, dtype=torch.float64), torch.randn(9, 7, dtype=torch.float64), 1e-7

    def code_probs(x):
        x = x / (x.norm(dim=1, keepdim=True) + eps)
        k = (x @ x.t() + 1.0) / 2.0
        return k / k.sum(1, keepdim=True)

    p, q = code_probs(t), code_probs(s)
    code = (p * torch.log((p + eps) / (q + eps))).mean()
    assert torch.allclose(pkt_loss(s, t), code, rtol=1e-6)
    # the paper's p_{i|j} excludes k = j: a different number
    assert not torch.isclose(pkt_loss(s, t, exclude_self=True), code, rtol=1e-3)


def test_zero_vectors_give_no_nan():
    s = torch.randn(5, 3)
    s[1] = 0.0  # a dead embedding: the code turns its NaN into 0, here F.normalize gives 0
    s.requires_grad_()
    t = torch.randn(5, 4)
    t[3] = 0.0
    for exclude in (False, True):
        loss = pkt_loss(s, t, exclude_self=exclude)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    # b = 2 with opposite vectors: no neighbour mass at all without the self term; still finite
    opposite = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert torch.isfinite(pkt_loss(torch.randn(2, 2), opposite, exclude_self=True))


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="batch sizes"):
        pkt_loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="at least 2"):
        pkt_loss(torch.randn(1, 3), torch.randn(1, 3))


def test_training_transfers_the_teachers_neighbours():
    # The teacher's 16-d features of 3 clusters; an 8-d student trained on PKT alone comes to pick the
    # same nearest neighbour (by cosine) as the teacher for most samples (Sec. 3: the student keeps
    # the teacher's neighbourhood structure, in a space of another dimension).
    torch.manual_seed(4)
    y = torch.arange(30) % 3
    x = torch.randn(30, 6)
    teacher_feats = 3.0 * F.one_hot(y, 16).float() + 0.5 * torch.randn(30, 16)
    student = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 8))

    def nn_agreement(f):
        c_s, c_t = cosine_kernel(f), cosine_kernel(teacher_feats)
        mask = torch.eye(30, dtype=torch.bool)
        nn_s, nn_t = c_s.masked_fill(mask, -1).argmax(1), c_t.masked_fill(mask, -1).argmax(1)
        return (y[nn_s] == y[nn_t]).float().mean().item()

    before = nn_agreement(student(x).detach())
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses = []
    for _ in range(200):
        loss = pkt_loss(student(x), teacher_feats)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert nn_agreement(student(x).detach()) > max(before + 0.2, 0.8)
