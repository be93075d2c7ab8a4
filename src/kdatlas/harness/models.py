r"""Teacher and student families with one interface.

``model(x)`` -> logits; ``model.forward_features(x)`` -> ``(features, logits)`` where ``features`` is
the list of stage outputs (after their ReLU) and ``features[-1]`` is the last map before global
average pooling; ``model.embedding(x)`` -> the pooled penultimate vector fed to ``model.fc``.

The CIFAR networks follow the sizes used by CRD (Tian et al., 2019) and later KD benchmarks:
``resnetN`` has 3 stages of (N-2)/6 basic blocks with widths 16/32/64 (``x4``: 64/128/256, stem 32);
``wrn_D_K`` is a pre-activation wide ResNet with (D-4)/6 blocks per stage and widths 16K/32K/64K.
Features are post-ReLU stage outputs; some papers (and their code) distil pre-ReLU maps instead:
that choice belongs to the caller, which is why this module keeps the simpler convention.
"""
from __future__ import annotations

from typing import Callable

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvNet", "ResNet", "WideResNet", "pool", "mnist1d_teacher", "mnist1d_student",
           "digits_teacher", "digits_student", "resnet8x4", "resnet32x4", "resnet20", "resnet56",
           "resnet110", "wrn_16_2", "wrn_40_2", "MODELS", "build_model"]


def pool(feature_map: Tensor) -> Tensor:
    """Global average pooling over every dimension after the channels: ``(B, C, ...) -> (B, C)``
    (a ``(B, C)`` input, e.g. an MLP's features, is returned as it is)."""
    return feature_map if feature_map.dim() == 2 else feature_map.flatten(2).mean(-1)


class _FeatureModel(nn.Module):
    """Shared plumbing: subclasses define ``stages`` (nn.ModuleList), ``fc`` and ``feature_channels``."""

    stages: nn.ModuleList
    fc: nn.Linear

    def _final(self, h: Tensor) -> Tensor:  # hook for models whose last map needs a BN-ReLU (WRN)
        return h

    def forward_features(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        feats = []
        h = x
        for i, stage in enumerate(self.stages):
            h = stage(h)
            if i == len(self.stages) - 1:
                h = self._final(h)
            feats.append(h)
        return feats, self.fc(pool(h))

    def embedding(self, x: Tensor) -> Tensor:
        return pool(self.forward_features(x)[0][-1])

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)[1]


# --------------------------------------------------------------------------- small ConvNets
def _conv(dim: int, cin: int, cout: int, stride: int) -> nn.Module:
    conv, bn = (nn.Conv1d, nn.BatchNorm1d) if dim == 1 else (nn.Conv2d, nn.BatchNorm2d)
    return nn.Sequential(conv(cin, cout, 3, stride, 1, bias=False), bn(cout), nn.ReLU(inplace=True))


