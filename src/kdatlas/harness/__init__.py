r"""The training harness: data, model families, tasks and the training loops.

Implementations (``kdatlas.implementations.<id>``) never import this package; notebooks and the
benchmark (``kdatlas bench``) do. Everything below is re-exported here, so
``from kdatlas.harness import load_mnist1d, mnist1d_teacher, train, evaluate`` is enough.

Data (``kdatlas.harness.data``)
-------------------------------
Every loader returns a :class:`Data` record::

    Data(train, test, num_classes, input_shape, name, augmented)
        .loaders(batch_size=128, seed=0, eval_batch_size=512) -> (train_loader, test_loader)

``train``/``test`` are datasets whose items are ``(x, y, index)``: ``index`` is the position of the
sample in its dataset (CRD's memory bank and the cached-teacher mode look samples up by it). The
train loader shuffles with a ``torch.Generator`` seeded by ``seed`` (no workers), so the order of
batches is a function of the seed. A loader's generator advances as it is iterated: build fresh
loaders (``data.loaders(...)`` again) for each run that should see the same order, e.g. the student
alone and then the distilled student. ``augmented`` is True when the train inputs are randomly
transformed on every pass (CIFAR with augmentation): the cached-teacher mode is then invalid.

- ``load_mnist1d(seed=0, num_samples=5000, train_split=0.8, n_train=None, noise_scale=None) -> Data``
  MNIST-1D generated offline by the ``mnist1d`` package (``make_dataset``; never its download).
  Inputs ``(1, 40)``. ``n_train`` keeps the first n training sequences (a label budget).
- ``load_digits_canvas(canvas=8, seed=0, test_fraction=0.3, n_train=None) -> Data``
  scikit-learn's bundled 8x8 digits (1,797 images), each pasted at a random offset on a
  ``canvas x canvas`` black image (``canvas=8``: the plain digits). Inputs ``(1, canvas, canvas)``.
- ``load_cifar(root, name="cifar100", augment=True, download=False) -> Data``
  torchvision's CIFAR-10/100 with the usual crop+flip augmentation and per-channel normalisation.
  Downloads only when ``download=True`` is passed (never in tests).
- ``make_loader(dataset, batch_size=128, shuffle=True, seed=0, drop_last=False) -> DataLoader``

Models (``kdatlas.harness.models``)
-----------------------------------
Every model has the same interface:

- ``model(x) -> logits`` of shape ``(batch, num_classes)``;
- ``model.forward_features(x) -> (features, logits)``: ``features`` is a list with the output of
  each stage (after its ReLU; the pre-activation WRNs give raw block outputs, the last one after
  the final BN-ReLU), from the first to the last; ``features[-1]`` is the last stage's map
  BEFORE global average pooling. Feature maps are ``(B, C, L)`` for 1-D models, ``(B, C, H, W)`` for
  2-D ones. For the CIFAR ResNets/WRNs ``features[0]`` is the stem convolution's output (so
  resnet8x4 and resnet32x4 both give 4 maps with matching spatial sizes 32, 32, 16, 8);
- ``model.embedding(x) -> (B, D)``: the penultimate vector, i.e. ``pool(features[-1])``
  (global average pooling, flattened), the input of the final linear layer ``model.fc``;
- ``model.feature_channels``: the channel count of each entry of ``features``.

Families (``num_classes`` is always a keyword argument):

- ``ConvNet(dim, channels, num_classes=10, in_channels=1, blocks=1)``: plain conv-BN-ReLU stages,
  stride 2 between stages, then global average pooling and a linear layer. ``dim`` is 1 or 2.
- ``mnist1d_teacher()``, ``mnist1d_student()``: 1-D ConvNets for MNIST-1D (teacher and student have
  the same number of stages and the same lengths per stage, so AT/FitNets can pair them stage by stage).
- ``digits_teacher()``, ``digits_student()``: the 2-D counterparts for the digits canvas.
- CIFAR sizes used in the literature (CRD/RepDistiller naming): ``resnet8x4, resnet32x4, resnet20,
  resnet56, resnet110, wrn_16_2, wrn_40_2`` (each ``fn(num_classes=100)``).
- ``MODELS``: name -> factory for all of the above; ``build_model(name, **kw)``.
- ``pool(feature_map) -> (B, C)``: the global average pooling the models use.

Tasks (``kdatlas.harness.tasks``)
---------------------------------
- ``get_task(name, quick=False, holdout=False, **overrides) -> Task``: a registered task ("mnist1d",
  the benchmark's first task; "digits", the 2-D image task; "cifar100", paper scale), with a
  CI-sized budget when ``quick``, a held-out split of the training samples as its test set when
  ``holdout`` (model selection), any configuration knob changed by name.
  ``register_task(name, defaults, quick=...)`` adds one (a decorator on its builder).
- ``Task``: ``teacher_data``, ``student_data``, ``make_teacher``, ``make_student``, ``config`` (every
  knob; ``epochs``, ``teacher_epochs``, ``lr``, ``batch_size``, ``optimizer``, ``weight_decay`` read
  from it), ``metric`` (a ``Metric(name, unit, higher_is_better, fn)``; ``ACCURACY`` for
  classification), ``key()`` (hash of the configuration and the harness code).
  ``Task.teacher(seed=0)`` -> (teacher, score), trained once and then read from the disk cache
  (``KDATLAS_CACHE`` or ``~/.cache/kdatlas``); ``Task.train_student(loss_fn=None, teacher=None,
  seed=1, **train_kwargs)`` -> (student, History), same initial weights and batches for a given
  seed; ``Task.student_loader(seed)``, ``Task.test_loader``, ``Task.score(model)``.

Loop (``kdatlas.harness.loop``)
-------------------------------
- ``loop(step, loader, *, epochs, models=(), frozen=(), schedulers=(), device, evaluate=None,
  progress=True) -> History``: the generic loop for any number of models; ``step(batch, progress)``
  does the forward, backward and optimiser steps and returns the terms to log.
- ``Progress(step, epoch, steps_per_epoch, epochs)`` with ``epoch_float``, ``fraction``,
  ``total_steps``: passed to every step and loss (warm-ups, annealing, alternation).

Training (``kdatlas.harness.train``)
------------------------------------
- ``seed_everything(seed, deterministic=True)``: Python, NumPy and torch RNGs (+ deterministic
  algorithms). On the CPU the same seed gives bit-identical numbers.
- ``default_device() -> torch.device``: cuda if present, else mps, else cpu.
- ``Outputs(logits, features, embedding, index)``: what a loss function receives for the student
  and for the teacher (a NamedTuple; ``features`` is the model's list, ``index`` the batch's sample
  indices). ``model_outputs(model, x, index=None) -> Outputs``.
- ``train(student, train_loader, *, epochs=10, lr=0.05, optimizer="sgd", weight_decay=5e-4,
  momentum=0.9, loss_fn=None, teacher=None, cache_teacher=False, params=None, extra_modules=(),
  test_loader=None, device=None, progress=True, desc="train") -> History``

  The loss callable has the signature::

      loss_fn(student_out: Outputs, teacher_out: Outputs | None, targets: Tensor, progress: Progress)
          -> Tensor | dict[str, Tensor]

  (a dict's values are summed into the loss and logged one by one). ``loss_fn=None`` means plain
  cross-entropy. The teacher (an ``nn.Module``) is put in eval mode, run under ``torch.no_grad()``
  and never given to the optimizer. If ``loss_fn`` is an ``nn.Module`` (a regressor, embedding heads,
  a memory bank), its parameters join the optimizer, it is moved to the device and kept in train
  mode; ``extra_modules`` adds further such modules. ``params`` overrides which parameters are
  optimised (FitNets' hint phase: the student's lower stages + the regressor). The learning rate follows a
  cosine schedule over all steps; ``optimizer`` is "sgd" (momentum, nesterov) or "adamw".

  ``cache_teacher=True`` (or passing ``teacher=TeacherCache``) computes the teacher's outputs once
  for every training sample and looks them up by ``index``: an epoch then costs about what the
  student alone costs. Only valid when inputs are not randomly augmented (``Data.augmented`` False).
- ``TeacherCache.build(teacher, dataset, batch_size=512, device=None, features=None)``: the cache
  (``features``: which stage indices to keep, default all).
- ``make_optimizer(name, params, lr, weight_decay, momentum=0.9)`` and
  ``cosine_schedule(optimizer, total_steps)``: what ``train`` builds, for ``run=`` recipes that step
  several models themselves (each peer then gets what a student alone gets).
- ``History``: ``train_loss`` (per epoch), ``terms`` (name -> per-epoch mean), ``test_acc`` (per epoch,
  when a test loader was given), ``wall_s``.
- ``evaluate(model, loader, device=None) -> float``: top-1 accuracy in percent (0-100).
- ``save_checkpoint(module, path)`` (atomic; a plain state dict) /
  ``load_checkpoint(module, path, device="cpu")`` (``torch.load(..., weights_only=True)``).
- Distributed: launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), call
  ``setup_distributed()`` once (gloo on CPU, nccl on CUDA); ``train`` then wraps the student in
  ``DistributedDataParallel``, shards the train loader with a seeded ``DistributedSampler`` and
  all-reduces the gradients of loss-module parameters too, so every rank ends with the same weights.
  ``cleanup_distributed()`` at the end. Buffers of loss modules stay per rank unless the module
  synchronises them itself (CRD's memory banks gather the global batch, so they stay identical).

Report (``kdatlas.harness.report``), for notebooks
--------------------------------------------------
- ``setup()`` (quick mode from ``KDATLAS_QUICK``), ``n_params(model)``.
- ``compare(task, teacher, methods, seeds)``: the student alone and each recipe on the same seeds,
  metric tracked per epoch; ``plot_curves(result)``, ``table(result)`` (mean +- std, parameters);
  ``watch(recipe)`` keeps the modules a run's phases built (regressors, heads) for plots;
  ``eval_examples(task, n)`` the first n test examples as tensors; ``to_teacher(result, fn)`` the
  mean over seeds and test batches of ``fn(student_out, teacher_out)`` per label (how close each
  student got to the teacher in whatever the method matches); ``plot_terms(history)`` a run's
  loss terms per epoch; ``class_sorted(y)`` indices of a few examples per class, grouped;
  ``show_matrices({title: matrix}, label)`` side-by-side matrices on one colour scale.
"""
from .data import Data, load_cifar, load_digits_canvas, load_mnist1d, make_loader
from .models import (
    MODELS,
    ConvNet,
    build_model,
    digits_student,
    digits_teacher,
    mnist1d_student,
    mnist1d_teacher,
    pool,
    resnet8x4,
    resnet20,
    resnet32x4,
    resnet56,
    resnet110,
    wrn_16_2,
    wrn_40_2,
)
from .loop import Progress, loop
from .tasks import ACCURACY, TASKS, Metric, Task, get_task, register_task
from .report import (
    Comparison,
    Run,
    Table,
    class_sorted,
    compare,
    n_params,
    plot_curves,
    plot_terms,
    setup,
    show_matrices,
    table,
    eval_examples,
    to_teacher,
    watch,
)
from .train import (
    History,
    Outputs,
    TeacherCache,
    cleanup_distributed,
    cosine_schedule,
    default_device,
    evaluate,
    load_checkpoint,
    make_optimizer,
    model_outputs,
    save_checkpoint,
    seed_everything,
    setup_distributed,
    train,
)

__all__ = [
    "Data", "load_cifar", "load_digits_canvas", "load_mnist1d", "make_loader",
    "MODELS", "ConvNet", "build_model", "digits_student", "digits_teacher", "mnist1d_student",
    "mnist1d_teacher", "pool", "resnet8x4", "resnet20", "resnet32x4", "resnet56", "resnet110",
    "wrn_16_2", "wrn_40_2",
    "History", "Outputs", "TeacherCache", "cleanup_distributed", "cosine_schedule", "default_device", "evaluate",
    "load_checkpoint", "make_optimizer", "model_outputs", "save_checkpoint", "seed_everything", "setup_distributed",
    "train", "Progress", "loop", "ACCURACY", "TASKS", "Metric", "Task", "get_task", "register_task",
    "Comparison", "Run", "Table", "class_sorted", "compare", "n_params", "plot_curves", "plot_terms", "setup",
    "show_matrices", "table", "eval_examples", "to_teacher", "watch",
]
