"""Claims of Chen, Goodfellow & Shlens (2016), Net2Net, checked on net2wider / net2deeper_*.

Net2Net has no loss and no teacher in the training loop: the teacher's knowledge moves through the
student's initial parameters. The shared loss catchers do not apply; their counterpart here is that
the transformations leave the source network untouched and copy, never share, its parameters."""
import pytest
import torch
from torch import nn

from kdatlas.implementations.chen2015net2net import (identity_batchnorm, net2deeper_conv, net2deeper_linear,
                                                     net2wider, wider_mapping)

DT = torch.float64  # exactness tests run in double precision
MUTANTS_NO_SWAP = ("Net2Net has no loss: net2wider(layer, next_layer, ...) takes two consecutive layers of one "
                   "network, not a student and a teacher; their roles are pinned by the hand case")


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(5, 3, dtype=DT), nn.Linear(3, 4, dtype=DT)


def test_mapping_is_the_identity_on_old_units_then_random():
    g = wider_mapping(3, 10, _gen())
    assert torch.equal(g[:3], torch.arange(3)) and g.shape == (10,)
    assert int(g.min()) >= 0 and int(g.max()) < 3
    with pytest.raises(ValueError, match="only widens"):
        wider_mapping(5, 4)


def test_hand_case_two_units_to_three():
    # n = 2 -> q = 3 with g = (0, 1, 0): unit 2 copies unit 0's incoming weights, and unit 0's
    # outgoing weights are halved on both of its copies; unit 1's are unchanged.
    a = nn.Linear(2, 2, bias=True, dtype=DT)
    b = nn.Linear(2, 1, bias=False, dtype=DT)
    with torch.no_grad():
        a.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        a.bias.copy_(torch.tensor([0.5, -0.5]))
        b.weight.copy_(torch.tensor([[6.0, 8.0]]))
    a2, b2, _ = net2wider(a, b, 3, mapping=torch.tensor([0, 1, 0]))
    assert torch.equal(a2.weight, torch.tensor([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]], dtype=DT))
    assert torch.equal(a2.bias, torch.tensor([0.5, -0.5, 0.5], dtype=DT))
    assert torch.equal(b2.weight, torch.tensor([[3.0, 8.0, 3.0]], dtype=DT))
    assert (a2.out_features, b2.in_features) == (3, 3)


@pytest.mark.parametrize("act", [torch.relu, torch.tanh, torch.sigmoid])
def test_widening_preserves_an_mlps_function_for_any_activation(act):
    a, b = _mlp()
    x = torch.randn(16, 5, dtype=DT)
    a2, b2, _ = net2wider(a, b, 11, generator=_gen(1))
    assert torch.allclose(b(act(a(x))), b2(act(a2(x))), atol=1e-12)


@pytest.mark.parametrize("dim", [1, 2])
def test_widening_preserves_conv_bn_relu_stacks_and_a_pooled_classifier(dim):
    conv, bnc = (nn.Conv1d, nn.BatchNorm1d) if dim == 1 else (nn.Conv2d, nn.BatchNorm2d)
    torch.manual_seed(2)
    c1, bn1, c2, bn2, fc = conv(2, 4, 3, padding=1, bias=False, dtype=DT), bnc(4, dtype=DT), \
        conv(4, 6, 3, padding=1, bias=False, dtype=DT), bnc(6, dtype=DT), nn.Linear(6, 3, dtype=DT)
    for bn in (bn1, bn2):  # trained-looking statistics and affine parameters
        with torch.no_grad():
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    x = torch.randn(8, 2, *([9] * dim), dtype=DT)

    def net(c1, bn1, c2, bn2, fc):
        h = torch.relu(bn2(c2(torch.relu(bn1(c1(x))))))
        return fc(h.flatten(2).mean(-1))

    for m in (bn1, bn2):
        m.eval()
    ref = net(c1, bn1, c2, bn2, fc)
    w1, w2, wb1 = net2wider(c1, c2, 9, bn=bn1, generator=_gen(3))       # widen the first conv
    v2, wfc, wb2 = net2wider(w2, fc, 13, bn=bn2, generator=_gen(4))      # then the second, into the classifier
    for m in (wb1, wb2):
        m.eval()
    assert torch.allclose(net(w1, wb1, v2, wb2, wfc), ref, atol=1e-12)
    assert (w1.out_channels, v2.in_channels, v2.out_channels, wfc.in_features) == (9, 9, 13, 13)
    assert wb1.running_mean.shape == (9,) and wb2.weight.shape == (13,)


def test_the_source_network_is_untouched_and_nothing_is_shared():
    a, b = _mlp()
    before = [p.clone() for p in (*a.parameters(), *b.parameters())]
    a2, b2, _ = net2wider(a, b, 6, generator=_gen())
    assert all(torch.equal(p, q) for p, q in zip(before, (*a.parameters(), *b.parameters())))
    ids = {id(p) for p in (*a.parameters(), *b.parameters())}
    assert not ids & {id(p) for p in (*a2.parameters(), *b2.parameters())}
    with torch.no_grad():
        a2.weight.add_(1.0)
    assert torch.equal(a.weight, before[0])


