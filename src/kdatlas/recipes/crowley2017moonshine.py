"""Moonshine (Crowley et al., 2018): the teacher's architecture with cheap convolutions, trained by AT.

A run= recipe, because the model it trains and the benchmark scores is not the task's student: it
is ``impl.cheapen`` of the teacher's architecture (every 3-tap convolution after the stem replaced
by a G(g)B(b) block, freshly initialised from the run's seed), a different and larger network than
the task's student (MNIST-1D: 44,970 parameters against the teacher's 97,514 and the task
student's 2,386; digits: 55,146 / 288,170 / 18,482): the row is not an equal-size comparison.
On CIFAR-100 the cheap ResNet32x4 has 1,088,388 parameters, close to ResNet8x4's 1,233,540.
Training: ``train`` with the task's optimiser, learning rate, weight decay and epochs, loss
``impl.moonshine_loss`` with the attention maps of the three stage outputs of both networks (the
code's three group outputs; post-ReLU maps). ``beta = 0`` trains the same cheap network from the
labels alone (the paper's baseline; the notebook uses it).

Settings: bottleneck 2, group_size 8 (G8B2, the README's example), beta = 1e3 and alpha = 0 (no KD;
main.py defaults and the README's example), temperature 4 (used only when alpha > 0). beta = 1e3 is
tied to the CIFAR maps' 1024..64 positions (the AT term is a mean over positions of unit-norm maps,
so its size grows as the maps shrink); on the embedded tasks it swamps the cross-entropy (one seed,
20 epochs of MNIST-1D: 25.1% against 54.1% from the labels alone). The AT term here is the same
function of the same stage maps as zagoruyko2016paying's (the test file pins them equal), whose
weight benchmarks/select_weights.py chose on held-out training samples (results/weight_selection.json:
1.0 on MNIST-1D, 10.0 on digits; 3 beta / J = beta with J = 3 is that recipe's at_weight); those
selected values are used, no new selection, no test-set look."""
from kdatlas.harness.train import TeacherCache, seed_everything, train
from kdatlas.implementations import crowley2017moonshine as impl
from kdatlas.recipes import Context, Recipe


def build(ctx: Context, s: dict):
    """The cheap student of this run: the teacher's architecture, cheapened, with the seed's weights."""
    seed_everything(ctx.seed)
    return impl.cheapen(ctx.task.make_teacher(), s["bottleneck"], s["group_size"]).to(ctx.device)


def run(ctx: Context, s: dict, track: bool = False, progress: bool = False):
    task = ctx.task
    student = build(ctx, s)
    st = s["stages"]

    def loss(so, to, y, progress_):
        return impl.moonshine_loss(so.logits, to.logits, y, [so.features[i] for i in st],
                                   [to.features[i] for i in st], s["beta"], s["alpha"], s["temperature"])

    teacher = ctx.teacher
    if not task.student_data.augmented:
        teacher = TeacherCache.build(teacher, task.student_data.train, device=task.device)
    hist = train(student, task.student_loader(ctx.seed), epochs=ctx.epochs, lr=task.lr, optimizer=task.optimizer,
                 weight_decay=task.weight_decay, loss_fn=loss, teacher=teacher,
                 test_loader=task.test_loader if track else None, device=task.device, progress=progress,
                 desc=f"crowley2017moonshine s{ctx.seed}")
    return student.eval(), hist


RECIPE = Recipe("crowley2017moonshine",
                settings={"bottleneck": 2, "group_size": 8, "stages": [0, 1, 2], "beta": 1e3, "alpha": 0.0,
                          "temperature": 4.0},
                tasks={"mnist1d": {"beta": 1.0}, "digits": {"beta": 10.0},  # AT's held-out selection, see above
                       "cifar100": {"stages": [1, 2, 3]}},  # CIFAR ResNets: stem, groups 1-3; AT on the groups
                run=run)
