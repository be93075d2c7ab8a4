"""Claims of Chen, Wang & Zhang (2017), DarkRank, checked on the Plackett-Luce model and both transfers."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.chen2017darkrank import (
    DarkRankLoss,
    darkrank_hard_loss,
    darkrank_soft_loss,
    plackett_luce_logprob,
    score_matrix,
    teacher_lists,
)
from kdatlas.testing import Case, catchers, seeded

_student = lambda: nn.Linear(6, 4)  # noqa: E731
_teacher = lambda seed: seeded(lambda: nn.Linear(6, 8), seed)  # noqa: E731

# The silent-bug catchers: soft transfer (a KL, zero when the student is the teacher) ...
test_catchers = catchers(Case(loss=lambda s, t, x, y: DarkRankLoss(soft_weight=1.0)(s(x), t(x)),
                              student=_student, teacher=_teacher, zero_when_equal=True))
# ... and hard transfer, which is the teacher ranking's negative log-likelihood: not zero then.
test_catchers_hard = catchers(Case(loss=lambda s, t, x, y: DarkRankLoss(soft_weight=0.0, hard_weight=1.0)(s(x), t(x)),
                                   student=_student, teacher=_teacher,
                                   zero_when_equal="-log P(pi_t | X_t) > 0: the teacher's own ranking is not certain"))


def _rotation(dim, seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    return q


def test_plackett_luce_by_hand_and_sums_to_one_over_all_permutations():
    s = torch.tensor([1.0, 0.0, -2.0])
    e = s.exp()
    by_hand = e[0] / e.sum() * e[1] / (e[1] + e[2]) * 1.0
    assert math.isclose(plackett_luce_logprob(s).exp().item(), by_hand.item(), rel_tol=1e-6)
    torch.manual_seed(0)
    scores = torch.randn(4, dtype=torch.float64) * 3
    perms = torch.tensor(list(itertools.permutations(range(4))))
    probs = plackett_luce_logprob(scores[perms]).exp()
    assert probs.shape == (24,) and math.isclose(probs.sum().item(), 1.0, rel_tol=1e-12)
    # the most probable permutation sorts the scores in decreasing order
    assert torch.equal(perms[probs.argmax()], scores.argsort(descending=True))


def test_score_is_minus_alpha_distance_to_the_beta():
    e = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    s = score_matrix(e, alpha=2.0, beta=3.0, normalize=False)
    assert math.isclose(s[0, 1].item(), -2.0 * 5.0**3, rel_tol=1e-6)
    assert torch.allclose(s, s.T) and abs(s[0, 0].item()) < 1e-12
    # normalize=True: unit vectors first, so distances lie in [0, 2]
    sn = score_matrix(torch.tensor([[1.0, 0.0], [-5.0, 0.0]]), alpha=1.0, beta=1.0)
    assert math.isclose(sn[0, 1].item(), -2.0, rel_tol=1e-6)


def test_two_candidate_case_by_hand():
    # One query at 0, candidates on a line: the PL distribution over 2 orders is a sigmoid of the score gap.
    t = torch.tensor([[0.0], [1.0], [3.0]])
    s = torch.tensor([[0.0], [2.0], [1.5]])
    kw = dict(alpha=1.0, beta=2.0, list_size=2, normalize=False)
    # teacher list of query 0: samples 1 then 2 (distances 1, 3); student scores -4 and -2.25
    assert teacher_lists(t, 2, 1.0, 2.0, False)[0].tolist() == [1, 2]
    p_t = torch.sigmoid(torch.tensor(-1.0 + 9.0))  # P_t(1 before 2)
    p_s = torch.sigmoid(torch.tensor(-4.0 + 2.25))
    kl0 = p_t * torch.log(p_t / p_s) + (1 - p_t) * torch.log((1 - p_t) / (1 - p_s))
    hard0 = -torch.log(p_s)
    # the other two queries, written out the same way
    def pair(q, a, b):
        ta, tb = -float((t[q] - t[a]) ** 2), -float((t[q] - t[b]) ** 2)
        sa, sb = -float((s[q] - s[a]) ** 2), -float((s[q] - s[b]) ** 2)
        if ta < tb:
            ta, tb, sa, sb = tb, ta, sb, sa
        pt, ps = torch.sigmoid(torch.tensor(ta - tb)), torch.sigmoid(torch.tensor(sa - sb))
        return pt * torch.log(pt / ps) + (1 - pt) * torch.log((1 - pt) / (1 - ps)), -torch.log(ps)
    (kl1, h1), (kl2, h2) = pair(1, 0, 2), pair(2, 0, 1)
    assert math.isclose(darkrank_soft_loss(s, t, **kw).item(), ((kl0 + kl1 + kl2) / 3).item(), rel_tol=1e-5)
    assert math.isclose(darkrank_hard_loss(s, t, **kw).item(), ((hard0 + h1 + h2) / 3).item(), rel_tol=1e-5)


def test_hard_loss_prefers_the_teachers_order_to_its_reverse():
    torch.manual_seed(1)
    t = torch.randn(10, 5)
    idx = teacher_lists(t, 4)
    s_t = score_matrix(t).gather(1, idx)
    assert -plackett_luce_logprob(s_t).mean() < -plackett_luce_logprob(s_t.flip(-1)).mean()
    # hard loss with the teacher as student = the teacher ranking's own -log-likelihood (> 0)
    assert math.isclose(darkrank_hard_loss(t, t).item(), -plackett_luce_logprob(s_t).mean().item(), rel_tol=1e-6)
    assert darkrank_hard_loss(t, t) > 0


def test_soft_loss_zero_for_equal_embeddings_and_positive_otherwise():
    torch.manual_seed(2)
    t = torch.randn(12, 6, dtype=torch.float64)
    assert darkrank_soft_loss(t.clone(), t).item() < 1e-12
    assert darkrank_soft_loss(torch.randn(12, 6, dtype=torch.float64), t) > 1e-3


def test_invariances_rotation_and_per_sample_scale_with_normalisation_translation_without():
    torch.manual_seed(3)
    s, t = torch.randn(10, 5, dtype=torch.float64), torch.randn(10, 7, dtype=torch.float64)
    for fn in (darkrank_soft_loss, darkrank_hard_loss):
        base = fn(s, t)
        assert torch.allclose(fn(s @ _rotation(5, 1), t @ _rotation(7, 2)), base, atol=1e-9)
        scale = torch.rand(10, 1, dtype=torch.float64) + 0.5  # per-sample positive scale: unit vectors unchanged
        assert torch.allclose(fn(s * scale, t * scale), base, atol=1e-9)
        raw = fn(s, t, normalize=False)
        assert torch.allclose(fn(s + 3.0, t - 1.0, normalize=False), raw, atol=1e-9)
        assert torch.allclose(fn(s @ _rotation(5, 3), t, normalize=False), raw, atol=1e-9)


def test_lists_are_the_teachers_nearest_others_and_exclude_the_query():
    torch.manual_seed(4)
    t = torch.randn(9, 3)
    idx = teacher_lists(t, 4)
    d = torch.cdist(F.normalize(t, dim=1), F.normalize(t, dim=1))
    d.fill_diagonal_(math.inf)
    assert torch.equal(idx, d.argsort(dim=1)[:, :4])
    assert all(q not in idx[q].tolist() for q in range(9))
    assert teacher_lists(t, None).shape == (9, 8)  # every other sample (hard transfer only)
    # the student cannot change the list: it only scores it
    assert torch.equal(teacher_lists(t, 4), idx)


def test_soft_equals_full_enumeration_written_out():
    torch.manual_seed(5)
    s, t = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    idx = teacher_lists(t, 3)
    total = 0.0
    for q in range(6):
        ss, tt = score_matrix(s)[q, idx[q]], score_matrix(t)[q, idx[q]]
        for p in itertools.permutations(range(3)):
            lt, ls = plackett_luce_logprob(tt[list(p)]), plackett_luce_logprob(ss[list(p)])
            total += lt.exp() * (lt - ls)
    assert torch.allclose(darkrank_soft_loss(s, t, list_size=3), total / 6)


def test_module_weights_and_defaults():
    torch.manual_seed(6)
    s, t = torch.randn(8, 4), torch.randn(8, 6)
    m = DarkRankLoss()
    assert (m.soft_weight, m.hard_weight, m.alpha, m.beta, m.list_size, m.normalize) == (1.0, 0.0, 3.0, 3.0, 4, True)
    assert set(m(s, t)) == {"soft"}
    terms = DarkRankLoss(soft_weight=2.0, hard_weight=3.0)(s, t)
    assert torch.isclose(terms["soft"], 2.0 * darkrank_soft_loss(s, t))
    assert torch.isclose(terms["hard"], 3.0 * darkrank_hard_loss(s, t))


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="batch sizes"):
        darkrank_soft_loss(torch.randn(5, 3), torch.randn(6, 3))
    with pytest.raises(ValueError, match="flat"):
        darkrank_hard_loss(torch.randn(5, 3, 2), torch.randn(5, 3))
    with pytest.raises(ValueError, match="list_size"):
        darkrank_hard_loss(torch.randn(4, 3), torch.randn(4, 3), list_size=4)
    with pytest.raises(ValueError, match="permutations"):
        darkrank_soft_loss(torch.randn(12, 3), torch.randn(12, 3), list_size=8)


def test_identical_samples_give_finite_gradients():
    s = torch.randn(6, 3)
    s[1] = s[0]
    s = s.requires_grad_()
    loss = darkrank_soft_loss(s, torch.randn(6, 4)) + darkrank_hard_loss(s, torch.randn(6, 4))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_training_transfers_the_rankings():
    # The student learns the teacher's neighbour order: the fraction of queries whose nearest
    # neighbour (teacher's) is also the student's nearest rises, and the soft loss falls.
    torch.manual_seed(7)
    teacher = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 8)).eval().requires_grad_(False)
    student = nn.Sequential(nn.Linear(5, 32), nn.Tanh(), nn.Linear(32, 3))
    x = torch.randn(32, 5)
    with torch.no_grad():
        t = teacher(x)

    def top1_agreement():
        with torch.no_grad():
            return (teacher_lists(student(x), 2)[:, 0] == teacher_lists(t, 2)[:, 0]).float().mean().item()

    before, first = top1_agreement(), None
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    for _ in range(80):
        loss = darkrank_soft_loss(student(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.5 * first
    assert top1_agreement() > before + 0.2
