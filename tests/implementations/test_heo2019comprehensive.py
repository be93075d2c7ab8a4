"""Claims of Heo et al. (2019), OFD, checked on the margin, the margin ReLU, the partial L2 and the glue."""
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from kdatlas.harness.models import mnist1d_student, mnist1d_teacher
from kdatlas.harness.loop import Progress
from kdatlas.implementations.heo2019comprehensive import (OFDConnector, PreReLUTap, last_batchnorm, margin_from_bn,
                                                          margin_relu, ofd_layer_weights, ofd_loss, partial_l2,
                                                          pre_relu_maps)
from kdatlas.recipes import get_recipe
from kdatlas.testing import Case, catchers, seeded

# benchmarks/mutants.py: mutants that cannot change what the code computes, with the reason.
MUTANTS_EQUIVALENT = {
    ("no_grad", "line 157: with torch.no_grad()"): "in the file's __main__ demo (setting a BatchNorm's parameters "
                                                   "by hand), which no caller and no test imports or runs",
}

_M = torch.full((8,), -0.5)  # one margin per teacher channel for the catchers

# The silent-bug catchers (kdatlas.testing): linear "pre-activations" of the teacher's width. With the
# student equal to the teacher the loss is 0: S = T where T >= m, and S = T < m = target <= 0 elsewhere.
test_catchers = catchers(Case(loss=lambda s, t, x, y: ofd_loss(s(x), t(x), _M), student=lambda: nn.Linear(6, 8),
                              teacher=lambda seed: seeded(lambda: nn.Linear(6, 8), seed), zero_when_equal=True))


def _official(source, target, margin):
    """clovaai/overhaul-distillation, CIFAR-100/distiller.py distillation_loss (re-typed): a sum."""
    target = torch.max(target, margin)
    loss = torch.nn.functional.mse_loss(source, target, reduction="none")
    return (loss * ((source > target) | (target > 0)).float()).sum()


def _official_margin(s, m):
    """get_margin_from_BN (re-typed) for one channel, with the normal cdf from math.erf."""
    s = abs(s)
    cdf = 0.5 * (1 + math.erf((-m / s) / math.sqrt(2)))
    if cdf > 0.001:
        return -s * math.exp(-(m / s) ** 2 / 2) / math.sqrt(2 * math.pi) / cdf + m
    return -3 * s


def test_margin_is_the_mean_of_the_negative_responses_monte_carlo():
    g = torch.Generator().manual_seed(0)
    gamma = torch.tensor([1.0, 0.5, 2.0, 1.0, 0.3])
    beta = torch.tensor([0.0, -0.7, 1.5, 2.5, 0.1])
    m = margin_from_bn(gamma, beta)
    for c in range(5):
        x = beta[c].double() + gamma[c].double() * torch.randn(1_000_000, generator=g, dtype=torch.float64)
        mc = x[x < 0].mean().item()
        assert abs(m[c].item() - mc) < 0.01 * gamma[c].item() + 1e-3, (c, m[c].item(), mc)
    # N(0, 1): E[x | x < 0] = -sqrt(2 / pi)
    assert math.isclose(m[0].item(), -math.sqrt(2 / math.pi), rel_tol=1e-5)


def test_margin_matches_the_official_formula_and_its_fallback():
    gamma = torch.tensor([1.0, 1.0, 1.0, -2.0, 0.8, 1.0])
    beta = torch.tensor([0.3, 3.0, 3.2, 1.0, -1.0, 5.0])  # P(x<0): ..., 1.3e-3 (formula), 6.9e-4 (-3s), ...
    got = margin_from_bn(gamma, beta)
    for c in range(6):
        assert math.isclose(got[c].item(), _official_margin(gamma[c].item(), beta[c].item()), rel_tol=1e-5)
    assert got[2].item() == -3.0 and got[5].item() == -3.0  # almost no negative mass: -3 |gamma|
    assert got[1].item() > -3.0  # P(x < 0) = 1.35e-3 > 0.001: the truncated mean
    assert torch.equal(margin_from_bn(-gamma, beta), got)  # the scale is |gamma|
    assert (got < 0).all() and (got <= beta).all()  # a mean of negative values, below the mean response


