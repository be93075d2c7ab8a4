"""Claims of Zhou et al. (2018), Rocket Launching, checked on hint_loss / rocket_loss / RocketNet /
rocket_step and the recipe, plus the shared catchers (inverted: the booster, the "teacher", trains)."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations import zhou2017rocket as impl
from kdatlas.testing import Case, catchers, seeded

# benchmarks/mutants.py: no swap mutant applies.
MUTANTS_NO_SWAP = ("no function takes a student/teacher pair: rocket_loss's first two parameters are the "
                   "light and booster logits (both nets train; which one is detached is pinned by "
                   "test_gradient_block_covers_w_b_and_the_booster_path_of_w_s_but_not_the_light_path), "
                   "and hint_loss is symmetric in its two arguments")


def _pair_loss(s, t, x, y):
    """Eq. 1 with the light net as the student and the booster as the "teacher" (no shared layers)."""
    out = impl.rocket_loss(s(x), t(x), y, hint_weight=0.03)
    return {"ce": out["ce_light"] + out["ce_booster"], "hint": out["hint"]}


# The catchers. Rocket trains its "teacher": the booster learns from H(y, q) in the same loss, so the
# frozen-teacher check is inverted (trains_teacher=True): the booster must get a gradient and move.
# That the *hint* sends it nothing (the gradient block) is checked below.
test_catchers = catchers(Case(loss=_pair_loss, student=lambda: nn.Linear(6, 5),
                              teacher=lambda seed: seeded(lambda: nn.Linear(6, 5), seed),
                              zero_when_equal=True, trains_teacher=True))


def _net(seed=0):
    make = lambda: impl.RocketNet(nn.Sequential(nn.Linear(6, 12), nn.ReLU()), nn.Linear(12, 5),  # noqa: E731
                                  nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 5)))
    return seeded(make, seed)


def _grads(loss, modules):
    params = [p for m in modules for p in m.parameters()]
    gs = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]


def test_hint_is_the_squared_l2_logit_distance_summed_over_classes_averaged_over_the_batch():
    # Eq. 1, the code's reduction gamma * sum((z - l)^2) / batch: two samples, by hand.
    l = torch.tensor([[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    z = torch.tensor([[0.0, 2.0, -1.0], [1.0, -1.0, 3.0]])
    # sample 1: 1 + 4 + 0 = 5; sample 2: 1 + 1 + 9 = 11; mean 8
    assert impl.hint_loss(l, z).item() == pytest.approx(8.0)
    out = impl.rocket_loss(l, z, torch.tensor([0, 2]), hint_weight=0.5)
    assert out["hint"].item() == pytest.approx(4.0)
    assert torch.allclose(out["ce_light"], F.cross_entropy(l, torch.tensor([0, 2])))
    assert torch.allclose(out["ce_booster"], F.cross_entropy(z, torch.tensor([0, 2])))
    assert impl.rocket_loss(l, z, torch.tensor([0, 2]), hint_weight=0.0)["hint"] == 0


def test_logit_hint_gradient_does_not_vanish_where_the_softmax_mse_does():
    # Eqs. 2-3: d L_mimic / d l_i is proportional to l_i - z_i, for any l_i; the MSE between
    # probabilities has a gradient proportional to p_i, ~0 for a very negative logit.
    l = torch.tensor([[5.0, 0.0, -30.0]], requires_grad=True)
    z = torch.tensor([[5.0, 0.0, -10.0]])
    (g_mimic,) = torch.autograd.grad(impl.hint_loss(l, z), l)
    assert torch.allclose(g_mimic, 2 * (l - z).detach())  # batch of one: 2 (l - z)
    assert g_mimic[0, 2].abs() > 1.0
    (g_mse,) = torch.autograd.grad((F.softmax(l, 1) - F.softmax(z, 1)).pow(2).sum(), l)
    assert g_mse[0, 2].abs() < 1e-8


def test_gradient_block_covers_w_b_and_the_booster_path_of_w_s_but_not_the_light_path():
    # The block, exactly (the code's y.data): the hint gives W_B nothing; W_S gets the gradient of
    # lambda ||l - z||^2 through l only; W_L its full gradient. Without the block W_B gets one and
    # W_S gets the booster path too.
    torch.manual_seed(0)
    net = _net()
    x, y = torch.randn(16, 6), torch.randint(0, 5, (16,))
    l, z = net(x)
    blocked = impl.rocket_loss(l, z, y, hint_weight=0.03, gradient_block=True)["hint"]
    free = impl.rocket_loss(l, z, y, hint_weight=0.03, gradient_block=False)["hint"]
    g_b = _grads(blocked, [net.booster_head])
    assert all(g.abs().max() == 0 for g in g_b), "the blocked hint reached the booster's own layers"
    assert any(g.abs().max() > 0 for g in _grads(free, [net.booster_head]))
    assert any(g.abs().max() > 0 for g in _grads(blocked, [net.light_head]))
    # W_S: the blocked gradient is that of the light path alone, z a constant
    light_path = 0.03 * ((l - z.detach()) ** 2).sum(1).mean()
    for a, b in zip(_grads(blocked, [net.shared]), _grads(light_path, [net.shared])):
        assert torch.allclose(a, b, atol=1e-7)
    assert any(g.abs().max() > 0 for g in _grads(blocked, [net.shared]))
    # ...and it differs from the unblocked one, which also pulls z (through W_S) towards l
    assert not all(torch.allclose(a, b, atol=1e-7) for a, b in zip(_grads(blocked, [net.shared]),
                                                                    _grads(free, [net.shared])))


def test_with_the_block_the_booster_head_learns_from_the_labels_alone():
    # One rocket_step (plain SGD): the booster's own parameters move exactly as a step on H(y, q) alone
    # would move them; without the block they move differently (the hint drags them to the light net).
    torch.manual_seed(1)
    x, y = torch.randn(16, 6), torch.randint(0, 5, (16,))
    for block in (True, False):
        net, ref = _net(3), _net(3)
        impl.rocket_step(net, torch.optim.SGD(net.parameters(), lr=0.5), x, y, hint_weight=1.0, gradient_block=block)
        g = torch.autograd.grad(F.cross_entropy(ref(x)[1], y), list(ref.booster_head.parameters()))
        same = all(torch.allclose(p, q - 0.5 * gq, atol=1e-6)
                   for p, q, gq in zip(net.booster_head.parameters(), ref.booster_head.parameters(), g))
        assert same is block, f"gradient_block={block}"


def test_rocket_step_updates_all_three_parts_with_the_sum_of_eq_1():
    torch.manual_seed(2)
    x, y = torch.randn(16, 6), torch.randint(0, 5, (16,))
    net, ref = _net(4), _net(4)
    terms = impl.rocket_step(net, torch.optim.SGD(net.parameters(), lr=0.1), x, y, hint_weight=0.3)
    l, z = ref(x)
    total = F.cross_entropy(l, y) + F.cross_entropy(z, y) + 0.3 * ((l - z.detach()) ** 2).sum(1).mean()
    grads = torch.autograd.grad(total, list(ref.parameters()))
    for p, q, g in zip(net.parameters(), ref.parameters(), grads):
        assert torch.allclose(p, q - 0.1 * g, atol=1e-6)
    assert set(terms) == {"ce_light", "ce_booster", "hint"}
    assert not any(v.requires_grad for v in terms.values())
    assert torch.allclose(terms["hint"], 0.3 * ((l - z) ** 2).sum(1).mean())


def test_deployed_light_net_is_shared_plus_light_head_and_counts_each_parameter_once():
    net = _net()
    x = torch.randn(4, 6)
    l, _ = net(x)
    assert torch.allclose(net.light(x), l) and torch.allclose(net.booster(x), net(x)[1])
    shared, light, booster = (impl.count_parameters(m) for m in (net.shared, net.light_head, net.booster_head))
    assert (shared, light) == (6 * 12 + 12, 12 * 5 + 5)
    assert impl.count_parameters(net) == shared + light + booster
    assert impl.count_parameters(net.shared, net.light_head, net.shared) == shared + light


def test_the_hint_pulls_the_light_logits_towards_the_boosters():
    # The mechanism's effect on a toy: after the same steps from the same weights and batches, the
    # light net's logits are much closer to the booster's with the hint (lambda = 0.03, the authors'
    # value) than without it (lambda = 0: two heads on a shared trunk, Eq. 1 without its third term).
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 6, generator=g)
    y = ((x[:, 0] > 0).long() + 2 * (x[:, 1] * x[:, 2] > 0).long()) % 5
    dist = {}
    for weight in (0.0, 0.03):
        d = []
        for seed in range(3):
            net = _net(seed)
            opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
            for i in range(200):
                idx = torch.arange(64) + 64 * (i % 4)
                impl.rocket_step(net, opt, x[idx], y[idx], hint_weight=weight)
            with torch.no_grad():
                d.append(impl.hint_loss(*net(x)).item())
        dist[weight] = sum(d) / 3
    assert dist[0.03] < 0.5 * dist[0.0], dist


# --------------------------------------------------------------------------- the recipe
@pytest.fixture(scope="module")
def quick_task():
    from kdatlas.harness import get_task
    return get_task("mnist1d", quick=True, epochs=1)


def test_recipe_deploys_the_student_and_trains_the_booster_jointly(quick_task):
    from kdatlas.recipes import get_recipe, make_context, run_recipe
    from kdatlas.recipes.zhou2017rocket import make_rocket

    recipe = get_recipe("zhou2017rocket")
    assert not recipe.needs_teacher
    assert recipe.settings_for("mnist1d") == {"hint_weight": 0.03, "gradient_block": True, "shared_stages": 1}
    ctx = make_context(quick_task, None, 1)
    net, booster = make_rocket(ctx, recipe.settings_for("mnist1d"))
    # the light net is the student itself: shared = its stage 0, light head = its upper stages + fc
    assert impl.count_parameters(net.shared, net.light_head) == impl.count_parameters(ctx.student)
    assert {id(p) for p in ctx.student.parameters()} == {id(p) for p in (*net.shared.parameters(), *net.light_head.parameters())}
    assert not list(booster.stages[0].parameters())  # the booster's lowest stage is the student's
    assert booster.stages[1][0][0].in_channels == ctx.student.feature_channels[0]
    x = torch.stack([quick_task.student_data.train[i][0] for i in range(4)])
    net.eval()
    assert torch.allclose(net.light(x), ctx.student.eval()(x))
    # a real run: the student (returned) and the booster both move
    alone = copy.deepcopy(ctx.student.state_dict())
    student, hist = run_recipe(recipe, quick_task, None, seed=1)
    assert set(hist.terms) == {"ce_light", "ce_booster", "hint"}
    assert any(not torch.equal(v, alone[k]) for k, v in student.state_dict().items())
    assert impl.count_parameters(student) == impl.count_parameters(quick_task.make_student())


def test_train_rocket_moves_the_booster_and_tracks_both_heads(quick_task):
    from kdatlas.recipes import get_recipe, make_context
    from kdatlas.recipes.zhou2017rocket import make_booster, train_rocket

    s = get_recipe("zhou2017rocket").settings_for("mnist1d")
    fresh = make_booster(make_context(quick_task, None, 2), 1)
    net, hist, scores = train_rocket(make_context(quick_task, None, 2), s, track=True)
    moved = [not torch.equal(p, q) for p, q in zip(net.booster_head.parameters(), fresh.parameters())]
    assert all(moved), "a booster parameter did not train"
    assert len(scores) == 1 and len(scores[0]) == 2 and hist.test_acc == [scores[0][0]]
    with pytest.raises(ValueError):
        train_rocket(make_context(quick_task, None, 2), s | {"shared_stages": 3})
