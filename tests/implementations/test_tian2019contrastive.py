"""Claims of Tian et al. (2019), Contrastive Representation Distillation, checked on CRDLoss."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.tian2019contrastive import CRDLoss, crd_critic_loss, update_bank
from kdatlas.testing import Case, catchers, seeded


class _StudentWithCritic(nn.Module):
    """The student network plus CRDLoss (its heads g^S, g^T and banks train with the student)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 4), nn.ReLU())
        self.crd = CRDLoss(4, 12, num_data=16, feat_dim=8, num_negatives=6)


# benchmarks/mutants.py: mutants that cannot change what the code computes, with the reason.
MUTANTS_EQUIVALENT = {
    ("detach", "line 98: embedding.detach()"):
        "update_bank runs under its @torch.no_grad() decorator: the detach is a second guard "
        "(test_update_bank_records_no_graph_even_from_an_embedding_that_requires_grad pins the effect)",
    ("detach", "line 193: s.detach()"):
        "update_bank runs under @torch.no_grad() and detaches its embedding itself: a third guard",
    ("detach", "line 193: t.detach()"):
        "update_bank runs under @torch.no_grad() and detaches its embedding itself: a third guard",
}

# The silent-bug catchers (kdatlas.testing): the teacher network's features enter only through the
# critic; gradient must reach the student and its heads, never the teacher network.
test_catchers = catchers(Case(
    loss=lambda s, t, x, y: s.crd(s.net(x), t(x), torch.arange(8)),
    student=_StudentWithCritic,
    teacher=lambda seed: seeded(lambda: nn.Sequential(nn.Linear(6, 12), nn.ReLU()), seed),
    zero_when_equal="a contrastive bound: with equal embeddings it is still the NCE loss of the negatives"))


def _identity_heads(crd):
    """g^S, g^T = L2 normalisation only, so the test can write embeddings by hand."""
    with torch.no_grad():
        for lin in (crd.embed_student, crd.embed_teacher):
            lin.weight.copy_(torch.eye(lin.weight.shape[0], lin.weight.shape[1]))
            lin.bias.zero_()
    return crd


PAPER = dict(symmetric=False, estimate_z=False, positive_from_bank=False)  # the paper's critic as written


def _tiny(**kw):
    # M = 4 samples, N = 2 negatives, 2-D embeddings, tau = 0.5
    crd = _identity_heads(CRDLoss(2, 2, num_data=4, feat_dim=2, num_negatives=2, nce_temperature=0.5,
                                  momentum=0.5, **kw))
    with torch.no_grad():
        crd.bank_teacher.copy_(torch.tensor([[0.8, 0.6], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
        crd.bank_student.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]]))
    return crd


def _h(x, n, m, z=1.0):
    """The paper's critic h = e^x / (e^x + N/M) (N Z / M in the authors' code), as a float."""
    return math.exp(x) / (math.exp(x) + n * z / m)


def _side(pos, negs, n, m, z=1.0):
    return -(math.log(_h(pos, n, m, z)) + sum(math.log(1 - _h(x, n, m, z)) for x in negs))


S, T = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.6, 0.8]])  # g^S(S) = (1, 0), g^T(T) = (0.6, 0.8)
IDX, NEG = torch.tensor([0]), torch.tensor([[1, 2]])


def test_paper_critic_loss_by_hand():
    # positive: the current pair, x = <(1,0),(0.6,0.8)>/0.5 = 1.2; negatives: teacher bank rows 1, 2
    # -> x = 0, -2; h = e^x / (e^x + N/M) with N/M = 2/4.
    crd = _tiny(**PAPER)
    assert math.isclose(crd(S, T, IDX, NEG).item(), _side(1.2, [0.0, -2.0], 2, 4), rel_tol=1e-6)


def test_authors_code_variant_by_hand():
    # Defaults = the authors' code: (a) the positive is the other side's BANK entry of the same
    # sample, (b) Z = M * mean exp(x) over the first batch's negatives, then frozen, (c) a second,
    # teacher-anchored term against the student bank.
    crd = _tiny()
    # student anchor (1,0): bank_t[0] = (0.8,0.6) -> 1.6; negatives rows 1,2 -> 0, -2
    z_s = 4 * (math.exp(0.0) + math.exp(-2.0)) / 2
    # teacher anchor (0.6,0.8): bank_s[0] = (0,1) -> 1.6; rows 1,2 = (1,0),(0,-1) -> 1.2, -1.6
    z_t = 4 * (math.exp(1.2) + math.exp(-1.6)) / 2
    expected = _side(1.6, [0.0, -2.0], 2, 4, z_s) + _side(1.6, [1.2, -1.6], 2, 4, z_t)
    assert math.isclose(crd(S, T, IDX, NEG).item(), expected, rel_tol=1e-6)
    assert torch.allclose(crd.log_z, torch.tensor([math.log(z_s), math.log(z_t)]))


