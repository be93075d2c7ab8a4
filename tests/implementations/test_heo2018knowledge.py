"""Claims of Heo et al. (2019), activation-boundary distillation, checked on ab_loss and its helpers."""
import copy
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.harness.models import mnist1d_student, mnist1d_teacher
from kdatlas.implementations.heo2018knowledge import (ABConnector, PreReLUTap, ab_kd_loss, ab_layer_weights, ab_loss,
                                                      boundary_disagreement, last_batchnorm, multi_layer_ab_loss,
                                                      pre_relu_maps)
from kdatlas.recipes import get_recipe
from kdatlas.testing import Case, catchers, seeded

# benchmarks/mutants.py: mutants that cannot change what the code computes, with the reason.
MUTANTS_EQUIVALENT = {
    ("detach", "line 76: teacher_preact.detach()"): "only the comparison teacher_preact > 0 is taken from it: a "
                                                    "boolean mask carries no gradient either way",
    ("swap", "line 83: boundary_disagreement(student_preact, teacher_preact)"): "the XOR of the two sign patterns is "
                                                                       "symmetric in its arguments",
}


def _scaled_copy(teacher, factor=1e4):
    """A student with the teacher's responses times 1e4: the same signs, all beyond the margin."""
    student = copy.deepcopy(teacher)
    with torch.no_grad():
        for p in student.parameters():
            p.mul_(factor)
    return student


# The silent-bug catchers (kdatlas.testing): linear "pre-activations" of the teacher's width (the
# connector is tested below). A copy of the teacher is not at zero loss (responses with |T| < mu
# still pay); a copy with its responses scaled by 1e4 is (the same signs, beyond the margin).
test_catchers = catchers(Case(loss=lambda s, t, x, y: ab_loss(s(x), t(x)), student=lambda: nn.Linear(6, 8),
                              teacher=lambda seed: seeded(lambda: nn.Linear(6, 8), seed),
                              zero_when_equal=True, equal_student=_scaled_copy))
test_catchers_kd = catchers(Case(loss=lambda s, t, x, y: ab_kd_loss(s(x), t(x), 3.0), student=lambda: nn.Linear(6, 5),
                                 teacher=lambda seed: seeded(lambda: nn.Linear(6, 5), seed), zero_when_equal=True))


def _official(source, target, margin):
    """bhheo/AB_distillation, criterion_alternative_L2 (re-typed): the sum, before / batch_size."""
    return ((source + margin) ** 2 * ((source > -margin) & (target <= 0)).float()
            + (source - margin) ** 2 * ((source <= margin) & (target > 0)).float()).abs().sum()


def test_hand_case():
    # T > 0 at 0 and 2, T <= 0 at 1 (including T = 0 exactly: "off") and 3; margin 1.
    t = torch.tensor([[2.0, 0.0, 0.5, -3.0]])
    s = torch.tensor([[0.5, -2.0, 3.0, 0.2]])
    # on, s = 0.5 < 1: (1 - 0.5)^2; off, s = -2 <= -1: 0; on, s = 3 >= 1: 0; off, s = 0.2 > -1: (1 + 0.2)^2
    assert math.isclose(ab_loss(s, t).item(), 0.25 + 1.44, rel_tol=1e-6)
    assert math.isclose(ab_loss(s, t, margin=0.5).item(), 0.0 + 0.0 + 0.0 + 0.7 ** 2, rel_tol=1e-6)
    # sum over neurons, mean over the batch: two copies of the sample give the same value
    assert math.isclose(ab_loss(s.repeat(2, 1), t.repeat(2, 1)).item(), 1.69, rel_tol=1e-6)
    assert math.isclose(boundary_disagreement(s, t).item(), 0.25)  # neuron 3: student on, teacher off


def test_equals_the_official_criterion_divided_by_the_batch():
    torch.manual_seed(0)
    s, t = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    t[0, 0] = 0.0  # ties: the official code counts T = 0 as off and S = +-mu as inside
    s[1, 1, :2] = 1.0
    s[1, 2, :2] = -1.0
    for m in (0.5, 1.0, 2.0):
        assert torch.allclose(ab_loss(s, t, m), _official(s, t, m) / 5)


def test_zero_iff_every_sign_agrees_beyond_the_margin():
    torch.manual_seed(1)
    t = torch.randn(4, 6, 5)
    s = torch.sign(t) * (1.0 + torch.rand(4, 6, 5))  # the teacher's sign, |s| >= mu = 1
    s[t == 0] = -1.0
    assert ab_loss(s, t).item() == 0.0
    for idx, value in (((0, 0, 0), 0.9 * torch.sign(t[0, 0, 0])), ((1, 2, 3), -torch.sign(t[1, 2, 3]) * 2.0)):
        bad = s.clone()
        bad[idx] = value  # one neuron inside the margin, or on the wrong side
        assert ab_loss(bad, t).item() > 0.0
    # the same signs but inside the margin: not zero (the margin is what separates it from sign matching)
    assert ab_loss(0.5 * s / s.abs(), t).item() > 0.0


