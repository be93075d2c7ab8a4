"""Claims of Shen et al. (2022), DLB, checked on dlb_kl / dlb_loss / LastBatch / dlb_step and the recipe."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.shen2022selfdistillation import LastBatch, dlb_kl, dlb_loss, dlb_step
from kdatlas.testing import Case, catchers, seeded


def _case_loss(s, t, x, y):
    """One DLB iteration's loss: rows 0-3 are the repeated half, whose stored targets were made by
    the "teacher" (the network one iteration earlier), rows 4-7 the new half."""
    return dlb_loss(s(x[4:]), y[4:], s(x[:4]), y[:4], t(x[:4]), temperature=3.0, alpha=1.0)


# The catchers. DLB has no teacher: the network one iteration earlier plays its part, and its
# logits are stored detached, so the frozen-teacher check applies as it is (nothing may flow back
# into the step that made the targets). With the network unchanged the KL term is zero.
test_catchers = catchers(Case(loss=_case_loss, student=lambda: nn.Linear(6, 5),
                              teacher=lambda seed: seeded(lambda: nn.Linear(6, 5), seed), zero_when_equal=True))


def _mlp(seed=0):
    return seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 5)), seed)


def test_kl_term_by_hand_at_temperature_one_and_its_tau_squared_scaling():
    # previous targets q = softmax(0, log 3) = (1/4, 3/4); repeated prediction p = (1/2, 1/2)
    prev = torch.tensor([[0.0, math.log(3.0)]])
    rep = torch.tensor([[0.0, 0.0]])
    by_hand = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert dlb_kl(rep, prev, temperature=1.0).item() == pytest.approx(by_hand, rel=1e-6)
    # at tau: the KL of the softened distributions, times tau^2, averaged over the samples
    torch.manual_seed(0)
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    for tau in (1.0, 3.0, 4.0):
        ref = F.kl_div(F.log_softmax(a / tau, 1), F.softmax(b / tau, 1), reduction="sum") / 6 * tau ** 2
        assert torch.allclose(dlb_kl(a, b, tau), ref)
    assert dlb_kl(b.clone(), b, 3.0).abs().item() < 1e-7


def test_loss_is_ce_over_both_halves_plus_alpha_times_the_kl():
    torch.manual_seed(1)
    z_new, z_rep, z_prev = torch.randn(4, 5), torch.randn(3, 5), torch.randn(3, 5)
    y_new, y_rep = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 0, 1])
    out = dlb_loss(z_new, y_new, z_rep, y_rep, z_prev, temperature=3.0, alpha=0.7)
    ce = (F.cross_entropy(z_new, y_new, reduction="sum") + F.cross_entropy(z_rep, y_rep, reduction="sum")) / 7
    assert torch.allclose(out["ce"], ce)  # the mean over the 2b (here 4 + 3) samples, as in the code
    assert torch.allclose(out["dlb"], 0.7 * dlb_kl(z_rep, z_prev, 3.0))
    assert dlb_loss(z_new, y_new, z_rep, y_rep, z_prev, alpha=0.0)["dlb"].item() == 0.0
    # no repeated half (the first iteration): cross-entropy on the new batch alone
    first = dlb_loss(z_new, y_new)
    assert set(first) == {"ce"} and torch.allclose(first["ce"], F.cross_entropy(z_new, y_new))


def test_targets_are_aligned_by_sample_so_shuffling_them_changes_the_loss():
    torch.manual_seed(2)
    z_rep, z_prev = torch.randn(6, 5), torch.randn(6, 5)
    assert not torch.isclose(dlb_kl(z_rep, z_prev), dlb_kl(z_rep, z_prev[torch.tensor([1, 0, 3, 2, 5, 4])]))
    with pytest.raises(ValueError, match="differ"):
        dlb_kl(torch.randn(4, 5), torch.randn(3, 5))


def test_first_step_is_plain_cross_entropy_and_the_store_keeps_pre_step_logits_without_graph():
    net = _mlp()
    ref = copy.deepcopy(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y, idx = torch.randn(8, 6), torch.randint(0, 5, (8,)), torch.arange(8)
    last = LastBatch()
    assert last.empty
    terms = dlb_step(net, opt, x, y, last, index=idx)
    assert set(terms) == {"ce"} and torch.allclose(terms["ce"], F.cross_entropy(ref(x), y))
    assert torch.equal(last.x, x) and torch.equal(last.y, y) and torch.equal(last.index, idx)
    assert torch.allclose(last.logits, ref(x))          # made before the step, by the old parameters
    assert not torch.allclose(last.logits, net(x))      # ...and the network has moved since
    assert last.logits.grad_fn is None and not last.logits.requires_grad
    assert all(v.grad_fn is None for v in terms.values())  # the logged terms hold no graph either


def test_second_step_distils_the_previous_batchs_stored_logits_into_its_second_visit():
    net = _mlp(1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(3)
    x1, y1 = torch.randn(8, 6, generator=g), torch.randint(0, 5, (8,), generator=g)
    x2, y2 = torch.randn(8, 6, generator=g), torch.randint(0, 5, (8,), generator=g)
    last = LastBatch()
    dlb_step(net, opt, x1, y1, last)
    stored = last.logits.clone()
    ref = copy.deepcopy(net)  # the parameters of iteration 2
    terms = dlb_step(net, opt, x2, y2, last, temperature=3.0, alpha=1.0)
    expected = dlb_loss(ref(x2), y2, ref(x1), y1, stored, 3.0, 1.0)
    assert torch.allclose(terms["ce"], expected["ce"]) and torch.allclose(terms["dlb"], expected["dlb"])
    assert terms["dlb"] > 0  # the network moved between the visits: the targets are not its current output
    # a fresh view of the repeated samples (an augmented dataset) replaces the stored inputs
    x1_aug = x1 + 0.1
    last2 = LastBatch(x1, y1, None, stored)
    net2 = copy.deepcopy(ref)
    t2 = dlb_step(net2, torch.optim.SGD(net2.parameters(), lr=0.1), x2, y2, last2, repeat_x=x1_aug)
    assert torch.allclose(t2["dlb"], dlb_kl(ref(x1_aug), stored, 3.0))


def test_gradient_of_the_kl_term_reaches_only_the_repeated_half_and_pulls_it_to_the_targets():
    net = _mlp(2)
    x_rep, x_new = torch.randn(5, 6), torch.randn(5, 6)
    prev = torch.randn(5, 5) * 3
    z_rep = net(x_rep)
    z_rep.retain_grad()
    z_new = net(x_new)
    z_new.retain_grad()
    dlb_loss(z_new, torch.zeros(5, dtype=torch.long), z_rep, torch.zeros(5, dtype=torch.long), prev)["dlb"].backward()
    assert z_new.grad is None or z_new.grad.abs().max() == 0
    # d(tau^2 KL)/dz_rep = tau (p - q) / b at temperature tau
    tau = 3.0
    p, q = F.softmax(z_rep.detach() / tau, 1), F.softmax(prev / tau, 1)
    assert torch.allclose(z_rep.grad, tau * (p - q) / 5, atol=1e-6)


def test_joint_forward_gives_the_same_loss_without_batch_normalisation():
    torch.manual_seed(4)
    x1, x2 = torch.randn(6, 6), torch.randn(6, 6)
    y1, y2 = torch.randint(0, 5, (6,)), torch.randint(0, 5, (6,))
    outs = []
    for joint in (False, True):
        net = _mlp(5)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        last = LastBatch()
        dlb_step(net, opt, x1, y1, last)
        outs.append(dlb_step(net, opt, x2, y2, last, joint_forward=joint))
    assert all(torch.allclose(outs[0][k], outs[1][k], atol=1e-6) for k in outs[0])


@pytest.fixture(scope="module")
def small_task():
    from kdatlas.harness import get_task
    return get_task("mnist1d", num_samples=600, n_train=100, teacher_epochs=1, epochs=2, batch_size=32)


def test_recipe_pairs_each_batch_with_the_previous_one_across_the_epoch_boundary(small_task):
    from kdatlas.recipes import get_recipe, make_context
    from kdatlas.recipes.shen2022selfdistillation import train_dlb

    task = small_task
    recipe = get_recipe("shen2022selfdistillation")
    assert not recipe.needs_teacher and recipe.settings_for("mnist1d") == {"temperature": 3.0, "alpha": 1.0}
    log = []
    train_dlb(make_context(task, None, 1), recipe.settings_for("mnist1d"),
              on_step=lambda before, batch, terms: log.append((before.index, batch[2], set(terms))))
    steps_per_epoch = len(task.student_loader(1))  # 100 samples, batches of 32: 4 steps (the last of 4)
    assert len(log) == 2 * steps_per_epoch
    assert log[0][0] is None and log[0][2] == {"ce"}  # the run's first step: plain cross-entropy
    for t in range(1, len(log)):
        assert torch.equal(log[t][0], log[t - 1][1])  # repeated half = the previous step's new half
        assert log[t][2] == {"ce", "dlb"}
    for e in range(2):  # every sample is new exactly once per epoch
        seen = torch.cat([log[t][1] for t in range(e * steps_per_epoch, (e + 1) * steps_per_epoch)])
        assert sorted(seen.tolist()) == list(range(100))
    # the first step of epoch 2 repeats the last (short) batch of epoch 1
    assert len(log[steps_per_epoch][0]) == 100 - 32 * 3


def test_recipe_with_alpha_zero_is_not_the_student_alone_but_ce_on_both_visits(small_task):
    # alpha = 0 keeps the doubled CE: it differs from the baseline, so the KL is not all DLB changes
    from kdatlas.recipes import BASELINE, get_recipe, make_context, run_recipe
    from kdatlas.recipes.shen2022selfdistillation import train_dlb

    task = small_task
    alone, _ = run_recipe(BASELINE, task, None, seed=1)
    recipe = get_recipe("shen2022selfdistillation")
    ce_only, h0 = train_dlb(make_context(task, None, 1), recipe.settings_for("mnist1d", alpha=0.0))
    dlb, h1 = run_recipe(recipe, task, None, seed=1)
    w = lambda m: m.fc.weight.detach()
    assert not torch.allclose(w(ce_only), w(alone)) and not torch.allclose(w(dlb), w(ce_only))
    assert all(v == 0.0 for v in h0.terms["dlb"]) and all(v > 0 for v in h1.terms["dlb"])


def test_toy_dlb_keeps_consecutive_predictions_of_a_sample_more_consistent():
    # The paper's consistency claim, on a toy with noisy labels: over training, the change between a
    # sample's prediction at its two visits (the KL the term measures) is smaller with DLB than with
    # alpha = 0 (the same batches and steps, CE on both visits).
    g = torch.Generator().manual_seed(6)
    x = torch.randn(256, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + 2 * (x[:, 2] > 0).long()
    flip = torch.rand(256, generator=g) < 0.3
    y = torch.where(flip, torch.randint(0, 4, (256,), generator=g), y)
    gaps = {}
    for alpha in (0.0, 1.0):
        net = seeded(lambda: nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 4)), 7)
        opt = torch.optim.SGD(net.parameters(), lr=0.2, momentum=0.9)
        last, total = LastBatch(), []
        batches = torch.Generator().manual_seed(8)  # the same batch order for both runs
        for epoch in range(15):
            order = torch.randperm(256, generator=batches)
            for b in order.split(32):
                if not last.empty:
                    with torch.no_grad():
                        total.append(dlb_kl(net(last.x), last.logits, 3.0).item())
                dlb_step(net, opt, x[b], y[b], last, temperature=3.0, alpha=alpha)
        gaps[alpha] = sum(total[-40:]) / 40
    assert gaps[1.0] < 0.7 * gaps[0.0]
