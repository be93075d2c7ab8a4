"""Claims of Zeng & Martinez (2000), one network approximating an ensemble, checked on the pieces,
a toy ensemble and the recipe."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.zeng2000using import (
    Ensemble,
    approximation_loss,
    bootstrap_indices,
    ensemble_probs,
    ensemble_targets,
    random_instances,
)
from kdatlas.testing import Case, catchers, seeded

MUTANTS_NO_SWAP = ("approximation_loss takes (student_logits, ensemble_probs): targets, not a teacher "
                   "argument of a student/teacher pair; the targets-are-constants test covers misuse")
MUTANTS_EQUIVALENT = {
    ("no_grad", "line 83: with torch.no_grad()"):
        "ensemble_targets detaches every member's logits itself; the block only saves autograd memory",
}


def _teacher(seed):
    return seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 5)), seed)


# The catchers on the approximator's loss against a (one-member) ensemble's averaged output.
test_catchers = catchers(Case(
    loss=lambda s, t, x, y: approximation_loss(s(x), ensemble_targets([t(x)])),
    student=lambda: nn.Linear(6, 5), teacher=_teacher,
    zero_when_equal="a cross-entropy to soft targets: the targets' entropy when the student equals them"))


def test_targets_average_and_vote_by_hand():
    a = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    b = torch.tensor([[0.0, 3.0, 0.0], [0.0, 0.0, 2.0]])
    c = torch.tensor([[0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    avg = ensemble_targets([a, b, c])
    assert torch.allclose(avg, (F.softmax(a, -1) + F.softmax(b, -1) + F.softmax(c, -1)) / 3)
    assert torch.allclose(avg.sum(-1), torch.ones(2))
    assert torch.allclose(ensemble_targets([a]), F.softmax(a, -1))  # one member: its own probabilities
    # votes: row 0 has one vote each for classes 0, 1, 2 (a tie: the lowest class, 0); row 1: 2 x class 2
    assert torch.equal(ensemble_targets([a, b, c], "vote"), torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    assert torch.equal(ensemble_targets([c, b, a], "vote"), ensemble_targets([a, b, c], "vote"))  # order-free
    # the vote is the majority even when the averaged probabilities disagree with it
    confident = torch.tensor([[0.0, 20.0]])
    weak = torch.tensor([[0.1, 0.0]])
    assert ensemble_targets([confident, weak, weak], "vote").argmax(-1).item() == 0
    assert ensemble_targets([confident, weak, weak], "average").argmax(-1).item() == 1
    with pytest.raises(ValueError):
        ensemble_targets([a], "median")
    with pytest.raises(ValueError):
        ensemble_targets([])


def test_targets_are_constants():
    z = torch.randn(4, 5, requires_grad=True)
    assert not ensemble_targets([z, 2 * z]).requires_grad
    t = F.softmax(torch.randn(4, 5), -1).requires_grad_(True)
    s = torch.randn(4, 5, requires_grad=True)
    approximation_loss(s, t).backward()
    assert t.grad is None and s.grad is not None


def test_loss_by_hand_its_minimum_and_gradient():
    z, t = [1.0, 0.0, -1.0], [0.2, 0.5, 0.3]
    q = [math.exp(a) / sum(math.exp(b) for b in z) for a in z]
    got = approximation_loss(torch.tensor([z]), torch.tensor([t]))
    assert math.isclose(got.item(), -sum(ti * math.log(qi) for ti, qi in zip(t, q)), rel_tol=1e-6)
    # Minimal, and equal to the targets' entropy, when the approximator's probabilities are the targets.
    torch.manual_seed(0)
    targets = F.softmax(torch.randn(8, 5), -1)
    entropy = -(targets * targets.log()).sum(-1).mean()
    assert torch.allclose(approximation_loss(targets.log(), targets), entropy, atol=1e-6)
    for _ in range(5):
        other = targets.log() + 0.3 * torch.randn(8, 5)
        assert approximation_loss(other, targets) > entropy
    # gradient (q - t) / B; with one-hot (vote) targets the loss is the label cross-entropy
    s = torch.randn(8, 5, requires_grad=True)
    approximation_loss(s, targets).backward()
    assert torch.allclose(s.grad, (F.softmax(s.detach(), -1) - targets) / 8, atol=1e-6)
    y = torch.arange(8) % 5
    assert torch.allclose(approximation_loss(s, F.one_hot(y, 5).float()), F.cross_entropy(s, y), atol=1e-6)


def test_random_instances_keep_marginals_and_lose_correlation():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(400, generator=g)
    x = torch.stack([u, u + 0.05 * torch.randn(400, generator=g), torch.randint(0, 3, (400,), generator=g).float()], 1)
    new = random_instances(x, 3000, torch.Generator().manual_seed(1))
    assert new.shape == (3000, 3)
    for a in range(3):  # every value is one of that attribute's training values ...
        assert torch.isin(new[:, a], x[:, a]).all()
        assert not torch.isin(new[:, 0], x[:, 1]).all()  # ... of that attribute, not of another
    assert math.isclose(new[:, 0].mean().item(), x[:, 0].mean().item(), abs_tol=0.1)  # marginal kept
    assert torch.corrcoef(x[:, :2].T)[0, 1] > 0.99
    assert abs(torch.corrcoef(new[:, :2].T)[0, 1]) < 0.1  # the attributes are drawn independently
    # images: per entry (channel, pixel); seeded
    img = torch.rand(10, 1, 4, 4)
    out = random_instances(img, 7, torch.Generator().manual_seed(2))
    assert out.shape == (7, 1, 4, 4)
    assert all(torch.isin(out[:, 0, i, j], img[:, 0, i, j]).all() for i in range(4) for j in range(4))
    assert torch.equal(out, random_instances(img, 7, torch.Generator().manual_seed(2)))


def test_bootstrap_is_a_replicate_with_replacement():
    idx = bootstrap_indices(1000, torch.Generator().manual_seed(0))
    assert idx.shape == (1000,) and idx.min() >= 0 and idx.max() < 1000
    # about 1 - 1/e = 63.2 % of the examples appear in a bootstrap replicate
    assert 0.60 < idx.unique().numel() / 1000 < 0.66
    assert torch.equal(idx, bootstrap_indices(1000, torch.Generator().manual_seed(0)))


def _toy(n, g):  # three classes in spiral sectors of the plane, 15 % label noise
    x = torch.randn(n, 2, generator=g)
    angle = (torch.atan2(x[:, 1], x[:, 0]) + 2 * x.norm(dim=1)) % (2 * math.pi)
    y = (angle / (2 * math.pi) * 3).long().clamp(max=2)
    flip = torch.rand(n, generator=g) < 0.15
    return x, torch.where(flip, torch.randint(0, 3, (n,), generator=g), y)


def _fit(net, x, t, steps):
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(steps):
        opt.zero_grad()
        approximation_loss(net(x), t).backward()
        opt.step()
    return net


def test_one_network_stands_in_for_the_ensemble():
    """The abstract's claim, at toy scale: trained on the ensemble's outputs (on the training inputs
    plus as many RANDOM ones), one network agrees with the ensemble on unseen inputs far more often
    than a single member does, or than the same network trained on the labels; and it has 1/N of the
    ensemble's parameters."""
    mlp = lambda: nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))  # noqa: E731
    for seed in (0, 1):
        g = torch.Generator().manual_seed(seed)
        x, y = _toy(80, g)
        x_test, _ = _toy(1000, g)
        members = []
        for k in range(5):
            idx = bootstrap_indices(80, torch.Generator().manual_seed(100 * seed + k))
            members.append(_fit(seeded(mlp, 100 * seed + k), x[idx], F.one_hot(y[idx], 3).float(), 200))
        decision = ensemble_probs(members, x_test).argmax(-1)
        x_all = torch.cat([x, random_instances(x, 80, torch.Generator().manual_seed(seed))])
        approximator = _fit(seeded(mlp, 999 + seed), x_all, ensemble_probs(members, x_all), 400)
        alone = _fit(seeded(mlp, 999 + seed), x, F.one_hot(y, 3).float(), 200)
        fidelity = lambda m: (m(x_test).argmax(-1) == decision).float().mean().item()  # noqa: E731
        single = sum(fidelity(m) for m in members) / len(members)
        assert fidelity(approximator) > single + 0.04, (seed, fidelity(approximator), single)
        assert fidelity(approximator) > fidelity(alone) + 0.03, (seed, fidelity(approximator), fidelity(alone))
        n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        assert n(Ensemble(members)) == len(members) * n(approximator)
        # the Ensemble module decides as the averaged targets do
        assert torch.equal(Ensemble(members)(x_test).argmax(-1), decision)


