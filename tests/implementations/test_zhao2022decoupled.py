"""Claims of Zhao et al. (2022), Decoupled KD, checked on dkd_terms / dkd_loss."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.zhao2022decoupled import dkd_loss, dkd_terms, warmup_factor
from kdatlas.testing import Case, catchers, seeded


def _teacher(seed):
    return seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5)), seed)


def _terms(s, t, x, y):
    tckd, nckd = dkd_terms(s(x), t(x), y)
    return {"tckd": tckd.mean(), "nckd": nckd.mean()}


# The silent-bug catchers (kdatlas.testing), on each term and on the weighted loss.
test_catchers_terms = catchers(Case(loss=_terms, student=lambda: nn.Linear(6, 5), teacher=_teacher,
                                    zero_when_equal=True))
test_catchers_loss = catchers(Case(loss=lambda s, t, x, y: dkd_loss(s(x), t(x), y), student=lambda: nn.Linear(6, 5),
                                   teacher=_teacher, zero_when_equal=True))


def _kd_per_sample(z, v, t):
    """Classical KD, T^2 * KL(softmax(v/T) || softmax(z/T)) per sample, written out independently."""
    p = torch.softmax(v / t, dim=1)
    return t**2 * (p * (torch.log(p) - torch.log_softmax(z / t, dim=1))).sum(1)


def test_terms_by_hand():
    # 3 classes, target 0, T = 1. Student logits [0, 1, 2], teacher [2, 0, 0].
    z, v, y = torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0])
    es, et = [math.exp(a) for a in (0, 1, 2)], [math.exp(a) for a in (2, 0, 0)]
    ps_t, pt_t = es[0] / sum(es), et[0] / sum(et)
    tckd = pt_t * math.log(pt_t / ps_t) + (1 - pt_t) * math.log((1 - pt_t) / (1 - ps_t))
    ph_s = [es[1] / (es[1] + es[2]), es[2] / (es[1] + es[2])]
    ph_t = [0.5, 0.5]
    nckd = sum(a * math.log(a / b) for a, b in zip(ph_t, ph_s))
    got_t, got_n = dkd_terms(z, v, y, temperature=1.0)
    assert math.isclose(got_t.item(), tckd, rel_tol=1e-5)
    assert math.isclose(got_n.item(), nckd, rel_tol=1e-5)
    loss = dkd_loss(z, v, y, tckd_weight=2.0, nckd_weight=3.0, temperature=1.0)
    assert math.isclose(loss.item(), 2 * tckd + 3 * nckd, rel_tol=1e-5)


def test_kd_equals_tckd_plus_one_minus_pt_times_nckd_exactly():
    # Sec. 3.1: KD = TCKD + (1 - p_t^T) NCKD, per sample, at any temperature.
    torch.manual_seed(0)
    z, v = 3 * torch.randn(16, 10, dtype=torch.float64), 3 * torch.randn(16, 10, dtype=torch.float64)
    y = torch.randint(0, 10, (16,))
    for t in (1.0, 4.0):
        tckd, nckd = dkd_terms(z, v, y, t)
        pt_teacher = torch.softmax(v / t, 1)[torch.arange(16), y]
        assert torch.allclose(tckd + (1 - pt_teacher) * nckd, _kd_per_sample(z, v, t), atol=1e-10)
        # and dkd_loss with alpha = 1, beta = (1 - p_t^T) per sample is batch-averaged KD
        kd = dkd_loss(z, v, y, tckd_weight=1.0, nckd_weight=1 - pt_teacher, temperature=t)
        assert torch.allclose(kd, _kd_per_sample(z, v, t).mean(), atol=1e-10)
        # with a constant beta it is not KD (the coupling is what DKD removes)
        assert not torch.allclose(dkd_loss(z, v, y, 1.0, 1.0, t), kd, atol=1e-3)


def test_nckd_ignores_the_target_class_logit():
    torch.manual_seed(1)
    z, v, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    _, nckd = dkd_terms(z, v, y)
    rows = torch.arange(8)
    for value in (-50.0, 0.0, 30.0, 1e4):  # 1e4/T is far above the 1000 shift of the authors' code
        z2, v2 = z.clone(), v.clone()
        z2[rows, y] = value
        v2[rows, y] = -value
        assert torch.allclose(dkd_terms(z2, v2, y)[1], nckd, atol=1e-5)
    # ...while TCKD does depend on it
    z3 = z.clone()
    z3[rows, y] += 2.0
    assert not torch.allclose(dkd_terms(z3, v, y)[0], dkd_terms(z, v, y)[0])


def test_tckd_depends_only_on_the_binary_probabilities():
    # Shuffling the non-target logits keeps p_t (and b) but changes p_hat: TCKD fixed, NCKD moves.
    torch.manual_seed(2)
    z, v = torch.randn(1, 6, dtype=torch.float64), torch.randn(1, 6, dtype=torch.float64)
    y = torch.tensor([2])
    others = [0, 1, 3, 4, 5]
    z2 = z.clone()
    z2[0, others] = z[0, [5, 3, 0, 1, 4]]
    t1, n1 = dkd_terms(z, v, y)
    t2, n2 = dkd_terms(z2, v, y)
    assert torch.allclose(t1, t2, atol=1e-12)
    assert not torch.allclose(n1, n2, atol=1e-4)


def test_zero_when_student_equals_teacher():
    torch.manual_seed(3)
    v, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    tckd, nckd = dkd_terms(v.clone(), v, y)
    assert tckd.abs().max() < 1e-6 and nckd.abs().max() < 1e-6
    assert dkd_loss(v + torch.randn(8, 10), v, y).item() > 1e-3


def test_pinned_choice_target_removed_not_shifted_by_1000():
    # The authors' code subtracts 1000 from z_t/T before a full softmax. Same value on ordinary
    # logits; this file removes the column instead, which stays exact for huge target logits.
    def shifted_nckd(z, v, y, t):
        mask = F.one_hot(y, z.shape[1]).float()
        p = torch.softmax(v / t - 1000.0 * mask, 1)
        logq = torch.log_softmax(z / t - 1000.0 * mask, 1)
        return t**2 * (p * (torch.log(p.clamp_min(1e-30)) - logq)).sum(1)

    torch.manual_seed(4)
    z, v, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    assert torch.allclose(dkd_terms(z, v, y, 4.0)[1], shifted_nckd(z, v, y, 4.0), atol=1e-5)
    z[torch.arange(8), y] = 1e4
    v[torch.arange(8), y] = 1e4
    ours = dkd_terms(z, v, y, 4.0)[1]
    assert not torch.allclose(ours, shifted_nckd(z, v, y, 4.0), atol=1e-2)


def test_stable_when_the_student_target_probability_underflows():
    z = torch.tensor([[-200.0, 0.0, 0.0]], requires_grad=True)
    v, y = torch.tensor([[5.0, 0.0, 0.0]]), torch.tensor([0])
    loss = dkd_loss(z, v, y, temperature=1.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_weights_select_the_terms_and_T_squared_scaling():
    torch.manual_seed(5)
    z, v, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    tckd, nckd = dkd_terms(z, v, y, 2.0)
    assert torch.allclose(dkd_loss(z, v, y, 1.0, 0.0, 2.0), tckd.mean())
    assert torch.allclose(dkd_loss(z, v, y, 0.0, 1.0, 2.0), nckd.mean())
    # T^2: the unscaled TCKD at T = 2 times 4
    b_t = torch.softmax(v / 2, 1)[torch.arange(8), y]
    b_s = torch.softmax(z / 2, 1)[torch.arange(8), y]
    raw = b_t * torch.log(b_t / b_s) + (1 - b_t) * torch.log((1 - b_t) / (1 - b_s))
    assert torch.allclose(tckd, 4 * raw, atol=1e-5)


def test_warmup_factor_ramps_linearly_to_one():
    assert warmup_factor(0) == 0.0
    assert warmup_factor(5) == 0.25
    assert warmup_factor(20) == 1.0 and warmup_factor(240) == 1.0
    assert warmup_factor(3, warmup_epochs=6) == 0.5
