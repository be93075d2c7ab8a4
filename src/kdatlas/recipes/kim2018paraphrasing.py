"""Factor transfer (Kim, Park & Kwak, 2018): a run= recipe in the official code's two stages.

Stage 1: a Paraphraser (rate k = 0.5) learns to reconstruct the teacher's last map (L1, the
official loss) on the students' training inputs, the teacher's maps computed once and cached (the
inputs are not augmented), then is frozen. Stage 2: the seed's student and a Translator train
together with the task's epochs, optimiser and schedule on CE + beta * the L1 distance of the
normalised factors, beta = 500 (the official default, on the mean absolute difference), the teacher
factor P_enc(last teacher map) from the frozen paraphraser. The student's budget is the student
alone's; the paraphraser's epochs are extra.

Stage 1's optimiser is the atlas's choice, not the official one. The official script trains the
paraphraser with SGD (lr 0.1) for 5 epochs of CIFAR, about 2,000 updates; 5 epochs here are 40.
With the task's SGD (lr 0.05), the autoencoder stays at the all-zero output, whose L1 loss is the
mean |x| of the teacher's sparse post-ReLU map (measured on MNIST-1D: 0.379 -> 0.379 in 300
updates); AdamW at lr 1e-3 without weight decay reaches 0.113 in 300 updates. The recipe therefore
trains the paraphraser with AdamW, lr 1e-3, for 40 epochs (320 updates on MNIST-1D's 500
sequences)."""
from __future__ import annotations

import torch

from kdatlas.harness.data import make_loader
from kdatlas.harness.loop import History, loop
from kdatlas.harness.train import TeacherCache, cosine_schedule, make_optimizer, train
from kdatlas.implementations import kim2018paraphrasing as impl
from kdatlas.recipes import Context, Recipe, ce


def train_paraphraser(ctx: Context, s: dict, cache: TeacherCache):
    """Stage 1 on the cached last teacher map; returns the frozen paraphraser and its History."""
    task = ctx.task
    t_map = cache.features[-1]
    dim = t_map.dim() - 2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed + 3000)
        para = impl.Paraphraser(t_map.shape[1], s["rate"], dim).to(ctx.device)
    loader = make_loader(torch.utils.data.TensorDataset(t_map), task.batch_size, shuffle=True, seed=ctx.seed + 3000)
    opt = make_optimizer(s["paraphraser_optimizer"], list(para.parameters()), s["paraphraser_lr"], 0.0)
    sched = cosine_schedule(opt, s["paraphraser_epochs"] * len(loader))

    def step(batch, progress):
        loss = impl.reconstruction_loss(para, batch[0])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"reconstruction": loss.detach()}

    hist = loop(step, loader, epochs=s["paraphraser_epochs"], models=[para], schedulers=[sched],
                device=ctx.device, progress=False, desc="paraphraser")
    return para.eval().requires_grad_(False), hist


def run(ctx: Context, s: dict, track: bool = False):
    task = ctx.task
    cache = TeacherCache.build(ctx.teacher, task.student_data.train, device=ctx.device)
    para, h_p = train_paraphraser(ctx, s, cache)
    s_map = ctx.student_features[-1]
    translator = impl.Translator(s_map.shape[1], para.factor_channels, s_map.dim() - 2).to(ctx.device)

    def loss(so, to, y, progress):
        with torch.no_grad():
            f_t = para.encode(to.features[-1])
        return {"ce": ce(so, y), "ft": s["beta"] * impl.factor_transfer_loss(translator(so.features[-1]), f_t)}

    h_s = train(ctx.student, task.student_loader(ctx.seed), epochs=task.epochs, lr=task.lr,
                optimizer=task.optimizer, weight_decay=task.weight_decay, loss_fn=loss, teacher=cache,
                extra_modules=[translator], device=ctx.device, progress=False,
                test_loader=task.test_loader if track else None, metric=task.metric.fn)
    return ctx.student.eval(), History().extend(h_p, "paraphraser").extend(h_s, "student")


RECIPE = Recipe("kim2018paraphrasing",
                settings={"rate": 0.5, "beta": 500.0, "paraphraser_epochs": 40,
                          "paraphraser_optimizer": "adamw", "paraphraser_lr": 1e-3},
                tasks={"mnist1d": {}, "digits": {}}, run=run)
