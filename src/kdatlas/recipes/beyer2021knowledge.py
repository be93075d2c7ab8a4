"""Function matching (Beyer et al., 2022): a run= recipe on harness.loop. Every step both models
see the views ``impl.make_views`` gives for the setting ``variant`` (default "function_matching": the
same random shift of each input, then mixup over the batch), the teacher's output is computed on
its view at that step (never cached), and the student minimises the KL at T = 1, with no labels.

Settings: ``concentration`` 1.0 (the official config's mixup p: lambda uniform), ``temperature`` 1
(its kl t = 1); ``max_shift``, the crop's analogue, is ours: 4 of MNIST-1D's 40 positions, 2 pixels of
the 16x16 digits canvas; ``patience`` multiplies the task's epochs (1 in the benchmark, which keeps
every method to the same budget; the paper's point is that function matching needs many more, see
the notebook). The student's optimiser, learning rate, weight decay and cosine schedule are the
task's, as train() gives a student alone (the official config's Adam, warm-up and gradient
clipping are not used)."""
from __future__ import annotations

import torch

from kdatlas.harness.loop import loop
from kdatlas.harness.train import cosine_schedule, make_optimizer
from kdatlas.implementations import beyer2021knowledge as impl
from kdatlas.recipes import Context, Recipe


def run(ctx: Context, s: dict, track: bool = False, progress: bool = False):
    task, student, teacher = ctx.task, ctx.student, ctx.teacher
    epochs = int(round(s["patience"] * ctx.epochs))
    opt = make_optimizer(task.optimizer, list(student.parameters()), task.lr, task.weight_decay, 0.9)
    loader = task.student_loader(ctx.seed)
    sched = cosine_schedule(opt, epochs * len(loader))
    gen = torch.Generator().manual_seed(7919 * ctx.seed + 3)  # the views' randomness, per seed

    def step(batch, progress_):
        x = batch[0]
        t_in, s_in = impl.make_views(x, s["variant"], s["max_shift"], gen, s["concentration"])
        with torch.no_grad():
            t_logits = teacher(t_in)
        loss = impl.function_matching_loss(student(s_in), t_logits, s["temperature"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"kl": loss.detach()}

    evaluate = (lambda: task.metric.fn(student, task.test_loader, ctx.device)) if track else None
    hist = loop(step, loader, epochs=epochs, models=[student], frozen=[teacher], schedulers=[sched],
                device=ctx.device, evaluate=evaluate, progress=progress, desc=f"beyer2021knowledge s{ctx.seed}")
    return student.eval(), hist


RECIPE = Recipe("beyer2021knowledge",
                settings={"variant": "function_matching", "max_shift": 4, "concentration": 1.0,
                          "temperature": 1.0, "patience": 1.0},
                tasks={"mnist1d": {}, "digits": {"max_shift": 2}, "cifar100": {}},
                run=run)
