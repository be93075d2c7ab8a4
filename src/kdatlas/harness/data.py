"""Datasets for the harness: MNIST-1D and the 8x8 digits (generated/bundled, offline) and CIFAR.

Every loader returns a :class:`Data` record whose datasets yield ``(x, y, index)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

__all__ = ["Data", "load_mnist1d", "load_digits_canvas", "load_cifar", "make_loader", "WithIndex"]


@dataclass
class Data:
    """A train/test pair of datasets whose items are ``(x, y, index)``."""

    train: Dataset
    test: Dataset
    num_classes: int
    input_shape: tuple[int, ...]
    name: str
    augmented: bool = False  # True: train inputs change on every pass (no cached teacher)

    def loaders(self, batch_size: int = 128, seed: int = 0, eval_batch_size: int = 512):
        """``(train_loader, test_loader)``; the train order depends only on ``seed``.

        A loader's generator advances as it is iterated: call ``loaders`` again for each training run
        that should replay the same batch order (e.g. the student alone, then the distilled one)."""
        return (make_loader(self.train, batch_size, shuffle=True, seed=seed),
                make_loader(self.test, eval_batch_size, shuffle=False))


def make_loader(dataset: Dataset, batch_size: int = 128, shuffle: bool = True, seed: int = 0,
                drop_last: bool = False) -> DataLoader:
    """A single-process DataLoader; shuffling uses its own generator seeded with ``seed``.

    The generator is attached even without shuffling: a DataLoader without one draws a seed from the
    global torch RNG every time it is iterated, so evaluating a model would change what the next
    ``torch.randn`` (say, a new layer's initialisation) returns.
    """
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=gen,
                      drop_last=drop_last, num_workers=0)


def _indexed(x: torch.Tensor, y: torch.Tensor) -> TensorDataset:
    return TensorDataset(x, y, torch.arange(len(y)))


def load_mnist1d(seed: int = 0, num_samples: int = 5000, train_split: float = 0.8,
                 n_train: int | None = None, noise_scale: float | None = None) -> Data:
    """MNIST-1D (Greydanus, 2020), generated offline; inputs ``(1, 40)`` float32, 10 classes.

    Uses ``mnist1d.data.make_dataset`` with the package's default arguments except ``seed``,
    ``num_samples`` and ``train_split`` (5,000 samples -> 4,000 train / 1,000 test by default).
    ``n_train`` keeps only the first ``n_train`` training sequences (a label budget; the test set is
    unchanged). ``noise_scale`` overrides the correlated-noise scale (default 0.25).
    The generator seeds NumPy's global RNG; its state is restored afterwards.
    """
    from mnist1d.data import get_dataset_args, make_dataset  # local: optional at import time

    args = get_dataset_args()
    args.seed, args.num_samples, args.train_split = seed, num_samples, train_split
    if noise_scale is not None:
        args.corr_noise_scale = noise_scale
    np_state = np.random.get_state()
    import random
    py_state = random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x = torch.tensor(d["x"], dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(d["y"], dtype=torch.long)
    if n_train is not None:
        x, y = x[:n_train], y[:n_train]
    xt = torch.tensor(d["x_test"], dtype=torch.float32).unsqueeze(1)
    yt = torch.tensor(d["y_test"], dtype=torch.long)
    return Data(_indexed(x, y), _indexed(xt, yt), 10, (1, x.shape[-1]), "mnist1d")


def load_digits_canvas(canvas: int = 8, seed: int = 0, test_fraction: float = 0.3,
                       n_train: int | None = None) -> Data:
    """scikit-learn's bundled 8x8 digits, each pasted at a random offset on a ``canvas`` square.

    Pixel values are scaled to [0, 1]. The train/test split and the offsets are drawn from a NumPy
    generator seeded with ``seed``; the same seed gives the same images. With ``canvas > 8`` the
    position of the digit varies, so models that pool over space have an advantage over MLPs.
    """
    from sklearn.datasets import load_digits

    if canvas < 8:
        raise ValueError(f"canvas must be >= 8, got {canvas}")
    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    n = len(labels)
    out = np.zeros((n, canvas, canvas), dtype=np.float32)
    offs = rng.integers(0, canvas - 8 + 1, size=(n, 2))
    for i, (r, c) in enumerate(offs):
        out[i, r:r + 8, c:c + 8] = images[i]
    perm = rng.permutation(n)
    n_test = int(round(n * test_fraction))
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    if n_train is not None:
        train_idx = train_idx[:n_train]
    x = torch.from_numpy(out).unsqueeze(1)
    y = torch.from_numpy(labels)
    return Data(_indexed(x[train_idx], y[train_idx]), _indexed(x[test_idx], y[test_idx]), 10,
                (1, canvas, canvas), f"digits{canvas}")


class WithIndex(Dataset):
    """Wraps a dataset of ``(x, y)`` so that it yields ``(x, y, index)``."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        x, y = self.dataset[i]
        return x, y, i


# Per-channel statistics of the CIFAR training sets (the values used throughout the KD literature).
_CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
}


def load_cifar(root: str | Path, name: str = "cifar100", augment: bool = True,
               download: bool = False) -> Data:
    """CIFAR-10/100 through torchvision: 4-pixel-padded random crop + horizontal flip for training.

    ``download=False`` by default: pass True on a machine with network access (Colab, a GPU box).
    """
    import torchvision
    from torchvision import transforms as T

    if name not in _CIFAR_STATS:
        raise ValueError(f"name must be one of {sorted(_CIFAR_STATS)}, got {name!r}")
    mean, std = _CIFAR_STATS[name]
    norm = [T.ToTensor(), T.Normalize(mean, std)]
    train_tf = T.Compose(([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment else []) + norm)
    cls = torchvision.datasets.CIFAR100 if name == "cifar100" else torchvision.datasets.CIFAR10
    train = cls(str(root), train=True, transform=train_tf, download=download)
    test = cls(str(root), train=False, transform=T.Compose(norm), download=download)
    return Data(WithIndex(train), WithIndex(test), 100 if name == "cifar100" else 10, (3, 32, 32),
                name, augmented=augment)