def test_training_the_grown_network_leaves_the_source_frozen():
    # The catchers' counterpart: the teacher (source) must not move when the student (grown net)
    # trains, batch-norm running statistics included.
    torch.manual_seed(11)
    c1, bn, c2 = nn.Conv1d(2, 3, 3, padding=1, bias=False), nn.BatchNorm1d(3), nn.Conv1d(3, 2, 3, padding=1)
    state = {(i, k): v.clone() for i, m in enumerate((c1, bn, c2)) for k, v in m.state_dict().items()}
    w1, w2, wb = net2wider(c1, c2, 5, bn=bn, noise_std=0.01, generator=_gen())
    deep = net2deeper_conv(5, 3, dim=1)
    params = [*w1.parameters(), *wb.parameters(), *deep.parameters(), *w2.parameters()]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(3):
        opt.zero_grad()
        w2(deep(torch.relu(wb.train()(w1(torch.randn(4, 2, 6)))))).pow(2).mean().backward()
        opt.step()
    after = {(i, k): v for i, m in enumerate((c1, bn, c2)) for k, v in m.state_dict().items()}
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert all(p.grad is None for p in (*c1.parameters(), *bn.parameters(), *c2.parameters()))


def test_without_noise_the_copies_stay_identical_and_noise_breaks_the_symmetry():
    # The paper's reason for noise: replicas of a unit receive identical gradients forever.
    a, b = _mlp(5)
    x, y = torch.randn(32, 5, dtype=DT), torch.randn(32, 4, dtype=DT)
    g = torch.tensor([0, 1, 2, 0, 0])

    def grads(noise):
        a2, b2, _ = net2wider(a, b, 5, noise_std=noise, generator=_gen(6), mapping=g)
        ((b2(torch.relu(a2(x))) - y) ** 2).mean().backward()
        return a2, b2

    a2, b2 = grads(0.0)
    assert torch.allclose(a2.weight.grad[0], a2.weight.grad[3]) and torch.allclose(a2.weight.grad[0], a2.weight.grad[4])
    a3, b3 = grads(0.05)
    assert not torch.allclose(a3.weight.grad[0], a3.weight.grad[3])
    # with noise the function moves, but only a little
    ref = b(torch.relu(a(x)))
    moved = (b3(torch.relu(a3(x))) - ref).abs().max()
    assert 0 < moved < 0.1 * ref.abs().max()


def test_deeper_identity_layers_preserve_relu_nets_but_not_tanh_ones():
    a, b = _mlp(7)
    x = torch.randn(16, 5, dtype=DT)
    mid = net2deeper_linear(3, dtype=DT)
    for act, exact in ((torch.relu, True), (torch.tanh, False)):
        ref = b(act(a(x)))
        deep = b(act(mid(act(a(x)))))  # phi(I phi(v)) = phi(v) holds for ReLU only
        assert torch.allclose(deep, ref, atol=1e-12) == exact


@pytest.mark.parametrize("dim", [1, 2])
def test_deeper_conv_with_identity_batchnorm_is_exact_in_eval_mode(dim):
    torch.manual_seed(8)
    h = torch.relu(torch.randn(6, 4, *([7] * dim), dtype=DT))  # a stage's ReLU output
    conv = net2deeper_conv(4, 3, dim=dim, dtype=DT)
    assert torch.equal(conv(h), h)
    axes = [0] + list(range(2, h.dim()))
    bn = identity_batchnorm(h.mean(axes), h.var(axes, unbiased=False), dim=dim).eval()
    assert torch.allclose(torch.relu(bn(conv(h))), h, atol=1e-12)
    bn.train()  # batch statistics: the same batch gives the same statistics up to the unbiased variance
    assert torch.allclose(torch.relu(bn(conv(h))), h, atol=1e-6)
    with pytest.raises(ValueError, match="odd"):
        net2deeper_conv(4, 2)


def test_a_widened_net_starts_where_the_small_one_stopped():
    # The paper's use: the wider student keeps the teacher's accuracy at step 0 and trains on from it,
    # while a fresh wide net starts at chance.
    g = torch.Generator().manual_seed(9)
    x = torch.randn(400, 5, generator=g, dtype=DT)
    y = (x[:, 0] * x[:, 1] > 0).long()
    torch.manual_seed(9)
    a, b = nn.Linear(5, 8, dtype=DT), nn.Linear(8, 2, dtype=DT)
    opt = torch.optim.Adam([*a.parameters(), *b.parameters()], lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(b(torch.relu(a(x))), y).backward()
        opt.step()
    acc = lambda f: (f(x).argmax(1) == y).double().mean().item()  # noqa: E731
    small = acc(lambda v: b(torch.relu(a(v))))
    a2, b2, _ = net2wider(a, b, 32, generator=_gen(10))
    assert small > 0.8 and acc(lambda v: b2(torch.relu(a2(v)))) == small
    fresh_a, fresh_b = nn.Linear(5, 32, dtype=DT), nn.Linear(32, 2, dtype=DT)
    assert acc(lambda v: fresh_b(torch.relu(fresh_a(v)))) < small - 0.2


@pytest.mark.parametrize("bad, match", [(dict(new_width=2), "only widens"), (dict(bn=nn.BatchNorm1d(7)), "bn must")])
def test_bad_input_is_refused(bad, match):
    a, b = _mlp()
    kwargs = dict(new_width=6) | bad
    with pytest.raises(ValueError, match=match):
        net2wider(a, b, **kwargs)
    with pytest.raises(ValueError, match="reads"):
        net2wider(a, nn.Linear(4, 2, dtype=DT), 6)
