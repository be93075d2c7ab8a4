"""Teacher Assistant KD: how the harness runs implementations/mirzadeh2019improved.py.

The chain teacher -> assistant -> student (``impl.distillation_path``): the task's teacher (frozen);
an assistant of intermediate size, distilled from it for the student's epoch budget; then the
student of this seed, distilled from the frozen assistant for the same budget (the paper gives
every step of a chain the same training budget). Both steps learn from the student's training set,
batches in the seed's order, with the task's optimiser, learning rate and schedule, and use
``impl.takd_loss`` on the logits; the assistant's outputs are cached like the teacher's (the data is
not augmented). The student is scored.

The assistant (``intermediate_model``): the same family as the task's models, between them in size.
For the task's ConvNets (MNIST-1D, digits), stage ``i`` has width round((w_s^(1-r) * w_t^r)) (a
geometric interpolation, r = ``ta_ratio``) and the student's number of convolutions per stage:
with r = 0.5, 16/32/64 between the student's 8/16/32 and the teacher's 32/64/128. For CIFAR ResNets
(the paper's own family), the widths are interpolated the same way and the number of blocks per
stage is rounded between the two (resnet8x4 -> resnet20x4 <- resnet32x4). It is built with the
model classes of ``kdatlas.harness.models`` from the attributes of the task's two models; the harness
has no factory for intermediate sizes.

Settings: ``temperature`` = 4 and ``kd_weight`` = 0.9 (lambda) are this atlas's Hinton KD settings:
the paper tunes both per run with a hyper-parameter search and gives no default, and using the
same pair makes TAKD and direct KD (hinton2015distilling) differ only by the assistant.
``ta_ratio`` = 0.5: the assistant halfway between student and teacher (on a log scale of width);
the paper's best assistants are of intermediate size (e.g. plain CNN 4 between 2 and 10 layers).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from kdatlas.harness.models import ConvNet, ResNet
from kdatlas.harness.train import TeacherCache, train
from kdatlas.implementations import mirzadeh2019improved as impl
from kdatlas.recipes import Context, Recipe


def _width(ws: int, wt: int, r: float) -> int:
    return max(1, round(math.exp((1 - r) * math.log(ws) + r * math.log(wt))))


def intermediate_model(student: nn.Module, teacher: nn.Module, ratio: float = 0.5) -> nn.Module:
    """A fresh model of the students' and teachers' family, between them in size (see the module
    docstring); raises for model families it does not know."""
    if isinstance(student, ConvNet) and isinstance(teacher, ConvNet):
        first_s, first_t = student.stages[0][0][0], teacher.stages[0][0][0]
        if (type(first_s) is not type(first_t) or len(student.feature_channels) != len(teacher.feature_channels)
                or first_s.in_channels != first_t.in_channels):
            raise ValueError("student and teacher ConvNets differ in dimension, stages or input channels")
        widths = tuple(_width(a, b, ratio) for a, b in zip(student.feature_channels, teacher.feature_channels))
        dim = 1 if isinstance(first_s, nn.Conv1d) else 2
        return ConvNet(dim, widths, student.fc.out_features, in_channels=first_s.in_channels,
                       blocks=len(student.stages[0]))
    if isinstance(student, ResNet) and isinstance(teacher, ResNet):
        n_s, n_t = len(student.stages[1]), len(teacher.stages[1])
        n = round((1 - ratio) * n_s + ratio * n_t)
        widths = tuple(_width(a, b, ratio) for a, b in zip(student.feature_channels, teacher.feature_channels))
        return ResNet(6 * n + 2, widths, student.fc.out_features)
    raise ValueError(f"no intermediate size known between {type(student).__name__} and {type(teacher).__name__}")


def _distil(ctx: Context, s: dict, model: nn.Module, teacher: nn.Module, test_loader=None, desc: str = ""):
    """Train ``model`` from the frozen ``teacher`` with takd_loss; returns (model, History)."""
    task = ctx.task
    t_in = teacher
    if not task.student_data.augmented:
        t_in = TeacherCache.build(teacher, task.student_data.train, device=ctx.device)

    def loss(so, to, y, progress):
        return impl.takd_loss(so.logits, to.logits, y, s["kd_weight"], s["temperature"])

    hist = train(model, task.student_loader(ctx.seed), epochs=ctx.epochs, lr=task.lr, optimizer=task.optimizer,
                 weight_decay=task.weight_decay, loss_fn=loss, teacher=t_in, test_loader=test_loader,
                 metric=task.metric.fn, device=ctx.device, progress=False, desc=desc)
    return model, hist


def make_assistant(ctx: Context, s: dict) -> nn.Module:
    """The untrained assistant of this seed (initial weights from seed 20000 + seed)."""
    with torch.random.fork_rng(devices=[]):  # the global RNG is left as it was
        torch.manual_seed(20_000 + ctx.seed)
        return intermediate_model(ctx.student, ctx.teacher, s["ta_ratio"]).to(ctx.device)


def train_chain(ctx: Context, s: dict, track: bool = False) -> tuple[list, list]:
    """Teacher -> assistant -> student; returns ([teacher, assistant, student], [History per step]).
    ``track``: the test metric after every epoch of each step (the notebook plots it)."""
    hists = []

    def distil(model, frozen):
        name = "assistant" if not hists else "student"
        model, h = _distil(ctx, s, model, frozen, ctx.task.test_loader if track else None,
                           desc=f"mirzadeh2019improved {name} s{ctx.seed}")
        hists.append(h)
        return model

    chain = impl.distillation_path(ctx.teacher, [lambda: make_assistant(ctx, s), lambda: ctx.student], distil)
    return chain, hists


def run(ctx: Context, s: dict):
    chain, hists = train_chain(ctx, s)
    return chain[-1], hists[-1]


RECIPE = Recipe("mirzadeh2019improved", settings={"temperature": 4.0, "kd_weight": 0.9, "ta_ratio": 0.5},
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {}}, run=run)
