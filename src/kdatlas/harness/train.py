r"""One small training loop for students, with or without a frozen teacher.

``train(student, loader, loss_fn=..., teacher=...)`` runs ``epochs`` passes of SGD (or AdamW) with a
cosine learning rate. The distillation loss is any callable::

    loss_fn(student_out: Outputs, teacher_out: Outputs | None, targets: Tensor, progress: Progress)
        -> Tensor | dict[str, Tensor]

where :class:`Outputs` carries ``logits``, ``features`` (the model's list of stage outputs),
``embedding`` (pooled ``features[-1]``) and ``index`` (the samples' dataset indices), and
:class:`~kdatlas.harness.loop.Progress` says where training is (step, epoch: warm-ups read it). The
loop itself is :func:`kdatlas.harness.loop.loop`. The teacher is
kept in eval mode, run under ``torch.no_grad()`` and never optimised; a loss that is an ``nn.Module``
brings its own parameters to the optimizer. Under ``torchrun`` (``setup_distributed()`` first) the
student is wrapped in DistributedDataParallel.
"""
from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ..atomic import atomic_write
from .data import make_loader
from .loop import History, Progress, loop
from .models import pool

__all__ = ["Outputs", "History", "TeacherCache", "seed_everything", "default_device", "model_outputs",
           "train", "evaluate", "save_checkpoint", "load_checkpoint", "setup_distributed",
           "cleanup_distributed"]


class Outputs(NamedTuple):
    """What a model produced for one batch (the student's carries gradients; the teacher's does not)."""

    logits: Tensor                   # (B, num_classes)
    features: list                   # stage outputs; features[-1] is the last map before pooling
    embedding: Tensor                # (B, D) = pool(features[-1]), the input of model.fc
    index: Tensor | None = None      # (B,) dataset indices of the samples, when the loader yields them


LossFn = Callable[[Outputs, "Outputs | None", Tensor, Progress], "Tensor | dict[str, Tensor]"]


# --------------------------------------------------------------------------- set-up
def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (all devices); optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # = torch.use_deterministic_algorithms(True, warn_only=True), minus its import of
        # torch._inductor (3-4 s per process, measured; nothing here compiles)
        torch.set_deterministic_debug_mode("warn")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def default_device() -> torch.device:
    """cuda (this process's ``LOCAL_RANK`` under torchrun) if present, else mps, else cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def setup_distributed() -> tuple[int, int]:
    """Initialise the process group when launched by torchrun (``WORLD_SIZE`` > 1); returns
    ``(rank, world_size)`` and is a no-op returning ``(0, 1)`` otherwise. gloo on CPU, nccl on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


# --------------------------------------------------------------------------- outputs and teacher cache
def _unpack(batch) -> tuple[Tensor, Tensor, Tensor | None]:
    if len(batch) == 3:
        return batch[0], batch[1], batch[2]
    return batch[0], batch[1], None


def model_outputs(model: nn.Module, x: Tensor, index: Tensor | None = None) -> Outputs:
    """Run ``model.forward_features`` and package the result as :class:`Outputs`."""
    feats, logits = model.forward_features(x)
    return Outputs(logits, feats, pool(feats[-1]), index)


class TeacherCache:
    """The teacher's outputs for every sample of a dataset, computed once and looked up by index.

    Valid only when the inputs do not change from one epoch to the next (no random augmentation).
    ``features`` selects which stage indices to store (others are ``None`` in the looked-up lists).
    """

    def __init__(self, logits: Tensor, features: list, embedding: Tensor):
        self.logits, self.features, self.embedding = logits, features, embedding

    @classmethod
    @torch.no_grad()
    def build(cls, teacher: nn.Module, dataset: Dataset, batch_size: int = 512,
              device: torch.device | str | None = None, features: Iterable[int] | None = None) -> "TeacherCache":
        device = torch.device(device) if device is not None else default_device()
        was_training = teacher.training
        teacher.to(device).eval()
        logits, embs, feats = [], [], None
        for batch in make_loader(dataset, batch_size, shuffle=False):
            x, _, idx = _unpack(batch)
            if idx is not None and len(logits) == 0 and int(idx[0]) != 0:
                raise ValueError("dataset indices must run 0..N-1 in order")
            out = model_outputs(teacher, x.to(device))
            keep = set(range(len(out.features))) if features is None else set(features)
            if feats is None:
                feats = [[] if i in keep else None for i in range(len(out.features))]
            for i, f in enumerate(out.features):
                if feats[i] is not None:
                    feats[i].append(f.cpu())
            logits.append(out.logits.cpu())
            embs.append(out.embedding.cpu())
        teacher.train(was_training)
        return cls(torch.cat(logits), [None if f is None else torch.cat(f) for f in feats], torch.cat(embs))

    def lookup(self, index: Tensor, device: torch.device) -> Outputs:
        i = index.cpu()
        feats = [None if f is None else f[i].to(device) for f in self.features]
        return Outputs(self.logits[i].to(device), feats, self.embedding[i].to(device), index)


