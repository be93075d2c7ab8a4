r"""The shared silent-bug catchers, applied to any paper's loss by parametrisation.

A test file describes its loss once, as a :class:`Case`, and gets one parametrised test::

    from kdatlas.testing import Case, catchers

    CASE = Case(loss=lambda s, t, x, y: impl.kd_loss(s(x), t(x), temperature=4.0),
                student=lambda: nn.Linear(6, 5), teacher=lambda seed: seeded(nn.Linear(6, 5), seed),
                zero_when_equal=True)
    test_catchers = catchers(CASE)

``loss(student, teacher, x, y)`` runs both models itself and returns a scalar or a dict of named
terms (a key "ce" is the label term: it is exempt from the teacher checks). The catchers build the
models fresh for every check and never freeze the teacher themselves: it arrives in train mode with
``requires_grad=True`` and its outputs are computed with autograd on, so only the implementation's
own ``.detach()`` / ``no_grad`` can keep it out of the graph. The checks:

- ``depends_on_teacher``: another teacher gives another loss (every non-"ce" term).
- ``student_gets_gradient``: every term gives the student a nonzero, finite gradient.
- ``teacher_gets_no_gradient``: after ``backward()`` every teacher parameter's ``.grad`` is None, and
  after a real optimiser step over student and teacher parameters (SGD with momentum and weight
  decay, which would move any parameter that has a gradient, even a zero one) the teacher's
  parameters are bit-identical. With ``trains_teacher=True`` (methods that train their teacher or
  peers) this is inverted: the teacher must get a gradient and move.
- ``zero_when_student_equals_teacher``: where that holds (``zero_when_equal=True``), with the student
  a copy of the teacher the teacher terms are 0 within ``zero_tol``; a string instead of True/False
  is the reason it does not hold, and the check is not run.
- ``finite_on_extreme_inputs``: inputs scaled by +-``extreme_scale`` (logits of order 1e4 for the
  default linear models) give a finite loss and finite student gradients. The teacher's output is
  also rescaled to a largest magnitude of ``extreme_scale`` (a forward hook; the factor is a
  constant), since a teacher with normalisation layers (BatchNorm) would otherwise cancel the input
  scaling and only the student's side would ever be extreme.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

__all__ = ["Case", "catchers", "seeded", "CHECKS", "depends_on_teacher", "student_gets_gradient",
           "teacher_gets_no_gradient", "zero_when_student_equals_teacher", "finite_on_extreme_inputs"]


def seeded(make: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``make()`` with the initial weights of ``seed`` (the global RNG restored afterwards)."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return make()
    finally:
        torch.random.set_rng_state(state)


@dataclass
class Case:
    """One loss, described for the catchers (see the module docstring)."""

    loss: Callable[[nn.Module, nn.Module, Tensor, Tensor], Tensor | dict]
    student: Callable[[], nn.Module]
    teacher: Callable[[int], nn.Module]          # seed -> a teacher; two seeds, two different teachers
    zero_when_equal: bool | str                  # True, or the reason it does not hold
    x: Callable[[], Tensor] = lambda: torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
    y: Callable[[], Tensor] = lambda: torch.arange(8) % 5
    equal_student: Callable[[nn.Module], nn.Module] | None = None  # teacher -> a student equal to it
    trains_teacher: bool = False
    zero_tol: float = 1e-6
    extreme_scale: float = 1e4

    def models(self, teacher_seed: int = 0) -> tuple[nn.Module, nn.Module]:
        student = seeded(self.student, 1000)
        teacher = self.teacher(teacher_seed)
        teacher.train().requires_grad_(True)  # as handed over by a careless caller: not frozen
        return student, teacher


def _terms(out: Tensor | dict) -> dict[str, Tensor]:
    return dict(out) if isinstance(out, dict) else {"loss": out}


def _teacher_terms(out: Tensor | dict) -> dict[str, Tensor]:
    return {k: v for k, v in _terms(out).items() if k != "ce"}


def _total(out: Tensor | dict) -> Tensor:
    return sum(_terms(out).values())


def depends_on_teacher(case: Case) -> None:
    s0, t0 = case.models(0)
    s1, t1 = case.models(1)  # a fresh, identical student: a loss with state (a memory bank) starts equal
    x, y = case.x(), case.y()
    a, b = _teacher_terms(case.loss(s0, t0, x, y)), _teacher_terms(case.loss(s1, t1, x, y))
    assert a, "the loss has no teacher term (only 'ce')"
    for k in a:
        assert not torch.allclose(a[k], b[k]), f"term {k!r} does not change when the teacher changes"


def student_gets_gradient(case: Case) -> None:
    x, y = case.x(), case.y()
    names = list(_terms(case.loss(*case.models(), x, y)))
    for k in names:
        student, teacher = case.models()
        term = _terms(case.loss(student, teacher, x, y))[k]
        term.backward()
        grads = [p.grad for p in student.parameters() if p.grad is not None]
        assert grads, f"term {k!r} gives the student no gradient"
        assert all(torch.isfinite(g).all() for g in grads), f"term {k!r}: non-finite student gradient"
        assert any(g.abs().sum() > 0 for g in grads), f"term {k!r}: the student's gradient is zero"


def teacher_gets_no_gradient(case: Case) -> None:
    student, teacher = case.models()
    before = {k: v.detach().clone() for k, v in teacher.named_parameters()}
    opt = torch.optim.SGD([*student.parameters(), *teacher.parameters()], lr=0.1, momentum=0.9,
                          weight_decay=1e-3)
    x, y = case.x(), case.y()
    for _ in range(2):  # two steps: momentum would carry a stray gradient on
        opt.zero_grad(set_to_none=True)
        _total(case.loss(student, teacher, x, y)).backward()
        got = [n for n, p in teacher.named_parameters() if p.grad is not None]
        if case.trains_teacher:
            assert got, "trains_teacher=True, but no gradient reached the teacher"
        else:
            assert not got, f"gradient reached the teacher's {got} (a missing .detach()?)"
        opt.step()
    moved = [n for n, p in teacher.named_parameters() if not torch.equal(p, before[n])]
    if case.trains_teacher:
        assert moved, "trains_teacher=True, but the teacher did not move"
    else:
        assert not moved, f"the teacher's {moved} changed in an optimiser step"


def zero_when_student_equals_teacher(case: Case) -> None:
    if case.zero_when_equal is not True:
        raise ValueError(f"zero_when_equal is {case.zero_when_equal!r}: this check does not apply")
    _, teacher = case.models()
    student = case.equal_student(teacher) if case.equal_student else copy.deepcopy(teacher)
    out = _teacher_terms(case.loss(student, teacher, case.x(), case.y()))
    for k, v in out.items():
        assert abs(float(v.detach())) <= case.zero_tol, f"term {k!r} is {float(v.detach()):.3g} with the student equal to the teacher"


def _to_scale(scale: float):
    """A forward hook: the module's (floating) output tensors times a constant, largest |value| = scale."""
    def hook(module, args, out):
        if isinstance(out, Tensor) and out.is_floating_point():
            return out * (scale / out.detach().abs().max().clamp_min(1e-12))
        if isinstance(out, (tuple, list)):
            return type(out)(hook(module, args, o) for o in out)
        return out
    return hook


