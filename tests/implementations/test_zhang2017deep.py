"""Claims of Zhang, Xiang, Hospedales & Lu (2018), Deep Mutual Learning, checked on
mimicry_loss / dml_loss / dml_losses / dml_step, plus the shared catchers (inverted: the peers train)."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations import zhang2017deep as impl
from kdatlas.testing import Case, catchers, seeded

# benchmarks/mutants.py: a mutant that cannot change what the code computes.
MUTANTS_EQUIVALENT = {
    ("no_grad", "line 113: with torch.no_grad()"):
        "the recomputed logits only ever reach a loss as a peer's target through mimicry_loss, which "
        "detaches them (test_a_peers_gradient_comes_only_from_its_own_loss pins that); no_grad only "
        "saves the graph's memory",
}


def _pair_loss(s, t, x, y):
    """Both peers' losses of one mini-batch: the student is peer 1, the "teacher" peer 2."""
    a, b = impl.dml_losses([s(x), t(x)], y)
    return {"ce": a["ce"] + b["ce"], "kl": a["kl"] + b["kl"]}


# The catchers. DML trains its "teacher": the other peer learns from its own loss, so the frozen-
# teacher check is inverted (trains_teacher=True): peer 2 must get a gradient and move. That peer 1's
# loss sends nothing to peer 2 is checked below (test_a_peers_gradient_comes_only_from_its_own_loss).
test_catchers = catchers(Case(loss=_pair_loss, student=lambda: nn.Linear(6, 5),
                              teacher=lambda seed: seeded(lambda: nn.Linear(6, 5), seed),
                              zero_when_equal=True, trains_teacher=True))


def _mlp():
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 5))


def test_mimicry_loss_on_a_hand_checkable_case():
    # Sec. 2.1: D_KL(p2 || p1) = sum_m p2 log(p2 / p1), p = softmax, no temperature.
    z, v = [1.0, 0.0, -1.0], [0.0, 2.0, 0.5]
    p1 = [math.exp(a) / sum(math.exp(b) for b in z) for a in z]
    p2 = [math.exp(a) / sum(math.exp(b) for b in v) for a in v]
    expected = sum(q * math.log(q / p) for q, p in zip(p2, p1))
    got = impl.mimicry_loss(torch.tensor([z]), torch.tensor([v]))
    assert math.isclose(got.item(), expected, rel_tol=1e-5)
    # the direction: the peer's posterior is the reference distribution, KL(p_peer || p_self)
    reverse = sum(p * math.log(p / q) for q, p in zip(p2, p1))
    assert not math.isclose(got.item(), reverse, rel_tol=1e-2)


def test_batch_reduction_is_the_mean_over_samples():
    torch.manual_seed(0)
    z, v = torch.randn(6, 7), torch.randn(6, 7)
    per_sample = torch.stack([impl.mimicry_loss(z[i:i + 1], v[i:i + 1]) for i in range(6)])
    assert torch.allclose(impl.mimicry_loss(z, v), per_sample.mean(), atol=1e-6)


def test_two_networks_loss_is_ce_plus_kl_to_the_other():
    # Sec. 2.1: L_1 = L_C1 + D_KL(p2 || p1), L_2 = L_C2 + D_KL(p1 || p2); kl_weight = 1 by default.
    torch.manual_seed(1)
    z1, z2, y = torch.randn(8, 5), torch.randn(8, 5), torch.randint(0, 5, (8,))
    l1, l2 = impl.dml_losses([z1, z2], y)
    assert torch.allclose(l1["ce"], F.cross_entropy(z1, y)) and torch.allclose(l2["ce"], F.cross_entropy(z2, y))
    kl = lambda p_ref, q: (p_ref * (p_ref.log() - q.log())).sum(1).mean()
    p1, p2 = F.softmax(z1, 1), F.softmax(z2, 1)
    assert torch.allclose(l1["kl"], kl(p2, p1), atol=1e-6) and torch.allclose(l2["kl"], kl(p1, p2), atol=1e-6)
    assert torch.allclose(impl.dml_losses([z1, z2], y, kl_weight=0.3)[0]["kl"], 0.3 * l1["kl"])