def test_margin_reads_the_affine_parameters_not_the_running_statistics():
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 0.5, 2.0])), bn.bias.copy_(torch.tensor([0.0, 0.2, -1.0]))
    before = margin_from_bn(bn.weight, bn.bias)
    bn.train()(torch.randn(16, 3, 4, 4) * 5 + 3)  # moves running_mean / running_var
    assert torch.equal(margin_from_bn(bn.weight, bn.bias), before)
    assert not margin_from_bn(bn.weight, bn.bias).requires_grad
    assert torch.isfinite(margin_from_bn(torch.zeros(2), torch.tensor([1.0, -1.0]))).all()  # gamma = 0: no NaN


def test_margin_relu_is_a_per_channel_max():
    x = torch.tensor([[[2.0, -0.1, -3.0], [-0.2, -1.0, 0.5]]])  # (1, 2 channels, 3 positions)
    m = torch.tensor([-0.5, -0.1])
    assert torch.equal(margin_relu(x, m), torch.tensor([[[2.0, -0.1, -0.5], [-0.1, -0.1, 0.5]]]))
    assert margin_relu(torch.randn(2, 2, 3, 3), m).shape == (2, 2, 3, 3)  # 2-D maps broadcast too


def test_partial_l2_by_hand():
    # (target, student): skipped only where student <= target <= 0
    t = torch.tensor([-0.5, -0.5, -0.5, 1.0, 1.0, 0.0, 0.0])
    s = torch.tensor([-2.0, -0.5, 0.5, 0.0, 3.0, -1.0, 0.3])
    # -2 <= -0.5 <= 0: 0; s = t: 0; s > t: 1^2; t > 0: 1^2 and 2^2; s <= t = 0: 0; s > t = 0: 0.3^2
    assert math.isclose(partial_l2(s, t).item(), 1.0 + 1.0 + 4.0 + 0.09, rel_tol=1e-6)
    with pytest.raises(ValueError, match="shapes differ"):
        partial_l2(torch.zeros(2, 3), torch.zeros(2, 4))


def test_ofd_loss_equals_the_official_loss_divided_by_the_batch():
    torch.manual_seed(1)
    s, t = torch.randn(4, 3, 5, 5), torch.randn(4, 3, 5, 5)
    m = torch.tensor([-0.8, -0.3, -1.2])
    t[0, 0, 0, :3] = -0.3  # ties with the margin of channel 1 / equal values
    s[0, 1, 0, :3] = t[0, 1, 0, :3]
    assert torch.allclose(ofd_loss(s, t, m), _official(s, t, m.view(1, -1, 1, 1)) / 4)


def test_no_gradient_where_the_student_is_already_below_a_non_positive_target():
    torch.manual_seed(2)
    t = torch.randn(3, 4, 6)
    m = torch.full((4,), -0.6)
    s = torch.randn(3, 4, 6).requires_grad_()
    ofd_loss(s, t, m).backward()
    target = margin_relu(t, m)
    skipped = (s.detach() <= target) & (target <= 0)
    assert skipped.any() and (~skipped).any()
    assert (s.grad[skipped] == 0).all()
    assert torch.allclose(s.grad[~skipped], (2 * (s.detach() - target) / 3)[~skipped])
    # a student that copies the positive responses and is anywhere below the margin elsewhere: zero loss
    copy = torch.where(t > 0, t, torch.minimum(t, m.view(1, -1, 1)) - torch.rand(3, 4, 6))
    assert ofd_loss(copy, t, m).item() == 0.0
    # but the negative values themselves are not copied: between margin and 0 the student is pulled to m
    assert ofd_loss(torch.where(t > 0, t, torch.full_like(t, -0.1)), t, m).item() > 0


def test_layer_weights():
    assert ofd_layer_weights(3) == [0.25, 0.5, 1.0] and ofd_layer_weights(1) == [1.0]