def finite_on_extreme_inputs(case: Case) -> None:
    for sign in (1.0, -1.0):
        student, teacher = case.models()
        teacher.register_forward_hook(_to_scale(case.extreme_scale))
        x = case.x() * (sign * case.extreme_scale)
        total = _total(case.loss(student, teacher, x, case.y()))
        assert math.isfinite(float(total.detach())), \
            f"loss is {float(total.detach())} on inputs scaled by {sign * case.extreme_scale:g}"
        total.backward()
        for n, p in student.named_parameters():
            assert p.grad is None or torch.isfinite(p.grad).all(), \
                f"non-finite gradient in the student's {n} on inputs scaled by {sign * case.extreme_scale:g}"


CHECKS = (depends_on_teacher, student_gets_gradient, teacher_gets_no_gradient,
          zero_when_student_equals_teacher, finite_on_extreme_inputs)


def catchers(case: Case | Callable[[], Case], skip: dict[str, str] | None = None):
    """A pytest test parametrised over :data:`CHECKS` for ``case``; assign it to a ``test_*`` name.

    ``skip``: {check name: reason} for a check that does not apply (the reason shows in the report)."""
    import pytest

    skip = dict(skip or {})
    unknown = set(skip) - {c.__name__ for c in CHECKS}
    if unknown:
        raise ValueError(f"unknown catcher(s) {sorted(unknown)}")
    params = [pytest.param(c, id=c.__name__, marks=pytest.mark.skip(reason=skip[c.__name__]))
              if c.__name__ in skip else pytest.param(c, id=c.__name__) for c in CHECKS]

    @pytest.mark.parametrize("check", params)
    def test_catchers(check):
        c = case if isinstance(case, Case) else case()
        if c.zero_when_equal is not True and not isinstance(c.zero_when_equal, str):
            raise ValueError("Case.zero_when_equal must be True or the reason the loss is not zero then")
        if check is zero_when_student_equals_teacher and c.zero_when_equal is not True:
            pytest.skip(f"not zero when the student equals the teacher: {c.zero_when_equal}")
        check(c)
    return test_catchers
