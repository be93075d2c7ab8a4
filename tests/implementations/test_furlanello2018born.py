"""Claims of Furlanello et al. (2018), born-again networks, checked on the losses, the ensemble and the recipe."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.furlanello2018born import (
    BANEnsemble,
    ban_ensemble,
    ban_loss,
    cwtm_loss,
    dkpp_loss,
    dkpp_targets,
)
from kdatlas.testing import Case, catchers, seeded


def _teacher(seed):  # BatchNorm: a train-mode teacher would also change its running statistics
    return seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5)), seed)


_NOT_ZERO = "Eq. 2 is a cross-entropy: with the student equal to the teacher it is the teacher's entropy"
# The silent-bug catchers (kdatlas.testing) on BAN, BAN+L, CWTM and DKPP. (Each generation is then the
# next one's frozen teacher: the recipe test below checks that it is not trained further.)
test_catchers_ban = catchers(Case(loss=lambda s, t, x, y: ban_loss(s(x), t(x)), student=lambda: nn.Linear(6, 5),
                                  teacher=_teacher, zero_when_equal=_NOT_ZERO))
test_catchers_ban_l = catchers(Case(loss=lambda s, t, x, y: {"ban": ban_loss(s(x), t(x)), "ce": F.cross_entropy(s(x), y)},
                                    student=lambda: nn.Linear(6, 5), teacher=_teacher, zero_when_equal=_NOT_ZERO))
test_catchers_cwtm = catchers(Case(loss=lambda s, t, x, y: cwtm_loss(s(x), t(x), y), student=lambda: nn.Linear(6, 5),
                                   teacher=_teacher, zero_when_equal="CWTM is a weighted label cross-entropy"))
test_catchers_dkpp = catchers(Case(loss=lambda s, t, x, y: dkpp_loss(s(x), t(x), torch.Generator().manual_seed(0)),
                                   student=lambda: nn.Linear(6, 5), teacher=_teacher,
                                   zero_when_equal="a cross-entropy to permuted targets"))


def test_ban_loss_by_hand():
    z, v = [1.0, 0.0, -1.0], [0.0, 2.0, 0.0]
    q = [math.exp(a) / sum(math.exp(b) for b in z) for a in z]
    p = [math.exp(a) / sum(math.exp(b) for b in v) for a in v]
    got = ban_loss(torch.tensor([z]), torch.tensor([v]))
    assert math.isclose(got.item(), -sum(pi * math.log(qi) for pi, qi in zip(p, q)), rel_tol=1e-6)


def test_ban_with_a_one_hot_teacher_is_the_label_cross_entropy_and_gradient_is_q_minus_p():
    torch.manual_seed(0)
    z = torch.randn(6, 5, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    one_hot_teacher = 100.0 * F.one_hot(y, 5).float()  # softmax = one-hot in float32
    assert torch.allclose(ban_loss(z, one_hot_teacher), F.cross_entropy(z, y), atol=1e-6)
    v = torch.randn(6, 5)
    ban_loss(z, v).backward()  # Sec. 3.2, Eq. 5: q - p per sample, averaged over the batch
    assert torch.allclose(z.grad, (F.softmax(z.detach(), -1) - F.softmax(v, -1)) / 6, atol=1e-6)


def test_ban_plus_l_adds_the_weighted_label_term():
    torch.manual_seed(1)
    z, v, y = torch.randn(4, 5), torch.randn(4, 5), torch.randint(0, 5, (4,))
    assert torch.allclose(ban_loss(z, v, y, ce_weight=0.5), ban_loss(z, v) + 0.5 * F.cross_entropy(z, y))
    with pytest.raises(ValueError):
        ban_loss(z, v, ce_weight=1.0)


def test_cwtm_weights_are_normalised_teacher_confidences():
    # Eq. 10 by hand: two samples, the teacher's max probabilities 0.9 and 0.6.
    v = torch.log(torch.tensor([[0.9, 0.05, 0.05], [0.2, 0.6, 0.2]]))
    z, y = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), torch.tensor([0, 2])
    ce = F.cross_entropy(z, y, reduction="none")
    assert torch.allclose(cwtm_loss(z, v, y), (0.9 * ce[0] + 0.6 * ce[1]) / 1.5, atol=1e-6)
    # Equal confidences (the argmax may differ, even be wrong): the plain mean label cross-entropy.
    v_eq = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]]))
    assert torch.allclose(cwtm_loss(z, v_eq, y), F.cross_entropy(z, y), atol=1e-6)


def test_dkpp_keeps_the_argmax_and_permutes_the_rest():
    torch.manual_seed(2)
    p = F.softmax(3 * torch.randn(64, 10), -1)
    out = dkpp_targets(p, torch.Generator().manual_seed(0))
    rows = torch.arange(64)
    top = p.argmax(-1)
    assert torch.equal(out.argmax(-1), top) and torch.equal(out[rows, top], p[rows, top])
    assert torch.allclose(out.sum(-1), torch.ones(64))
    assert torch.equal(out.sort(-1).values, p.sort(-1).values)  # the same values, moved
    assert not torch.equal(out, p)  # ... and really moved
    mask = torch.ones_like(p, dtype=torch.bool)
    mask[rows, top] = False
    assert (out[mask] != p[mask]).float().mean() > 0.7  # most wrong-class entries changed place
    assert torch.equal(out, dkpp_targets(p, torch.Generator().manual_seed(0)))  # seeded
    assert not dkpp_targets(p.clone().requires_grad_(True)).requires_grad  # targets are constants
    # DKPP loss = BAN loss against the permuted targets
    z = torch.randn(64, 10)
    expected = -(out * F.log_softmax(z, -1)).sum(-1).mean()
    assert torch.allclose(dkpp_loss(z, p.log(), torch.Generator().manual_seed(0)), expected, atol=1e-5)


def test_ensemble_is_the_mean_of_the_generations_probabilities():
    torch.manual_seed(3)
    a, b = torch.randn(5, 4), torch.randn(5, 4)
    assert torch.allclose(ban_ensemble([a, b]), (F.softmax(a, -1) + F.softmax(b, -1)) / 2)
    assert torch.allclose(ban_ensemble([a, a, a]), F.softmax(a, -1))  # identical generations: one of them
    nets = [seeded(lambda: nn.Linear(6, 4), s) for s in (0, 1, 2)]
    x = torch.randn(7, 6)
    ens = BANEnsemble(nets)
    assert torch.allclose(ens(x).exp(), ban_ensemble([n(x) for n in nets]), atol=1e-6)
    assert torch.equal(BANEnsemble([nets[0]])(x).argmax(-1), nets[0](x).argmax(-1))


def _tiny_task():
    from kdatlas.harness import get_task
    return get_task("mnist1d", num_samples=600, n_train=96, teacher_epochs=1, epochs=2, batch_size=32)


def test_recipe_generation_zero_is_the_student_alone_and_later_ones_start_fresh():
    from kdatlas.recipes import BASELINE, get_recipe, make_context, run_recipe
    from kdatlas.recipes.furlanello2018born import train_generations

    task = _tiny_task()
    recipe = get_recipe("furlanello2018born")
    assert not recipe.needs_teacher and recipe.settings["ce_weight"] == 0.0  # BAN: no labels, own teacher
    alone, _ = run_recipe(BASELINE, task, None, seed=1)
    fresh = [task.new_student(1 + 1000 * k) for k in range(3)]
    models, hists = train_generations(make_context(task, None, 1), recipe.settings_for("mnist1d", generations=2))
    assert len(models) == 3 and len(hists) == 3
    for a, b in zip(alone.state_dict().values(), models[0].state_dict().values()):
        assert torch.equal(a, b)  # generation 0: the same weights as the student alone
    assert set(hists[1].terms) == {"ban"} and set(hists[0].terms) == {"ce"}
    # Each generation started from its own fresh weights, not from its teacher's (Sec. 3.1): after the
    # tiny budget (6 steps) its weights are still much nearer their fresh start than the teacher's.
    flat = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()])  # noqa: E731
    for k in (1, 2):
        to_start = (flat(models[k]) - flat(fresh[k])).norm()
        to_teacher = (flat(models[k]) - flat(models[k - 1])).norm()
        assert to_start < 0.5 * to_teacher, (k, to_start, to_teacher)
    assert all(not m.training and not any(p.requires_grad for p in m.parameters()) for m in models)
    # deploy="last": the last generation; "ensemble": the average of all of them.
    last, hist = run_recipe(recipe, task, None, seed=1, settings={"generations": 2})
    assert [n for n, _ in hist.phases] == ["generation 0", "generation 1", "generation 2"]
    for a, b in zip(last.state_dict().values(), models[2].state_dict().values()):
        assert torch.equal(a, b)  # the whole run is reproducible from the seed
    ens, _ = run_recipe(recipe, task, None, seed=1, settings={"generations": 2, "deploy": "ensemble"})
    assert isinstance(ens, BANEnsemble) and len(ens.models) == 3