def test_k_networks_average_the_kl_terms_as_in_the_paper_not_sum_them_as_in_the_code():
    # Sec. 2.3: 1/(K-1) sum_{l != k}; the authors' train_models.py sums (identical for K = 2).
    torch.manual_seed(2)
    z = [torch.randn(8, 5) for _ in range(3)]
    y = torch.randint(0, 5, (8,))
    out = impl.dml_losses(z, y)
    for k in range(3):
        terms = [impl.mimicry_loss(z[k], z[l]) for l in range(3) if l != k]
        assert torch.allclose(out[k]["kl"], (terms[0] + terms[1]) / 2, atol=1e-6)
        assert not torch.allclose(out[k]["kl"], terms[0] + terms[1])
    with pytest.raises(ValueError):
        impl.dml_losses(z[:1], y)


def test_a_peers_gradient_comes_only_from_its_own_loss():
    # Each network minimises its own L_k with the others' posteriors as fixed targets: L_1 sends no
    # gradient to network 2, and network 1's gradient is that of L_C1 + KL(p2 || p1), with
    # d KL / d z1 = (p1 - p2) / batch.
    torch.manual_seed(3)
    a, b = seeded(_mlp, 0), seeded(_mlp, 1)
    x, y = torch.randn(8, 6), torch.randint(0, 5, (8,))
    z1, z2 = a(x), b(x)
    z1.retain_grad()
    l1, _ = impl.dml_losses([z1, z2], y)
    (l1["ce"] + l1["kl"]).backward()
    assert all(p.grad is None for p in b.parameters()), "L_1 reached network 2 (a missing detach?)"
    p1, p2 = F.softmax(z1.detach(), 1), F.softmax(z2.detach(), 1)
    ce_grad = (p1 - F.one_hot(y, 5)) / 8
    assert torch.allclose(z1.grad, ce_grad + (p1 - p2) / 8, atol=1e-6)


def _manual_algorithm_1(nets, x, y, lr, recompute=True):
    """Algorithm 1 for two networks written out with plain SGD (no momentum), for reference."""
    n1, n2 = nets
    z1, z2 = n1(x), n2(x)                                              # 1: p1, p2
    l1 = F.cross_entropy(z1, y) + F.kl_div(F.log_softmax(z1, 1), F.softmax(z2.detach(), 1), reduction="batchmean")
    g1 = torch.autograd.grad(l1, list(n1.parameters()))
    with torch.no_grad():                                              # 2: update network 1
        for p, g in zip(n1.parameters(), g1):
            p -= lr * g
    z1_new = n1(x).detach() if recompute else z1.detach()              # 3: recompute p1
    l2 = F.cross_entropy(z2, y) + F.kl_div(F.log_softmax(z2, 1), F.softmax(z1_new, 1), reduction="batchmean")
    g2 = torch.autograd.grad(l2, list(n2.parameters()))
    with torch.no_grad():                                              # 4: update network 2
        for p, g in zip(n2.parameters(), g2):
            p -= lr * g


def test_dml_step_is_algorithm_1_sequential_updates_with_recomputed_posteriors():
    torch.manual_seed(4)
    x, y = torch.randn(16, 6), torch.randint(0, 5, (16,))
    nets = [seeded(_mlp, 0), seeded(_mlp, 1)]
    ref, simultaneous = copy.deepcopy(nets), copy.deepcopy(nets)
    opts = [torch.optim.SGD(n.parameters(), lr=0.5) for n in nets]
    terms = impl.dml_step(nets, opts, x, y)
    _manual_algorithm_1(ref, x, y, lr=0.5)
    _manual_algorithm_1(simultaneous, x, y, lr=0.5, recompute=False)
    for k in range(2):
        for p, q in zip(nets[k].parameters(), ref[k].parameters()):
            assert torch.allclose(p, q, atol=1e-6), f"network {k + 1} differs from Algorithm 1"
    # ...and network 2 saw network 1's updated posterior: the simultaneous update would differ.
    assert not all(torch.allclose(p, q, atol=1e-6) for p, q in zip(nets[1].parameters(), simultaneous[1].parameters()))
    assert [set(t) for t in terms] == [{"ce", "kl"}] * 2
    assert not any(v.requires_grad for t in terms for v in t.values())  # logged values hold no graph


