"""Claims of Mirzadeh et al. (2020), Teacher Assistant KD, checked on kd_term / takd_loss /
distillation_path and on the recipe's intermediate-size assistant, plus the shared catchers."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations import mirzadeh2019improved as impl
from kdatlas.testing import Case, catchers, seeded


def _teacher(seed):  # BatchNorm: a train-mode teacher would also change its running statistics
    return seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5)), seed)


test_catchers_kd_term = catchers(Case(loss=lambda s, t, x, y: impl.kd_term(s(x), t(x), 4.0),
                                      student=lambda: nn.Linear(6, 5), teacher=_teacher, zero_when_equal=True))
test_catchers_takd_loss = catchers(Case(loss=lambda s, t, x, y: impl.takd_loss(s(x), t(x), y),
                                        student=lambda: nn.Linear(6, 5), teacher=_teacher, zero_when_equal=True))


def test_kd_term_on_a_hand_checkable_case():
    # L_KD = tau^2 KL(softmax(a_t/tau) || softmax(a_s/tau)): one sample, three classes, tau = 2.
    a_s, a_t, tau = [1.0, 0.0, -1.0], [0.0, 2.0, 0.5], 2.0
    q = [math.exp(a / tau) / sum(math.exp(b / tau) for b in a_s) for a in a_s]
    p = [math.exp(a / tau) / sum(math.exp(b / tau) for b in a_t) for a in a_t]
    expected = tau**2 * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    got = impl.kd_term(torch.tensor([a_s]), torch.tensor([a_t]), temperature=tau)
    assert math.isclose(got.item(), expected, rel_tol=1e-5)
    assert not math.isclose(impl.kd_term(torch.tensor([a_t]), torch.tensor([a_s]), tau).item(), expected, rel_tol=1e-2)


def test_kl_is_averaged_over_samples_as_in_the_formula_not_over_classes_as_in_the_code():
    # The authors' train.py uses nn.KLDivLoss() (default: mean over batch and classes); the
    # formula's KL is per sample. This file follows the formula: C times the code's value.
    torch.manual_seed(0)
    a_s, a_t, tau = torch.randn(6, 10), torch.randn(6, 10), 5.0
    per_sample = torch.stack([impl.kd_term(a_s[i:i + 1], a_t[i:i + 1], tau) for i in range(6)])
    assert torch.allclose(impl.kd_term(a_s, a_t, tau), per_sample.mean(), atol=1e-6)
    code = nn.KLDivLoss()(F.log_softmax(a_s / tau, dim=1), F.softmax(a_t / tau, dim=1)) * tau * tau
    assert torch.allclose(impl.kd_term(a_s, a_t, tau), 10 * code, rtol=1e-5)


def test_takd_loss_is_the_lambda_mixture_of_ce_and_kd():
    torch.manual_seed(1)
    a_s, a_t, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    out = impl.takd_loss(a_s, a_t, y, kd_weight=0.3, temperature=2.0)
    assert set(out) == {"ce", "kd"}
    assert torch.allclose(out["ce"], 0.7 * F.cross_entropy(a_s, y))
    assert torch.allclose(out["kd"], 0.3 * impl.kd_term(a_s, a_t, 2.0))
    only_labels = impl.takd_loss(a_s, a_t, y, kd_weight=0.0)
    assert torch.allclose(sum(only_labels.values()), F.cross_entropy(a_s, y))  # lambda = 0: no distillation


def test_each_step_is_the_atlas_hinton_kd():
    # Every arrow of the chain is plain KD: the same term as hinton2015distilling's kd_loss.
    from kdatlas.implementations.hinton2015distilling import kd_loss
    torch.manual_seed(2)
    a_s, a_t = torch.randn(8, 10), torch.randn(8, 10)
    for tau in (1.0, 4.0, 20.0):
        assert torch.allclose(impl.kd_term(a_s, a_t, tau), kd_loss(a_s, a_t, tau), atol=1e-6)


def _recording_distil(log):
    def distil(model, frozen):
        log.append((model, frozen, frozen.training, any(p.requires_grad for p in frozen.parameters())))
        return model
    return distil


def test_path_without_assistant_is_direct_kd_and_each_teacher_is_the_previous_model_frozen():
    teacher = _teacher(0).train()
    student = nn.Linear(6, 5)
    log = []
    chain = impl.distillation_path(teacher, [lambda: student], _recording_distil(log))
    assert chain == [teacher, student] and len(log) == 1  # BLKD: the student's teacher is the teacher
    assert log[0][1] is teacher and log[0][2:] == (False, False)  # frozen: eval mode, no gradients

    log = []
    assistant, student = _teacher(1).train(), nn.Linear(6, 5)
    chain = impl.distillation_path(teacher, [lambda: assistant, lambda: student], _recording_distil(log))
    assert chain == [teacher, assistant, student]
    assert [(m, t) for m, t, *_ in log] == [(assistant, teacher), (student, assistant)]  # T -> TA -> S
    assert all(entry[2:] == (False, False) for entry in log)


def test_path_trains_each_model_from_the_previous_one():
    # A real two-step chain on a toy: the assistant learns to match the teacher, the student the assistant.
    torch.manual_seed(3)
    x, y = torch.randn(64, 6), torch.randint(0, 5, (64,))
    teacher = _teacher(0)

    def distil(model, frozen):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        with torch.no_grad():
            target = frozen(x)
        for _ in range(200):
            opt.zero_grad()
            sum(impl.takd_loss(model(x), target, y, kd_weight=1.0, temperature=1.0).values()).backward()
            opt.step()
        return model

    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    chain = impl.distillation_path(teacher, [lambda: seeded(lambda: nn.Sequential(nn.Linear(6, 12), nn.ReLU(),
                                                                                  nn.Linear(12, 5)), 1),
                                             lambda: nn.Linear(6, 5)], distil)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())  # the teacher never moves
    with torch.no_grad():
        z_t, z_a, z_s = (m.eval()(x) for m in chain)
    assert impl.kd_term(z_a, z_t, 1.0) < 0.5 * impl.kd_term(seeded(lambda: nn.Linear(6, 5), 9)(x), z_t, 1.0)
    assert impl.kd_term(z_s, z_a, 1.0) < impl.kd_term(z_s, z_t, 1.0)  # the student matched the assistant


def test_intermediate_model_lies_between_student_and_teacher():
    from kdatlas.harness import get_task, n_params
    from kdatlas.harness.models import digits_student, digits_teacher, mnist1d_student, mnist1d_teacher, \
        resnet8x4, resnet32x4
    from kdatlas.recipes.mirzadeh2019improved import intermediate_model

    s, t = mnist1d_student(), mnist1d_teacher()
    ta = intermediate_model(s, t)
    assert ta.feature_channels == [16, 32, 64] and len(ta.stages[0]) == len(s.stages[0]) == 1
    assert n_params(s) < n_params(ta) < n_params(t)
    x = torch.randn(2, 1, 40)
    assert [f.shape[1:] for f in ta.forward_features(x)[0]] == [(c, n) for c, n in zip((16, 32, 64), (40, 20, 10))]
    assert intermediate_model(s, t, ratio=0.0).feature_channels == s.feature_channels
    assert intermediate_model(s, t, ratio=1.0).feature_channels == t.feature_channels
    d = intermediate_model(digits_student(), digits_teacher())
    assert d.feature_channels == [16, 32, 64] and isinstance(d.stages[0][0][0], nn.Conv2d) and len(d.stages[0]) == 2
    r = intermediate_model(resnet8x4(), resnet32x4())
    assert r.feature_channels == [32, 64, 128, 256] and len(r.stages[1]) == 3  # resnet20x4
    assert r(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    with pytest.raises(ValueError):
        intermediate_model(nn.Linear(2, 2), nn.Linear(2, 2))
    task = get_task("mnist1d", quick=True)  # the task's own factories give the same assistant
    assert intermediate_model(task.make_student(), task.make_teacher()).feature_channels == [16, 32, 64]


def test_recipe_chain_teacher_to_assistant_to_student():
    from kdatlas.harness import get_task
    from kdatlas.recipes import get_recipe, make_context
    from kdatlas.recipes.mirzadeh2019improved import train_chain

    task = get_task("mnist1d", quick=True, epochs=2)
    recipe = get_recipe("mirzadeh2019improved")
    teacher = seeded(task.make_teacher, 0).eval().requires_grad_(False)  # any frozen teacher will do here
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    ctx = make_context(task, teacher, seed=1)
    chain, hists = train_chain(ctx, recipe.settings_for("mnist1d"), track=True)
    assert chain[0] is teacher and chain[2] is ctx.student and len(hists) == 2
    assert chain[1].feature_channels == [16, 32, 64]
    assert not chain[1].training and not any(p.requires_grad for p in chain[1].parameters())  # frozen TA
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    assert all(len(h.test_acc) == 2 and set(h.terms) == {"ce", "kd"} for h in hists)
