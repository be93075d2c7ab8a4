"""Claims of Bucilua, Caruana & Niculescu-Mizil (2006), model compression with MUNGE, checked on the
generators, the loss, a toy compression and the recipe."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.bucilua2006model import compression_loss, munge, nearest_other, random_marginals
from kdatlas.testing import Case, catchers, seeded


def _teacher(seed):
    return seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 5)), seed)


# The catchers on the mimic's loss against a network's probabilities (the "ensemble" here).
test_catchers = catchers(Case(loss=lambda s, t, x, y: compression_loss(s(x), F.softmax(t(x), -1)),
                              student=lambda: nn.Linear(6, 5), teacher=_teacher, zero_when_equal=True))


def test_loss_by_hand_and_gradient():
    z, p = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.2, 0.5, 0.3]])
    q = [math.exp(a) / sum(math.exp(b) for b in z[0].tolist()) for a in z[0].tolist()]
    want = sum((qi - pi) ** 2 for qi, pi in zip(q, p[0].tolist()))
    assert math.isclose(compression_loss(z, p).item(), want, rel_tol=1e-6)
    torch.manual_seed(0)
    s, t = torch.randn(4, 5, requires_grad=True), F.softmax(torch.randn(4, 5), -1)
    assert compression_loss(t.log(), t).item() < 1e-12  # zero exactly when the probabilities match
    loss = compression_loss(s, t)
    loss.backward()
    q = F.softmax(s.detach(), -1)
    g = 2 * (q - t) / 4  # d/dq of the mean squared error, then through the softmax Jacobian
    want = q * (g - (g * q).sum(-1, keepdim=True))
    assert torch.allclose(s.grad, want, atol=1e-6)
    # probabilities, not logits: adding a constant to the logits changes nothing
    assert torch.allclose(compression_loss(s + 3.0, t), loss)
    tt = t.clone().requires_grad_(True)
    compression_loss(s.detach().requires_grad_(True), tt).backward()
    assert tt.grad is None  # the big model's probabilities are constants


def test_munge_with_p_zero_copies_the_data():
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    out = munge(x, 3, p=0.0, generator=torch.Generator().manual_seed(1))
    assert out.shape == (60, 3) and torch.equal(out, x.repeat(3, 1))
    assert munge(x, 0).shape == (0, 3)  # no passes: no pseudo data


def test_munge_swaps_with_each_visited_examples_nearest_neighbour_by_hand():
    # p = 1, s = inf (sd = 0): every attribute of e and e' is swapped. Algorithm 1, in index order on
    # T': e0's nearest is e1 -> [1,0],[0,0],[5,5]; e1 (now [0,0])'s nearest is e0 ([1,0]) ->
    # [0,0],[1,0],[5,5]; e2's nearest is e1 ([1,0], scaled distance 0.8^2 + 1 < 2) -> [0,0],[5,5],[1,0].
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    out = munge(x, 1, p=1.0, s=float("inf"), generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, torch.tensor([[0.0, 0.0], [5.0, 5.0], [1.0, 0.0]]))
    # with pure swaps every pass is a permutation of the training rows
    y = torch.randn(15, 4, generator=torch.Generator().manual_seed(2))
    out = munge(y, 2, p=1.0, s=float("inf"), generator=torch.Generator().manual_seed(3))
    for copy in out.split(15):
        assert torch.equal(copy[torch.argsort(copy[:, 0])], y[torch.argsort(y[:, 0])])


def test_neighbours_use_attributes_scaled_to_unit_range():
    # unscaled, attribute 1 (range 1000) would decide; scaled to [0, 1] both count alike
    t = torch.tensor([[0.0, 0.0], [0.9, 100.0], [0.0, 400.0], [1.0, 1000.0]])
    lo, span = t.min(0).values, t.max(0).values - t.min(0).values
    nominal = torch.zeros(2, dtype=torch.bool)
    assert nearest_other(t, 0, nominal, lo, span) == 2   # scaled: (0, 0.4) is nearer than (0.9, 0.1)
    assert int(((t - t[0]) ** 2).sum(1)[1:].argmin()) + 1 == 1  # unscaled it would be row 1
    # nominal attributes: Hamming distance (a mismatch counts 1, whatever the codes)
    c = torch.tensor([[0.0, 7.0], [0.05, 9.0], [0.6, 7.0], [1.0, 5.0]])
    lo_c, span_c = c.min(0).values, c.max(0).values - c.min(0).values
    assert nearest_other(c, 0, torch.tensor([False, True]), lo_c, span_c) == 2
    assert nearest_other(c, 0, torch.tensor([False, False]), lo_c, span_c) == 1


def test_nominal_values_are_swapped_never_jittered():
    g = torch.Generator().manual_seed(0)
    x = torch.stack([torch.randn(50, generator=g), torch.randint(0, 4, (50,), generator=g).float()], 1)
    out = munge(x, 4, p=0.7, s=1.0, nominal_mask=torch.tensor([False, True]), generator=torch.Generator().manual_seed(1))
    assert torch.isin(out[:, 1], torch.tensor([0.0, 1.0, 2.0, 3.0])).all()       # only values of the data
    assert not torch.isin(out[:, 0], x[:, 0]).all()                               # continuous ones jittered
    for copy in out.split(50):  # swaps move values between examples: the column keeps its counts
        assert torch.equal(copy[:, 1].sort().values, x[:, 1].sort().values)


def test_munge_keeps_the_joint_structure_random_does_not():
    """Sec. 2 / Fig. 1: MUNGE samples near the data's manifold, RANDOM from the product of marginals."""
    g = torch.Generator().manual_seed(0)
    u = torch.rand(300, generator=g) * 2 * math.pi
    x = torch.stack([u.cos(), u.sin()], 1) + 0.02 * torch.randn(300, 2, generator=g)  # a noisy circle
    m = munge(x, 4, p=0.5, s=1.0, generator=torch.Generator().manual_seed(1))
    r = random_marginals(x, 1200, torch.Generator().manual_seed(1))
    off = lambda z: (z.norm(dim=1) - 1).abs().mean().item()  # noqa: E731  mean distance to the circle
    assert off(m) < 0.05 < 0.15 < off(r)
    assert torch.isin(r, x).all() and r.shape == (1200, 2)
    # the jitter is symmetric around the neighbour pair: the attribute means are kept
    assert torch.allclose(m.mean(0), x.mean(0), atol=0.05)
    # a smaller s means a larger sd = |e_a - e'_a| / s, so the samples spread further from the data
    wide = munge(x, 4, p=0.5, s=0.25, generator=torch.Generator().manual_seed(1))
    assert off(wide) > 1.5 * off(m)
    # the images of the tasks: attributes are the entries of x[i]; the shape comes back
    img = torch.rand(6, 1, 3, 3)
    assert munge(img, 2, generator=torch.Generator().manual_seed(0)).shape == (12, 1, 3, 3)
    with pytest.raises(ValueError):
        munge(x[:1], 1)