def test_gradient_only_where_the_boundary_is_wrong_or_inside_the_margin():
    torch.manual_seed(2)
    t = torch.randn(3, 8, 7)
    s = (2.0 * torch.randn(3, 8, 7)).requires_grad_()
    ab_loss(s, t).backward()
    active = ((t > 0) & (s < 1.0)) | ((t <= 0) & (s > -1.0))
    assert active.any() and (~active).any()
    assert (s.grad[active] != 0).all() and (s.grad[~active] == 0).all()
    # where the teacher is on the gradient pushes s up, where it is off it pushes s down
    assert (s.grad[active & (t > 0)] < 0).all() and (s.grad[active & (t <= 0)] > 0).all()
    # its size: 2 (s - mu) / B, 2 (s + mu) / B
    expected = torch.where(t > 0, 2 * (s.detach() - 1.0), 2 * (s.detach() + 1.0)) / 3 * active
    assert torch.allclose(s.grad, expected, atol=1e-6)


def test_only_the_teachers_sign_matters():
    torch.manual_seed(3)
    s, t = torch.randn(4, 5, 6), torch.randn(4, 5, 6)
    base = ab_loss(s, t)
    for scale in (1e-3, 10.0, 1e4):
        assert torch.equal(ab_loss(s, scale * t), base)
    assert torch.equal(ab_loss(s, torch.sign(t)), base)
    assert not torch.isclose(ab_loss(s, -t), base)  # flipping the signs does change it


def test_the_surrogate_bounds_the_boundary_disagreement():
    # A neuron on the wrong side pays at least mu^2: B L >= mu^2 x (number of disagreeing neurons).
    torch.manual_seed(4)
    for m in (0.3, 1.0, 2.0):
        s, t = torch.randn(6, 10), torch.randn(6, 10)
        wrong = ((s > 0) ^ (t > 0)).sum().item()
        assert wrong > 0
        assert 6 * ab_loss(s, t, m).item() >= m * m * wrong - 1e-5


def test_layer_weights_and_the_multi_layer_sum():
    assert ab_layer_weights(3) == [0.25, 0.5, 1.0] and ab_layer_weights(4) == [0.125, 0.25, 0.5, 1.0]
    torch.manual_seed(5)
    ss = [torch.randn(2, 3, 8), torch.randn(2, 4, 4), torch.randn(2, 5, 2)]
    ts = [torch.randn(2, 3, 8), torch.randn(2, 4, 4), torch.randn(2, 5, 2)]
    each = [ab_loss(s, t) for s, t in zip(ss, ts)]
    assert torch.allclose(multi_layer_ab_loss(ss, ts), 0.25 * each[0] + 0.5 * each[1] + each[2])
    assert torch.allclose(multi_layer_ab_loss(ss, ts, weights=[1.0, 0.0, 0.0]), each[0])
    with pytest.raises(ValueError, match="student maps"):
        multi_layer_ab_loss(ss[:2], ts)
    with pytest.raises(ValueError, match="connector"):
        ab_loss(torch.randn(2, 3, 8), torch.randn(2, 4, 8))


def test_kd_term_is_the_official_one_without_t_squared():
    torch.manual_seed(6)
    zs, zt = torch.randn(7, 10), torch.randn(7, 10)
    ref = F.kl_div(F.log_softmax(zs / 3, 1), F.softmax(zt / 3, 1), reduction="batchmean")
    assert torch.allclose(ab_kd_loss(zs, zt, 3.0), ref, atol=1e-6)
    assert ab_kd_loss(zt, zt, 3.0).abs().item() < 1e-6


def test_connector_is_a_1x1_conv_and_batchnorm_in_1d_and_2d():
    torch.manual_seed(7)
    c2, c1 = ABConnector(4, 32), ABConnector(4, 32, dim=1)
    assert isinstance(c2.conv, nn.Conv2d) and c2.conv.kernel_size == (1, 1) and c2.conv.bias is None
    assert isinstance(c1.conv, nn.Conv1d) and isinstance(c1.bn, nn.BatchNorm1d)
    assert c2(torch.randn(3, 4, 5, 5)).shape == (3, 32, 5, 5) and c1(torch.randn(3, 4, 9)).shape == (3, 32, 9)
    assert torch.equal(c2.bn.weight, torch.ones(32)) and torch.equal(c2.bn.bias, torch.zeros(32))
    # He-normal: std sqrt(2 / (1 * 1 * C_out)) = 0.25 for 32 output channels (128 weights)
    assert abs(ABConnector(64, 32).conv.weight.std().item() - 0.25) < 0.02
    with pytest.raises(ValueError):
        ABConnector(4, 8, dim=3)