def test_kl_weight_zero_is_independent_training():
    torch.manual_seed(5)
    x, y = torch.randn(16, 6), torch.randint(0, 5, (16,))
    nets = [seeded(_mlp, 0), seeded(_mlp, 1)]
    alone = copy.deepcopy(nets)
    opts = [torch.optim.SGD(n.parameters(), lr=0.5, momentum=0.9) for n in nets]
    opts_alone = [torch.optim.SGD(n.parameters(), lr=0.5, momentum=0.9) for n in alone]
    for _ in range(3):
        impl.dml_step(nets, opts, x, y, kl_weight=0.0)
        for n, o in zip(alone, opts_alone):
            o.zero_grad()
            F.cross_entropy(n(x), y).backward()
            o.step()
    for a, b in zip(nets, alone):
        assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))


def test_recomputed_posterior_moves_no_batchnorm_statistics():
    # Each network's running statistics move once per step (its own update's forward), as in the
    # authors' code, where a network's moving averages belong to its own train op.
    make = lambda: nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 5))
    nets = [seeded(make, 0), seeded(make, 1)]
    x, y = torch.randn(16, 6), torch.randint(0, 5, (16,))
    expected = []
    for n in nets:
        probe = copy.deepcopy(n).train()
        probe(x)  # one training-mode forward from the initial weights
        expected.append((probe[1].running_mean.clone(), probe[1].running_var.clone(), int(probe[1].num_batches_tracked)))
    impl.dml_step(nets, [torch.optim.SGD(n.parameters(), lr=0.5) for n in nets], x, y)
    for n, (mean, var, tracked) in zip(nets, expected):
        assert torch.allclose(n[1].running_mean, mean) and torch.allclose(n[1].running_var, var)
        assert int(n[1].num_batches_tracked) == tracked == 1
        assert n[1].momentum == 0.1  # restored


def test_toy_mutual_learning_softens_the_peers_posteriors():
    # The paper's explanation of why DML works: matching the peers' posteriors regularises each network
    # towards higher-entropy predictions (wider minima). On a small noisy toy, after the same steps
    # from the same initial weights and batches, DML peers have a clearly higher mean posterior
    # entropy on their training inputs than independently trained ones, which memorise the labels.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 6, generator=g)
    y = (x[:, 0] * 2 + x[:, 1]).gt(0).long() * 2 + (x[:, 2] > 0).long()  # 4 classes...
    flip = torch.rand(128, generator=g) < 0.25
    y = torch.where(flip, torch.randint(0, 5, (128,), generator=g), y)   # ...with 25% label noise
    stats = {}
    for kl_weight in (0.0, 1.0):
        entropy = []
        for seed in range(3):
            nets = [seeded(_mlp, 10 * seed), seeded(_mlp, 10 * seed + 1)]
            opts = [torch.optim.SGD(n.parameters(), lr=0.2, momentum=0.9) for n in nets]
            for i in range(300):
                idx = torch.arange(32) + 32 * (i % 4)
                impl.dml_step(nets, opts, x[idx], y[idx], kl_weight=kl_weight)
            with torch.no_grad():
                z1, z2 = nets[0](x), nets[1](x)
                p = F.softmax(torch.cat([z1, z2]), 1)
                entropy.append(-(p * p.clamp_min(1e-12).log()).sum(1).mean().item())
        stats[kl_weight] = sum(entropy) / 3
    assert stats[1.0] > 1.5 * stats[0.0], stats


def test_recipe_with_kl_weight_zero_reproduces_the_student_alone():
    # The recipe's peer 0 is the benchmark's student (same initial weights and batches as the
    # baseline); without the KL term it must be trained exactly as the student alone.
    from kdatlas.harness import get_task
    from kdatlas.recipes import BASELINE, get_recipe, make_context, run_recipe
    from kdatlas.recipes.zhang2017deep import train_cohort

    task = get_task("mnist1d", quick=True, epochs=2)
    recipe = get_recipe("zhang2017deep")
    assert not recipe.needs_teacher and recipe.settings_for("mnist1d") == {"peers": 2, "kl_weight": 1.0}
    alone, _ = run_recipe(BASELINE, task, None, seed=1)
    peers, hist, _ = train_cohort(make_context(task, None, 1), recipe.settings_for("mnist1d", kl_weight=0.0))
    assert all(torch.equal(p, q) for p, q in zip(peers[0].state_dict().values(), alone.state_dict().values()))
    assert not torch.equal(peers[0].fc.weight, peers[1].fc.weight)  # different initial conditions
    dml, h = run_recipe(recipe, task, None, seed=1)
    assert set(h.terms) == {"ce_0", "kl_0", "ce_1", "kl_1"} and not torch.equal(dml.fc.weight, alone.fc.weight)
