r"""The generic training loop: any number of models, any number of optimisers, one step function.

``train`` (one student, an optional frozen teacher, one loss) is built on it; methods of other shapes
(peers that teach each other, a generator and a student, learned synthetic data and a learner,
alternating optimisers) call it directly with their own step::

    def step(batch, progress: Progress) -> dict[str, float | Tensor]:
        ...  # forward, losses, backward, optimiser steps: whatever the method does
        return {"loss_a": loss_a, "loss_b": loss_b}  # logged, averaged per epoch

    history = loop(step, loader, epochs=30, models=[peer_a, peer_b], schedulers=[sched_a, sched_b])

The step function owns its optimisers (it zeroes, backpropagates and steps them), so it can be a
torch-only function of the implementation file. The loop moves each batch to the device, counts
steps, passes :class:`Progress` (losses that schedule themselves read it: warm-ups, annealed
weights, alternation), steps the given learning-rate schedulers once per batch, puts ``models`` in
train mode and ``frozen`` models in eval mode, averages what the step returns per epoch, calls
``evaluate`` after each epoch and shows a tqdm bar.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["Progress", "History", "loop", "to_device"]


@dataclass(frozen=True)
class Progress:
    """Where training is: ``step`` counts batches from 0 within this call of the loop."""

    step: int
    epoch: int
    steps_per_epoch: int
    epochs: int

    @property
    def total_steps(self) -> int:
        return max(1, self.steps_per_epoch * self.epochs)

    @property
    def epoch_float(self) -> float:
        """Epochs done so far, fractional (0.5: half way through the first epoch)."""
        return self.step / max(1, self.steps_per_epoch)

    @property
    def fraction(self) -> float:
        """Share of the whole run done before this step, in [0, 1)."""
        return self.step / self.total_steps


@dataclass
class History:
    """What a run logged: per-epoch means of the step's outputs, the metric per epoch, the time."""

    train_loss: list[float] = field(default_factory=list)       # mean total loss per epoch
    terms: dict[str, list[float]] = field(default_factory=dict)  # named terms, mean per epoch
    test_acc: list[float] = field(default_factory=list)         # the evaluate() hook's value per epoch
    wall_s: float = 0.0
    phases: list[tuple[str, int]] = field(default_factory=list)  # (name, epochs) when concatenated

    def extend(self, other: "History", name: str) -> "History":
        """Append a later phase's history (FitNets: the hint phase, then the KD phase)."""
        n_before = len(self.train_loss)
        self.train_loss += other.train_loss
        for k, v in other.terms.items():  # a term absent from a phase is NaN there
            self.terms.setdefault(k, [float("nan")] * n_before).extend(v)
        for v in self.terms.values():
            v.extend([float("nan")] * (len(self.train_loss) - len(v)))
        self.test_acc += other.test_acc
        self.wall_s += other.wall_s
        self.phases.append((name, len(other.train_loss)))
        return self


def to_device(batch, device: torch.device):
    """Tensors (or tuples/lists of them) onto ``device``; anything else unchanged."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    return batch


def _is_main() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def loop(step: Callable[[object, Progress], dict], loader: Iterable, *, epochs: int,
         models: Iterable[nn.Module] = (), frozen: Iterable[nn.Module] = (),
         schedulers: Iterable = (), device: torch.device | str = "cpu",
         evaluate: Callable[[], float] | None = None, on_epoch: Callable[[int], None] | None = None,
         progress: bool = True, desc: str = "train") -> History:
    """Run ``epochs`` passes of ``step`` over ``loader``; see the module docstring.

    ``step(batch, progress)`` returns a dict of scalars; their sum (a key "loss" alone, if the step
    returns one) is the epoch's ``train_loss``, every key is logged in ``terms``. ``on_epoch(epoch)``
    runs before each epoch (a DistributedSampler's ``set_epoch``)."""
    from tqdm.auto import tqdm

    device = torch.device(device)
    models, frozen, schedulers = list(models), list(frozen), list(schedulers)
    for m in models:
        m.to(device).train()
    for m in frozen:
        m.to(device).eval()
    steps_per_epoch = len(loader)  # type: ignore[arg-type]
    start = time.perf_counter()
    hist = History()
    bar = tqdm(range(epochs), desc=desc, disable=not (progress and _is_main()), leave=False)
    n_step = 0
    for epoch in bar:
        if on_epoch is not None:
            on_epoch(epoch)
        sums: dict[str, float] = {}
        n = 0
        for batch in loader:
            out = step(to_device(batch, device), Progress(n_step, epoch, steps_per_epoch, epochs))
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach() if isinstance(v, Tensor) else v)
            for s in schedulers:
                s.step()
            n_step += 1
            n += 1
        means = {k: v / max(n, 1) for k, v in sums.items()}
        hist.train_loss.append(means["loss"] if set(means) == {"loss"} else sum(means.values()))
        for k, v in means.items():
            hist.terms.setdefault(k, []).append(v)
        post = {"loss": f"{hist.train_loss[-1]:.3f}"}
        if evaluate is not None:
            hist.test_acc.append(evaluate())
            post["test"] = f"{hist.test_acc[-1]:.1f}"
        bar.set_postfix(post)
    hist.wall_s = time.perf_counter() - start
    return hist