def test_pinned_defaults_follow_the_authors_code_and_each_switch_matters():
    crd = _tiny()
    assert crd.symmetric and crd.estimate_z and crd.positive_from_bank
    paper = _tiny(**PAPER)(S, T, IDX, NEG).item()
    for switch in ("symmetric", "estimate_z", "positive_from_bank"):
        kw = dict(PAPER, **{switch: True})
        assert not math.isclose(_tiny(**kw)(S, T, IDX, NEG).item(), paper, rel_tol=1e-3), switch
    # Z is estimated once and then frozen
    crd = _tiny(symmetric=False)
    crd(S, T, IDX, NEG)
    log_z = crd.log_z.clone()
    crd(torch.tensor([[0.0, 3.0]]), T, torch.tensor([1]), torch.tensor([[0, 3]]))
    assert torch.equal(crd.log_z[0], log_z[0])
    assert torch.isnan(_tiny(**PAPER).log_z).all()  # never set without estimate_z


def test_critic_loss_function_matches_the_formula_for_a_batch():
    torch.manual_seed(0)
    pos, neg = torch.randn(3), torch.randn(3, 5)
    m = 40
    expected = -sum(math.log(_h(pos[b].item(), 5, m)) + sum(math.log(1 - _h(x, 5, m)) for x in neg[b].tolist())
                    for b in range(3)) / 3  # negatives summed, batch averaged
    assert math.isclose(crd_critic_loss(pos, neg, m).item(), expected, rel_tol=1e-5)
    # stable where exp overflows float32 (x = 100 / 0.07 is not exotic with tau = 0.07)
    assert torch.isfinite(crd_critic_loss(torch.tensor([1500.0]), torch.tensor([[-1500.0, 1500.0]]), 10))


def test_positive_critic_score_rises_as_the_student_moves_toward_the_teacher():
    torch.manual_seed(1)
    for from_bank in (False, True):
        crd = _identity_heads(CRDLoss(6, 6, num_data=50, feat_dim=6, num_negatives=20, positive_from_bank=from_bank))
        t, start, idx = torch.randn(1, 6), torch.randn(1, 6), torch.tensor([3])
        with torch.no_grad():  # the bank row of sample 3 holds the teacher's embedding
            crd.bank_teacher[3] = F.normalize(t, dim=1)[0]
        neg = crd.sample_negatives(idx)
        scores = []
        for a in torch.linspace(0, 1, 6):
            s_emb, t_emb = crd.embed((1 - a) * start + a * t, t)
            pos_x, neg_x = crd.scores(s_emb, t_emb, crd.bank_teacher, idx, neg)
            assert neg_x.shape == (1, 20)
            scores.append(_h(pos_x.item(), 20, 50))
        assert all(b > a for a, b in zip(scores, scores[1:]))
        assert scores[-1] == pytest.approx(_h(1 / 0.07, 20, 50))  # aligned: cosine 1, x = 1/tau


def test_bank_update_is_a_renormalised_momentum_average_on_the_given_rows_only():
    torch.manual_seed(2)
    bank = F.normalize(torch.randn(6, 3), dim=1)
    before = bank.clone()
    emb = F.normalize(torch.randn(2, 3), dim=1)
    idx = torch.tensor([4, 1])
    new = update_bank(bank, idx, emb, momentum=0.5)
    assert new is bank  # in place: no (M, D) copy per step at ImageNet size
    for r, i in enumerate(idx.tolist()):
        mixed = 0.5 * before[i] + 0.5 * emb[r]
        assert torch.allclose(new[i], mixed / mixed.norm(), atol=1e-6)
        assert math.isclose(new[i].norm().item(), 1.0, rel_tol=1e-6)
    untouched = [0, 2, 3, 5]
    assert torch.equal(new[untouched], before[untouched])
    # momentum 1 keeps the bank, 0 writes the embeddings
    assert torch.allclose(update_bank(bank.clone(), idx, emb, 1.0), bank)
    assert torch.allclose(update_bank(bank.clone(), idx, emb, 0.0)[idx], emb, atol=1e-6)