def _stage():
    return nn.Sequential(nn.Conv1d(2, 3, 3, padding=1, bias=False), nn.BatchNorm1d(3), nn.ReLU(inplace=True))


def test_tap_keeps_the_pre_relu_map_despite_the_inplace_relu():
    torch.manual_seed(8)
    net = _stage()
    x = torch.randn(4, 2, 6)
    tap = PreReLUTap([last_batchnorm(net)])
    out = net(x)
    expected = net[1](net[0](x))  # BN in train mode: same batch statistics
    assert torch.allclose(tap.maps[0], expected, atol=1e-6) and (tap.maps[0] < 0).any()
    assert torch.allclose(out, expected.relu(), atol=1e-6)  # the network's own output is untouched
    tap.maps[0].sum().backward()  # still in the graph: the conv gets a gradient through it
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0
    tap.remove()
    assert tap.active is False and not net[1]._forward_hooks
    with pytest.raises(ValueError, match="no BatchNorm"):
        last_batchnorm(nn.Linear(2, 2))


def test_pre_relu_maps_runs_the_teacher_in_eval_without_gradients():
    torch.manual_seed(9)
    teacher = _stage().train()
    x = torch.randn(4, 2, 6)
    stats = teacher[1].running_mean.clone()
    maps = pre_relu_maps(teacher, x, [teacher[1]])
    assert not maps[0].requires_grad and teacher.training  # no graph; its mode restored
    assert torch.equal(teacher[1].running_mean, stats)  # eval: running statistics untouched
    with torch.no_grad():
        ref = teacher[1].eval()(teacher[0](x))
    assert torch.allclose(maps[0], ref, atol=1e-6) and not teacher[1]._forward_hooks


def test_recipe_distils_pre_relu_maps_and_drops_its_hooks_in_phase_two():
    # The recipe's glue on the harness's MNIST-1D models, without a task: phase 1's loss must be the
    # AB loss of the student's pre-ReLU maps (through the connectors) and the teacher's.
    torch.manual_seed(10)
    student, teacher = mnist1d_student(), mnist1d_teacher().eval()
    x, y = torch.randn(8, 1, 40), torch.arange(8) % 10
    with torch.no_grad():
        sf, tf = student.eval().forward_features(x)[0], teacher.forward_features(x)[0]
    student.train()
    recipe = get_recipe("heo2018knowledge")
    s = recipe.settings_for("mnist1d")
    ctx = SimpleNamespace(student=student, teacher=teacher, student_features=sf, teacher_features=tf)
    ab_phase, kd_phase = recipe.phases(ctx, s)
    assert ab_phase.share == 0.125 and len(ab_phase.modules) == 3
    assert not any(p is q for p in ab_phase.params for q in student.fc.parameters())  # stages + connectors only
    feats, logits = student.forward_features(x)
    so = SimpleNamespace(features=feats, logits=logits)
    got = ab_phase.loss(so, None, y, None)["ab"]
    # the same maps, computed by hand: each stage's last conv-BN without its ReLU
    h, hs = x, []
    for st in student.stages:
        hs.append(st[-1][1](st[-1][0](st[:-1](h))))
        h = st(h)
    ts = pre_relu_maps(teacher, x, [last_batchnorm(st) for st in teacher.stages])
    want = s["ab_weight"] * multi_layer_ab_loss([c(m) for c, m in zip(ab_phase.modules, hs)], ts, 1.0)
    assert torch.allclose(got, want, rtol=1e-4)
    assert (ts[0] < 0).any()  # pre-ReLU: the teacher's negative side is there
    got.backward()
    assert all(p.grad is not None for p in ab_phase.modules[0].parameters())
    with torch.no_grad():
        to = SimpleNamespace(logits=teacher(x))
    terms = kd_phase.loss(SimpleNamespace(features=feats, logits=student(x)), to, y, None)
    assert set(terms) == {"kd"}  # the official second phase: KD alone (ce_weight = 0)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in student.modules())


def test_training_on_ab_aligns_the_students_activation_boundaries():
    # Qualitative claim: minimising the surrogate drives the student's on/off pattern to the teacher's.
    torch.manual_seed(11)
    x = torch.randn(256, 6)
    teacher = nn.Linear(6, 12)
    student = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))  # a narrower last layer
    conn = ABConnector(4, 12, dim=1)
    with torch.no_grad():
        t_pre = teacher(x)
    params = list(student.parameters()) + list(conn.parameters())
    opt = torch.optim.Adam(params, lr=1e-2)
    start = boundary_disagreement(conn(student(x)[..., None]), t_pre[..., None]).item()
    for _ in range(300):
        loss = ab_loss(conn(student(x)[..., None]), t_pre[..., None])
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = boundary_disagreement(conn(student(x)[..., None]), t_pre[..., None]).item()
    assert start > 0.3 and end < 0.1
