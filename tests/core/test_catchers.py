"""The shared catchers catch what they are for: each broken loss below fails the check named for it,
and a correct loss passes them all."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.testing import (Case, catchers, depends_on_teacher, finite_on_extreme_inputs, seeded,
                             student_gets_gradient, teacher_gets_no_gradient, zero_when_student_equals_teacher)


def _lin(seed: int) -> nn.Module:
    return seeded(lambda: nn.Linear(6, 5), seed)


def kd(s, t, T=4.0):
    return F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t.detach() / T, -1), reduction="batchmean",
                    log_target=True) * T * T


def case(loss) -> Case:
    return Case(loss=loss, student=lambda: nn.Linear(6, 5), teacher=_lin, zero_when_equal=True)


GOOD = case(lambda s, t, x, y: {"ce": F.cross_entropy(s(x), y), "kd": kd(s(x), t(x))})
test_catchers_pass_on_a_correct_loss = catchers(GOOD)


def no_detach(s, t, x, y):
    T = 4.0
    return F.kl_div(F.log_softmax(s(x) / T, -1), F.log_softmax(t(x) / T, -1), reduction="batchmean",
                    log_target=True) * T * T


def ignores_teacher(s, t, x, y):
    return F.cross_entropy(s(x), y) + 0.0 * t(x).detach().sum()


def swapped(s, t, x, y):  # student and teacher exchanged inside: the gradient goes to the teacher
    return kd(t(x), s(x))


def naive_softmax(s, t, x, y):  # log of a softmax that underflows: -inf * 0 = NaN on large logits
    p_t = F.softmax(t(x).detach() / 4, -1)
    return (p_t * (p_t.log() - F.softmax(s(x) / 4, -1).log())).sum(-1).mean()


def student_detached(s, t, x, y):
    return kd(s(x).detach(), t(x)) + 0.0 * s(x).sum()


@pytest.mark.parametrize("loss, check", [
    (no_detach, teacher_gets_no_gradient),
    (swapped, teacher_gets_no_gradient),
    (ignores_teacher, depends_on_teacher),
    (naive_softmax, finite_on_extreme_inputs),
    (student_detached, student_gets_gradient),
], ids=["no-detach", "swapped", "ignores-teacher", "naive-softmax", "student-detached"])
def test_a_broken_loss_fails_its_catcher(loss, check):
    check(GOOD)  # the same check passes on the correct loss
    with pytest.raises(AssertionError):
        check(case(loss))


def test_zero_check_fails_on_a_loss_with_an_offset_and_refuses_a_case_that_declares_it_does_not_hold():
    with pytest.raises(AssertionError, match="equal to the teacher"):
        zero_when_student_equals_teacher(case(lambda s, t, x, y: {"kd": kd(s(x), t(x)) + 0.1}))
    with pytest.raises(ValueError, match="does not apply"):
        zero_when_student_equals_teacher(Case(GOOD.loss, GOOD.student, GOOD.teacher, zero_when_equal="a reason"))


def test_trains_teacher_inverts_the_frozen_teacher_check():
    peers = Case(loss=no_detach, student=lambda: nn.Linear(6, 5), teacher=_lin, zero_when_equal=True,
                 trains_teacher=True)
    teacher_gets_no_gradient(peers)  # a method that trains its teacher: gradient expected
    with pytest.raises(AssertionError, match="no gradient reached the teacher"):
        teacher_gets_no_gradient(Case(loss=GOOD.loss, student=GOOD.student, teacher=_lin, zero_when_equal=True,
                                      trains_teacher=True))


def test_the_teacher_arrives_unfrozen_so_only_the_implementation_can_freeze_it():
    s, t = GOOD.models()
    assert t.training and all(p.requires_grad for p in t.parameters())
    assert not torch.equal(GOOD.models(0)[1].weight, GOOD.models(1)[1].weight)


def test_unknown_skip_is_an_error():
    with pytest.raises(ValueError, match="unknown catcher"):
        catchers(GOOD, skip={"frozen": "typo"})


def teacher_side_naive(s, t, x, y):  # log of the TEACHER's softmax: 0 * -inf = NaN once its logits are large
    p_t = F.softmax(t(x).detach() / 4, -1)
    return (p_t * (p_t.log() - F.log_softmax(s(x) / 4, -1))).sum(-1).mean()


def test_extreme_check_reaches_the_teacher_side_even_through_batchnorm():
    # A BatchNorm teacher normalises scaled inputs away; the check rescales the teacher's output too.
    bn = lambda seed: seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(),  # noqa: E731
                                                   nn.Linear(16, 5)), seed)
    finite_on_extreme_inputs(Case(GOOD.loss, GOOD.student, bn, zero_when_equal=True))
    for teacher in (_lin, bn):
        with pytest.raises(AssertionError, match="scaled by"):
            finite_on_extreme_inputs(Case(teacher_side_naive, GOOD.student, teacher, zero_when_equal=True))
