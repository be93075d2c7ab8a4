"""Claims of Romero et al. (2014), FitNets, checked on the hint loss, regressor and two stages."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.romero2014fitnets import (
    ConvRegressor,
    annealed_kd_weight,
    fitnets_kd_loss,
    hint_loss,
    hint_stage_step,
    kd_stage_step,
    regressor_kernel_size,
)
from kdatlas.testing import Case, catchers, seeded


def _hint_teacher(seed):
    return seeded(lambda: nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)), seed)


_X = lambda: torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))  # noqa: E731


# benchmarks/mutants.py: mutants that cannot change what the code computes, with the reason.
MUTANTS_EQUIVALENT = {
    ("detach", "line 104: loss.detach()"): "the step's return value: detaching it only releases the graph after "
                                           "the update; the value, the gradients and the update are the same",
    ("detach", "line 118: loss.detach()"): "the step's return value: detaching it only releases the graph after "
                                           "the update; the value, the gradients and the update are the same",
}

# The silent-bug catchers (kdatlas.testing). The hint loss: the student's guided layer through the
# regressor (both learned) against the teacher's hint layer.
test_catchers_hint = catchers(Case(
    loss=lambda s, t, x, y: hint_loss(s(x), t(x)),
    student=lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(),
                                  ConvRegressor(2, 8, (8, 8), (4, 4), nonlinearity=nn.ReLU())),
    teacher=_hint_teacher, x=_X,
    zero_when_equal="the student is a guided layer + regressor, not a copy of the teacher (the zero case "
                    "with a matching regressor is tested in this file)"))
test_catchers_kd = catchers(Case(
    loss=lambda s, t, x, y: fitnets_kd_loss(s(x), t(x), y), student=lambda: nn.Linear(6, 5),
    teacher=lambda seed: seeded(lambda: nn.Linear(6, 5), seed),
    zero_when_equal="Eq. 2 is a cross-entropy: with P_S = P_T its soft term is the entropy of P_T"))


def test_kernel_size_maps_the_guided_size_to_the_hint_size():
    # Sec. 2.2: N_{g,i} - k_i + 1 = N_{h,i}
    assert regressor_kernel_size((16, 16), (8, 8)) == (9, 9)
    assert regressor_kernel_size((8, 6), (8, 4)) == (1, 3)
    for g, h in [((16, 16), (8, 8)), ((11, 7), (4, 7)), ((5, 5), (5, 5))]:
        r = ConvRegressor(3, 7, g, h)
        assert r(torch.randn(2, 3, *g)).shape == (2, 7, *h)
    # 1-D feature maps (sequences) get a Conv1d with the same rule
    r1 = ConvRegressor(3, 5, (20,), (10,))
    assert r1.conv.kernel_size == (11,) and r1(torch.randn(2, 3, 20)).shape == (2, 5, 10)


def test_regressor_has_k1_k2_Oh_Og_weights_far_fewer_than_fully_connected():
    og, oh, g, h = 8, 32, (16, 16), (8, 8)
    r = ConvRegressor(og, oh, g, h)
    k1, k2 = 9, 9
    assert r.conv.weight.numel() == k1 * k2 * oh * og
    fully_connected = (g[0] * g[1] * og) * (h[0] * h[1] * oh)
    assert r.conv.weight.numel() * 100 < fully_connected


def test_hint_larger_than_guided_layer_is_rejected():
    with pytest.raises(ValueError, match="larger"):
        regressor_kernel_size((4, 4), (8, 8))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        regressor_kernel_size((4, 4), (4,))


def test_regressor_ends_with_the_hints_nonlinearity():
    r = ConvRegressor(4, 6, (6, 6), (4, 4), nonlinearity=nn.ReLU())
    assert (r(torch.randn(3, 4, 6, 6)) >= 0).all()
    assert (ConvRegressor(4, 6, (6, 6), (4, 4))(torch.randn(3, 4, 6, 6)) < 0).any()


def test_hint_loss_by_hand():
    # Two samples with one 1x2 channel: 1/2 * (1 + 4) and 1/2 * (9 + 0); batch mean = 3.5
    r = torch.tensor([[[[1.0, 2.0]]], [[[3.0, 0.0]]]])
    h = torch.tensor([[[[0.0, 0.0]]], [[[0.0, 0.0]]]])
    assert math.isclose(hint_loss(r, h).item(), 3.5)


def test_hint_loss_zero_when_regressor_matches_and_shape_checked():
    torch.manual_seed(0)
    h = torch.randn(2, 4, 3, 3)
    assert hint_loss(h.clone(), h).item() == 0.0
    assert hint_loss(h + 0.1, h).item() > 0
    with pytest.raises(ValueError):
        hint_loss(torch.randn(2, 4, 3, 3), torch.randn(2, 5, 3, 3))


def test_stage2_kd_loss_is_eq2_cross_entropies_without_T_squared():
    z = torch.tensor([[1.0, 0.0, -1.0]])
    v = torch.tensor([[0.0, 3.0, 0.0]])
    y = torch.tensor([0])
    tau, lam = 3.0, 4.0
    ps = [math.exp(a) / sum(math.exp(b) for b in (1, 0, -1)) for a in (1, 0, -1)]
    ps_tau = [math.exp(a / tau) / sum(math.exp(b / tau) for b in (1, 0, -1)) for a in (1, 0, -1)]
    pt_tau = [math.exp(a / tau) / sum(math.exp(b / tau) for b in (0, 3, 0)) for a in (0, 3, 0)]
    expected = -math.log(ps[0]) + lam * -sum(p * math.log(q) for p, q in zip(pt_tau, ps_tau))
    assert math.isclose(fitnets_kd_loss(z, v, y, lam, tau).item(), expected, rel_tol=1e-5)
    # cross-entropy, not KL: with the student equal to the teacher the soft term is the entropy
    assert fitnets_kd_loss(v, v, torch.tensor([1]), 1.0, tau).item() > -math.log(
        F.softmax(v, 1)[0, 1].item()
    )


def test_annealed_kd_weight_goes_linearly_from_4_to_1():
    assert annealed_kd_weight(0, 11) == 4.0
    assert math.isclose(annealed_kd_weight(5, 11), 2.5)
    assert annealed_kd_weight(10, 11) == 1.0


def _nets():
    torch.manual_seed(2)
    teacher_hint = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
    teacher_head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 4 * 4, 3))
    teacher = nn.Sequential(teacher_hint, teacher_head)
    student_guided = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
    student_head = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    student = nn.Sequential(student_guided, student_head)
    regressor = ConvRegressor(4, 16, (8, 8), (4, 4), nonlinearity=nn.ReLU())  # 5x5 kernel
    return teacher, teacher_hint, student, student_guided, student_head, regressor


def test_stage1_trains_only_the_guided_part_and_regressor_and_lowers_the_hint_loss():
    teacher, teacher_hint, student, student_guided, student_head, regressor = _nets()
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())  # handed over unfrozen
    t_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    head_before = {k: v.clone() for k, v in student_head.state_dict().items()}
    g_before = student_guided[0].weight.detach().clone()
    opt = torch.optim.Adam([*student_guided.parameters(), *regressor.parameters()], lr=1e-2)
    x = torch.randn(16, 1, 8, 8)
    losses = [hint_stage_step(student_guided, regressor, teacher_hint, x, opt).item() for _ in range(20)]
    assert losses[-1] < 0.5 * losses[0]
    assert not any(m.training for m in teacher_hint.modules())
    assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(t_before[k], v) for k, v in teacher.state_dict().items())  # incl. BN stats
    assert all(torch.equal(head_before[k], v) for k, v in student_head.state_dict().items())
    assert not torch.equal(g_before, student_guided[0].weight)


def test_stage2_starts_from_stage1_weights_trains_the_whole_student_and_leaves_the_teacher():
    teacher, teacher_hint, student, student_guided, student_head, regressor = _nets()
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())  # handed over unfrozen
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    opt1 = torch.optim.SGD([*student_guided.parameters(), *regressor.parameters()], lr=1e-2)
    hint_stage_step(student_guided, regressor, teacher_hint, x, opt1)
    stage1_weight = student_guided[0].weight.detach().clone()
    assert torch.equal(student[0][0].weight, stage1_weight)  # W*_Guided initialises the student
    t_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    r_before = {k: v.clone() for k, v in regressor.state_dict().items()}
    head_before = student_head[2].weight.detach().clone()
    opt2 = torch.optim.SGD(student.parameters(), lr=0.1)
    loss = kd_stage_step(student, teacher, x, y, opt2, kd_weight=4.0, temperature=3.0)
    assert torch.isfinite(loss)
    assert not torch.equal(stage1_weight, student_guided[0].weight)
    assert not torch.equal(head_before, student_head[2].weight)
    assert all(torch.equal(r_before[k], v) for k, v in regressor.state_dict().items())
    assert not any(m.training for m in teacher.modules())
    assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(t_before[k], v) for k, v in teacher.state_dict().items())  # incl. BN stats


class _RecordsGradMode(nn.Module):
    """Wraps a teacher part and records whether autograd was on when it ran."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.grad_enabled = inner, []

    def forward(self, x):
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.inner(x)


def test_both_steps_run_the_teacher_without_building_a_graph():
    """Algorithm 1 never updates the teacher: its forward runs under no_grad (no activations kept)."""
    teacher, teacher_hint, student, student_guided, student_head, regressor = _nets()
    hint, full = _RecordsGradMode(teacher_hint), _RecordsGradMode(teacher)
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 3, (4,))
    hint_stage_step(student_guided, regressor, hint, x,
                    torch.optim.SGD([*student_guided.parameters(), *regressor.parameters()], lr=1e-2))
    kd_stage_step(student, full, x, y, torch.optim.SGD(student.parameters(), lr=1e-2))
    assert hint.grad_enabled == [False] and full.grad_enabled == [False]