def test_ensemble_probs_leaves_members_modes_and_batches_consistently():
    nets = [seeded(lambda: nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 4)), s) for s in (0, 1)]
    nets[0].train()
    nets[1].eval()
    x = torch.randn(20, 6)
    full = ensemble_probs(nets, x, batch_size=512)
    assert nets[0].training and not nets[1].training  # modes restored
    assert torch.allclose(full, ensemble_probs(nets, x, batch_size=3), atol=1e-6)  # eval mode: batch-free
    for m in nets:
        m.eval()
    assert torch.allclose(full, ensemble_targets([m(x) for m in nets]), atol=1e-6)
    assert torch.equal(ensemble_probs(nets, x, "vote"), ensemble_targets([m(x) for m in nets], "vote"))


def _tiny_task():
    from kdatlas.harness import get_task
    return get_task("mnist1d", num_samples=600, n_train=96, teacher_epochs=1, epochs=2, batch_size=32)


def test_recipe_bags_members_labels_an_enlarged_set_and_returns_the_seed_student():
    from kdatlas.recipes import get_recipe, make_context, run_recipe
    from kdatlas.recipes.zeng2000using import train_members, transfer_set

    task = _tiny_task()
    recipe = get_recipe("zeng2000using")
    assert not recipe.needs_teacher
    assert recipe.settings == {"members": 10, "extra": 1.0, "combine": "average"}
    s = recipe.settings_for("mnist1d", members=2)
    ctx = make_context(task, None, 1)
    members, hists = train_members(ctx, s)
    assert len(members) == 2 and len(hists) == 2
    assert all(not m.training and not any(p.requires_grad for p in m.parameters()) for m in members)
    flat = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()])  # noqa: E731
    assert not torch.equal(flat(members[0]), flat(members[1]))  # own weights, own bootstrap
    data = transfer_set(ctx, s, members)
    x, t, idx = data.tensors
    x_train = task.student_data.train.tensors[0]
    assert len(x) == 2 * len(x_train) and torch.equal(x[: len(x_train)], x_train)  # originals first, then 1x new
    assert torch.equal(idx, torch.arange(len(x)))
    assert torch.allclose(t, ensemble_probs(members, x), atol=1e-6)  # the targets are the ensemble's
    assert torch.equal(transfer_set(ctx, s | {"extra": 0.0}, members).tensors[0], x_train)
    # The run returns the benchmark's student of the seed (the baseline's initial weights), trained.
    start = task.new_student(1)
    student, hist = run_recipe(recipe, task, None, seed=1, settings={"members": 2})
    assert type(student) is type(start) and not torch.equal(flat(student), flat(start))
    assert [n for n, _ in hist.phases] == ["member 0", "member 1", "approximator"]
    assert "approx" in hist.terms
    again, _ = run_recipe(recipe, task, None, seed=1, settings={"members": 2})
    assert torch.equal(flat(again), flat(student))  # reproducible from the seed
