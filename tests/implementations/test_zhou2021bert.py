"""Claims of Zhou, Xu & McAuley (2022), MetaDistil, checked on kd_loss / pilot_update / quiz_loss /
teacher_meta_grads / student_loss / metadistil_step and the recipe, plus the shared catchers: the
meta (quiz) loss trains the teacher (inverted), the student's real step never does (not inverted)."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations import zhou2021bert as impl
from kdatlas.testing import Case, catchers, seeded


def _lin(seed):
    return seeded(lambda: nn.Linear(6, 5), seed)


# The quiz loss of a pilot student is the teacher's training signal: trains_teacher=True.
test_catchers_meta = catchers(Case(
    loss=lambda s, t, x, y: {"quiz": impl.quiz_loss(s, impl.pilot_update(s, t, x, y, step_size=0.5), x, y)},
    student=lambda: nn.Linear(6, 5), teacher=_lin, trains_teacher=True,
    zero_when_equal="the quiz loss is a cross-entropy on labels: not zero when the student equals the teacher"))
# The real student step (step 3) distils from the updated teacher without training it.
test_catchers_student = catchers(Case(loss=lambda s, t, x, y: impl.student_loss(s, t, x, y),
                                      student=lambda: nn.Linear(6, 5), teacher=_lin, zero_when_equal=True))


def _bn_student(seed=0):
    return seeded(lambda: nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 5)), seed)


def _teacher(seed=1):
    return seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 5)), seed)


def _batch(seed, n=16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), torch.randint(0, 5, (n,), generator=g)


def test_kd_loss_is_the_codes_mixture_on_a_hand_case():
    # Two classes, T = 1: p_T = softmax(0, ln 3) = (1/4, 3/4), p_S = (1/2, 1/2):
    # KL(p_T || p_S) = 1/4 ln(1/2) + 3/4 ln(3/2); the reverse direction differs.
    z, v, y = torch.zeros(1, 2), torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([1])
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    out = impl.kd_loss(z, v, y, alpha=0.9, temperature=1.0)
    assert out["kd"].item() == pytest.approx(0.9 * kl)
    assert out["ce"].item() == pytest.approx(0.1 * math.log(2))
    assert not math.isclose(kl, 0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel_tol=1e-3)
    out2 = impl.kd_loss(z, v, y, alpha=0.5, temperature=2.0)  # T^2 KL of the softened pair
    p = F.softmax(v / 2, 1)
    assert out2["kd"].item() == pytest.approx(0.5 * 4 * (p * (p.log() - math.log(0.5))).sum().item(), rel=1e-6)


def test_pilot_update_is_one_sgd_step_and_leaves_the_student_untouched():
    torch.manual_seed(0)
    student, teacher = _bn_student(), _teacher()
    x, y = _batch(1)
    before = copy.deepcopy(student.state_dict())
    pilot = impl.pilot_update(student, teacher, x, y, step_size=0.3)
    ref = copy.deepcopy(student)
    out = impl.kd_loss(ref(x), teacher(x).detach(), y)
    grads = torch.autograd.grad(out["ce"] + out["kd"], list(ref.parameters()))
    for (k, p), g, q in zip(pilot.items(), grads, ref.parameters()):
        assert torch.allclose(p, q - 0.3 * g, atol=1e-6), k
    q = impl.quiz_loss(student, pilot, *_batch(2))
    # the real student, its BatchNorm running statistics included, is bit-identical (the "time machine")
    assert all(torch.equal(v, before[k]) for k, v in student.state_dict().items())
    assert q.requires_grad and all(p.requires_grad for p in pilot.values())


def test_teacher_meta_gradient_matches_finite_differences():
    # d CE(y_q, S(x_q; theta_S - eta grad L_KD(theta_S, theta_T))) / d theta_T, second order, in float64.
    torch.manual_seed(3)
    student = seeded(lambda: nn.Linear(6, 5), 0).double()
    teacher = seeded(lambda: nn.Linear(6, 5), 1).double()
    x, y = _batch(4, 8)
    xq, yq = _batch(5, 8)
    x, xq = x.double(), xq.double()
    grads, q = impl.teacher_meta_grads(student, teacher, x, y, xq, yq, step_size=0.5, alpha=0.9, temperature=2.0)
    assert any(g.abs().max() > 1e-4 for g in grads)
    eps = 1e-6
    for p, g in zip(teacher.parameters(), grads):
        for idx in [(0, 0), (2, 3)] if p.dim() == 2 else [(0,), (4,)]:
            with torch.no_grad():
                p[idx] += eps
            up = impl.teacher_meta_grads(student, teacher, x, y, xq, yq, 0.5, 0.9, 2.0)[1]
            with torch.no_grad():
                p[idx] -= 2 * eps
            down = impl.teacher_meta_grads(student, teacher, x, y, xq, yq, 0.5, 0.9, 2.0)[1]
            with torch.no_grad():
                p[idx] += eps
            assert (up - down).item() / (2 * eps) == pytest.approx(g[idx].item(), rel=1e-4, abs=1e-8)
    assert not q.requires_grad


def _manual_step(student, teacher, x, y, xq, yq, s_lr, t_lr, eta, use_updated_teacher=True):
    """Steps 1-3 written out with plain SGD, for reference."""
    fast = copy.deepcopy(student)
    t_logits = teacher(x)
    out = impl.kd_loss(fast(x), t_logits, y)
    gs = torch.autograd.grad(out["ce"] + out["kd"], list(fast.parameters()), create_graph=True)
    params = {k: p - eta * g for (k, p), g in zip(fast.named_parameters(), gs)}
    q = F.cross_entropy(torch.func.functional_call(fast, params, (xq,)), yq)
    gt = torch.autograd.grad(q, list(teacher.parameters()))
    old = copy.deepcopy(teacher)
    with torch.no_grad():
        for p, g in zip(teacher.parameters(), gt):
            p -= t_lr * g
    v = (teacher if use_updated_teacher else old)(x).detach()
    out = impl.kd_loss(student(x), v, y)
    gs = torch.autograd.grad(out["ce"] + out["kd"], list(student.parameters()))
    with torch.no_grad():
        for p, g in zip(student.parameters(), gs):
            p -= s_lr * g


def test_metadistil_step_order_pilot_then_teacher_then_student_with_the_updated_teacher():
    torch.manual_seed(6)
    x, y = _batch(7)
    xq, yq = _batch(8)
    mk_s = lambda: seeded(lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 5)), 0)  # noqa: E731
    s, t = mk_s(), _teacher()
    ref_s, ref_t = mk_s(), _teacher()
    old_s, old_t = mk_s(), _teacher()
    terms = impl.metadistil_step(s, t, torch.optim.SGD(s.parameters(), lr=0.2), torch.optim.SGD(t.parameters(), lr=0.7),
                                 x, y, xq, yq, step_size=0.3)
    _manual_step(ref_s, ref_t, x, y, xq, yq, s_lr=0.2, t_lr=0.7, eta=0.3)
    _manual_step(old_s, old_t, x, y, xq, yq, s_lr=0.2, t_lr=0.7, eta=0.3, use_updated_teacher=False)
    # the teacher moved by exactly -mu * meta-gradient: no task loss of its own
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(t.parameters(), ref_t.parameters()))
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(s.parameters(), ref_s.parameters()))
    # ...and the student learned from the updated teacher, not the old one
    assert not all(torch.allclose(p, q, atol=1e-6) for p, q in zip(s.parameters(), old_s.parameters()))
    assert set(terms) == {"ce", "kd", "quiz"} and not any(v.requires_grad for v in terms.values())
    assert all(p.grad is None for p in t.parameters()), "the student's step left a gradient on the teacher"
    assert not t.training


def test_without_a_teacher_optimiser_it_is_plain_kd_and_the_teacher_is_unchanged():
    torch.manual_seed(9)
    x, y = _batch(10)
    s, t = _bn_student(), _teacher()
    ref = _bn_student()
    t_before = copy.deepcopy(t.state_dict())
    terms = impl.metadistil_step(s, t, torch.optim.SGD(s.parameters(), lr=0.2), None, x, y, step_size=0.3)
    assert all(torch.equal(v, t_before[k]) for k, v in t.state_dict().items())
    out = impl.kd_loss(ref(x), t(x).detach(), y)
    grads = torch.autograd.grad(out["ce"] + out["kd"], list(ref.parameters()))
    assert all(torch.allclose(p, q - 0.2 * g, atol=1e-6) for p, q, g in zip(s.parameters(), ref.parameters(), grads))
    assert set(terms) == {"ce", "kd"}


def test_a_small_teacher_step_lowers_the_pilots_quiz_loss():
    # What the teacher update is for: after it, the same pilot step from the same student gives a lower
    # quiz loss (a descent step on the meta-objective), on a toy with a deliberately wrong teacher.
    torch.manual_seed(11)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 5, generator=g)
    x = torch.randn(64, 6, generator=g)
    xq = torch.randn(64, 6, generator=g)
    y, yq = (x @ w).argmax(1), (xq @ w).argmax(1)
    for seed in range(3):
        s, t = seeded(lambda: nn.Linear(6, 5), seed), seeded(lambda: nn.Linear(6, 5), 100 + seed)
        with torch.no_grad():
            t.weight.copy_(-w.T)  # a teacher that prefers the wrong classes
        grads, q0 = impl.teacher_meta_grads(s, t, x, y, xq, yq, step_size=0.5)
        with torch.no_grad():
            for p, gr in zip(t.parameters(), grads):
                p -= 0.05 * gr
        q1 = impl.teacher_meta_grads(s, t, x, y, xq, yq, step_size=0.5)[1]
        assert q1 < q0, (seed, q0, q1)


# --------------------------------------------------------------------------- the recipe
@pytest.fixture(scope="module")
def quick():
    from kdatlas.harness import get_task
    task = get_task("mnist1d", quick=True, epochs=3)
    return task, task.teacher(seed=0)[0]


def test_quiz_set_is_teacher_data_the_student_never_trains_on(quick):
    from kdatlas.recipes import get_recipe, make_context
    from kdatlas.recipes.zhou2021bert import quiz_split

    task, teacher = quick
    loader, quiz = quiz_split(make_context(task, teacher, 1), get_recipe("zhou2021bert").settings_for("mnist1d"))
    n = len(task.student_data.train)
    assert list(quiz.indices) == list(range(n, len(task.teacher_data.train)))
    seen = torch.cat([b[2] for b in loader])
    assert sorted(seen.tolist()) == list(range(n))  # the student's own n_train examples, all of them
    xq = task.teacher_data.train.tensors[0][quiz.indices[0]]
    assert not (task.student_data.train.tensors[0] == xq).all(1).any()


def test_recipe_updates_a_copy_of_the_teacher_after_meta_start(quick):
    from kdatlas.recipes import get_recipe, make_context
    from kdatlas.recipes.zhou2021bert import train_metadistil

    task, teacher = quick
    recipe = get_recipe("zhou2021bert")
    assert recipe.needs_teacher
    s = recipe.settings_for("mnist1d")
    assert (s["alpha"], s["temperature"], s["meta_start"], s["teacher_lr_ratio"]) == (0.9, 4.0, 0.625, 0.5)
    cached = copy.deepcopy(teacher.state_dict())
    student, updated, hist, _ = train_metadistil(make_context(task, teacher, 1), s)
    assert all(torch.equal(v, cached[k]) for k, v in teacher.state_dict().items()), "the cached teacher changed"
    assert any(not torch.equal(v, cached[k]) for k, v in updated.state_dict().items() if v.is_floating_point())
    # round(0.625 * 3) = 2 epochs of plain KD, then meta-updates (a quiz loss logged) in the last one
    assert [math.isnan(q) for q in hist.terms["quiz"]] == [True, True, False]


def test_recipe_without_meta_updates_is_the_hinton_kd_student(quick):
    # Before meta_start the run is plain KD with the atlas's Hinton settings: with meta_start = 1 the
    # student must match the hinton2015distilling recipe's student of the same seed.
    from kdatlas.recipes import get_recipe, make_context, run_recipe
    from kdatlas.recipes.zhou2021bert import train_metadistil

    task, teacher = quick
    kd, _ = run_recipe(get_recipe("hinton2015distilling"), task, teacher, seed=2)
    s = get_recipe("zhou2021bert").settings_for("mnist1d", meta_start=1.0)
    student, _, hist, _ = train_metadistil(make_context(task, teacher, 2), s)
    for (k, a), b in zip(student.state_dict().items(), kd.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-4), k
    assert all(math.isnan(q) for q in hist.terms["quiz"])