class _AsFeatures(nn.Module):
    """Makes ``forward`` return ``forward_features`` so DistributedDataParallel sees the real pass."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor):
        return self.model.forward_features(x)


# --------------------------------------------------------------------------- the loop
def make_optimizer(name: str, params: list, lr: float, weight_decay: float, momentum: float = 0.9):
    """The optimiser ``train`` builds: "sgd" (momentum, Nesterov when momentum > 0) or "adamw"; for
    ``run=`` recipes that step several models themselves, so each gets what a student alone gets."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {name!r}")


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule ``train`` uses: the learning rate times 0.5 (1 + cos(pi step / total_steps)),
    stepped once per optimiser step, flat at 0 after ``total_steps``."""
    total = max(1, int(total_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, total) / total)))


def train(student: nn.Module, train_loader: DataLoader, *, epochs: int = 10, lr: float = 0.05,
          optimizer: str = "sgd", weight_decay: float = 5e-4, momentum: float = 0.9,
          loss_fn: LossFn | None = None, teacher: nn.Module | TeacherCache | None = None,
          cache_teacher: bool = False, params: Iterable[nn.Parameter] | None = None,
          extra_modules: Iterable[nn.Module] = (), test_loader: DataLoader | None = None,
          metric: Callable | None = None, device: torch.device | str | None = None, progress: bool = True,
          desc: str = "train") -> History:
    """Train ``student`` in place; see the module docstring for the loss signature.

    ``test_loader``: scored after every epoch by ``metric(model, loader, device)`` (default
    :func:`evaluate`, top-1 accuracy in percent) into ``History.test_acc``.
    ``loss_fn=None``: cross-entropy on the logits. Parameters optimised: ``params`` if given, else the
    student's plus those of ``loss_fn`` (if an ``nn.Module``) and of ``extra_modules``. Under DDP the
    loader's batch size is per process.
    """
    device = torch.device(device) if device is not None else default_device()
    modules = ([loss_fn] if isinstance(loss_fn, nn.Module) else []) + list(extra_modules)

    frozen = []
    if isinstance(teacher, nn.Module):
        if teacher is student:
            raise ValueError("teacher and student are the same module")
        if cache_teacher:
            teacher = TeacherCache.build(teacher, train_loader.dataset, device=device)
        else:
            frozen = [teacher]
    elif cache_teacher and teacher is None:
        raise ValueError("cache_teacher=True needs a teacher")

    if params is None:
        params = list(student.parameters()) + [p for m in modules for p in m.parameters()]
    params = [p for p in params if p.requires_grad]
    if isinstance(teacher, nn.Module):
        teacher_ids = {id(p) for p in teacher.parameters()}
        if any(id(p) in teacher_ids for p in params):
            raise ValueError("teacher parameters must not be optimised")
    student.to(device)
    for m in modules:
        m.to(device)
    opt = make_optimizer(optimizer, params, lr, weight_decay, momentum)

    # Distributed: shard the data, wrap the student, average the loss modules' gradients by hand.
    net: nn.Module = _AsFeatures(student)
    loader, sampler, world = train_loader, None, _world()
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        from torch.utils.data.distributed import DistributedSampler

        gen = getattr(train_loader, "generator", None)
        seed = gen.initial_seed() if gen is not None else 0
        sampler = DistributedSampler(train_loader.dataset, shuffle=True, seed=seed,
                                     drop_last=train_loader.drop_last)
        loader = DataLoader(train_loader.dataset, batch_size=train_loader.batch_size, sampler=sampler,
                            drop_last=train_loader.drop_last, num_workers=0,
                            generator=torch.Generator().manual_seed(seed))  # keeps the global RNG untouched
        net = DDP(net, device_ids=[device.index] if device.type == "cuda" else None,
                  find_unused_parameters=True)
    student_ids = {id(p) for p in student.parameters()}
    synced_by_hand = [p for p in params if id(p) not in student_ids]

    total_steps = max(1, epochs * len(loader))
    sched = cosine_schedule(opt, total_steps)

    def step(batch, progress: Progress) -> dict:
        x, y, idx = _unpack(batch)
        feats, logits = net(x)
        s_out = Outputs(logits, feats, pool(feats[-1]), idx)
        t_out = None
        if isinstance(teacher, TeacherCache):
            if idx is None:
                raise ValueError("the cached teacher needs a loader that yields (x, y, index)")
            t_out = teacher.lookup(idx, device)
        elif teacher is not None:
            with torch.no_grad():
                t_out = model_outputs(teacher, x, idx)
        loss = {"ce": F.cross_entropy(logits, y)} if loss_fn is None else loss_fn(s_out, t_out, y, progress)
        terms = loss if isinstance(loss, dict) else {"loss": loss}
        opt.zero_grad(set_to_none=True)
        sum(terms.values()).backward()
        if world > 1:
            for p in synced_by_hand:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= world
        opt.step()
        return terms

    hist = loop(step, loader, epochs=epochs, models=[student, *modules], frozen=frozen, schedulers=[sched],
                device=device, evaluate=(lambda: (metric or evaluate)(student, test_loader, device)) if test_loader else None,
                on_epoch=sampler.set_epoch if sampler is not None else None, progress=progress, desc=desc)
    if world > 1:  # BN running statistics drift per rank after the last broadcast: take rank 0's
        for b in student.buffers():
            dist.broadcast(b, src=0)
    return hist


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device | str | None = None) -> float:
    """Top-1 accuracy in percent; the model's train/eval mode is restored afterwards."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.to(device).eval()
    correct = count = 0
    for batch in loader:
        x, y, _ = _unpack(batch)
        pred = model(x.to(device)).argmax(-1)
        correct += int((pred == y.to(device)).sum())
        count += len(y)
    model.train(was_training)
    return 100.0 * correct / max(count, 1)


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(module: nn.Module, path: str | Path) -> None:
    """Write ``module.state_dict()`` atomically (temporary file in the same folder + os.replace)."""
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(module: nn.Module, path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """Load a state dict written by :func:`save_checkpoint` (``weights_only=True``: no pickled code)."""
    module.load_state_dict(torch.load(path, map_location=device, weights_only=True))
    return module
