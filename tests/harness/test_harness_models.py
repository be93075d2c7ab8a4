"""Model families: one interface, feature shapes, and teacher/student pairs that line up stage by stage."""
from __future__ import annotations

import pytest
import torch

from kdatlas.harness import MODELS, build_model, pool

INPUT = {"mnist1d": (1, 40), "digits": (1, 16, 16)}

# (model, number of feature maps, spatial size of each map for the inputs above / 32x32 images)
EXPECTED = {
    "mnist1d_teacher": [(32, 40), (64, 20), (128, 10)],
    "mnist1d_student": [(8, 40), (16, 20), (32, 10)],
    "digits_teacher": [(32, 16, 16), (64, 8, 8), (128, 4, 4)],
    "digits_student": [(8, 16, 16), (16, 8, 8), (32, 4, 4)],
    "resnet8x4": [(32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8)],
    "resnet32x4": [(32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8)],
    "resnet20": [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)],
    "resnet56": [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)],
    "resnet110": [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)],
    "wrn_16_2": [(16, 32, 32), (32, 32, 32), (64, 16, 16), (128, 8, 8)],
    "wrn_40_2": [(16, 32, 32), (32, 32, 32), (64, 16, 16), (128, 8, 8)],
}
# parameter counts the literature quotes (CRD, Tian et al. 2019, Table 1 / RepDistiller), in millions
PARAMS_M = {"resnet8x4": 1.23, "resnet32x4": 7.43, "resnet20": 0.28, "resnet56": 0.86, "resnet110": 1.74,
            "wrn_16_2": 0.70, "wrn_40_2": 2.26}


def _input(name: str, batch: int = 2) -> torch.Tensor:
    shape = next((s for k, s in INPUT.items() if name.startswith(k)), (3, 32, 32))
    return torch.randn(batch, *shape)


def test_every_model_is_covered():
    assert set(MODELS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_interface_and_feature_shapes(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7).eval()
    x = _input(name)
    feats, logits = model.forward_features(x)
    assert [tuple(f.shape[1:]) for f in feats] == EXPECTED[name]
    assert model.feature_channels == [s[0] for s in EXPECTED[name]]
    assert logits.shape == (2, 7)
    torch.testing.assert_close(model(x), logits)
    emb = model.embedding(x)
    torch.testing.assert_close(emb, feats[-1].flatten(2).mean(-1))  # pooled last map
    torch.testing.assert_close(model.fc(emb), logits)               # ... is what the classifier sees
    if name in PARAMS_M:
        n = sum(p.numel() for p in build_model(name, num_classes=100).parameters()) / 1e6
        assert n == pytest.approx(PARAMS_M[name], abs=0.02)


@torch.no_grad()
def test_features_are_post_relu_except_pre_activation_wrn():
    torch.manual_seed(0)
    for name in ("mnist1d_student", "resnet8x4"):
        feats, _ = build_model(name, num_classes=10).forward_features(_input(name))
        assert all(float(f.min()) >= 0 for f in feats)
    feats, _ = build_model("wrn_16_2", num_classes=10).forward_features(_input("wrn_16_2"))
    assert float(feats[1].min()) < 0 and float(feats[-1].min()) >= 0  # raw block output; final BN-ReLU


@pytest.mark.parametrize("pair", [("mnist1d_teacher", "mnist1d_student"), ("digits_teacher", "digits_student"),
                                  ("resnet32x4", "resnet8x4"), ("wrn_40_2", "wrn_16_2"), ("resnet56", "resnet20")])
def test_teacher_student_pairs_match_spatially(pair):
    t, s = (build_model(n, num_classes=10) for n in pair)
    x = _input(pair[0])
    ft, _ = t.forward_features(x)
    fs, _ = s.forward_features(x)
    assert [f.shape[2:] for f in ft] == [f.shape[2:] for f in fs]
    assert sum(p.numel() for p in t.parameters()) > 3 * sum(p.numel() for p in s.parameters())


def test_pool_and_unknown_name():
    x = torch.arange(24.0).view(1, 2, 3, 4)
    torch.testing.assert_close(pool(x), torch.tensor([[5.5, 17.5]]))
    torch.testing.assert_close(pool(x[..., 0]), torch.tensor([[4.0, 16.0]]))  # (B, C, L)
    v = torch.randn(3, 5)
    assert pool(v) is v  # an MLP's (B, D) features are already pooled
    with pytest.raises(KeyError, match="known"):
        build_model("resnet9000")
