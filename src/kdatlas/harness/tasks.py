r"""The task registry: each task carries its data, its models, its budget and its metric.

    task = get_task("mnist1d")                 # the benchmark's task (kdatlas bench)
    task = get_task("digits", quick=QUICK)     # the 2-D image task; quick: a CI-sized budget
    task = get_task("cifar100")                # paper scale (downloads CIFAR-100; a GPU is advised)
    teacher, teacher_score = task.teacher(seed=0)          # trained once, then read from the cache
    alone, h_alone = task.train_student(seed=1)            # cross-entropy only
    kd, h_kd = task.train_student(loss_fn=my_loss, teacher=teacher, seed=1)  # same weights, batches

A task is registered with ``@register_task(name, defaults, quick=...)`` on a builder
``builder(config: dict, holdout: bool) -> Task``; ``defaults`` is the task's whole configuration
(data, models, budget), ``quick`` the knobs CI shrinks, and ``get_task(name, **overrides)`` changes
any knob by name (an unknown name is an error). The configuration is what the benchmark keys its
runs on, so every knob that changes a result must be in it. Later families (dense prediction canvases
scored by mIoU or mAP, a seq2seq transduction task scored by exact match, a k-NN graph of digits,
a federated client split) plug in the same way: their builder returns a Task with its own data,
model factories and :class:`Metric`; the training loop (:func:`kdatlas.harness.loop.loop`) does not
change.

``holdout=True`` replaces the test set by training samples that no student sees (model selection,
``benchmarks/select_weights.py``): never select on the test set.

Teachers are cached on disk per (task configuration, harness code, seed): ``KDATLAS_CACHE`` or
``~/.cache/kdatlas``. A notebook that runs twice, or six notebooks on the same task, train the
teacher once. The benchmark's teachers are committed in ``results/teachers`` and read from there
when the key matches (the notebooks' default-size runs then use the benchmark's very teacher).

Why MNIST-1D looks like this
----------------------------
The benchmark must make distillation visible (teacher >= 10 points above the student alone, Hinton KD
more than two standard deviations above it) on two CPU cores in a few minutes. MNIST-1D (Greydanus,
2020) is generated offline and small 1-D CNNs learn it in seconds. What was tried (seeds in brackets):

- Teacher and student on all 4,000 training sequences: teacher ~98.8, student (8/16/32) ~94.6, KD
  +2.0 [3]. KD is visible but the gap is 4 points. A smaller student (4/8/16) opens the gap, but its
  seeds scatter (std up to 3) and the KD gain disappears [2].
- Teacher and students on the same 500 sequences (a label budget for everyone): teacher 95.6,
  student 85.4 +- 1.3, KD 88.8 +- 0.8 [5, 100 epochs]; 400 sequences: 94.1 / 83.5 / 87.7 [5]. KD
  passes, but the gap sits at 10-10.6 and the student's seed-to-seed spread (1.3-2.5 points; not
  test-set noise: it stays with a 5,000-sequence test set) makes either check flip on a bad draw.
  A deeper or wider teacher on 500 sequences tops out at ~96%.
- Chosen: the teacher learns from all 4,000 labelled training sequences, the students (alone or
  distilled) from the first 500 of them (50 per class), evaluated on the 1,000 test sequences. This
  is the setting distillation is for: a teacher trained with more data than the student can use,
  whose soft targets on the student's own 500 inputs carry what the missing labels would have
  said. No method sees extra inputs; only the teacher's outputs on the 500 differ from labels.
  First run of ``kdatlas bench`` (before recipes; same settings) [5]: teacher 98.74 +- 0.23, student alone 85.42 +- 1.28, Hinton KD
  92.34 +- 0.70 (gap 13.3 points; KD gain 6.9 against two std 2.6); 3.5 minutes with ``--jobs 2``.
  results/bench/mnist1d/ holds the current numbers; this text only explains the design.

Models: teacher ``mnist1d_teacher`` (widths 32/64/128, two convs per stage, 97 k parameters, 10
epochs), student ``mnist1d_student`` (8/16/32, one conv per stage, 2.4 k parameters, 100 epochs);
both have stage lengths 40/20/10 so feature methods pair stages one to one. SGD (nesterov, momentum
0.9, lr 0.05, cosine, weight decay 5e-4), batch 64. The teacher's outputs are cached once per seed
(the data is not augmented), so a distillation epoch costs about a student epoch. Method settings
are the published defaults (each in its recipe, ``kdatlas.recipes.<paper id>``), except the two loss weights that are
tied to the feature scales of the papers' own tasks: AT's ``at_weight`` and RKD's distance/angle
weights were chosen by ``benchmarks/select_weights.py`` on held-out training sequences 3000-3999
(never the test set; results/weight_selection.json). AT's published 500 (beta = 1e3) swamps the
cross-entropy on these 40/20/10-position 1-D maps (58% held-out against 84% for the student alone);
the best candidate, 1, leaves the student where it was: attention transfer gives nothing on this
task. RKD's published 25/50 came out best and are kept.

Why the digits canvas looks like this
-------------------------------------
MNIST-1D's 1-D maps give feature methods little to transfer (AT gains nothing there). The 2-D task
pastes scikit-learn's bundled 8x8 digits (1,797 images, no download) at a random offset on a 16x16
canvas: 1,258 training and 539 test images (fixed split, ``data_seed``). Position varies, so the
models must pool over space, and the CNNs have three real stages (16x16, 8x8, 4x4 maps) for hints,
attention maps and relations. The teacher ``digits_teacher`` (32/64/128, two convs per stage, 30
epochs) learns from all 1,258 training images, every student from the first ``n_train``; same
optimiser as MNIST-1D. What was tried (3 seeds each, teacher 98.39 +- 0.21, published settings):

- Student 4/8/16, one conv per stage, 200 images: 30.9 +- 1.1 alone after 60 epochs, 37.6 +- 2.8
  after 200; 8/16/32 with one conv, 200 epochs: 49.7 +- 2.5. Each reaches 100% training accuracy:
  it memorises; KD's gain (+5 to +8) is smaller than its seed spread (std 5-8).
- Student 8/16/32 with two convs per stage (``digits_student``), 100 epochs: on 200 images alone
  71.6 +- 2.0, Hinton KD 85.5 +- 3.1, FitNets 85.3, DKD 85.9, RKD 63.4, AT (weight 500) 14.3.
- Chosen, the same student on 300 images: alone 75.8 +- 1.4, Hinton KD 90.9 +- 0.9, FitNets 92.3,
  DKD 93.6, RKD 81.3, AT (weight 500) 13.6: a 22-point teacher gap, KD ten std above the student
  alone, lower seed spread, and about 6 s per student run on one thread. AT's and RKD's weights on
  this task are then chosen on held-out training images 900-1257 (``benchmarks/select_weights.py``).
  results/bench/digits/ holds the current numbers.
"""
from __future__ import annotations

