"""The generic loop: Progress passed to the step, several models with their own optimisers, frozen
models kept in eval mode, schedulers stepped per batch, what the step returns logged per epoch."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kdatlas.harness import History, Progress, loop


def _loader(n_batches: int = 3, batch: int = 4):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_batches * batch, 2, generator=g)
    y = torch.randint(0, 2, (n_batches * batch,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch)


def test_progress_arithmetic():
    p = Progress(step=6, epoch=1, steps_per_epoch=4, epochs=5)
    assert p.total_steps == 20 and p.epoch_float == 1.5 and p.fraction == pytest.approx(0.3)
    assert Progress(0, 0, 0, 0).total_steps == 1  # never a division by zero


def test_two_peers_with_their_own_optimisers_and_a_frozen_model():
    """A DML-shaped step: two models that both learn, each from its own optimiser, plus a frozen one."""
    torch.manual_seed(0)
    a, b, frozen = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2)
    frozen.train()
    opt_a, opt_b = torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.SGD(b.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt_a, step_size=1, gamma=0.5)
    a0, b0, f0 = a.weight.clone(), b.weight.clone(), frozen.weight.clone()
    seen: list[Progress] = []
    modes: list[tuple[bool, bool, bool]] = []

    def step(batch, progress):
        x, y = batch
        seen.append(progress)
        modes.append((a.training, b.training, frozen.training))
        la = nn.functional.cross_entropy(a(x), y)
        lb = nn.functional.cross_entropy(b(x), y) + (a(x).detach() - b(x)).pow(2).mean()
        for opt, loss in ((opt_a, la), (opt_b, lb)):
            opt.zero_grad()
            loss.backward()
            opt.step()
        return {"peer_a": la, "peer_b": lb.item()}

    hist = loop(step, _loader(), epochs=2, models=[a, b], frozen=[frozen], schedulers=[sched], progress=False)
    assert [p.step for p in seen] == list(range(6))
    assert [p.epoch for p in seen] == [0, 0, 0, 1, 1, 1]
    assert {(p.steps_per_epoch, p.epochs) for p in seen} == {(3, 2)}
    assert set(modes) == {(True, True, False)}
    assert not torch.equal(a.weight, a0) and not torch.equal(b.weight, b0) and torch.equal(frozen.weight, f0)
    assert opt_a.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 6)  # one scheduler step per batch
    assert set(hist.terms) == {"peer_a", "peer_b"} and len(hist.train_loss) == 2
    assert hist.train_loss[0] == pytest.approx(hist.terms["peer_a"][0] + hist.terms["peer_b"][0])
    assert hist.wall_s > 0 and hist.test_acc == []


def test_evaluate_and_on_epoch_are_called_once_per_epoch():
    m = nn.Linear(2, 2)
    calls: list = []

    def step(batch, progress):
        return {"loss": torch.tensor(float(progress.epoch))}

    hist = loop(step, _loader(), epochs=3, models=[m], progress=False,
                evaluate=lambda: float(len(calls)), on_epoch=calls.append)
    assert calls == [0, 1, 2] and hist.test_acc == [1.0, 2.0, 3.0] and hist.train_loss == [0.0, 1.0, 2.0]


def test_history_extend_pads_terms_a_phase_did_not_log():
    first, second = History(train_loss=[1.0], terms={"hint": [1.0]}), History(train_loss=[2.0, 3.0], terms={"kd": [2.0, 3.0]})
    first.extend(second, "kd")
    assert first.train_loss == [1.0, 2.0, 3.0]
    assert first.terms["kd"][1:] == [2.0, 3.0] and math.isnan(first.terms["kd"][0])
    assert first.terms["hint"][0] == 1.0 and all(math.isnan(v) for v in first.terms["hint"][1:])
