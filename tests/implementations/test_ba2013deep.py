"""Claims of Ba & Caruana (2013), mimic learning, checked on mimic_loss and LinearBottleneckMLP."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.implementations.ba2013deep import LinearBottleneckMLP, mimic_loss
from kdatlas.implementations.hinton2015distilling import kd_loss
from kdatlas.testing import Case, catchers, seeded


def _teacher(seed):  # BatchNorm: a train-mode teacher would also change its running statistics
    return seeded(lambda: nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5)), seed)


# The silent-bug catchers (kdatlas.testing) on the loss, with a bottleneck student as in Sec. 2.3.
test_catchers = catchers(Case(loss=lambda s, t, x, y: mimic_loss(s(x), t(x)),
                              student=lambda: LinearBottleneckMLP(6, 3, 16, 5), teacher=_teacher,
                              zero_when_equal=True))
test_catchers_linear = catchers(Case(loss=lambda s, t, x, y: mimic_loss(s(x), t(x)),
                                     student=lambda: nn.Linear(6, 5), teacher=_teacher, zero_when_equal=True))


def test_loss_by_hand():
    # Sec. 2.2: 1/(2T) sum_t ||g_t - z_t||^2 over T = 2 examples, written out.
    g = [[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]]
    z = [[0.0, 2.0, 1.0], [2.0, 1.0, 3.0]]
    expected = sum((a - b) ** 2 for gi, zi in zip(g, z) for a, b in zip(gi, zi)) / (2 * 2)
    assert math.isclose(mimic_loss(torch.tensor(g), torch.tensor(z)).item(), expected, rel_tol=1e-6)
    assert expected == 2.5  # (1 + 0 + 1 + 4 + 4 + 0) / 4


def test_gradient_is_the_logit_difference_over_the_batch():
    torch.manual_seed(0)
    g = torch.randn(5, 7, requires_grad=True)
    z = torch.randn(5, 7)
    mimic_loss(g, z).backward()
    assert torch.allclose(g.grad, (g.detach() - z) / 5, atol=1e-6)


def test_regresses_logits_not_probabilities_so_a_shift_of_the_teacher_matters():
    # Softmax KD cannot see a constant added to all teacher logits; logit regression can.
    torch.manual_seed(1)
    g, z = torch.randn(4, 6), torch.randn(4, 6)
    assert torch.isclose(kd_loss(g, z, 1.0), kd_loss(g, z + 3.0, 1.0), atol=1e-5)
    assert not torch.isclose(mimic_loss(g, z), mimic_loss(g, z + 3.0))
    # ...and it sees the teacher's logit scale, which softmax at T = 1 compresses once confident.
    assert mimic_loss(torch.zeros(1, 3), torch.tensor([[20.0, 0.0, 0.0]])) > \
        50 * mimic_loss(torch.zeros(1, 3), torch.tensor([[2.0, 0.0, 0.0]]))


def test_is_hintons_high_temperature_limit_divided_by_the_number_of_classes():
    # hinton2015distilling Sec. 2.1: zero-mean logits, T >> |logits|: T^2 KL -> ||g - z||^2 / (2N).
    torch.manual_seed(2)
    n = 10
    g = torch.randn(6, n, dtype=torch.float64)
    z = torch.randn(6, n, dtype=torch.float64)
    g, z = g - g.mean(1, keepdim=True), z - z.mean(1, keepdim=True)
    assert math.isclose(kd_loss(g, z, 1000.0).item(), mimic_loss(g, z).item() / n, rel_tol=1e-3)
    # ...not at T = 1 on logits of a few units (the test can fail).
    assert not math.isclose(kd_loss(4 * g, 4 * z, 1.0).item(), mimic_loss(4 * g, 4 * z).item() / n, rel_tol=0.3)


def test_bottleneck_is_a_rank_k_factorisation_with_k_times_H_plus_D_weights():
    # Sec. 2.3: W = U V. Any rank-k first layer is represented exactly, with k(H + D) weights.
    d, k, h, c = 12, 3, 20, 4
    net = LinearBottleneckMLP(d, k, h, c)
    assert net.V.weight.shape == (k, d) and net.U.weight.shape == (h, k) and net.V.bias is None
    assert net.V.weight.numel() + net.U.weight.numel() == k * (h + d) < h * d
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(h, k, generator=gen) @ torch.randn(k, d, generator=gen)  # a random rank-k W
    u, s, vh = torch.linalg.svd(w)
    with torch.no_grad():
        net.U.weight.copy_(u[:, :k] * s[:k])
        net.V.weight.copy_(vh[:k])
    x = torch.randn(5, 1, d, generator=gen)  # flattened by the net
    expected = net.beta(F.relu(x.flatten(1) @ w.T + net.U.bias))
    assert torch.allclose(net(x), expected, atol=1e-4)
    feats, logits = net.forward_features(x)
    assert feats[0].shape == (5, h, 1) and torch.equal(logits, net(x))


def test_shallow_mimic_beats_the_same_shallow_net_trained_on_the_labels():
    # The paper's claim on a toy: the teacher is a deep random net whose argmax is the true label;
    # a bottleneck MLP on 200 examples, once on the labels (CE), once on the teacher's logits.
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    deep = nn.Sequential(nn.Linear(10, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 5))
    x_train, x_test = torch.randn(200, 10, generator=gen), torch.randn(2000, 10, generator=gen)
    with torch.no_grad():
        z_train = 3 * deep(x_train)
        y_train, y_test = z_train.argmax(1), deep(x_test).argmax(1)

    def fit(loss_of_logits, seed):
        net = seeded(lambda: LinearBottleneckMLP(10, 8, 128, 5), seed)
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        for _ in range(400):
            opt.zero_grad()
            loss_of_logits(net(x_train)).backward()
            opt.step()
        with torch.no_grad():
            return (net(x_test).argmax(1) == y_test).float().mean().item()

    for seed in (1, 2, 3):
        on_labels = fit(lambda g: F.cross_entropy(g, y_train), seed)
        mimic = fit(lambda g: mimic_loss(g, z_train), seed)
        assert mimic > on_labels + 0.03, (seed, mimic, on_labels)
