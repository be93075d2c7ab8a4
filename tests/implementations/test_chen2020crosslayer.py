"""Claims of SemCKD (Chen et al., 2021), checked on the attention module, semckd_loss and kd_loss."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.chen2020crosslayer import (LayerProjector, QueryKeyEmbed, SemCKDAttention,
                                                       align_spatial, batch_similarity, kd_loss, semckd_loss)
from kdatlas.testing import Case, catchers, seeded

MUTANTS_EQUIVALENT = {("detach", "line 189: alpha[0].detach()"): "the __main__ demo's print of the attention"}


def _maps(model, x):
    return [model(x)]


def _semckd_case_loss(s, t, x, y):
    module = seeded(lambda: SemCKDAttention([4], [6, 6], batch_size=8, dim=1), 7)
    f_s, f_t = s(x), t(x)
    projected, targets, attention = module([f_s], [f_t, f_t.flip(-1)])
    return semckd_loss(projected, targets, attention)


# The silent-bug catchers: one student map (4 channels) against two teacher maps (6 channels).
# The projectors are not the identity, so a student equal to the teacher does not give zero.
test_catchers = catchers(Case(
    loss=_semckd_case_loss,
    student=lambda: nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), nn.ReLU()),
    teacher=lambda seed: seeded(lambda: nn.Sequential(nn.Conv1d(1, 6, 3, padding=1), nn.ReLU()), seed),
    zero_when_equal="the projectors map the student map to a learned function of it, not to itself",
    x=lambda: torch.randn(8, 1, 12, generator=torch.Generator().manual_seed(0))))
test_kd_catchers = catchers(Case(loss=lambda s, t, x, y: kd_loss(s(x), t(x), 4.0), student=lambda: nn.Linear(6, 5),
                                 teacher=lambda seed: seeded(lambda: nn.Linear(6, 5), seed), zero_when_equal=True))


def test_batch_similarity_by_hand():
    f = torch.tensor([[[1.0, 0.0]], [[1.0, 2.0]]])  # two samples, one channel, length 2
    assert torch.equal(batch_similarity(f), torch.tensor([[1.0, 1.0], [1.0, 5.0]]))


def test_query_key_embedding_is_a_unit_vector_of_width_b_over_factor():
    torch.manual_seed(0)
    emb = QueryKeyEmbed(batch_size=16, factor=4)
    out = emb(torch.randn(16, 16))
    assert out.shape == (16, 4)
    assert torch.allclose(out.norm(dim=1), torch.ones(16), atol=1e-6)
    assert emb.linear1.in_features == 16 and emb.linear1.out_features == 8  # b -> 2 (b/4) -> b/4
    with pytest.raises(ValueError, match="batch_size // factor"):
        QueryKeyEmbed(batch_size=3, factor=4)


def test_attention_is_a_per_sample_softmax_over_teacher_layers():
    torch.manual_seed(1)
    module = SemCKDAttention([4, 8], [6, 12, 24], batch_size=8, dim=1)
    s = [torch.rand(8, 4, 16), torch.rand(8, 8, 8)]
    t = [torch.rand(8, 6, 16), torch.rand(8, 12, 8), torch.rand(8, 24, 4)]
    a = module.attention(s, t)
    assert a.shape == (8, 2, 3)
    assert torch.allclose(a.sum(-1), torch.ones(8, 2), atol=1e-6)
    assert (a > 0).all()
    # by hand: alpha^i_{l,k} = softmax_k(q_l^i . k_k^i) with the module's own MLPs
    q = module.query[1](batch_similarity(s[1]))
    k = torch.stack([module.key[j](batch_similarity(t[j])) for j in range(3)], 1)  # (b, T, w)
    assert torch.allclose(a[:, 1], torch.softmax((q[:, None, :] * k).sum(-1), -1), atol=1e-6)
    # the weights differ from sample to sample (they are per-instance, not one layer pairing)
    assert (a[:, 0].max(0).values - a[:, 0].min(0).values).max() > 1e-3


def test_loss_formula_on_a_hand_case():
    # b = 2, S = 1, T = 2: per-sample per-pair means, weighted by alpha, summed, / (b S).
    p = [[torch.tensor([[[1.0, 1.0]], [[0.0, 0.0]]]), torch.tensor([[[2.0, 0.0]], [[1.0, 1.0]]])]]
    t = [[torch.zeros(2, 1, 2), torch.zeros(2, 1, 2)]]
    # d = [[1, 2], [0, 1]] (rows: samples; columns: teacher layers)
    a = torch.tensor([[[0.25, 0.75]], [[0.5, 0.5]]])
    expected = (0.25 * 1 + 0.75 * 2 + 0.5 * 0 + 0.5 * 1) / (2 * 1)
    assert math.isclose(semckd_loss(p, t, a).item(), expected, rel_tol=1e-6)


def test_one_hot_attention_recovers_a_fixed_layer_pair():
    # With alpha one-hot on a hand-picked teacher layer, SemCKD is the FitNets-style hint of that
    # pair (MSE of the projected student map), divided by the number of student layers.
    torch.manual_seed(2)
    module = SemCKDAttention([4, 8], [6, 12], batch_size=8, dim=1)
    s = [torch.rand(8, 4, 16), torch.rand(8, 8, 8)]
    t = [torch.rand(8, 6, 16), torch.rand(8, 12, 8)]
    projected, targets, _ = module(s, t)
    one_hot = torch.zeros(8, 2, 2)
    one_hot[:, 0, 1] = 1.0  # student layer 0 -> teacher layer 1 only
    one_hot[:, 1, 0] = 1.0  # student layer 1 -> teacher layer 0 only
    fixed = (F.mse_loss(projected[0][1], targets[0][1]) + F.mse_loss(projected[1][0], targets[1][0])) / 2
    assert torch.allclose(semckd_loss(projected, targets, one_hot), fixed, atol=1e-6)


def test_the_loss_itself_detaches_targets_passed_to_it():
    # semckd_loss may be called with targets that did not go through the module (which detaches
    # them): the teacher side must still get no gradient.
    target = torch.rand(4, 3, 5, requires_grad=True)
    projected = torch.rand(4, 3, 5, requires_grad=True)
    semckd_loss([[projected]], [[target]], torch.ones(4, 1, 1)).backward()
    assert target.grad is None and projected.grad.abs().sum() > 0


def test_zero_when_every_projection_matches_and_positive_otherwise():
    t = [[torch.rand(4, 3, 5), torch.rand(4, 2, 5)]]
    a = torch.softmax(torch.randn(4, 1, 2), -1)
    assert semckd_loss([[x.clone() for x in t[0]]], t, a).item() == 0.0
    assert semckd_loss([[t[0][0] + 0.1, t[0][1]]], t, a).item() > 0.0


def test_alignment_pools_the_larger_map_to_the_smaller_shape():
    s, t = torch.rand(2, 4, 8, 8), torch.rand(2, 6, 4, 4)
    a, b = align_spatial(s, t)
    assert a.shape == (2, 4, 4, 4) and b is t and torch.allclose(a, F.avg_pool2d(s, 2))
    a, b = align_spatial(t, s)  # the teacher map is the larger one: it is pooled instead
    assert a is t and torch.allclose(b, F.avg_pool2d(s, 2))
    a, b = align_spatial(torch.rand(2, 4, 20), torch.rand(2, 6, 10))  # sequences
    assert a.shape == (2, 4, 10) and b.shape == (2, 6, 10)
    with pytest.raises(ValueError, match="different rank"):
        align_spatial(torch.rand(2, 4, 8), torch.rand(2, 4, 8, 8))


def test_projector_shapes_and_no_final_activation():
    torch.manual_seed(3)
    proj = LayerProjector(4, 6, dim=2)
    out = proj(torch.rand(5, 4, 3, 3))
    assert out.shape == (5, 6, 3, 3) and (out < 0).any()  # no ReLU at the end (the code's AAEmbed)
    convs = [m for m in proj.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [12, 12, 6] and all(c.bias is None for c in convs)
    assert LayerProjector(4, 6, dim=1)(torch.rand(5, 4, 7)).shape == (5, 6, 7)


def test_module_outputs_every_pair_aligned_and_the_teacher_detached():
    torch.manual_seed(4)
    module = SemCKDAttention([4, 8], [6, 12, 24], batch_size=8, dim=1)
    s = [torch.rand(8, 4, 16, requires_grad=True), torch.rand(8, 8, 8, requires_grad=True)]
    t = [torch.rand(8, 6, 16, requires_grad=True), torch.rand(8, 12, 8, requires_grad=True),
         torch.rand(8, 24, 4, requires_grad=True)]
    projected, targets, attention = module(s, t)
    for l in range(2):
        for k in range(3):
            assert projected[l][k].shape == targets[l][k].shape
            assert projected[l][k].shape[1] == t[k].shape[1]
            assert not targets[l][k].requires_grad
    semckd_loss(projected, targets, attention).backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in s)
    assert all(x.grad is None for x in t)


def test_the_loss_trains_queries_keys_and_projectors():
    # The attention weights are not detached (the code): the loss's gradient reaches the query and
    # key MLPs, so the module learns where to put weight, and the student's maps get gradient
    # through the queries (the similarity matrices) as well as through the projections.
    torch.manual_seed(5)
    module = SemCKDAttention([4], [6, 6], batch_size=8, dim=1)
    s = torch.rand(8, 4, 10, requires_grad=True)
    t = [torch.rand(8, 6, 10), torch.rand(8, 6, 10)]
    semckd_loss(*module([s], t)).backward()
    for part in (module.query, module.key, module.projectors):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters() if p.dim() > 1)
    # the query path alone: freeze the projections' inputs and the student still gets gradient
    s2 = torch.rand(8, 4, 10, requires_grad=True)
    a = module.attention([s2], t)
    (a * torch.arange(2.0)).sum().backward()
    assert s2.grad.abs().sum() > 0


def test_other_batch_sizes_are_refused_with_the_reason():
    module = SemCKDAttention([4], [6], batch_size=8, dim=1)
    with pytest.raises(ValueError, match="built for batches of 8"):
        module([torch.rand(5, 4, 10)], [torch.rand(5, 6, 10)])
    with pytest.raises(ValueError, match="expected 1 student and 1 teacher maps"):
        module([torch.rand(8, 4, 10)] * 2, [torch.rand(8, 6, 10)])
    with pytest.raises(ValueError, match="layer pairs"):
        semckd_loss([[torch.rand(2, 1)]], [[torch.rand(2, 1)]], torch.ones(2, 1, 2) / 2)


def test_kd_term_by_hand_and_its_temperature_scaling():
    z_s, z_t = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]])  # p_t = (3/4, 1/4) at T = 1
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert math.isclose(kd_loss(z_s, z_t, 1.0).item(), kl, rel_tol=1e-6)
    # at T = 2 the teacher is softer: p_t = softmax(z_t / 2), and the term is multiplied by T^2 = 4
    p = torch.softmax(z_t / 2, 1)[0]
    kl2 = sum(pi * math.log(pi / 0.5) for pi in p.tolist())
    assert math.isclose(kd_loss(z_s, z_t, 2.0).item(), 4 * kl2, rel_tol=1e-6)


def _trained_attention(s, t, steps=300):
    torch.manual_seed(7)
    module = SemCKDAttention([s.shape[1]], [m.shape[1] for m in t], batch_size=s.shape[0], dim=1)
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = semckd_loss(*module([s], t))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return module.eval().attention([s], t)[:, 0].detach()


def test_attention_moves_to_the_teacher_layer_the_student_layer_can_match():
    # The paper's point (semantic calibration): with a fixed pairing a student layer can be tied to
    # a teacher layer it cannot match; SemCKD's learned weights move towards the one it can. One
    # teacher layer is a fixed function of the student map, the two others are noise unrelated to
    # it. Training the module alone on the SemCKD loss, every sample's weight goes to the matchable
    # layer, wherever it sits in the list (so it is not the initial weights' preference).
    g = torch.Generator().manual_seed(6)
    b = 16
    s = torch.rand(b, 4, 12, generator=g)
    match = torch.relu(torch.einsum("oc,bcl->bol", torch.randn(6, 4, generator=g), s))
    noise = [torch.rand(b, 6, 12, generator=g), torch.rand(b, 6, 12, generator=g)]
    for position in (1, 2):
        t = noise[:position] + [match] + noise[position:]
        after = _trained_attention(s, t)
        assert (after.argmax(-1) == position).all(), (position, after.mean(0))
        assert after[:, position].mean() > 0.6
