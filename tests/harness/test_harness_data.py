"""Data loaders: seeded, offline, and the real CIFAR code path on a tiny folder written here."""
from __future__ import annotations

import hashlib
import pickle
import random
import socket

import numpy as np
import pytest
import torch

from kdatlas.harness import load_cifar, load_digits_canvas, load_mnist1d, make_loader


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a data loader tried to open a network connection")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_mnist1d_is_generated_offline_and_seeded(no_network, monkeypatch):
    import mnist1d.data

    monkeypatch.setattr(mnist1d.data, "get_dataset", lambda *a, **k: pytest.fail("get_dataset downloads"))
    a = load_mnist1d(seed=3, num_samples=500)
    b = load_mnist1d(seed=3, num_samples=500)
    c = load_mnist1d(seed=4, num_samples=500)
    xa, ya, ia = a.train.tensors
    assert xa.shape == (400, 1, 40) and xa.dtype == torch.float32 and len(a.test) == 100
    assert torch.equal(xa, b.train.tensors[0]) and torch.equal(ya, b.train.tensors[1])
    assert not torch.equal(xa, c.train.tensors[0])
    assert torch.equal(ia, torch.arange(400))  # items are (x, y, index)
    assert sorted(set(ya.tolist())) == list(range(10)) and a.num_classes == 10


def test_mnist1d_label_budget_and_global_rng_untouched():
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(123)
    full = load_mnist1d(seed=0, num_samples=500)
    assert (np.random.rand(), random.random()) == (expected_np, expected_py)  # state restored
    small = load_mnist1d(seed=0, num_samples=500, n_train=50)
    assert len(small.train) == 50 and len(small.test) == len(full.test)
    assert torch.equal(small.train.tensors[0], full.train.tensors[0][:50])


def test_digits_canvas_places_each_digit_once_at_seeded_offsets(no_network):
    from sklearn.datasets import load_digits

    d = load_digits_canvas(canvas=16, seed=1)
    again = load_digits_canvas(canvas=16, seed=1)
    other = load_digits_canvas(canvas=16, seed=2)
    x, y, _ = d.train.tensors
    assert x.shape[1:] == (1, 16, 16) and len(d.train) + len(d.test) == 1797
    assert torch.equal(x, again.train.tensors[0]) and not torch.equal(x, other.train.tensors[0])
    # the pixel mass of every image is that of some original digit (nothing cut off or duplicated)
    originals = {round(float(im.sum()) / 16, 4) for im in load_digits().images}
    assert all(round(float(im.sum()), 4) in originals for im in x[:50])
    # digits are not all at the same place: the bounding-box corners vary
    rows = [int(torch.nonzero(im[0].sum(1))[0]) for im in x[:100]]
    assert len(set(rows)) > 3
    plain = load_digits_canvas(canvas=8, seed=1)
    assert plain.train.tensors[0].shape[1:] == (1, 8, 8) and float(plain.train.tensors[0].max()) <= 1.0


def test_make_loader_order_depends_only_on_seed():
    ds = load_mnist1d(seed=0, num_samples=500).train
    order = lambda s: torch.cat([b[2] for b in make_loader(ds, 64, seed=s)])
    assert torch.equal(order(5), order(5)) and not torch.equal(order(5), order(6))
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    list(make_loader(ds, 64, shuffle=False))  # iterating must not consume the global RNG
    assert torch.equal(torch.rand(1), expected)


def _write_cifar100(root, n_train=6, n_test=4):
    """A CIFAR-100-format folder (python pickles, uint8 rows of 3072) with matching md5 sums."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "fine_labels": [i % 100 for i in range(n)],
                         "coarse_labels": [0] * n}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, f)
    md5 = {n: hashlib.md5((folder / n).read_bytes()).hexdigest() for n in ("train", "test", "meta")}
    return folder, md5


def test_cifar_loading_code_on_a_tiny_folder(tmp_path, monkeypatch, no_network):
    import torchvision

    folder, md5 = _write_cifar100(tmp_path)
    cls = torchvision.datasets.CIFAR100
    monkeypatch.setattr(cls, "train_list", [["train", md5["train"]]])
    monkeypatch.setattr(cls, "test_list", [["test", md5["test"]]])
    monkeypatch.setattr(cls, "meta", dict(cls.meta, md5=md5["meta"]))
    data = load_cifar(tmp_path, "cifar100", augment=True)
    assert (len(data.train), len(data.test), data.num_classes) == (6, 4, 100)
    assert data.augmented and data.input_shape == (3, 32, 32)
    x, y, i = data.train[3]
    assert x.shape == (3, 32, 32) and y == 3 and i == 3
    # test images are normalised but not augmented: pixel (0,0) of channel 0 is known
    with open(folder / "test", "rb") as f:
        raw = pickle.load(f)["data"][1].reshape(3, 32, 32)
    xt, _, _ = data.test[1]
    assert xt[0, 0, 0].item() == pytest.approx((raw[0, 0, 0] / 255 - 0.5071) / 0.2675, abs=1e-5)
    assert not load_cifar(tmp_path, "cifar100", augment=False).augmented


def test_cifar_never_downloads_unless_asked(tmp_path, no_network):
    with pytest.raises(RuntimeError, match="not found"):
        load_cifar(tmp_path, "cifar10")
