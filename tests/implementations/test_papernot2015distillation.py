"""Claims of Papernot et al. (2015), defensive distillation, checked on the implementation's functions."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.papernot2015distillation import (
    defensive_distillation_loss,
    fgsm,
    input_gradient_norm,
    soft_labels,
    temperature_ce_loss,
)
from kdatlas.testing import Case, catchers, seeded


# benchmarks/mutants.py: mutants that cannot change what the code computes, with the reason.
MUTANTS_EQUIVALENT = {
    ("detach", "line 73: x.detach()"): "the input is cloned and made a leaf whose gradient alone is asked for "
                                      "(torch.autograd.grad): with or without the detach, the same value, "
                                      "and nothing reaches the caller's graph",
    ("detach", "line 88: x.detach()"): "the input is cloned and made a leaf whose gradient alone is asked for "
                                      "(torch.autograd.grad): with or without the detach, the same value, "
                                      "and nothing reaches the caller's graph",
}


def _teacher(seed):  # BatchNorm: a train-mode teacher would also change its running statistics
    return seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5)), seed)


# The silent-bug catchers (kdatlas.testing) on step 3, the student on the teacher's soft labels.
# (Step 1 trains F on hard labels alone: it has no teacher.)
# At T = 100 the teacher's logits are given the scale training at T = 100 gives them (x100); logits of
# order 1 would make its soft labels uniform to within float32 precision for any teacher.
test_catchers = catchers(Case(
    loss=lambda s, t, x, y: defensive_distillation_loss(s(x), 100.0 * t(x), 100.0),
    student=lambda: nn.Linear(6, 5), teacher=_teacher, extreme_scale=1e6,
    zero_when_equal="step 3 is a cross-entropy: with F^d = F it is the entropy of F at T, not 0"))
test_catchers_low_t = catchers(Case(
    loss=lambda s, t, x, y: defensive_distillation_loss(s(x), t(x), 2.0),
    student=lambda: nn.Linear(6, 5), teacher=_teacher,
    zero_when_equal="step 3 is a cross-entropy: with F^d = F it is the entropy of F at T, not 0"))


def test_losses_by_hand():
    # One sample, two classes, T = 2, written out with math.
    z, v, t = [1.0, 0.0], [0.0, 2.0], 2.0
    q = [math.exp(a / t) / sum(math.exp(b / t) for b in z) for a in z]
    p = [math.exp(a / t) / sum(math.exp(b / t) for b in v) for a in v]
    got = defensive_distillation_loss(torch.tensor([z]), torch.tensor([v]), t)
    assert math.isclose(got.item(), -sum(pi * math.log(qi) for pi, qi in zip(p, q)), rel_tol=1e-6)
    assert math.isclose(temperature_ce_loss(torch.tensor([z]), torch.tensor([0]), t).item(), -math.log(q[0]),
                        rel_tol=1e-6)
    assert torch.allclose(soft_labels(torch.tensor([v]), t), torch.tensor([p]))


def test_no_T_squared_factor_and_no_label_term():
    # Unlike Hinton et al., the gradient is (q - p)/T per sample: it shrinks as T grows.
    torch.manual_seed(0)
    z = torch.randn(4, 5, requires_grad=True)
    v = torch.randn(4, 5)
    for t in (1.0, 10.0):
        z.grad = None
        defensive_distillation_loss(z, v, t).backward()
        q, p = F.softmax(z.detach() / t, -1), F.softmax(v / t, -1)
        assert torch.allclose(z.grad, (q - p) / t / 4, atol=1e-7)


def test_softmax_gradient_at_T_is_the_jacobian_over_T():
    # d softmax(z/T)/dz = (1/T) (diag(F) - F F^T), the factor that vanishes once F saturates.
    z, t = torch.tensor([1.0, -0.5, 2.0]), 4.0
    jac = torch.autograd.functional.jacobian(lambda a: F.softmax(a / t, -1), z)
    f = F.softmax(z / t, -1)
    assert torch.allclose(jac, (torch.diag(f) - torch.outer(f, f)) / t, atol=1e-6)
    big = torch.autograd.functional.jacobian(lambda a: F.softmax(a, -1), 100 * z)
    assert big.abs().max() < 1e-20  # deployed at T = 1 with 100x logits: the Jacobian is ~0


def test_prediction_does_not_depend_on_the_deployment_temperature():
    torch.manual_seed(1)
    z = torch.randn(32, 10)
    for t in (1.0, 5.0, 100.0):
        assert torch.equal(soft_labels(z, t).argmax(-1), z.argmax(-1))


def test_input_gradient_norm_and_fgsm_by_hand_on_a_linear_model():
    lin = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]))
    x = torch.tensor([[1.0, 1.0, 1.0]])  # logits (3, 1): class 0
    assert math.isclose(input_gradient_norm(lin, x, "logit").item(), math.sqrt(5), rel_tol=1e-6)
    p = 1 / (1 + math.exp(-2.0))  # F_0; dF_0/dx = p(1-p)(w_0 - w_1)
    assert math.isclose(input_gradient_norm(lin, x, "prob").item(), p * (1 - p) * math.sqrt(1 + 4 + 1),
                        rel_tol=1e-5)
    adv = fgsm(lin, x, torch.tensor([0]), eps=0.1)  # CE gradient: -(1-p)(w_0 - w_1): signs (-, -, +)
    assert torch.allclose(adv, torch.tensor([[0.9, 0.9, 1.1]]))
    assert not adv.requires_grad and adv.grad_fn is None  # an input, not a node of the attack's graph
    with pytest.raises(ValueError):
        input_gradient_norm(lin, x, "loss")


def _blobs(n, gen):
    centres = torch.tensor([[2.0, 0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0, 0], [0, 0, 2.0, 0, 0, 0]])
    y = torch.arange(n) % 3
    return centres[y] + torch.randn(n, 6, generator=gen), y


def _defensively_distilled(t, x, y, seed=0):
    """Steps 1-3 of Sec. IV on a toy MLP (full batch, Adam); returns (F, F^d)."""
    make = lambda: nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))  # noqa: E731

    def fit(net, loss_of_logits):
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(300):
            opt.zero_grad()
            loss_of_logits(net(x)).backward()
            opt.step()
        return net.eval()

    teacher = fit(seeded(make, seed + 100), lambda z: temperature_ce_loss(z, y, t))
    with torch.no_grad():
        z_t = teacher(x)
    return teacher, fit(seeded(make, seed), lambda z: defensive_distillation_loss(z, z_t, t))


def test_the_papers_effect_on_a_toy_input_gradients_shrink_as_T_grows_logit_gradients_do_not():
    # The claim (Sec. V): the distilled network, deployed at T = 1, has much smaller gradients of its
    # probabilities with respect to the input the higher the training temperature, at the same
    # accuracy. Its logit gradients do not shrink (they grow with the logits): gradient masking.
    gen = torch.Generator().manual_seed(0)
    x, y = _blobs(300, gen)
    x_test, y_test = _blobs(600, gen)
    prob, logit, acc, zero32 = {}, {}, {}, {}
    for t in (1.0, 10.0, 50.0):
        _, student = _defensively_distilled(t, x, y)
        zero32[t] = (input_gradient_norm(student, x_test, "prob") == 0).float().mean().item()
        student = student.double()  # float64: the shrinking gradients stay measurable instead of 0
        prob[t] = input_gradient_norm(student, x_test.double(), "prob").median().item()
        logit[t] = input_gradient_norm(student, x_test.double(), "logit").median().item()
        acc[t] = (student(x_test.double()).argmax(1) == y_test).float().mean().item()
    assert prob[1.0] > 100 * prob[10.0] > 100 * 100 * prob[50.0], prob
    assert logit[50.0] > logit[1.0], logit
    assert min(acc.values()) > max(acc.values()) - 0.04 and min(acc.values()) > 0.75, acc  # overlapping blobs
    # In float32, the precision the paper's networks ran in, most of them are exactly zero at T = 50.
    assert zero32[1.0] < 0.5 < zero32[50.0], zero32


def test_fgsm_on_the_deployed_model_fails_where_rescaled_logits_succeed():
    # Gradient masking: FGSM on the saturated T = 1 softmax gets no (or a useless) gradient; dividing
    # the logits by T again (Carlini & Wagner) restores the attack.
    gen = torch.Generator().manual_seed(1)
    x, y = _blobs(300, gen)
    x_test, y_test = _blobs(600, gen)
    t, eps = 50.0, 1.0
    _, student = _defensively_distilled(t, x, y)
    _, base = _defensively_distilled(1.0, x, y)  # T = 1: plain training, then plain distillation
    err = lambda m, xa: (m(xa).argmax(1) != y_test).float().mean().item()  # noqa: E731
    plain_vs_distilled = err(student, fgsm(student, x_test, y_test, eps))
    rescaled_vs_distilled = err(student, fgsm(student, x_test, y_test, eps, logit_divisor=t))
    plain_vs_base = err(base, fgsm(base, x_test, y_test, eps))
    assert plain_vs_distilled < plain_vs_base - 0.1, (plain_vs_distilled, plain_vs_base)
    assert rescaled_vs_distilled > plain_vs_distilled + 0.1, (rescaled_vs_distilled, plain_vs_distilled)
