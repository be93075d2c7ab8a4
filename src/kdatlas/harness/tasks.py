r"""The notebooks' shared set-up: one call gives the data, the models and the budget.

``embedded_task()`` is the benchmark's task (``kdatlas bench``): MNIST-1D generated offline, a teacher
trained on all 4,000 labelled training sequences, students (alone or distilled) on the first 500 of
them, tested on the 1,000 test sequences. The teacher has seen eight times more labelled data than the
student, so what it says about the student's own 500 inputs is worth having: distillation is
visible (see results/benchmark.json for the seed-averaged numbers).

``embedded_task(quick=True)`` shrinks the budget for CI (``KDATLAS_QUICK=1``): the code paths are the
same, the numbers mean little. ``embedded_task(full_size=True)`` is the paper-scale run the
literature uses since CRD: CIFAR-100, ResNet32x4 teacher -> ResNet8x4 student, 240 epochs, batch 64,
lr 0.05 (downloads CIFAR-100; a GPU is advised).

    task = embedded_task(quick=QUICK, full_size=FULL_SIZE)
    teacher, teacher_acc = task.train_teacher()
    alone, h_alone = task.train_student()                            # cross-entropy only
    kd, h_kd = task.train_student(loss_fn=my_loss, teacher=teacher)  # same seed, same batches
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.utils.data import TensorDataset

from .data import Data, load_cifar, load_mnist1d
from .models import mnist1d_student, mnist1d_teacher, resnet8x4, resnet32x4
from .train import History, default_device, evaluate, seed_everything, train

__all__ = ["Task", "embedded_task", "EMBEDDED_BUDGET"]

# The benchmark's budget (kdatlas.bench.DEFAULT_CONFIG; a test keeps the two equal).
EMBEDDED_BUDGET = {"num_samples": 5000, "n_train": 500, "teacher_epochs": 10, "student_epochs": 100,
                   "lr": 0.05, "batch_size": 64}
QUICK_BUDGET = {"num_samples": 1500, "n_train": 200, "teacher_epochs": 3, "student_epochs": 8}


@dataclass
class Task:
    """Data, models and budget of one notebook run; see the module docstring."""

    name: str
    teacher_data: Data      # what the teacher learns from
    student_data: Data      # what every student learns from (same test set)
    make_teacher: Callable[[], nn.Module]
    make_student: Callable[[], nn.Module]
    teacher_epochs: int
    student_epochs: int
    lr: float
    batch_size: int
    device: torch.device
    description: str

    def student_loader(self, seed: int = 0):
        """A fresh training loader: every call replays the same batch order for ``seed``."""
        return self.student_data.loaders(self.batch_size, seed=seed)[0]

    @property
    def test_loader(self):
        return self.student_data.loaders(self.batch_size, seed=0)[1]

    def train_teacher(self, seed: int = 0, progress: bool = False) -> tuple[nn.Module, float]:
        """Train the teacher from ``seed``; returns it in eval mode with its test accuracy (%)."""
        seed_everything(seed)
        teacher = self.make_teacher()
        train(teacher, self.teacher_data.loaders(self.batch_size, seed=seed)[0], epochs=self.teacher_epochs,
              lr=self.lr, device=self.device, progress=progress, desc="teacher")
        return teacher.eval(), evaluate(teacher, self.test_loader, self.device)

    def new_student(self, seed: int = 1) -> nn.Module:
        """A fresh student with the initial weights of ``seed`` (what ``train_student(seed=...)`` starts from)."""
        seed_everything(seed)
        return self.make_student()

    def train_student(self, loss_fn=None, teacher: nn.Module | None = None, seed: int = 1,
                      epochs: int | None = None, lr: float | None = None, student: nn.Module | None = None,
                      progress: bool = False, **train_kwargs) -> tuple[nn.Module, History]:
        """Train a student with ``loss_fn(student_out, teacher_out, targets)`` (None: cross-entropy) on
        the batches of ``seed``; returns it with its History.

        ``student=None`` starts a new one from ``seed`` (same initial weights for every call with that
        seed); pass a student to continue training it (a second stage, e.g. FitNets), which also lets
        ``params=`` name its layers. ``epochs``/``lr`` default to the task's budget. The teacher's outputs
        are cached when the inputs are not augmented. Extra keyword arguments go to ``train``."""
        if student is None:
            student = self.new_student(seed)
        train_kwargs.setdefault("cache_teacher", teacher is not None and not self.student_data.augmented)
        history = train(student, self.student_loader(seed), epochs=epochs or self.student_epochs,
                        lr=self.lr if lr is None else lr, loss_fn=loss_fn, teacher=teacher,
                        test_loader=self.test_loader, device=self.device, progress=progress, **train_kwargs)
        return student, history

def embedded_task(quick: bool = False, full_size: bool = False, data_root: str = "data",
                  single_thread: bool = True) -> Task:
    """The notebooks' task (see the module docstring).

    ``single_thread``: on the CPU the embedded models are tiny, and one thread is fastest (two OpenMP
    threads per process on a shared 2-core machine were measured 10-50x slower on small convolutions),
    so this sets ``torch.set_num_threads(1)``; pass False to keep the process's setting.
    """
    if full_size:
        data = load_cifar(data_root, name="cifar100", download=True)
        return Task("cifar100", data, data, lambda: resnet32x4(num_classes=100), lambda: resnet8x4(num_classes=100),
                    240, 240, 0.05, 64, default_device(),
                    "CIFAR-100, ResNet32x4 -> ResNet8x4, 240 epochs (the CRD/RepDistiller protocol)")
    if single_thread:
        torch.set_num_threads(1)
    b = EMBEDDED_BUDGET | (QUICK_BUDGET if quick else {})
    kw = dict(seed=0, num_samples=b["num_samples"], train_split=0.8)
    teacher_data = load_mnist1d(**kw)  # generated once (seconds); the students get its first n_train
    x, y, _ = teacher_data.train.tensors
    n = b["n_train"]
    student_data = dataclasses.replace(teacher_data, train=TensorDataset(x[:n], y[:n], torch.arange(n)))
    return Task("mnist1d", teacher_data, student_data, lambda: mnist1d_teacher(num_classes=10),
                lambda: mnist1d_student(num_classes=10), b["teacher_epochs"], b["student_epochs"], b["lr"],
                b["batch_size"], torch.device("cpu"),
                f"MNIST-1D: teacher on {len(teacher_data.train)} labelled sequences, students on the first "
                f"{len(student_data.train)}, {len(student_data.test)} test sequences"
                + (" (quick mode: a CI-sized budget)" if quick else ""))
