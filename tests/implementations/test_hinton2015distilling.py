"""Claims of Hinton, Vinyals & Dean (2015) checked on kd_loss / KDLoss."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.hinton2015distilling import KDLoss, kd_loss
from kdatlas.testing import Case, catchers, seeded


def _teacher(seed):  # BatchNorm: a train-mode teacher would also change its running statistics
    return seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5)), seed)


# The silent-bug catchers (kdatlas.testing) on the function and on the module with its CE term.
test_catchers_kd_loss = catchers(Case(loss=lambda s, t, x, y: kd_loss(s(x), t(x), 4.0),
                                      student=lambda: nn.Linear(6, 5), teacher=_teacher, zero_when_equal=True))
test_catchers_module = catchers(Case(loss=lambda s, t, x, y: KDLoss()(s(x), t(x), y),
                                     student=lambda: nn.Linear(6, 5), teacher=_teacher, zero_when_equal=True))


def test_formula_on_a_hand_checkable_case():
    # One sample, two classes, T=2: everything written out with math, not with the library.
    z, v, t = [1.0, 0.0], [0.0, 2.0], 2.0
    q = [math.exp(a / t) / sum(math.exp(b / t) for b in z) for a in z]
    p = [math.exp(a / t) / sum(math.exp(b / t) for b in v) for a in v]
    expected = t**2 * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    got = kd_loss(torch.tensor([z]), torch.tensor([v]), temperature=t)
    assert math.isclose(got.item(), expected, rel_tol=1e-5)


def test_batch_reduction_is_the_mean_over_samples_not_over_classes():
    torch.manual_seed(0)
    z, v = torch.randn(6, 7), torch.randn(6, 7)
    per_sample = torch.stack([kd_loss(z[i : i + 1], v[i : i + 1], 3.0) for i in range(6)])
    assert torch.allclose(kd_loss(z, v, 3.0), per_sample.mean(), atol=1e-6)


def test_gradient_is_T_times_q_minus_p_over_batch():
    # Sec. 2.1, Eq. 2: dC/dz = (q - p)/T per sample; times T^2, averaged over the batch.
    torch.manual_seed(1)
    b, t = 5, 3.0
    z = torch.randn(b, 10, requires_grad=True)
    v = torch.randn(b, 10)
    kd_loss(z, v, t).backward()
    q, p = F.softmax(z.detach() / t, -1), F.softmax(v / t, -1)
    assert torch.allclose(z.grad, t * (q - p) / b, atol=1e-6)


def test_high_temperature_limit_is_logit_matching():
    # Sec. 2.1, Eqs. 3-4: with zero-mean logits and T >> |logits|, grad -> (z - v)/(N T^2);
    # with the T^2 factor: (z - v)/N per sample, the gradient of (1/2N)||z - v||^2.
    torch.manual_seed(2)
    b, n = 4, 10
    z0 = torch.randn(b, n, dtype=torch.float64)
    v = torch.randn(b, n, dtype=torch.float64)
    z0, v = z0 - z0.mean(1, keepdim=True), v - v.mean(1, keepdim=True)
    target_grad = (z0 - v) / (n * b)
    logit_matching = ((z0 - v) ** 2).sum(1).mean() / (2 * n)
    errors = []
    for t in (10.0, 100.0, 1000.0):
        z = z0.clone().requires_grad_(True)
        loss = kd_loss(z, v, t)
        loss.backward()
        errors.append((z.grad - target_grad).abs().max().item() / target_grad.abs().max().item())
        if t == 1000.0:
            assert math.isclose(loss.item(), logit_matching.item(), rel_tol=1e-3)
    assert errors[-1] < 1e-3
    assert errors[0] > 3 * errors[1] > 9 * errors[2]  # the gap closes as T grows
    # ...and at T=1 it is NOT logit matching (the test can fail).
    assert not math.isclose(kd_loss(z0, v, 1.0).item(), logit_matching.item(), rel_tol=1e-1)


def test_T_squared_keeps_gradient_size_roughly_constant_across_T():
    torch.manual_seed(3)
    z0, v = torch.randn(16, 10), torch.randn(16, 10)
    norms = {}
    for t in (4.0, 8.0, 16.0, 32.0):
        z = z0.clone().requires_grad_(True)
        kd_loss(z, v, t).backward()
        norms[t] = z.grad.norm().item()
        # Without T^2 the soft-target gradient shrinks as 1/T^2.
        z2 = z0.clone().requires_grad_(True)
        (kd_loss(z2, v, t) / t**2).backward()
        assert math.isclose(z2.grad.norm().item(), norms[t] / t**2, rel_tol=1e-5)
    assert max(norms.values()) / min(norms.values()) < 1.5
    assert norms[4.0] / 4.0**2 / (norms[32.0] / 32.0**2) > 30  # the unscaled ones differ ~64x


def test_positive_when_the_student_differs_and_not_symmetric():
    torch.manual_seed(4)
    z, v = torch.randn(8, 10), torch.randn(8, 10)
    assert kd_loss(v + torch.randn(8, 10), v, 4.0).item() > 1e-3
    assert not torch.isclose(kd_loss(z, v), kd_loss(v, z))  # KL(p_T || p_S): the order matters


def test_module_returns_the_weighted_ce_and_kd_terms():
    torch.manual_seed(7)
    z, v, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    out = KDLoss(temperature=2.0, ce_weight=0.3, kd_weight=0.7)(z, v, y)
    ce = -F.log_softmax(z, -1)[torch.arange(8), y].mean()
    assert set(out) == {"ce", "kd"}
    assert torch.allclose(out["ce"], 0.3 * ce, atol=1e-6)
    assert torch.allclose(out["kd"], 0.7 * kd_loss(z, v, 2.0))
    only_ce = KDLoss(ce_weight=1.0, kd_weight=0.0)(z, v, y)
    assert torch.allclose(sum(only_ce.values()), ce, atol=1e-6)
