"""Claims of Phuong & Lampert (2019), Towards Understanding Knowledge Distillation, checked in the
paper's setting (linear teacher, linear and deep linear students, gradient descent), in float64."""
import math

import torch
from torch import nn

from kdatlas.implementations import phuong2019towards as impl
from kdatlas.testing import Case, catchers, seeded

F64 = torch.float64

# benchmarks/mutants.py: a mutant that cannot change what the code computes.
MUTANTS_EQUIVALENT = {
    ("swap", "line 120: angle(student_w, teacher_w)"):
        "the angle between two vectors is symmetric; test_risk_is_the_angle_over_pi_for_isotropic_inputs pins that",
}

# The catchers on the distillation objective, the student and teacher being the weight vectors of
# two bias-free linear maps (the teacher's vector arrives with requires_grad=True).
test_catchers = catchers(Case(
    loss=lambda s, t, x, y: impl.distillation_loss(x, s.weight[0], t.weight[0]),
    student=lambda: nn.Linear(6, 1, bias=False),
    teacher=lambda seed: seeded(lambda: nn.Linear(6, 1, bias=False), seed),
    zero_when_equal="L is the cross-entropy to soft labels: at w = w_* it is their entropy, its minimum, not 0"))


def _problem(n, d, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    w_star = scale * torch.randn(d, generator=g, dtype=F64) / math.sqrt(d) * 2
    return torch.randn(n, d, generator=g, dtype=F64), w_star


def test_loss_on_a_hand_checkable_case():
    x = torch.tensor([[1.0, 0.0], [1.0, 2.0]], dtype=F64)
    w, w_star = torch.tensor([0.5, -0.5], dtype=F64), torch.tensor([1.0, 1.0], dtype=F64)
    sig = lambda a: 1 / (1 + math.exp(-a))  # noqa: E731
    expected = 0.0
    for xi in ([1.0, 0.0], [1.0, 2.0]):
        t = sig(xi[0] * 1.0 + xi[1] * 1.0)
        q = sig(xi[0] * 0.5 - xi[1] * 0.5)
        expected -= (t * math.log(q) + (1 - t) * math.log(1 - q)) / 2
    assert math.isclose(impl.distillation_loss(x, w, w_star).item(), expected, rel_tol=1e-12)


def test_gradient_formula_matches_autograd():
    x, w_star = _problem(7, 5)
    w = torch.randn(5, dtype=F64, requires_grad=True)
    impl.distillation_loss(x, w, w_star).backward()
    assert torch.allclose(w.grad, impl.distillation_gradient(x, w.detach(), w_star), atol=1e-12)


def test_projection_onto_span():
    x, w_star = _problem(6, 20)
    p = impl.projection_onto_span(x, w_star)
    assert torch.allclose(impl.projection_onto_span(x, p), p, atol=1e-10)  # idempotent
    assert torch.allclose(x @ p, x @ w_star, atol=1e-10)  # same scores on the data
    assert torch.allclose(impl.projection_onto_span(x, x[2]), x[2], atol=1e-10)  # the data lie in the span
    assert torch.allclose(x @ (w_star - p), torch.zeros(6, dtype=F64), atol=1e-10)  # residual orthogonal


def test_below_d_gradient_descent_from_zero_converges_to_the_projection_of_the_teacher():
    # Optimisation bias: n < d, many w fit the soft labels exactly; GD from 0 picks P w_*.
    x, w_star = _problem(10, 50)
    w = impl.distill_linear(x, w_star, steps=4000)
    p = impl.projection_onto_span(x, w_star)
    assert torch.allclose(w, p, atol=1e-6)
    assert (w - w_star).norm() > 0.5 * w_star.norm()  # ...which is not the teacher
    assert torch.allclose(impl.distillation_gradient(x, w, w_star), torch.zeros(50, dtype=F64), atol=1e-9)
    # another minimiser (P w_* plus anything orthogonal to the data) has the same loss
    other = p + (w_star - p)
    assert math.isclose(impl.distillation_loss(x, other, w_star).item(), impl.distillation_loss(x, w, w_star).item(),
                        rel_tol=1e-9)


def test_the_part_of_the_start_outside_the_span_never_moves():
    x, w_star = _problem(10, 50)
    w0 = torch.randn(50, dtype=F64, generator=torch.Generator().manual_seed(5))
    w = impl.distill_linear(x, w_star, steps=4000, init=w0)
    assert torch.allclose(w, impl.distillation_limit(x, w_star, init=w0), atol=1e-6)
    outside = lambda v: v - impl.projection_onto_span(x, v)  # noqa: E731
    assert torch.allclose(outside(w), outside(w0), atol=1e-10)
    assert torch.allclose(impl.distillation_limit(x, w_star), impl.projection_onto_span(x, w_star))


def test_at_or_above_d_the_student_recovers_the_teacher_exactly():
    x, w_star = _problem(200, 20)
    w = impl.distill_linear(x, w_star, steps=3000)
    assert torch.allclose(w, w_star, atol=1e-8)
    assert torch.allclose(impl.distillation_limit(x, w_star), w_star, atol=1e-10)
    assert impl.transfer_risk(impl.sample_inputs(5000, w_star), w, w_star).item() == 0.0


def test_batched_descent_equals_one_problem_at_a_time():
    xs, ws = zip(*[_problem(8, 12, seed=k) for k in range(3)])
    x, w_star = torch.stack(xs), torch.stack(ws)
    batched = impl.distill_linear(x, w_star, steps=500)
    for k in range(3):
        assert torch.allclose(batched[k], impl.distill_linear(xs[k], ws[k], steps=500), atol=1e-12)


def test_deep_linear_student_ends_near_the_projection_when_its_first_layer_starts_small():
    x, w_star = _problem(10, 30)
    p = impl.projection_onto_span(x, w_star)
    errors = []
    for scale in (0.3, 0.1):
        g = torch.Generator().manual_seed(1)
        w, layers = impl.distill_deep_linear(x, w_star, depth=3, width=16, steps=1500, lr=0.5, init_scale=scale,
                                             generator=g)
        g = torch.Generator().manual_seed(1)
        w1_start = scale * torch.randn(16, 30, generator=g, dtype=F64) / math.sqrt(30)
        # the first layer's rows move only inside the data span (its gradient lies there)
        outside = lambda m: m - impl.projection_onto_span(x, m)  # noqa: E731  (row by row)
        assert torch.allclose(outside(layers[0]), outside(w1_start), atol=1e-9)
        assert torch.allclose(x @ w, x @ w_star, atol=1e-4)  # it fits the soft labels
        assert not w.requires_grad and not any(m.requires_grad for m in layers)
        errors.append(((w - p).norm() / p.norm()).item())
    assert errors[1] < 0.5 * errors[0] and errors[1] < 0.15  # the gap shrinks with the first layer's start


def test_risk_is_the_angle_over_pi_for_isotropic_inputs():
    x, w_star = _problem(10, 8)
    w = impl.distill_linear(x[:4], w_star, steps=2000)
    exact = impl.angle(w, w_star) / math.pi
    assert impl.angle(w, w_star) == impl.angle(w_star, w)
    x_test = torch.randn(200_000, 8, dtype=F64, generator=torch.Generator().manual_seed(3))
    assert abs(impl.transfer_risk(x_test, w, w_star).item() - exact.item()) < 0.005
    assert impl.transfer_risk(x_test, 3.0 * w, w_star) == impl.transfer_risk(x_test, w, w_star)  # scale-free


def test_strong_monotonicity_more_transfer_data_never_raises_the_risk():
    # Nested transfer sets: the span grows, the projection's angle to w_* cannot grow, so for
    # isotropic inputs the risk is non-increasing along every sequence, not only in expectation.
    x, w_star = _problem(60, 40)
    risks = [(impl.angle(impl.distillation_limit(x[:n], w_star), w_star) / math.pi).item()
             for n in (2, 5, 10, 20, 30, 39, 40, 60)]
    assert all(b <= a + 1e-12 for a, b in zip(risks, risks[1:]))
    assert risks[0] > 0.3 and risks[-1] < 1e-6
    # in expectation on another input distribution (the angular gap), with gradient descent
    g = torch.Generator().manual_seed(7)
    mean = []
    for n in (5, 15, 30):
        r = []
        for seed in range(8):
            _, w_s = _problem(1, 40, seed=100 + seed)
            xs = impl.sample_inputs(n, w_s, gap=0.1, generator=g)
            w = impl.distill_linear(xs, w_s, steps=1500)
            r.append(impl.transfer_risk(impl.sample_inputs(4000, w_s, gap=0.1, generator=g), w, w_s).item())
        mean.append(sum(r) / len(r))
    assert mean[0] > mean[1] > mean[2]


def test_soft_labels_beat_hard_labels_at_equal_sample_size():
    for seed in range(5):
        x, w_star = _problem(20, 50, seed=seed)
        soft = impl.distill_linear(x, w_star, steps=3000)
        hard = impl.hard_label_linear(x, w_star, steps=3000)
        # both stay in the span of the data; the projection has the smallest angle to w_* there
        assert impl.angle(soft, w_star) <= impl.angle(hard, w_star) + 1e-9
    x, w_star = _problem(100, 50)
    soft, hard = impl.distill_linear(x, w_star, steps=3000), impl.hard_label_linear(x, w_star, steps=3000)
    assert impl.angle(soft, w_star) < 1e-4 < 0.05 < impl.angle(hard, w_star)


def test_data_geometry_a_gap_at_the_boundary_makes_the_risk_vanish():
    # With no input mass within an angle gamma of the teacher's boundary, a student at an angle
    # below gamma from w_* disagrees with it nowhere; on isotropic inputs the same student errs.
    d, gap = 30, 0.25
    _, w_star = _problem(1, d, seed=2)
    x = impl.sample_inputs(20, w_star, gap=gap, generator=torch.Generator().manual_seed(0))
    x_test = impl.sample_inputs(20_000, w_star, gap=gap, generator=torch.Generator().manual_seed(1))
    assert (x_test @ w_star).abs().div(x_test.norm(dim=-1) * w_star.norm()).min() >= math.sin(gap)
    w = impl.distill_linear(x, w_star, steps=3000)
    assert impl.angle(w, w_star) < gap
    assert impl.transfer_risk(x_test, w, w_star).item() == 0.0
    iso = torch.randn(20_000, d, dtype=F64, generator=torch.Generator().manual_seed(1))
    assert impl.transfer_risk(iso, w, w_star) > 0.05