def test_forward_updates_both_banks_after_the_loss_with_the_current_embeddings():
    crd = _tiny()
    bank_t, bank_s = crd.bank_teacher.clone(), crd.bank_student.clone()
    crd(S, T, IDX, NEG)
    s_emb, t_emb = torch.tensor([1.0, 0.0]), torch.tensor([0.6, 0.8])
    mixed_t, mixed_s = 0.5 * bank_t[0] + 0.5 * t_emb, 0.5 * bank_s[0] + 0.5 * s_emb
    assert torch.allclose(crd.bank_teacher[0], mixed_t / mixed_t.norm(), atol=1e-6)
    assert torch.allclose(crd.bank_student[0], mixed_s / mixed_s.norm(), atol=1e-6)
    assert torch.equal(crd.bank_teacher[1:], bank_t[1:]) and torch.equal(crd.bank_student[1:], bank_s[1:])
    assert "bank_teacher" in dict(crd.named_buffers()) and "bank_student" in dict(crd.named_buffers())


def test_no_gradient_into_the_bank_or_the_teacher_and_the_teacher_head_is_trained():
    # The paper maximises L_critic over the critic h, which contains both heads: g^T is learned,
    # the teacher network (its features) is not.
    torch.manual_seed(3)
    crd = CRDLoss(5, 9, num_data=30, feat_dim=4, num_negatives=7)
    s = torch.randn(4, 5, requires_grad=True)
    t = torch.randn(4, 9, requires_grad=True)
    loss = crd(s, t, torch.tensor([0, 3, 7, 9]))
    loss.backward()
    assert t.grad is None and s.grad is not None
    assert not crd.bank_teacher.requires_grad and not crd.bank_student.requires_grad
    assert all(not n.startswith("bank") for n, _ in crd.named_parameters())
    assert crd.embed_teacher.weight.grad.abs().sum() > 0
    assert crd.embed_student.weight.grad.abs().sum() > 0


def test_negative_sampling_is_seeded_deterministic_and_skips_the_anchor():
    idx = torch.tensor([0, 5, 9])
    a = CRDLoss(3, 3, num_data=10, feat_dim=2, num_negatives=500, seed=7)
    b = CRDLoss(3, 3, num_data=10, feat_dim=2, num_negatives=500, seed=7)
    c = CRDLoss(3, 3, num_data=10, feat_dim=2, num_negatives=500, seed=8)
    na, nb, nc = a.sample_negatives(idx), b.sample_negatives(idx), c.sample_negatives(idx)
    assert torch.equal(na, nb) and not torch.equal(na, nc)
    assert na.shape == (3, 500) and na.min() >= 0 and na.max() <= 9
    assert not (na == idx.unsqueeze(1)).any()
    assert all(len(set(row.tolist())) == 9 for row in na)  # every other sample can be drawn
    s, t = torch.randn(3, 3), torch.randn(3, 3)
    torch.manual_seed(0)  # the heads' initialisation uses the global RNG, as any nn.Linear
    a2 = CRDLoss(3, 3, num_data=10, feat_dim=2, num_negatives=50, seed=7)
    torch.manual_seed(0)
    b2 = CRDLoss(3, 3, num_data=10, feat_dim=2, num_negatives=50, seed=7)
    torch.manual_seed(123)  # ...but the negatives and the banks do not depend on it
    first = a2(s, t, idx)
    torch.manual_seed(456)
    assert torch.equal(first, b2(s, t, idx))


def test_a_training_step_moves_the_student_and_both_heads():
    torch.manual_seed(5)
    teacher = nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.ReLU()).eval()
    student = nn.Sequential(nn.Linear(6, 4), nn.ReLU())
    crd = CRDLoss(4, 12, num_data=40, feat_dim=8, num_negatives=16)
    opt = torch.optim.SGD([*student.parameters(), *crd.parameters()], lr=0.1)
    x, idx = torch.randn(8, 6), torch.arange(8)
    w_s, w_t = student[0].weight.detach().clone(), crd.embed_teacher.weight.detach().clone()
    with torch.no_grad():
        t = teacher(x)
    loss = crd(student(x), t, idx)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert not torch.equal(w_s, student[0].weight) and not torch.equal(w_t, crd.embed_teacher.weight)


def test_constructor_checks_and_default_hyperparameters_of_the_authors_code():
    with pytest.raises(ValueError):
        CRDLoss(3, 3, num_data=1)
    crd = CRDLoss(3, 5, num_data=100)
    assert (crd.num_negatives, crd.temperature, crd.momentum, crd.embed_student.out_features) == (16384, 0.07, 0.5, 128)
    assert crd.symmetric and crd.estimate_z and crd.positive_from_bank
    assert torch.allclose(crd.bank_teacher.norm(dim=1), torch.ones(100))