_A = torch.randn(2, 10, generator=torch.Generator().manual_seed(123))


def _manifold(n, g):  # a curved 2-D manifold in 10-D, the class a wavy function of its coordinates
    u = torch.randn(n, 2, generator=g)
    y = ((torch.sin(2 * u[:, 0]) + torch.cos(2 * u[:, 1])) > 0).long()
    return torch.tanh(u @ _A) + 0.02 * torch.randn(n, 10, generator=g), y


def _fit(net, x, t, steps):
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(steps):
        opt.zero_grad()
        compression_loss(net(x), t).backward()
        opt.step()
    return net


def test_munge_pseudo_data_gives_the_most_faithful_mimic():
    """Fig. 2's ordering at toy scale: a small mimic trained on the big model's probabilities on the
    real data plus 9x MUNGE data agrees with the big model on unseen data more often than one trained
    on the real data alone, and than one trained on as much RANDOM data (off the data's manifold)."""
    mlp = lambda h: nn.Sequential(nn.Linear(10, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2))  # noqa: E731
    gain_real, gain_random = [], []
    for seed in (0, 1):
        g = torch.Generator().manual_seed(seed)
        x_big, y_big = _manifold(1500, g)
        x, _ = _manifold(100, g)
        x_test, _ = _manifold(2000, g)
        big = _fit(seeded(lambda: mlp(48), seed), x_big, F.one_hot(y_big, 2).float(), 250)
        probs = lambda z: F.softmax(big(z), -1).detach()  # noqa: E731
        fidelity = lambda m: (m(x_test).argmax(-1) == big(x_test).argmax(-1)).float().mean().item()  # noqa: E731
        mimic = {}
        for name, extra in (("real", x[:0]), ("munge", munge(x, 9, generator=torch.Generator().manual_seed(seed))),
                            ("random", random_marginals(x, 900, torch.Generator().manual_seed(seed)))):
            xs = torch.cat([x, extra])
            mimic[name] = fidelity(_fit(seeded(lambda: mlp(16), 99 + seed), xs, probs(xs), 300))
        gain_real.append(mimic["munge"] - mimic["real"])
        gain_random.append(mimic["munge"] - mimic["random"])
        assert mimic["munge"] > mimic["real"] and mimic["munge"] > mimic["random"], (seed, mimic)
    assert sum(gain_real) / 2 > 0.01 and sum(gain_random) / 2 > 0.01, (gain_real, gain_random)


def _tiny_task():
    from kdatlas.harness import get_task
    return get_task("mnist1d", num_samples=600, n_train=48, teacher_epochs=1, epochs=2, batch_size=32)


def test_recipe_labels_real_plus_munge_data_with_the_teacher():
    from kdatlas.recipes import get_recipe, make_context, run_recipe
    from kdatlas.recipes.bucilua2006model import label, transfer_set

    task = _tiny_task()
    teacher, _ = task.teacher(seed=0, progress=False)
    recipe = get_recipe("bucilua2006model")
    assert recipe.needs_teacher
    assert recipe.settings == {"multiplier": 9, "p": 0.5, "s": 1.0, "generator": "munge"}
    s = recipe.settings_for("mnist1d", multiplier=2)
    ctx = make_context(task, teacher, 1)
    x, probs, idx = transfer_set(ctx, s, teacher).tensors
    x_train = task.student_data.train.tensors[0]
    assert len(x) == 3 * len(x_train) and torch.equal(x[: len(x_train)], x_train)  # real data first
    assert torch.equal(x[len(x_train):], munge(x_train, 2, 0.5, 1.0, generator=torch.Generator().manual_seed(1)))
    assert torch.allclose(probs, label(teacher, x), atol=1e-6) and torch.allclose(probs.sum(-1), torch.ones(len(x)))
    assert torch.equal(idx, torch.arange(len(x)))
    r = transfer_set(ctx, s | {"generator": "random"}, teacher).tensors[0]
    assert torch.isin(r[len(x_train):], x_train).all() and len(r) == len(x)
    with pytest.raises(ValueError):
        transfer_set(ctx, s | {"generator": "nbe"}, teacher)
    start = task.new_student(1)
    student, hist = run_recipe(recipe, task, teacher, seed=1, settings={"multiplier": 2})
    flat = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()])  # noqa: E731
    assert type(student) is type(start) and not torch.equal(flat(student), flat(start))
    assert set(hist.terms) == {"mimic"}
    assert all(not p.requires_grad for p in teacher.parameters()) and not teacher.training
