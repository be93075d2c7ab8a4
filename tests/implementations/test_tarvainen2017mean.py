"""Claims of Mean Teacher (Tarvainen & Valpola, 2017), checked on the EMA, ramp-up and consistency cost."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.tarvainen2017mean import (consistency_weight, ema_update, input_noise, make_teacher,
                                                      mean_teacher_loss, sigmoid_rampup, softmax_kl, softmax_mse)
from kdatlas.testing import Case, catchers, seeded

_LABELED = torch.arange(8) < 4
MUTANTS_EQUIVALENT = {("detach", "line 72: sp.detach()"): "ema_update runs under torch.no_grad: nothing to detach from"}


# The silent-bug catchers: the EMA teacher must get no gradient from the loss (it changes only through
# ema_update, tested below), so the usual checks hold; "ce" is the label term.
test_catchers = catchers(Case(
    loss=lambda s, t, x, y: mean_teacher_loss(s(x), t(x), y, _LABELED, weight=10.0),
    student=lambda: nn.Linear(6, 5), teacher=lambda seed: seeded(lambda: nn.Linear(6, 5), seed),
    zero_when_equal=True))


def _one_param(value):
    m = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(value)
    return m


def test_ema_formula_on_one_parameter():
    teacher, student = _one_param(1.0), _one_param(3.0)
    a = ema_update(teacher, student, alpha=0.9, step=1000)  # past the warm start: a = alpha
    assert a == 0.9 and math.isclose(teacher.weight.item(), 0.9 * 1.0 + 0.1 * 3.0, rel_tol=1e-6)
    assert student.weight.item() == 3.0  # the student is not touched


def test_warm_start_is_the_true_average_until_the_ema_takes_over():
    # a_t = min(1 - 1/(t + 1), alpha): step 0 copies the student, then theta'_t is the plain mean of
    # theta_0..theta_t (the code's "use the true average until the exponential average is more correct").
    teacher, student = _one_param(-7.0), _one_param(0.0)
    values = [2.0, 4.0, 9.0, -3.0]
    for t, v in enumerate(values):
        with torch.no_grad():
            student.weight.fill_(v)
        ema_update(teacher, student, alpha=0.99, step=t)
        assert math.isclose(teacher.weight.item(), sum(values[: t + 1]) / (t + 1), rel_tol=1e-6)
    assert ema_update(teacher, student, alpha=0.99, step=10) == pytest.approx(1 - 1 / 11)
    assert ema_update(teacher, student, alpha=0.99, step=10_000) == 0.99


def test_alpha_zero_copies_and_buffers_are_the_teachers_own_unless_copied():
    torch.manual_seed(0)
    student = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    teacher = make_teacher(student)
    student(torch.randn(16, 3) * 5)  # moves the student's BN running statistics only
    with torch.no_grad():
        student[0].weight.add_(1.0)
    ema_update(teacher, student, alpha=0.0, step=100)
    assert torch.equal(teacher[0].weight, student[0].weight)
    assert not torch.equal(teacher[1].running_mean, student[1].running_mean)  # "own": as in the code
    ema_update(teacher, student, alpha=0.0, step=100, buffers="copy")
    assert torch.equal(teacher[1].running_mean, student[1].running_mean)
    with pytest.raises(ValueError, match="buffers"):
        ema_update(teacher, student, 0.5, 1, buffers="average")


def test_teacher_is_frozen_to_the_optimiser_and_moves_only_by_the_ema():
    torch.manual_seed(1)
    student = nn.Linear(4, 3)
    teacher = make_teacher(student)
    assert all(not p.requires_grad for p in teacher.parameters())
    opt = torch.optim.SGD(student.parameters(), lr=0.5)
    x, y = torch.randn(8, 4), torch.arange(8) % 3
    before = [p.clone() for p in teacher.parameters()]
    terms = mean_teacher_loss(student(x), teacher(x), y, _LABELED, weight=10.0)
    opt.zero_grad()
    sum(terms.values()).backward()
    opt.step()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters()))
    ema_update(teacher, student, alpha=0.9, step=50)
    assert all(not torch.equal(a, b) for a, b in zip(before, teacher.parameters()))


def test_sigmoid_rampup_ends_and_the_weight():
    assert math.isclose(sigmoid_rampup(0, 10), math.exp(-5))
    assert sigmoid_rampup(10, 10) == 1.0 and sigmoid_rampup(25, 10) == 1.0 and sigmoid_rampup(-3, 10) == math.exp(-5)
    assert math.isclose(sigmoid_rampup(5, 10), math.exp(-5 * 0.25))
    assert sigmoid_rampup(3, 0) == 1.0
    assert math.isclose(consistency_weight(2.5, 100.0, 5.0), 100.0 * math.exp(-5 * 0.25))


def test_consistency_is_a_mean_squared_error_between_probabilities():
    z_s = torch.tensor([[0.0, 0.0]])
    z_t = torch.tensor([[math.log(3.0), 0.0]])  # p_t = (3/4, 1/4), p_s = (1/2, 1/2)
    assert math.isclose(softmax_mse(z_s, z_t).item(), (0.25 ** 2 + 0.25 ** 2) / 2, rel_tol=1e-6)  # / (B C)
    torch.manual_seed(2)
    a, b = torch.randn(5, 4), torch.randn(5, 4)
    assert softmax_mse(a, a.clone()).item() == 0.0
    assert torch.allclose(softmax_mse(a + 3.0, b - 1.0), softmax_mse(a, b))  # probabilities, not logits
    assert not torch.isclose(softmax_mse(a, b), F.mse_loss(a, b))
    # the code's softmax_mse_loss: sum over the batch / C, then the caller divides by B
    code = F.mse_loss(F.softmax(a, 1), F.softmax(b, 1), reduction="sum") / 4 / 5
    assert torch.allclose(softmax_mse(a, b), code)
    kl = (F.softmax(b, 1) * (F.log_softmax(b, 1) - F.log_softmax(a, 1))).sum(1).mean()
    assert torch.allclose(softmax_kl(a, b), kl, atol=1e-6)


def test_both_consistency_costs_send_no_gradient_to_the_teacher_side():
    for cost in (softmax_mse, softmax_kl):
        z_s, z_t = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
        cost(z_s, z_t).backward()
        assert z_t.grad is None and z_s.grad.abs().sum() > 0


def test_labels_enter_only_through_the_labelled_rows_divided_by_the_whole_batch():
    torch.manual_seed(3)
    z_s, z_t, y = torch.randn(8, 5), torch.randn(8, 5), torch.arange(8) % 5
    terms = mean_teacher_loss(z_s, z_t, y, _LABELED, weight=2.0)
    ce = F.cross_entropy(z_s[:4], y[:4], reduction="sum") / 8  # the code: sum with ignore_index / minibatch
    assert torch.allclose(terms["ce"], ce) and torch.allclose(terms["consistency"], 2.0 * softmax_mse(z_s, z_t))
    y2 = y.clone()
    y2[4:] = (y2[4:] + 1) % 5  # unlabelled rows' targets are never read
    assert torch.equal(mean_teacher_loss(z_s, z_t, y2, _LABELED, 2.0)["ce"], terms["ce"])
    kl = mean_teacher_loss(z_s, z_t, y, _LABELED, 2.0, consistency="kl")["consistency"]
    assert torch.allclose(kl, 2.0 * softmax_kl(z_s, z_t))
    with pytest.raises(ValueError, match="at least one labelled"):
        mean_teacher_loss(z_s, z_t, y, torch.zeros(8, dtype=torch.bool), 1.0)
    with pytest.raises(ValueError, match="boolean mask"):
        mean_teacher_loss(z_s, z_t, y, torch.ones(8), 1.0)


def test_input_noise_shifts_each_sample_and_adds_gaussian_noise():
    g = torch.Generator().manual_seed(4)
    x = torch.arange(2 * 1 * 10, dtype=torch.float32).reshape(2, 1, 10)
    shifted = input_noise(x, sigma=0.0, max_shift=3, generator=g)
    for i in range(2):  # each row is a circular shift of itself by at most 3
        assert any(torch.equal(shifted[i], torch.roll(x[i], k, 1)) for k in range(-3, 4))
    assert torch.equal(input_noise(x, sigma=0.0, max_shift=0), x)
    noisy = input_noise(torch.zeros(4000, 1, 8), sigma=0.15, max_shift=0, generator=g)
    assert abs(noisy.std().item() - 0.15) < 0.005
    img = torch.rand(3, 2, 6, 6)
    assert input_noise(img, 0.1, 2, torch.Generator().manual_seed(5)).shape == img.shape
    a = input_noise(img, 0.1, 2, torch.Generator().manual_seed(5))
    assert torch.equal(a, input_noise(img, 0.1, 2, torch.Generator().manual_seed(5)))  # seeded


def test_the_weight_average_is_closer_to_the_optimum_than_the_noisy_iterates():
    # Why the mean teacher is a better role model than the student it averages: under noisy SGD the
    # iterates rattle around the optimum, and their exponential average sits closer to it. A
    # quadratic loss with noisy gradients; over the last half of training the EMA's distance to the
    # optimum is below the iterates' at almost every step.
    g = torch.Generator().manual_seed(6)
    target = torch.randn(20, generator=g)
    student = nn.Linear(20, 1, bias=False)
    with torch.no_grad():
        student.weight.zero_()
    teacher = make_teacher(student)
    d_student, d_teacher = [], []
    for t in range(600):
        grad = (student.weight[0] - target) + 0.5 * torch.randn(20, generator=g)
        with torch.no_grad():
            student.weight[0] -= 0.2 * grad
        ema_update(teacher, student, alpha=0.95, step=t)
        if t >= 300:
            d_student.append((student.weight[0] - target).norm().item())
            d_teacher.append((teacher.weight[0] - target).norm().item())
    assert sum(d_teacher) / len(d_teacher) < 0.5 * sum(d_student) / len(d_student)
    assert sum(a < b for a, b in zip(d_teacher, d_student)) > 0.9 * len(d_student)
