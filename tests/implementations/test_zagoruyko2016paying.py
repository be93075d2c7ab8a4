"""Claims of Zagoruyko & Komodakis (2016), attention transfer, checked on attention_map / at_loss."""
import math

import pytest
import torch
from torch import nn

from kdatlas.implementations.zagoruyko2016paying import at_loss, attention_map
from kdatlas.testing import Case, catchers, seeded

# The silent-bug catchers (kdatlas.testing): conv feature maps of a 4-channel student and a
# 16-channel teacher (AT compares maps summed over channels, so the widths may differ).
test_catchers = catchers(Case(
    loss=lambda s, t, x, y: at_loss(s(x), t(x)),
    student=lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()),
    teacher=lambda seed: seeded(lambda: nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU()), seed),
    x=lambda: torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(0)),
    zero_when_equal=True))


def test_attention_map_by_hand():
    # One sample, 2 channels, 1x2 spatial: A_1 = [1, -2], A_2 = [2, 0].
    a = torch.tensor([[[[1.0, -2.0]], [[2.0, 0.0]]]])
    # sum_c |A_c|^2 = [1 + 4, 4 + 0] = [5, 4]; normalised by sqrt(41).
    expected = torch.tensor([[5.0, 4.0]]) / math.sqrt(41.0)
    assert torch.allclose(attention_map(a, p=2), expected)
    # p = 1: [3, 2] / sqrt(13)
    assert torch.allclose(attention_map(a, p=1), torch.tensor([[3.0, 2.0]]) / math.sqrt(13.0))


def test_loss_by_hand_is_mean_squared_difference_of_normalised_maps():
    s = torch.tensor([[[[1.0, 0.0]]]])  # map [1, 0]
    t = torch.tensor([[[[0.0, 3.0]]]])  # map [0, 9] -> [0, 1]
    # ((1-0)^2 + (0-1)^2) / 2 positions / 1 sample = 1
    assert math.isclose(at_loss(s, t).item(), 1.0, rel_tol=1e-6)


def test_follows_the_authors_code_not_the_papers_unsquared_norm():
    # Paper Eq. 2: || q_s - q_t ||_2 per sample (not squared). Code: mean of squares. We pin the code.
    torch.manual_seed(0)
    s, t = torch.randn(3, 4, 5, 5), torch.randn(3, 6, 5, 5)
    qs, qt = attention_map(s), attention_map(t)
    code_form = ((qs - qt) ** 2).mean()
    paper_form = (qs - qt).norm(dim=1).sum()
    assert torch.allclose(at_loss(s, t), code_form)
    assert not torch.isclose(at_loss(s, t), paper_form)
    # The code averages |A|^2 over channels, the paper sums them: same map after normalisation.
    mean_map = torch.nn.functional.normalize(s.pow(2).mean(1).flatten(1), dim=1)
    assert torch.allclose(attention_map(s), mean_map, atol=1e-6)


def test_invariant_to_channel_permutation():
    torch.manual_seed(1)
    a = torch.randn(2, 8, 4, 4)
    perm = torch.randperm(8)
    assert torch.allclose(attention_map(a), attention_map(a[:, perm]), atol=1e-6)
    assert at_loss(a[:, perm], a).item() < 1e-10


def test_invariant_to_number_of_channels():
    # A teacher 3x wider whose channels repeat the student's has the same attention map,
    # so a narrow student and a wide teacher compare without any adapter.
    torch.manual_seed(2)
    s = torch.randn(2, 5, 6, 6)
    t = s.repeat(1, 3, 1, 1)  # 15 channels
    assert torch.allclose(attention_map(s), attention_map(t), atol=1e-6)
    assert at_loss(s, t).item() < 1e-10
    assert at_loss(s, torch.randn(2, 15, 6, 6)).item() > 1e-4  # ...and not for any wide teacher


def test_scale_invariance_of_the_normalised_map():
    torch.manual_seed(3)
    a = torch.randn(2, 4, 5, 5)
    assert torch.allclose(attention_map(a), attention_map(7.5 * a), atol=1e-6)
    t = torch.randn(2, 9, 5, 5)
    assert torch.allclose(at_loss(a, t), at_loss(0.01 * a, 100.0 * t), atol=1e-6)
    assert torch.allclose(attention_map(a).norm(dim=1), torch.ones(2))


def test_higher_p_puts_more_weight_on_the_most_active_positions():
    # Sec. 3.1: increasing p puts more weight on the spatial locations with the highest activations.
    torch.manual_seed(4)
    a = torch.rand(1, 8, 6, 6) + torch.linspace(0, 1, 36).view(1, 1, 6, 6)
    peaks = [attention_map(a, p=p).max().item() for p in (1, 2, 4)]
    assert peaks[0] < peaks[1] < peaks[2]


def test_zero_for_identical_maps():
    torch.manual_seed(5)
    a = torch.randn(3, 4, 7, 7)
    assert at_loss(a.clone(), a).item() < 1e-12


def test_spatial_sizes_must_match():
    with pytest.raises(ValueError, match="spatial"):
        at_loss(torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4))