import ast
import copy
import dataclasses
import hashlib
import inspect
import textwrap
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..atomic import write_json
from . import fewshot, graph, longtail
from .data import Data, load_cifar, load_digits_canvas, load_mnist1d
from .loop import History
from .models import build_model
from .train import evaluate, load_checkpoint, save_checkpoint, seed_everything, train

__all__ = ["Metric", "ACCURACY", "Task", "register_task", "get_task", "TASKS", "harness_code_hash"]

_HARNESS = Path(__file__).resolve().parent


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def source_hash(source: str) -> str:
    """Hash of Python source without its comments, docstrings and layout (the ``ast`` dump), so that
    fixing prose in a file does not invalidate the benchmark runs keyed on it."""
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:12]


def file_hash(path: str | Path) -> str:
    """:func:`source_hash` of a ``.py`` file; the bytes' hash of any other file."""
    path = Path(path)
    if path.suffix == ".py":
        return source_hash(path.read_text(encoding="utf-8"))
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def weights_hash(path: str | Path) -> str:
    """Hash of the tensors of a checkpoint written by ``save_checkpoint`` (names, dtypes, shapes, values).
    Not of the file's bytes: ``torch.save`` names the archive after the file, so the same weights saved
    under two names differ byte for byte."""
    h = hashlib.sha256()
    for name, v in sorted(torch.load(path, map_location="cpu", weights_only=True).items()):
        h.update(f"{name}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    return h.hexdigest()[:12]


def harness_code_hash() -> str:
    """Hash of the harness code every run goes through (data, models, the loop, ``train``)."""
    return _sha({name: file_hash(_HARNESS / name) for name in ("data.py", "models.py", "loop.py", "train.py")})


@dataclass(frozen=True)
class Metric:
    """How a task scores a model: ``fn(model, loader, device) -> float``."""

    name: str
    unit: str
    higher_is_better: bool
    fn: Callable[[nn.Module, DataLoader, torch.device], float]

    def describe(self) -> dict:
        return {"name": self.name, "unit": self.unit, "higher_is_better": self.higher_is_better}


ACCURACY = Metric("top-1 accuracy", "%", True, evaluate)


@dataclass
class Task:
    """Data, models, budget and metric of one task; see the module docstring."""

    name: str
    description: str
    teacher_data: Data                      # what the teacher learns from
    student_data: Data                      # what every student learns from (the same test set)
    make_teacher: Callable[[], nn.Module]
    make_student: Callable[[], nn.Module]
    config: dict                            # every knob (the benchmark's key); budget keys below
    metric: Metric = ACCURACY
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    builder_source: str = ""                # the builder's code, part of the key

    # budget, read from the configuration
    @property
    def epochs(self) -> int:
        return self.config["epochs"]

    @property
    def teacher_epochs(self) -> int:
        return self.config["teacher_epochs"]

    @property
    def lr(self) -> float:
        return self.config["lr"]

    @property
    def batch_size(self) -> int:
        return self.config["batch_size"]

    @property
    def optimizer(self) -> str:
        return self.config.get("optimizer", "sgd")

    @property
    def weight_decay(self) -> float:
        return self.config.get("weight_decay", 5e-4)

    def key(self) -> str:
        """Hash of the configuration, the builder's code and the harness code."""
        return _sha({"name": self.name, "config": self.config, "builder": source_hash(self.builder_source),
                     "task_code": source_hash(inspect.getsource(Task)), "harness": harness_code_hash()})

    def student_loader(self, seed: int = 0) -> DataLoader:
        """A fresh training loader: every call replays the same batch order for ``seed``."""
        return self.student_data.loaders(self.batch_size, seed=seed)[0]

    @property
    def test_loader(self) -> DataLoader:
        return self.student_data.loaders(self.batch_size, seed=0)[1]

    def score(self, model: nn.Module) -> float:
        return self.metric.fn(model, self.test_loader, self.device)

    def new_student(self, seed: int = 1) -> nn.Module:
        """A fresh student with the initial weights of ``seed``."""
        seed_everything(seed)
        return self.make_student()

    def train_teacher(self, seed: int = 0, progress: bool = False) -> tuple[nn.Module, float, float]:
        """Train a teacher from ``seed`` (no cache): ``(teacher in eval mode, score, wall seconds)``."""
        seed_everything(seed)
        teacher = self.make_teacher()
        t0 = time.perf_counter()
        train(teacher, self.teacher_data.loaders(self.batch_size, seed=seed)[0], epochs=self.teacher_epochs,
              lr=self.lr, optimizer=self.optimizer, weight_decay=self.weight_decay, device=self.device,
              progress=progress, desc=f"{self.name} teacher s{seed}")
        wall = time.perf_counter() - t0
        return teacher.eval(), self.score(teacher), wall

    def teacher_path(self, seed: int, cache_dir: str | Path | None = None) -> Path:
        """Where the teacher of ``seed`` is kept: ``cache_dir`` if given; else the repository's shipped
        teacher (``results/teachers``, the benchmark's) when there is one for this key; else the cache."""
        if cache_dir is None:
            shipped = SHIPPED_TEACHERS / self.name / self.key() / f"seed{seed}.pt"
            if shipped.exists() and shipped.with_suffix(".json").exists():
                return shipped
        root = Path(cache_dir) if cache_dir is not None else _default_cache() / "teachers" / self.name
        return root / self.key() / f"seed{seed}.pt"

    def teacher(self, seed: int = 0, cache_dir: str | Path | None = None, progress: bool = True,
                record: dict | None = None) -> tuple[nn.Module, float]:
        """The teacher of ``seed``, trained once and then loaded from ``cache_dir`` (see the module
        docstring); returns it frozen (eval mode, ``requires_grad`` off: a method that trains its
        teacher turns it back on, explicitly) with its score. ``record``, if given, receives the run's
        record (score, wall seconds, whether it was read from the cache)."""
        path = self.teacher_path(seed, cache_dir)
        meta_path = path.with_suffix(".json")
        if path.exists() and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            teacher = load_checkpoint(self.make_teacher(), path).to(self.device).eval().requires_grad_(False)
            if record is not None:
                record.update(meta, cached=True)
            return teacher, meta["score"]
        teacher, score, wall = self.train_teacher(seed, progress=progress)
        save_checkpoint(teacher, path)  # before the record: a record always has its checkpoint
        meta = {"name": "teacher", "seed": seed, "score": score, "wall_s": wall, "task_key": self.key()}
        write_json(meta_path, meta)
        if record is not None:
            record.update(meta, cached=False)
        return teacher.requires_grad_(False), score

    def train_student(self, loss_fn=None, teacher: nn.Module | None = None, seed: int = 1,
                      epochs: int | None = None, lr: float | None = None, student: nn.Module | None = None,
                      progress: bool = False, **train_kwargs) -> tuple[nn.Module, History]:
        """Train a student with ``loss_fn(student_out, teacher_out, targets, progress)`` (None:
        cross-entropy) on the batches of ``seed``; returns it with its History (the metric per epoch).

        ``student=None`` starts a new one from ``seed``; pass a student to continue training it.
        The teacher's outputs are cached when the inputs are not augmented. Extra keyword arguments
        go to :func:`~kdatlas.harness.train.train`."""
        if student is None:
            student = self.new_student(seed)
        train_kwargs.setdefault("cache_teacher", teacher is not None and not self.student_data.augmented)
        train_kwargs.setdefault("optimizer", self.optimizer)
        train_kwargs.setdefault("weight_decay", self.weight_decay)
        history = train(student, self.student_loader(seed), epochs=epochs or self.epochs,
                        lr=self.lr if lr is None else lr, loss_fn=loss_fn, teacher=teacher,
                        test_loader=self.test_loader, metric=self.metric.fn, device=self.device,
                        progress=progress, **train_kwargs)
        return student, history


# The benchmark's teachers, committed (results/teachers/<task>/<task key>/seed<s>.pt + .json): every
# machine distills from the same weights. A teacher retrained on another CPU is not the same teacher
# (seen: the MNIST-1D teacher of seed 0 scored 98.9 on one AMD EPYC VM and 98.6 on another, with the
# same key, torch and thread count; the digits teachers' mean moved from 98.33 to 98.03).
SHIPPED_TEACHERS = Path(__file__).resolve().parents[3] / "results" / "teachers"


def _default_cache() -> Path:
    return Path(os.environ.get("KDATLAS_CACHE") or Path.home() / ".cache" / "kdatlas")


# --------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class _Entry:
    builder: Callable[[dict, bool], Task]
    defaults: dict
    quick: dict
    uses: tuple = ()  # harness modules the builder relies on beyond data/models/loop/train (keyed too)


TASKS: dict[str, _Entry] = {}


def register_task(name: str, defaults: dict, quick: dict | None = None, uses: tuple = ()):
    """Register ``builder(config, holdout) -> Task`` under ``name`` (a decorator). ``uses``: modules
    the builder relies on whose code is not in :func:`harness_code_hash` (their source joins the key)."""
    def wrap(builder: Callable[[dict, bool], Task]):
        if name in TASKS:
            raise ValueError(f"task {name!r} is already registered")
        TASKS[name] = _Entry(builder, copy.deepcopy(defaults), dict(quick or {}), tuple(uses))
        return builder
    return wrap


def get_task(name: str, *, quick: bool = False, holdout: bool = False, single_thread: bool = True,
             **overrides) -> Task:
    """Build task ``name`` (see the module docstring). ``single_thread``: on the CPU the embedded
    models are tiny and one thread is fastest (two OpenMP threads per process on a shared 2-core
    machine were measured 10-50x slower on small convolutions): sets ``torch.set_num_threads(1)``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; registered: {', '.join(sorted(TASKS))}")
    entry = TASKS[name]
    unknown = sorted(set(overrides) - set(entry.defaults))
    if unknown:
        raise ValueError(f"task {name!r} has no setting {', '.join(map(repr, unknown))}; "
                         f"its settings: {', '.join(sorted(entry.defaults))}")
    config = copy.deepcopy(entry.defaults) | (entry.quick if quick else {}) | overrides
    if holdout:
        config["holdout"] = True
    if single_thread:
        torch.set_num_threads(1)
    task = entry.builder(config, holdout)
    task.builder_source = inspect.getsource(entry.builder) + "".join("\n" + inspect.getsource(m) for m in entry.uses)
    if quick:
        task.description += " (quick mode: a CI-sized budget; the numbers mean little)"
    return task


def _held_out(data: Data, lo: int, hi: int, n_train: int) -> Data:
    """``data`` with its test set replaced by training samples [lo, hi) that no student sees."""
    x, y, _ = data.train.tensors
    if not n_train <= lo < hi <= len(x):
        raise ValueError(f"holdout [{lo}, {hi}) must lie within [{n_train}, {len(x)}] (after the students' "
                         f"{n_train} training samples)")
    return dataclasses.replace(data, test=TensorDataset(x[lo:hi], y[lo:hi], torch.arange(hi - lo)))


def _first(data: Data, n: int | None) -> Data:
    """``data`` with only its first ``n`` training samples (a label budget)."""
    if n is None:
        return data
    x, y, _ = data.train.tensors
    if n > len(x):
        raise ValueError(f"n_train={n} exceeds the {len(x)} training samples of {data.name}")
    return dataclasses.replace(data, train=TensorDataset(x[:n], y[:n], torch.arange(n)))


_BUDGET = {"lr": 0.05, "batch_size": 64, "optimizer": "sgd", "weight_decay": 5e-4}

# MNIST-1D, the benchmark's first task: why it looks like this is in the module docstring.
MNIST1D = {"num_samples": 5000, "train_split": 0.8, "n_train": 500, "data_seed": 0, "holdout_range": [3000, 4000],
           "teacher": "mnist1d_teacher", "student": "mnist1d_student", "teacher_epochs": 10, "epochs": 100,
           **_BUDGET}


@register_task("mnist1d", MNIST1D, quick={"num_samples": 1500, "n_train": 200, "teacher_epochs": 3, "epochs": 8})
def _mnist1d(c: dict, holdout: bool) -> Task:
    teacher_data = load_mnist1d(seed=c["data_seed"], num_samples=c["num_samples"], train_split=c["train_split"])
    student_data = _first(teacher_data, c["n_train"])  # generated once; the students get its first n_train
    if holdout:
        teacher_data = _held_out(teacher_data, *c["holdout_range"], c["n_train"])
        student_data = dataclasses.replace(student_data, test=teacher_data.test)
    return Task("mnist1d", f"MNIST-1D generated offline: the teacher learns from {len(teacher_data.train)} "
                           f"labelled sequences, every student from the first {len(student_data.train)} of them; "
                           f"{len(student_data.test)} {'held-out training' if holdout else 'test'} sequences",
                teacher_data, student_data, lambda: build_model(c["teacher"], num_classes=10),
                lambda: build_model(c["student"], num_classes=10), c)


# The 2-D image task: scikit-learn's bundled 8x8 digits, each pasted at a random offset on a 16x16
# canvas, so CNN feature maps have spatial structure (16x16, 8x8, 4x4 stages) and attention/hint
# methods have something to transfer. Why these sizes: see the module docstring.
DIGITS = {"canvas": 16, "data_seed": 0, "test_fraction": 0.3, "n_train": 300, "holdout_range": [900, 1258],
          "teacher": "digits_teacher", "student": "digits_student", "teacher_epochs": 30, "epochs": 100,
          **_BUDGET}


@register_task("digits", DIGITS, quick={"teacher_epochs": 4, "epochs": 6})
def _digits(c: dict, holdout: bool) -> Task:
    teacher_data = load_digits_canvas(canvas=c["canvas"], seed=c["data_seed"], test_fraction=c["test_fraction"])
    student_data = _first(teacher_data, c["n_train"])
    if holdout:
        teacher_data = _held_out(teacher_data, *c["holdout_range"], c["n_train"])
        student_data = dataclasses.replace(student_data, test=teacher_data.test)
    return Task("digits", f"8x8 digits on a {c['canvas']}x{c['canvas']} canvas at random offsets: the teacher "
                          f"learns from {len(teacher_data.train)} labelled images, every student from the first "
                          f"{len(student_data.train)}; {len(student_data.test)} "
                          f"{'held-out training' if holdout else 'test'} images",
                teacher_data, student_data, lambda: build_model(c["teacher"], num_classes=10),
                lambda: build_model(c["student"], num_classes=10), c)


# Paper scale: the CRD/RepDistiller protocol (downloads CIFAR-100 on first use; a GPU is advised).
CIFAR100 = {"data_root": "data", "teacher": "resnet32x4", "student": "resnet8x4", "teacher_epochs": 240,
            "epochs": 240, **_BUDGET}


@register_task("cifar100", CIFAR100)
def _cifar100(c: dict, holdout: bool) -> Task:
    if holdout:
        raise ValueError("task 'cifar100' has no held-out split")
    from .train import default_device
    data = load_cifar(c["data_root"], name="cifar100", download=True)
    return Task("cifar100", f"CIFAR-100, {c['teacher']} -> {c['student']}, {c['epochs']} epochs "
                            "(the CRD/RepDistiller protocol)", data, data,
                lambda: build_model(c["teacher"], num_classes=100), lambda: build_model(c["student"], num_classes=100),
                c, device=default_device())


# Long-tailed digits (SSD, Li et al. 2021; batch 3): the digits canvas's training images cut to the
# exponential profile of CIFAR-LT (Cui et al. 2019), n_max = 100 and imbalance 10: 100, 77, 59, 46, 35,
# 27, 21, 16, 12, 10 images for digits 0..9 (403 in all), tested on the digits task's 539 test images (47-66 per digit, not tailed). The
# teacher learns from the same long-tailed images (the protocol of the long-tail papers, which train
# every model on the long-tailed set; there is no larger labelled set to hide). ImageNet-LT's shot
# groups (many > 100 images, few < 20) are scaled to these counts: many > 40 (digits 0-3), medium
# 20-40 (4-6), few < 20 (7-9); ``longtail.shot_accuracy(model, task.test_loader, task_groups(task))``.
# Held out: the training images the profile leaves out, the same number per class (the fewest left, at
# most 20), so selection is on a balanced set as the test is.
DIGITS_LT = {"canvas": 16, "data_seed": 0, "test_fraction": 0.3, "n_max": 100, "imbalance": 10.0, "many": 40,
             "few": 20, "teacher": "digits_teacher", "student": "digits_student", "teacher_epochs": 30,
             "epochs": 100, **_BUDGET}


def task_groups(task: Task) -> dict[str, list[int]]:
    """The many/medium/few-shot classes of a long-tailed task (``digits_lt``), from its configuration."""
    c = task.config
    return longtail.shot_groups(longtail.long_tail_counts(c["n_max"], c["imbalance"], 10), c["many"], c["few"])


@register_task("digits_lt", DIGITS_LT, quick={"teacher_epochs": 4, "epochs": 6}, uses=(longtail,))
def _digits_lt(c: dict, holdout: bool) -> Task:
    full = load_digits_canvas(canvas=c["canvas"], seed=c["data_seed"], test_fraction=c["test_fraction"])
    x, y, _ = full.train.tensors
    counts = longtail.long_tail_counts(c["n_max"], c["imbalance"], full.num_classes)
    keep = longtail.long_tail_indices(y, counts)
    data = dataclasses.replace(full, train=TensorDataset(x[keep], y[keep], torch.arange(len(keep))))
    if holdout:
        rest = torch.ones(len(y), dtype=torch.bool)
        rest[keep] = False
        left = [(rest & (y == k)).nonzero().flatten() for k in range(full.num_classes)]
        per_class = min(20, *(len(i) for i in left))
        idx = torch.cat([i[:per_class] for i in left]).sort().values
        data = dataclasses.replace(data, test=TensorDataset(x[idx], y[idx], torch.arange(len(idx))))
    return Task("digits_lt", f"8x8 digits on a {c['canvas']}x{c['canvas']} canvas, long-tailed: "
                             f"{'/'.join(map(str, counts))} training images of digits 0..9 (imbalance "
                             f"{c['imbalance']:g}) for the teacher and every student; "
                             + (f"{len(data.test)} held-out training images, {per_class} per digit" if holdout
                                else f"the {len(data.test)} test images of the digits task (every digit, not tailed)"),
                data, data, lambda: build_model(c["teacher"], num_classes=10),
                lambda: build_model(c["student"], num_classes=10), c)


# Few-shot digits (SKD, Rajasegaran et al. 2020; batch 3), the RFS protocol at toy size: teacher and
# students learn 6-way classification of the base digits 0-5 (the teacher from all 770 base training
# canvases, every student from the first ``n_train``); the score is the mean accuracy of 4-way 5-shot
# episodes (15 queries per class, ``episodes`` of them, seed ``episode_seed``: every model meets the
# same episodes) on the novel digits 6-9, all 714 canvases of the training and test splits, none ever
# trained on. The per-epoch metric uses the nearest normalised class mean ("prototype", ~10 ms per
# evaluation); ``classifier="logistic"`` is the papers' logistic regression on normalised embeddings
# (L-BFGS per episode: seconds per evaluation), for final reports. With ten digits there is no third
# class split for validation: ``holdout=True`` is refused.
DIGITS_FEWSHOT = {"canvas": 16, "data_seed": 0, "test_fraction": 0.3, "base_classes": 6, "n_train": 300,
                  "n_way": 4, "k_shot": 5, "n_query": 15, "episodes": 200, "episode_seed": 0,
                  "classifier": "prototype", "teacher": "digits_teacher", "student": "digits_student",
                  "teacher_epochs": 30, "epochs": 100, **_BUDGET}


@register_task("digits_fewshot", DIGITS_FEWSHOT, quick={"teacher_epochs": 4, "epochs": 6, "episodes": 50},
               uses=(fewshot,))
def _digits_fewshot(c: dict, holdout: bool) -> Task:
    if holdout:
        raise ValueError("task 'digits_fewshot' has no held-out class split (ten digits: 6 base, 4 novel)")
    full = load_digits_canvas(canvas=c["canvas"], seed=c["data_seed"], test_fraction=c["test_fraction"])
    (x, y, _), (xt, yt, _) = full.train.tensors, full.test.tensors
    nb = c["base_classes"]
    base = (y < nb).nonzero().flatten()
    novel_x, novel_y = torch.cat([x[y >= nb], xt[yt >= nb]]), torch.cat([y[y >= nb], yt[yt >= nb]])
    novel = TensorDataset(novel_x, novel_y, torch.arange(len(novel_y)))
    teacher_data = dataclasses.replace(full, train=TensorDataset(x[base], y[base], torch.arange(len(base))),
                                       test=novel, num_classes=nb)
    student_data = _first(teacher_data, c["n_train"])
    metric = Metric(f"{c['n_way']}-way {c['k_shot']}-shot accuracy", "%", True,
                    lambda model, loader, device: fewshot.fewshot_score(
                        model, loader, n_way=c["n_way"], k_shot=c["k_shot"], n_query=c["n_query"],
                        n_episodes=c["episodes"], seed=c["episode_seed"], classifier=c["classifier"],
                        device=device)[0])
    return Task("digits_fewshot", f"8x8 digits on a {c['canvas']}x{c['canvas']} canvas, few-shot: base digits "
                                  f"0-{nb - 1} ({len(base)} training canvases for the teacher, the first "
                                  f"{len(student_data.train)} for every student), scored on {c['episodes']} "
                                  f"{c['n_way']}-way {c['k_shot']}-shot episodes of the {len(novel_y)} canvases "
                                  f"of the novel digits {nb}-9",
                teacher_data, student_data, lambda: build_model(c["teacher"], num_classes=nb),
                lambda: build_model(c["student"], num_classes=nb), c, metric=metric)


# The k-NN digits graph (GNN-SD, Chen et al. 2021; batch 3; batch 5 reuses it): 1,797 nodes, the 8x8
# digits' pixels as features, 10 nearest neighbours by cosine similarity, symmetrised (kdatlas.harness.graph).
# Transductive, as in the GCN paper: every model sees the whole graph, labels only on its training
# nodes. A fixed node permutation (``data_seed``): the first 500 nodes are the test set, the next 300
# the held-out set, the remaining 997 the teacher's labelled nodes; every student learns from the first
# ``per_class`` of those per digit. Teacher GCN 64-64, student GCN 16 (Kipf & Welling's width), dropout
# 0.5, 200 epochs, Adam-type optimiser at lr 0.01 with weight decay 5e-4 (the GCN paper's; AdamW's
# decoupled decay here, the harness's optimiser); one full-graph step per epoch (~0.1 s per student on
# one thread). Measured (student seeds 1-3, teacher seed 0: 98.4 on the test nodes): with Planetoid's 20
# labels per digit the student alone reaches 95.4-95.6 (seeds 1-2), too close to the teacher to show
# anything; 5 per digit: 92.0-92.8; 3 per digit: 82.8-85.8, a 14-point gap as on MNIST-1D: chosen.
DIGITS_GRAPH = {"k": 10, "data_seed": 0, "n_test": 500, "n_holdout": 300, "per_class": 3,
                "teacher_hidden": [64, 64], "student_hidden": [16], "dropout": 0.5, "teacher_epochs": 200,
                "epochs": 200, "lr": 0.01, "batch_size": 1024, "optimizer": "adamw", "weight_decay": 5e-4}


@register_task("digits_graph", DIGITS_GRAPH, quick={"teacher_epochs": 20, "epochs": 20}, uses=(graph,))
def _digits_graph(c: dict, holdout: bool) -> Task:
    x, y, a_hat = graph.load_digits_graph(c["k"])
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(c["data_seed"]))
    test, held = perm[:c["n_test"]], perm[c["n_test"]:c["n_test"] + c["n_holdout"]]
    labelled = perm[c["n_test"] + c["n_holdout"]:]
    few = torch.cat([labelled[y[labelled] == k][:c["per_class"]] for k in range(10)]).sort().values

    def nodes(ids):
        return TensorDataset(ids, y[ids], torch.arange(len(ids)))

    scored = nodes(held if holdout else test)
    teacher_data = Data(nodes(labelled), scored, 10, (), "digits_graph")
    student_data = Data(nodes(few), scored, 10, (), "digits_graph")
    return Task("digits_graph", f"k-NN graph of the 1,797 8x8 digits (k={c['k']}, cosine, symmetric): the "
                                f"teacher GCN learns from {len(labelled)} labelled nodes, every student from "
                                f"{len(few)} ({c['per_class']} per digit); {len(scored)} "
                                f"{'held-out' if holdout else 'test'} nodes",
                teacher_data, student_data,
                lambda: graph.GCN(x, a_hat, tuple(c["teacher_hidden"]), 10, c["dropout"]),
                lambda: graph.GCN(x, a_hat, tuple(c["student_hidden"]), 10, c["dropout"]), c)
