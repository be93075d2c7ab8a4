"""Rocket Launching: how the harness runs implementations/zhou2017rocket.py.

No pre-trained teacher (the task's cached teacher is not used): the light net is the benchmark's
student of this seed (the baseline's initial weights), and the booster is the task's *teacher
architecture* with its lowest ``shared_stages`` stages replaced by the student's own (bottom
sharing, the paper's layout (a)): W_S = the student's stages[:k], W_L = the student's upper stages and
fc, W_B = the teacher architecture's upper stages and fc, from fresh initial weights (seed + 3000).
Where the teacher's first unshared stage expects another width than the student's stage k-1 gives,
its first convolution is rebuilt with the student's width (the small ConvNets of both tasks).

Both are trained together on the student's training set, one optimiser over all parameters (the
task's optimiser, learning rate, weight decay and cosine schedule, as ``train`` gives a student alone),
for the student's epochs, with Eq. 1 and the gradient block (``impl.rocket_step``). The benchmark
scores the student: the deployed light net, with exactly the student alone's parameters.

Settings: ``hint_weight`` = 0.03 (the authors' README, gamma of every rocket command);
``gradient_block`` = True (the paper's method; False is its Table 2 ablation); ``shared_stages`` = 1:
the lowest stage is shared (the paper shares "lower layers"; one stage, fixed before any run, keeps
two of the student's three stages its own; not tuned).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdatlas.harness.loop import loop
from kdatlas.harness.models import ConvNet, WideResNet, pool
from kdatlas.harness.train import cosine_schedule, make_optimizer  # what train() gives a student alone
from kdatlas.implementations import zhou2017rocket as impl
from kdatlas.recipes import Context, Recipe

BOOSTER_SEED_OFFSET = 3000  # the booster's own layers: initial weights of seed + 3000


class Stages(nn.Module):
    """``model.stages[start:stop]`` of a harness model, as one module (the model's own submodules)."""

    def __init__(self, model: nn.Module, start: int, stop: int):
        super().__init__()
        self.stages = nn.ModuleList(list(model.stages)[start:stop])

    def forward(self, h):
        for stage in self.stages:
            h = stage(h)
        return h


class Top(nn.Module):
    """The rest of a harness model from stage ``start``: its stages, the final BN-ReLU of a WRN,
    pooling, ``fc`` (the model's own submodules, so training this trains the model)."""

    def __init__(self, model: nn.Module, start: int):
        super().__init__()
        self.stages = Stages(model, start, len(model.stages))
        self.fc = model.fc
        self.final_bn = model.bn if isinstance(model, WideResNet) else None

    def forward(self, h):
        h = self.stages(h)
        if self.final_bn is not None:
            h = F.relu(self.final_bn(h))
        return self.fc(pool(h))


def _in_channels(stage: nn.Module) -> int:
    return next(m for m in stage.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))).in_channels


def make_booster(ctx: Context, k: int) -> nn.Module:
    """The task's teacher architecture (seed + 3000) whose stages[k:] read the student's stage k-1."""
    with torch.random.fork_rng(devices=[]):  # the global RNG is left as it was
        torch.manual_seed(ctx.seed + BOOSTER_SEED_OFFSET)
        booster = ctx.task.make_teacher()
        width = ctx.student.feature_channels[k - 1]
        first = booster.stages[k]
        if _in_channels(first) != width:
            if not isinstance(booster, ConvNet):
                raise NotImplementedError(f"booster stage {k} expects {_in_channels(first)} channels, the "
                                          f"student's stage {k - 1} gives {width}")
            old = first[0][0]  # ConvNet stage: Sequential(Sequential(conv, bn, ReLU), ...)
            first[0][0] = type(old)(width, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
    for i in range(k):
        booster.stages[i] = nn.Identity()  # replaced by the student's: no parameters of its own
    return booster.to(ctx.device)


def make_rocket(ctx: Context, s: dict) -> tuple[impl.RocketNet, nn.Module]:
    """The RocketNet over the context's student (light) and a fresh booster; returns (net, booster)."""
    k = s["shared_stages"]
    if not 1 <= k < len(ctx.student.stages):
        raise ValueError(f"shared_stages must be in [1, {len(ctx.student.stages) - 1}], got {k}")
    booster = make_booster(ctx, k)
    net = impl.RocketNet(Stages(ctx.student, 0, k), Top(ctx.student, k), Top(booster, k))
    return net, booster


def train_rocket(ctx: Context, s: dict, track: bool = False, progress: bool = False):
    """Train light and booster jointly; returns (net, History, per-epoch [light, booster] test scores).

    ``History.test_acc`` is the light net's (the student's) score per epoch when ``track``."""
    task = ctx.task
    net, _ = make_rocket(ctx, s)
    opt = make_optimizer(task.optimizer, list(net.parameters()), task.lr, task.weight_decay, 0.9)
    loader = task.student_loader(ctx.seed)
    sched = cosine_schedule(opt, ctx.epochs * len(loader))  # as in train()
    scores: list = []

    def step(batch, progress_):
        return impl.rocket_step(net, opt, batch[0], batch[1], s["hint_weight"], s["gradient_block"])

    def evaluate():
        booster = nn.Sequential(net.shared, net.booster_head)
        scores.append([task.metric.fn(ctx.student, task.test_loader, ctx.device),
                       task.metric.fn(booster, task.test_loader, ctx.device)])
        return scores[-1][0]

    hist = loop(step, loader, epochs=ctx.epochs, models=[net], schedulers=[sched], device=ctx.device,
                evaluate=evaluate if track else None, progress=progress, desc=f"zhou2017rocket s{ctx.seed}")
    return net, hist, scores


def run(ctx: Context, s: dict):
    _, hist, _ = train_rocket(ctx, s)
    return ctx.student.eval(), hist


RECIPE = Recipe("zhou2017rocket", settings={"hint_weight": 0.03, "gradient_block": True, "shared_stages": 1},
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {}}, run=run, needs_teacher=False)
