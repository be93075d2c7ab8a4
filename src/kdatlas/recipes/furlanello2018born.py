"""Furlanello et al. (2018): born-again networks, a sequence of generations of the student's architecture.

A run= recipe. Generation 0, the first teacher, is the task's *student* architecture trained on the
labels alone (the seed's initial weights and batches: exactly the benchmark's "student alone"), not
the task's cached teacher, so ``needs_teacher=False``. Generation k = 1..``generations`` starts from
fresh initial weights (seed + 1000 k) and is trained on the same batches with ``impl.ban_loss``
against generation k-1, whose outputs on the training set are computed once (``TeacherCache``: the
inputs are not augmented). Every generation gets the task's optimiser, learning rate and epochs.

What the run returns (``deploy``): "last", the last generation, a network of the student's size,
what the paper's BAN-k columns report; or "ensemble", the born-again ensemble (Eq. 4) of all the
generations 0..K (``impl.BANEnsemble``): Eq. 4 sums from theta_1, the network trained on the labels
(Eq. 1), so generation 0 is included; whether the tables' ensembles include it was not checked.

Settings: ``generations`` = 3 (the paper's BAN-1..3 on CIFAR-100); ``ce_weight`` = 0, BAN without
labels, the paper's choice for its image models (BAN+L adds the label term)."""
from kdatlas.harness.loop import History
from kdatlas.harness.train import TeacherCache, train
from kdatlas.implementations import furlanello2018born as impl
from kdatlas.recipes import Recipe

GENERATION_SEED_STRIDE = 1000  # generation k's initial weights: seed + 1000 k (generation 0: the seed's)


def train_generations(ctx, s, track: bool = False):
    """Generations 0..K; returns (models, History per generation). ``track``: test metric every epoch."""
    task = ctx.task
    kw = dict(epochs=task.epochs, lr=task.lr, optimizer=task.optimizer, weight_decay=task.weight_decay,
              device=task.device, progress=False, metric=task.metric.fn,
              test_loader=task.test_loader if track else None)
    models, hists = [ctx.student], [train(ctx.student, task.student_loader(ctx.seed), **kw)]  # Eq. 1: labels
    for k in range(1, s["generations"] + 1):
        teacher = models[-1].eval().requires_grad_(False)
        cache = TeacherCache.build(teacher, task.student_data.train, device=task.device)
        student = task.new_student(ctx.seed + GENERATION_SEED_STRIDE * k).to(task.device)  # fresh weights

        def loss(so, to, y, progress):  # Eq. 2 (Eq. 3 for k > 1): generation k from generation k-1
            return {"ban": impl.ban_loss(so.logits, to.logits, y, ce_weight=s["ce_weight"])}
        hists.append(train(student, task.student_loader(ctx.seed), loss_fn=loss, teacher=cache, **kw))
        models.append(student)
    for m in models:
        m.eval().requires_grad_(False)
    return models, hists


def run(ctx, s):
    models, hists = train_generations(ctx, s)
    hist = History()
    for k, h in enumerate(hists):
        hist.extend(h, f"generation {k}")
    if s["deploy"] == "last":
        return models[-1], hist
    if s["deploy"] == "ensemble":
        return impl.BANEnsemble(models), hist
    raise ValueError(f"deploy must be 'last' or 'ensemble', got {s['deploy']!r}")


RECIPE = Recipe("furlanello2018born", settings={"generations": 3, "ce_weight": 0.0, "deploy": "last"},
                tasks={"mnist1d": {}, "digits": {}}, run=run, needs_teacher=False)