def test_update_bank_records_no_graph_even_from_an_embedding_that_requires_grad():
    bank = F.normalize(torch.randn(5, 3), dim=1)
    emb = torch.randn(2, 3, requires_grad=True)
    out = update_bank(bank, torch.tensor([0, 3]), emb, momentum=0.5)
    assert not out.requires_grad and out.grad_fn is None  # the bank is a buffer, never part of a graph


# Shared negatives (shared_negatives=True): one set of N bank rows for the whole batch, scored as one
# matrix product; the option that keeps the step near the floor at CIFAR/ImageNet size.

def test_shared_negatives_are_seeded_uniform_and_never_a_batch_sample():
    idx = torch.tensor([9, 0, 5])  # unsorted on purpose
    a = CRDLoss(3, 3, num_data=12, feat_dim=2, num_negatives=900, seed=7)
    b = CRDLoss(3, 3, num_data=12, feat_dim=2, num_negatives=900, seed=7)
    c = CRDLoss(3, 3, num_data=12, feat_dim=2, num_negatives=900, seed=8)
    na, nb, nc = a.sample_shared_negatives(idx), b.sample_shared_negatives(idx), c.sample_shared_negatives(idx)
    assert torch.equal(na, nb) and not torch.equal(na, nc)
    assert na.shape == (900,)
    assert set(na.tolist()) == set(range(12)) - {0, 5, 9}  # every other sample, and only those
    counts = torch.bincount(na, minlength=12)[[i for i in range(12) if i not in (0, 5, 9)]].float()
    assert counts.min() > 0.5 * counts.mean()  # roughly uniform: 100 expected per row
    with pytest.raises(ValueError, match="outside the batch"):
        CRDLoss(3, 3, num_data=3, feat_dim=2, num_negatives=4).sample_shared_negatives(torch.tensor([0, 1, 2]))


@pytest.mark.parametrize("variant", [dict(), PAPER], ids=["code", "paper"])
def test_shared_negatives_give_the_per_anchor_loss_with_the_same_rows(variant):
    # The (B, D) @ (D, N) path must score exactly what the per-anchor path scores when every anchor
    # gets the same N rows: same loss, same gradients.
    torch.manual_seed(0)
    s, t = torch.randn(5, 4, requires_grad=True), torch.randn(5, 6)
    idx, neg = torch.tensor([3, 7, 1, 12, 8]), torch.tensor([0, 2, 4, 5, 6, 9, 10, 11, 13, 2])
    losses, grads = [], []
    for negative_index in (neg, neg.expand(5, -1)):
        torch.manual_seed(1)
        crd = CRDLoss(4, 6, num_data=14, feat_dim=3, num_negatives=10, **variant)
        loss = crd(s, t, idx, negative_index=negative_index)
        losses.append(loss.detach())
        grads.append(torch.autograd.grad(loss, [s, *crd.parameters()]))
    torch.testing.assert_close(losses[0], losses[1])
    for g0, g1 in zip(*grads):
        torch.testing.assert_close(g0, g1)


def test_shared_negatives_flag_draws_one_shared_set_per_step():
    torch.manual_seed(2)
    s, t, idx = torch.randn(4, 3), torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    torch.manual_seed(3)
    shared = CRDLoss(3, 5, num_data=30, feat_dim=4, num_negatives=8, shared_negatives=True, seed=4)
    torch.manual_seed(3)
    explicit = CRDLoss(3, 5, num_data=30, feat_dim=4, num_negatives=8, seed=4)
    neg = explicit.sample_shared_negatives(idx)  # the same draw from the same seeded generator
    torch.testing.assert_close(shared(s, t, idx), explicit(s, t, idx, negative_index=neg))
    assert not CRDLoss(3, 5, num_data=30).shared_negatives  # the code's per-anchor sampling by default


def test_recipe_shares_negatives_only_at_cifar_size():
    from kdatlas.recipes import get_recipe
    recipe = get_recipe("tian2019contrastive")
    assert not recipe.settings_for("mnist1d")["shared_negatives"]
    assert not recipe.settings_for("digits")["shared_negatives"]
    assert recipe.settings_for("cifar100")["shared_negatives"]


test_catchers_shared_negatives = catchers(Case(
    loss=lambda s, t, x, y: s.crd(s.net(x), t(x), torch.arange(8)),
    student=lambda: _with_shared_negatives(_StudentWithCritic()),
    teacher=lambda seed: seeded(lambda: nn.Sequential(nn.Linear(6, 12), nn.ReLU()), seed),
    zero_when_equal="a contrastive bound: with equal embeddings it is still the NCE loss of the negatives"))


def _with_shared_negatives(model):
    model.crd.shared_negatives = True
    return model
