"""Claims of Moonshine (Crowley et al., 2018), checked on CheapConv, cheapen and the AT loss."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.harness.models import build_model
from kdatlas.implementations import zagoruyko2016paying
from kdatlas.implementations.crowley2017moonshine import (CheapConv, at_loss, attention_map, cheapen,
                                                         conv_parameters, moonshine_loss)
from kdatlas.testing import Case, catchers, seeded


def _net():
    return nn.Sequential(nn.Conv1d(1, 5, 3, padding=1), nn.ReLU())


def _case_loss(s, t, x, y):
    f_s, f_t = s(x), t(x)
    return moonshine_loss(f_s.mean(-1), f_t.mean(-1), y, [f_s], [f_t])


# The silent-bug catchers: logits are the pooled maps of a one-layer conv net; "ce" is exempt.
test_catchers = catchers(Case(loss=_case_loss, student=_net, teacher=lambda seed: seeded(_net, seed),
                              zero_when_equal=True,
                              x=lambda: torch.randn(8, 1, 12, generator=torch.Generator().manual_seed(0))))


@pytest.mark.parametrize("dim, stride", [(1, 1), (1, 2), (2, 1), (2, 2)])
def test_cheap_block_has_the_full_convolutions_output_shape(dim, stride):
    conv = (nn.Conv1d if dim == 1 else nn.Conv2d)(16, 32, 3, stride=stride, padding=1, bias=False)
    cheap = CheapConv(16, 32, 3, stride, 1, bottleneck=2, group_size=8, dim=dim)
    x = torch.randn(2, 16, *([12] * dim))
    assert cheap(x).shape == conv(x).shape


def test_parameter_count_matches_the_formula_and_is_cheaper():
    # G(g)B(b) for C_in -> C_out with k taps: C_in C_out/b + (C_out/b) g k + (C_out/b) C_out conv weights.
    for c_in, c_out, b, g, k, dim in [(32, 64, 2, 8, 3, 1), (64, 64, 4, 4, 3, 2), (16, 32, 2, 16, 3, 2)]:
        cheap = CheapConv(c_in, c_out, k, 1, 1, bottleneck=b, group_size=g, dim=dim)
        mid, taps = c_out // b, k ** dim
        assert conv_parameters(cheap) == c_in * mid + mid * g * taps + mid * c_out
        assert cheap.conv.groups == mid // g  # g channels per group, as the code's G8B2
        assert conv_parameters(cheap) < c_in * c_out * taps
    b_only = CheapConv(32, 64, 3, 1, 1, bottleneck=2, group_size=None, dim=1)  # B(2): ungrouped
    assert b_only.conv.groups == 1 and conv_parameters(b_only) == 32 * 32 + 32 * 32 * 3 + 32 * 64


def test_bad_block_settings_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="group_size 6 must divide the bottleneck width 16"):
        CheapConv(8, 32, bottleneck=2, group_size=6)
    with pytest.raises(ValueError, match="bottleneck must be"):
        CheapConv(8, 4, bottleneck=8)
    with pytest.raises(ValueError, match="dim must be"):
        CheapConv(8, 8, dim=3)


@pytest.mark.parametrize("name, shape", [("mnist1d_teacher", (3, 1, 40)), ("digits_teacher", (3, 1, 16, 16))])
def test_cheapen_keeps_every_stage_shape_so_attention_needs_no_adapter(name, shape):
    torch.manual_seed(0)
    teacher = build_model(name, num_classes=10).eval()
    student = cheapen(teacher).eval()
    x = torch.randn(*shape)
    f_t, z_t = teacher.forward_features(x)
    f_s, z_s = student.forward_features(x)
    assert [f.shape for f in f_s] == [f.shape for f in f_t] and z_s.shape == z_t.shape
    assert conv_parameters(student) < 0.5 * conv_parameters(teacher)
    # the stem (1 input channel) stays a full convolution; every later 3-tap convolution is cheap
    full = [m for m in student.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d)) and m.kernel_size[0] == 3
            and m.groups == 1 and m.in_channels == 1]
    assert len(full) == 1
    n_cheap = sum(isinstance(m, CheapConv) for m in student.modules())
    n_teacher_convs = sum(isinstance(m, (nn.Conv1d, nn.Conv2d)) for m in teacher.modules())
    assert n_cheap == n_teacher_convs - 1


def test_cheapen_trains_from_scratch_and_leaves_the_teacher_alone():
    torch.manual_seed(1)
    teacher = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                            nn.Conv2d(16, 16, 3, padding=1), nn.Conv2d(16, 16, 1))
    with torch.no_grad():
        for p in teacher.parameters():
            p.fill_(0.5)  # "trained" weights
    before = [p.clone() for p in teacher.parameters()]
    student = cheapen(teacher, bottleneck=2, group_size=4)
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters()))
    assert isinstance(teacher[3], nn.Conv2d) and isinstance(student[3], CheapConv)
    assert isinstance(student[0], nn.Conv2d) and isinstance(student[4], nn.Conv2d)  # stem and 1x1 kept
    assert not torch.equal(student[0].weight, teacher[0].weight)  # re-initialised, not copied
    assert not torch.equal(student[4].weight, teacher[4].weight)
    assert all(p.requires_grad for p in student.parameters())
    assert isinstance(cheapen(teacher, keep_first=False)[0], CheapConv)


def test_attention_map_by_hand_and_its_invariances():
    a = torch.zeros(1, 2, 2)
    a[0, 0] = torch.tensor([3.0, 0.0])
    a[0, 1] = torch.tensor([1.0, 2.0])
    # mean_c A^2 = ((9 + 1) / 2, (0 + 4) / 2) = (5, 2); normalised by sqrt(29)
    assert torch.allclose(attention_map(a), torch.tensor([[5.0, 2.0]]) / math.sqrt(29))
    torch.manual_seed(2)
    x = torch.randn(3, 6, 4, 4)
    assert torch.allclose(attention_map(x).norm(dim=1), torch.ones(3))
    assert torch.allclose(attention_map(x[:, torch.randperm(6)]), attention_map(x), atol=1e-6)  # channel order
    assert torch.allclose(attention_map(7.0 * x), attention_map(x), atol=1e-6)  # scale


def test_at_loss_by_hand_and_equal_to_the_atlas_at_paper_file():
    s = torch.tensor([[[1.0, 0.0]]])  # a = (1, 0)
    t = torch.tensor([[[0.0, 1.0]]])  # a = (0, 1)
    assert math.isclose(at_loss(s, t).item(), (1 + 1) / 2, rel_tol=1e-6)  # mean over 2 positions
    torch.manual_seed(3)
    s, t = torch.randn(4, 8, 5, 5), torch.randn(4, 32, 5, 5)
    assert torch.allclose(at_loss(s, t), zagoruyko2016paying.at_loss(s, t, 2.0), atol=1e-7)
    assert at_loss(t, t).item() == 0.0
    with pytest.raises(ValueError, match="spatial size"):
        at_loss(torch.randn(4, 8, 5, 5), torch.randn(4, 8, 4, 4))


def test_loss_terms_weights_and_the_three_over_j_scaling():
    torch.manual_seed(4)
    z_s, z_t, y = torch.randn(6, 5), torch.randn(6, 5), torch.arange(6) % 5
    maps = [torch.randn(6, 4, 8) for _ in range(3)]
    t_maps = [torch.randn(6, 9, 8) for _ in range(3)]
    three = moonshine_loss(z_s, z_t, y, maps, t_maps, beta=1e3)
    assert set(three) == {"ce", "at"}  # alpha = 0: no KD term (the code's default)
    assert torch.allclose(three["ce"], F.cross_entropy(z_s, y))
    assert torch.allclose(three["at"], 1e3 * sum(at_loss(a, b) for a, b in zip(maps, t_maps)))  # 3 beta / 3
    one = moonshine_loss(z_s, z_t, y, maps[:1], t_maps[:1], beta=1e3)
    assert torch.allclose(one["at"], 3e3 * at_loss(maps[0], t_maps[0]))  # J = 1: 3 beta
    kd = moonshine_loss(z_s, z_t, y, maps, t_maps, beta=0.0, alpha=0.9, temperature=4.0)
    kl = F.kl_div(F.log_softmax(z_s / 4, 1), F.softmax(z_t / 4, 1), reduction="batchmean")
    assert torch.allclose(kd["ce"], 0.1 * F.cross_entropy(z_s, y))
    assert torch.allclose(kd["kd"], 0.9 * 2 * 16 * kl)
    with pytest.raises(ValueError, match="one teacher map per student map"):
        moonshine_loss(z_s, z_t, y, maps, t_maps[:2])


def test_the_kd_term_sends_no_gradient_to_the_teacher_logits():
    z_s, z_t = torch.randn(4, 5, requires_grad=True), torch.randn(4, 5, requires_grad=True)
    maps = [torch.rand(4, 3, 6)]
    moonshine_loss(z_s, z_t, torch.arange(4), maps, maps, beta=0.0, alpha=0.5)["kd"].backward()
    assert z_t.grad is None and z_s.grad.abs().sum() > 0


def test_attention_transfer_pulls_the_cheap_students_attention_to_the_teachers():
    # Trained on the AT term alone, the cheap student's attention maps approach the teacher's at
    # every stage on held-out inputs: what the method transfers, before any accuracy claim.
    torch.manual_seed(5)
    teacher = build_model("mnist1d_teacher", num_classes=10).eval().requires_grad_(False)
    student = cheapen(teacher)
    x, x_new = torch.randn(64, 1, 40), torch.randn(64, 1, 40)

    def gap(model):
        model.eval()
        with torch.no_grad():
            return sum(at_loss(a, b).item() for a, b in zip(model.forward_features(x_new)[0],
                                                           teacher.forward_features(x_new)[0]))

    before = gap(student)
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    t_maps = teacher.forward_features(x)[0]
    for _ in range(60):
        student.train()
        terms = moonshine_loss(*(torch.zeros(64, 10),) * 2, torch.zeros(64, dtype=torch.long),
                               student.forward_features(x)[0], t_maps)
        opt.zero_grad()
        terms["at"].backward()
        opt.step()
    assert gap(student) < 0.5 * before

