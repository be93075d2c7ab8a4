"""Nasty teacher (Ma et al., 2021): a run= recipe. The task's cached teacher is the normally trained
"adversarial network" f_A (frozen); a nasty teacher of the same architecture is trained from random
weights (seed + NASTY_SEED_OFFSET) on the teacher's data and budget with the self-undermining loss;
the seed's student is then distilled from the nasty teacher by the official train_kd.py's KD.

The benchmark's row is that student: the paper's claim is that it learns worse than a student of the
normal teacher (hinton2015distilling's row, the same KD from f_A) and often worse than alone.
Settings: omega = 0.04 and tau_A = 4, the official CIFAR-10 values (ten classes, like both tasks);
the student's alpha = 0.9, tau = 4 (the official CIFAR-10 student's); none tuned here."""
from kdatlas.harness.loop import History
from kdatlas.harness.train import seed_everything, train
from kdatlas.implementations import ma2021undistillable as impl
from kdatlas.recipes import Recipe

NASTY_SEED_OFFSET = 2000  # the nasty teacher's initial weights and batch order: seed + 2000


def train_nasty(ctx, s, track: bool = False):
    """The nasty teacher of ``ctx.seed``, frozen, and its History (test metric per epoch if ``track``)."""
    task = ctx.task
    seed_everything(ctx.seed + NASTY_SEED_OFFSET)
    nasty = task.make_teacher().to(task.device)
    loader = task.teacher_data.loaders(task.batch_size, seed=ctx.seed + NASTY_SEED_OFFSET)[0]
    hist = train(nasty, loader, epochs=task.teacher_epochs, lr=task.lr, optimizer=task.optimizer,
                 weight_decay=task.weight_decay, device=task.device, progress=False,
                 teacher=ctx.teacher, cache_teacher=not task.teacher_data.augmented,
                 test_loader=task.test_loader if track else None, metric=task.metric.fn,
                 loss_fn=lambda so, to, y, p: impl.self_undermining_loss(
                     so.logits, to.logits, y, s["weight"], s["nasty_temperature"]))
    return nasty.eval().requires_grad_(False), hist


def run(ctx, s, track: bool = False):
    task = ctx.task
    nasty, h_t = train_nasty(ctx, s)
    h_s = train(ctx.student, task.student_loader(ctx.seed), epochs=task.epochs, lr=task.lr,
                optimizer=task.optimizer, weight_decay=task.weight_decay, device=task.device, progress=False,
                teacher=nasty, cache_teacher=not task.student_data.augmented,
                test_loader=task.test_loader if track else None, metric=task.metric.fn,
                loss_fn=lambda so, to, y, p: impl.student_kd_loss(so.logits, to.logits, y, s["alpha"], s["temperature"]))
    return ctx.student.eval(), History().extend(h_t, "nasty teacher").extend(h_s, "student from the nasty teacher")


RECIPE = Recipe("ma2021undistillable",
                settings={"weight": 0.04, "nasty_temperature": 4.0, "alpha": 0.9, "temperature": 4.0},
                tasks={"mnist1d": {}, "digits": {}}, run=run)
