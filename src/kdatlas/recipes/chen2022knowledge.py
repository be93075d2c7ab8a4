"""SimKD (Chen et al., 2022): the student's last map through a projector into the teacher's frozen classifier.

A run= recipe, because the model the benchmark scores is not the student network itself: it is
``impl.SimKDStudent``, the student's stages (its own linear classifier dropped: no loss reaches it),
the projector and a frozen copy of the teacher's ``fc``, whose parameter count includes projector
and head. Training: ``train`` on the student and the projector (the task's optimiser, learning
rate, weight decay, epochs and cosine schedule), loss ``impl.simkd_loss`` between the projected
student map and the teacher's last map (features[-1] of both: the last stage's post-ReLU output,
before pooling, the map the authors' code uses), aligned by ``impl.align_spatial`` (equal sizes on
the embedded tasks). No cross-entropy and no KL term (the authors' scripts: -c 0 -d 0 -b 1). The
teacher's outputs are cached when the inputs are not augmented, as for phases= recipes.

Settings: ``factor`` = 2, the projector's bottleneck reduction (train_student.py's default and the
README's main row; 4 and 8 are its cheaper variants)."""
from torch import nn

from kdatlas.harness.train import TeacherCache, train
from kdatlas.implementations import chen2022knowledge as impl
from kdatlas.recipes import Context, Recipe


class LastMap(nn.Module):
    """The student's stages as an encoder: x -> its last feature map (before pooling)."""

    def __init__(self, student: nn.Module):
        super().__init__()
        self.student = student

    def forward(self, x):
        return self.student.forward_features(x)[0][-1]


def build(ctx: Context, s: dict) -> impl.SimKDStudent:
    """The deployed model around ``ctx.student`` (whose ``fc`` is replaced by an identity)."""
    sf, tf = ctx.student_features[-1], ctx.teacher_features[-1]
    projector = impl.SimKDProjector(sf.shape[1], tf.shape[1], factor=s["factor"], dim=sf.dim() - 2)
    ctx.student.fc = nn.Identity()  # not part of the deployed student; SimKD trains no student head
    return impl.SimKDStudent(LastMap(ctx.student), projector, ctx.teacher.fc,
                             target_size=tuple(tf.shape[2:])).to(ctx.device)


def train_simkd(ctx: Context, s: dict, track: bool = False, progress: bool = False):
    """Train; returns (the deployed SimKDStudent, History). ``track``: its test metric per epoch."""
    task = ctx.task
    model = build(ctx, s)

    def loss(so, to, y, progress_):
        source, target = impl.align_spatial(so.features[-1], to.features[-1])
        return {"simkd": impl.simkd_loss(model.projector(source), target)}

    teacher = ctx.teacher
    if not task.student_data.augmented:
        teacher = TeacherCache.build(teacher, task.student_data.train, device=task.device)
    hist = train(ctx.student, task.student_loader(ctx.seed), epochs=ctx.epochs, lr=task.lr,
                 optimizer=task.optimizer, weight_decay=task.weight_decay, loss_fn=loss, teacher=teacher,
                 extra_modules=(model.projector,), test_loader=task.test_loader if track else None,
                 metric=lambda _student, loader, device: task.metric.fn(model, loader, device),
                 device=task.device, progress=progress, desc=f"chen2022knowledge s{ctx.seed}")
    return model.eval(), hist


def run(ctx: Context, s: dict):
    return train_simkd(ctx, s)


RECIPE = Recipe("chen2022knowledge", settings={"factor": 2},
                tasks={"mnist1d": {}, "digits": {}, "cifar100": {}},  # CIFAR: resnet32x4 -> resnet8x4, the paper's
                run=run)