def test_connector_is_a_1x1_conv_and_batchnorm():
    torch.manual_seed(3)
    c2, c1 = OFDConnector(4, 32), OFDConnector(4, 32, dim=1)
    assert isinstance(c2.conv, nn.Conv2d) and c2.conv.kernel_size == (1, 1) and c2.conv.bias is None
    assert isinstance(c1.bn, nn.BatchNorm1d) and c1(torch.randn(3, 4, 9)).shape == (3, 32, 9)
    assert abs(OFDConnector(64, 32).conv.weight.std().item() - 0.25) < 0.02  # sqrt(2 / 32)
    with pytest.raises(ValueError):
        OFDConnector(4, 8, dim=3)


def test_tap_and_teacher_maps_are_pre_relu():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1, bias=False), nn.BatchNorm1d(3), nn.ReLU(inplace=True))
    x = torch.randn(4, 2, 6)
    tap = PreReLUTap([last_batchnorm(net)])
    net(x)
    assert (tap.maps[0] < 0).any() and tap.maps[0].requires_grad
    tap.remove()
    assert not net[1]._forward_hooks and not tap.active
    maps = pre_relu_maps(net.train(), x, [net[1]])
    assert (maps[0] < 0).any() and not maps[0].requires_grad and net.training


def test_recipe_loss_and_hooks_come_off_after_the_last_step():
    torch.manual_seed(5)
    student, teacher = mnist1d_student(), mnist1d_teacher().eval()
    with torch.no_grad():
        for st in teacher.stages:  # a teacher whose BNs are not at their initial gamma = 1, beta = 0
            last_batchnorm(st).bias.uniform_(-1, 1)
    x, y = torch.randn(8, 1, 40), torch.arange(8) % 10
    with torch.no_grad():
        sf, tf = student.eval().forward_features(x)[0], teacher.forward_features(x)[0]
    student.train()
    recipe = get_recipe("heo2019comprehensive")
    s = recipe.settings_for("mnist1d")
    (phase,) = recipe.phases(SimpleNamespace(student=student, teacher=teacher, student_features=sf,
                                             teacher_features=tf), s)
    feats, logits = student.forward_features(x)
    so = SimpleNamespace(features=feats, logits=logits)
    terms = phase.loss(so, None, y, Progress(step=0, epoch=0, steps_per_epoch=5, epochs=2))
    assert set(terms) == {"ce", "ofd"}
    # by hand: the stage's last conv-BN without its ReLU, through the connectors; the teacher's margins
    h, hs = x, []
    for st in student.stages:
        hs.append(st[-1][1](st[-1][0](st[:-1](h))))
        h = st(h)
    bns = [last_batchnorm(st) for st in teacher.stages]
    ts = pre_relu_maps(teacher, x, bns)
    want = sum(w * ofd_loss(c(m), t, margin_from_bn(bn.weight, bn.bias))
               for w, c, m, t, bn in zip([0.25, 0.5, 1.0], phase.modules, hs, ts, bns))
    assert torch.allclose(terms["ofd"], want / 1000, rtol=1e-4)
    assert student.stages[0]._forward_pre_hooks  # still on during training
    phase.loss(SimpleNamespace(features=feats, logits=student(x)), None, y,
               Progress(step=9, epoch=1, steps_per_epoch=5, epochs=2))  # the last step
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in student.modules())


def test_training_copies_positive_responses_and_pushes_the_rest_below_the_margin():
    # Qualitative claim: the student learns the teacher's positive responses and only needs to be
    # below max(T, m) where the teacher's response is negative.
    torch.manual_seed(6)
    x = torch.randn(256, 6)
    teacher = nn.Linear(6, 10)
    with torch.no_grad():
        t_pre = teacher(x)
    m = torch.full((10,), -0.4)
    student = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    first = None
    for _ in range(400):
        loss = ofd_loss(student(x), t_pre, m)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = student(x).detach()
    pos = t_pre > 0
    assert loss.item() < 0.05 * first
    assert (out[pos] - t_pre[pos]).abs().mean() < 0.1
    target = margin_relu(t_pre, m)  # where T <= 0: max(T, m), so at or below the margin (or T if above it)
    assert (out[~pos] <= target[~pos] + 0.1).float().mean() > 0.95