class ConvNet(_FeatureModel):
    """conv-BN-ReLU stages (``blocks`` convs each, stride 2 at the start of every stage after the
    first), global average pooling, linear layer. ``dim=1`` for sequences, ``dim=2`` for images."""

    def __init__(self, dim: int, channels: tuple[int, ...], num_classes: int = 10,
                 in_channels: int = 1, blocks: int = 1):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {dim}")
        stages, cin = [], in_channels
        for i, c in enumerate(channels):
            layers = [_conv(dim, cin, c, 1 if i == 0 else 2)]
            layers += [_conv(dim, c, c, 1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(cin, num_classes)
        self.feature_channels = list(channels)


def mnist1d_teacher(num_classes: int = 10) -> ConvNet:
    """1-D teacher for MNIST-1D: widths 32/64/128, 2 convs per stage (~0.1 M parameters)."""
    return ConvNet(1, (32, 64, 128), num_classes, blocks=2)


def mnist1d_student(num_classes: int = 10) -> ConvNet:
    """1-D student: widths 8/16/32, 1 conv per stage (~2.4 k parameters), same stage lengths."""
    return ConvNet(1, (8, 16, 32), num_classes, blocks=1)


def digits_teacher(num_classes: int = 10) -> ConvNet:
    """2-D teacher for the digits canvas: widths 32/64/128, 2 convs per stage."""
    return ConvNet(2, (32, 64, 128), num_classes, blocks=2)


def digits_student(num_classes: int = 10) -> ConvNet:
    """2-D student for the digits canvas: widths 8/16/32, 2 convs per stage (18,482 parameters).

    Narrower or shallower students (4/8/16 or 8/16/32 with one conv per stage) only memorise the 300
    canvases: 100% training accuracy, 31-54% test (see kdatlas.harness.tasks)."""
    return ConvNet(2, (8, 16, 32), num_classes, blocks=2)


# --------------------------------------------------------------------------- CIFAR ResNets
class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(_FeatureModel):
    """CIFAR ResNet: stem conv (``widths[0]``) then 3 stages of ``n`` basic blocks (``widths[1:]``)."""

    def __init__(self, depth: int, widths: tuple[int, int, int, int], num_classes: int = 100):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                             nn.ReLU(inplace=True))
        stages, cin = [stem], widths[0]
        for i, c in enumerate(widths[1:]):
            blocks = [_BasicBlock(cin if j == 0 else c, c, (1 if i == 0 else 2) if j == 0 else 1)
                      for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(cin, num_classes)
        self.feature_channels = list(widths)
        _kaiming(self)


class _PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None if (stride == 1 and cin == cout) else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        o = F.relu(self.bn1(x))
        y = self.conv1(o)
        y = self.conv2(F.relu(self.bn2(y)))
        return y + (x if self.shortcut is None else self.shortcut(o))


class WideResNet(_FeatureModel):
    """WRN-depth-k (Zagoruyko & Komodakis, 2016), pre-activation, no dropout. Intermediate features are
    raw block outputs (pre-activation networks have no ReLU there); the last one gets the final BN-ReLU."""

    def __init__(self, depth: int, k: int, num_classes: int = 100):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * k, 32 * k, 64 * k)
        stages, cin = [nn.Conv2d(3, 16, 3, 1, 1, bias=False)], 16
        for i, c in enumerate(widths[1:]):
            stages.append(nn.Sequential(*[_PreActBlock(cin if j == 0 else c, c, (1 if i == 0 else 2) if j == 0 else 1)
                                          for j in range(n)]))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)
        self.feature_channels = list(widths)
        _kaiming(self)

    def _final(self, h: Tensor) -> Tensor:
        return F.relu(self.bn(h))


def _kaiming(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def resnet8x4(num_classes: int = 100) -> ResNet:
    return ResNet(8, (32, 64, 128, 256), num_classes)


def resnet32x4(num_classes: int = 100) -> ResNet:
    return ResNet(32, (32, 64, 128, 256), num_classes)


def resnet20(num_classes: int = 100) -> ResNet:
    return ResNet(20, (16, 16, 32, 64), num_classes)


def resnet56(num_classes: int = 100) -> ResNet:
    return ResNet(56, (16, 16, 32, 64), num_classes)


def resnet110(num_classes: int = 100) -> ResNet:
    return ResNet(110, (16, 16, 32, 64), num_classes)


def wrn_16_2(num_classes: int = 100) -> WideResNet:
    return WideResNet(16, 2, num_classes)


def wrn_40_2(num_classes: int = 100) -> WideResNet:
    return WideResNet(40, 2, num_classes)


MODELS: dict[str, Callable[..., nn.Module]] = {
    f.__name__: f for f in (mnist1d_teacher, mnist1d_student, digits_teacher, digits_student, resnet8x4,
                            resnet32x4, resnet20, resnet56, resnet110, wrn_16_2, wrn_40_2)
}


def build_model(name: str, **kwargs) -> nn.Module:
    """``MODELS[name](**kwargs)`` with a helpful error for unknown names."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)
