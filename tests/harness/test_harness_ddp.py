"""DistributedDataParallel on CPU: two gloo processes on 127.0.0.1 end with the same weights."""
from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Head(nn.Module):
    """A loss with its own parameters (like a FitNets regressor): they must be synchronised too."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 16)

    def forward(self, s, t, y):
        return F.cross_entropy(s.logits, y) + F.mse_loss(self.proj(s.embedding), t.embedding)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from kdatlas.harness import ConvNet, cleanup_distributed, load_mnist1d, seed_everything, setup_distributed, train

    assert setup_distributed() == (rank, world)
    data = load_mnist1d(seed=0, num_samples=200)
    seed_everything(0)  # same initial weights on both ranks
    student, teacher, head = ConvNet(1, (4, 8)), ConvNet(1, (8, 16)), _Head()
    seen = []
    loss = lambda s, t, y, progress: (seen.append(s.index.clone()), head(s, t, y))[1]
    train(student, data.loaders(batch_size=16, seed=0)[0], epochs=2, loss_fn=loss, teacher=teacher,
          extra_modules=[head], progress=False, device="cpu")
    torch.save({"student": student.state_dict(), "head": head.state_dict(), "seen": torch.cat(seen)},
               f"{out}/rank{rank}.pt")
    cleanup_distributed()


def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    # the ranks trained on different halves of the data (so without synchronisation they would differ)
    assert set(r0["seen"][:80].tolist()).isdisjoint(r1["seen"][:80].tolist())
    assert len(r0["seen"]) == 2 * 80  # 160 training samples / 2 ranks, 2 epochs
    for part in ("student", "head"):
        for k, v in r0[part].items():
            assert torch.equal(v, r1[part][k]), f"{part}.{k} differs between ranks"
    torch.manual_seed(0)
    from kdatlas.harness import ConvNet
    assert not torch.equal(ConvNet(1, (4, 8)).fc.weight, r0["student"]["fc.weight"])  # it did train


def _crd_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from kdatlas.harness import ConvNet, cleanup_distributed, load_mnist1d, seed_everything, setup_distributed, train
    from kdatlas.implementations.tian2019contrastive import CRDLoss

    setup_distributed()
    data = load_mnist1d(seed=0, num_samples=200)
    seed_everything(0)
    student, teacher = ConvNet(1, (4, 8)), ConvNet(1, (8, 16))
    crd = CRDLoss(8, 16, num_data=len(data.train), feat_dim=8, num_negatives=16)
    bank0 = crd.bank_student.clone()
    seen = []
    loss = lambda s, t, y, progress: (seen.append(s.index.clone()), crd(s.embedding, t.embedding, s.index))[1]
    train(student, data.loaders(batch_size=16, seed=0)[0], epochs=1, loss_fn=loss, teacher=teacher,
          extra_modules=[crd], progress=False, device="cpu")
    torch.save({"bank_student": crd.bank_student, "bank_teacher": crd.bank_teacher, "bank0": bank0,
                "seen": torch.cat(seen)}, f"{out}/crd{rank}.pt")
    cleanup_distributed()


def test_crd_memory_banks_stay_identical_across_ranks(tmp_path):
    """Each rank sees half the data; CRD gathers the global batch before writing its banks."""
    mp.spawn(_crd_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"crd{r}.pt", weights_only=True) for r in (0, 1))
    assert set(r0["seen"].tolist()).isdisjoint(r1["seen"].tolist())
    for k in ("bank_student", "bank_teacher"):
        assert torch.equal(r0[k], r1[k]), f"{k} differs between ranks"
    # every training sample's row was written (by one rank's batch or the other's)
    written = (r0["bank_student"] != r0["bank0"]).any(1)
    assert written.all()
