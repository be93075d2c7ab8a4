r"""Recipes: how the harness runs each paper's implementation, one module per paper.

``kdatlas/recipes/<paper_id>.py`` defines ``RECIPE = Recipe(...)``: the paper's settings (each
setting lives here and nowhere else: the benchmark, ``benchmarks/*.py`` and the notebook read it),
the tasks it runs on (with per-task overrides of the settings), and one of

- ``phases(ctx, settings) -> [Phase, ...]``: the common shape, one student trained in one or more
  phases, each with a loss ``loss(student_out, teacher_out, targets, progress) -> dict`` that calls
  the implementation file, a share of the student's epochs and optional parameters/optimizer;
- ``run(ctx, settings) -> (student, History)``: methods of another shape (peers, generators,
  synthetic data, alternating optimisers), written on :func:`kdatlas.harness.loop.loop`;
- ``skip="reason"``: nothing to benchmark (a survey, a method for another kind of data).

Implementation files stay torch-only and copyable; recipes are the glue and import them. Adding a
method adds its implementation, recipe, test, notebook and YAML: nothing in ``kdatlas.bench``.

    from kdatlas.recipes import get_recipe, run_recipe
    recipe = get_recipe("hinton2015distilling")
    student, history = run_recipe(recipe, task, teacher, seed=1)
"""
from __future__ import annotations

import copy
import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..harness.loop import History
from ..harness.tasks import Task, file_hash
from ..harness.train import Outputs, TeacherCache, train

__all__ = ["Phase", "Recipe", "Context", "ce", "probe", "get_recipe", "all_recipes", "run_recipe",
           "make_context", "phase_epochs", "BASELINE", "recipe_code_hash"]

_HERE = Path(__file__).resolve().parent


def ce(out: Outputs, targets: Tensor) -> Tensor:
    """Cross-entropy on the logits: the label term of most recipes (named "ce" in their dicts)."""
    return F.cross_entropy(out.logits, targets)


@dataclass(frozen=True)
class Phase:
    """One call of ``train`` on the student: a loss, its share of the epochs and overrides."""

    name: str
    loss: Callable | None                 # (s, t, y, progress) -> dict[str, Tensor]; None: cross-entropy
    share: float = 1.0                    # of the task's student epochs; the last phase takes the rest
    params: list | None = None            # None: the student's + the modules'
    modules: tuple = ()                   # nn.Modules the loss owns (regressors, heads, banks)
    optimizer: str | None = None          # None: the task's optimizer and learning rate
    lr: float | None = None


@dataclass
class Context:
    """What a recipe may know about a run."""

    task: Task
    seed: int
    student: nn.Module
    teacher: nn.Module | None
    student_features: list      # the student's stage maps on two training inputs (shapes, not values)
    teacher_features: list      # the teacher's, same inputs ([] without a teacher)
    n_data: int                 # the students' training-set size (memory banks)
    steps_per_epoch: int
    epochs: int                 # the student's budget

    @property
    def device(self) -> torch.device:
        return self.task.device


@dataclass(frozen=True)
class Recipe:
    """See the module docstring. ``tasks`` maps the tasks the method runs on to their overrides."""

    paper_id: str
    settings: dict = field(default_factory=dict)
    phases: Callable[[Context, dict], list] | None = None
    run: Callable[[Context, dict], tuple] | None = None
    skip: str | None = None
    tasks: dict | None = field(default_factory=lambda: {"mnist1d": {}, "digits": {}})  # None: any task
    needs_teacher: bool = True

    def __post_init__(self):
        if sum(x is not None for x in (self.phases, self.run, self.skip)) != 1:
            raise ValueError(f"recipe {self.paper_id}: give exactly one of phases=, run= or skip=")
        for task, over in (self.tasks or {}).items():
            unknown = sorted(set(over) - set(self.settings))
            if unknown:
                raise ValueError(f"recipe {self.paper_id}: tasks[{task!r}] overrides unknown setting(s) "
                                 f"{', '.join(unknown)}; settings: {', '.join(sorted(self.settings))}")

    def settings_for(self, task: str, **overrides) -> dict:
        """The settings on ``task``: the defaults, the task's overrides, then ``overrides``."""
        if self.tasks is not None and task not in self.tasks:
            raise ValueError(f"recipe {self.paper_id} does not run on task {task!r} "
                             f"(its tasks: {', '.join(self.tasks) or 'none'})")
        unknown = sorted(set(overrides) - set(self.settings))
        if unknown:
            raise ValueError(f"recipe {self.paper_id} has no setting {', '.join(unknown)}")
        return copy.deepcopy(self.settings) | (self.tasks or {}).get(task, {}) | overrides

    @property
    def module_path(self) -> Path:
        return _HERE / f"{self.paper_id}.py"

    def code_hash(self) -> dict:
        """Hashes of the code a run of this recipe goes through (keys the benchmark's runs)."""
        impl = _HERE.parent / "implementations" / f"{self.paper_id}.py"
        return {"implementation": file_hash(impl) if impl.exists() else None,
                "recipe": file_hash(self.module_path) if self.module_path.exists() else None,
                "runner": recipe_code_hash()}


def recipe_code_hash() -> str:
    return file_hash(__file__)


# --------------------------------------------------------------------------- discovery
def get_recipe(paper_id: str) -> Recipe:
    """``kdatlas.recipes.<paper_id>.RECIPE``; a clear error when the module or RECIPE is missing."""
    try:
        mod = importlib.import_module(f"{__name__}.{paper_id}")
    except ModuleNotFoundError as e:
        if e.name == f"{__name__}.{paper_id}":
            raise LookupError(f"no recipe for {paper_id}: src/kdatlas/recipes/{paper_id}.py does not exist") from None
        raise
    recipe = getattr(mod, "RECIPE", None)
    if not isinstance(recipe, Recipe):
        raise LookupError(f"src/kdatlas/recipes/{paper_id}.py defines no RECIPE = Recipe(...)")
    if recipe.paper_id != paper_id:
        raise LookupError(f"src/kdatlas/recipes/{paper_id}.py: RECIPE.paper_id is {recipe.paper_id!r}")
    return recipe


def all_recipes() -> dict[str, Recipe]:
    """Every recipe module in this package, by paper id (sorted)."""
    names = sorted(m.name for m in pkgutil.iter_modules([str(_HERE)]) if not m.name.startswith("_"))
    return {n: get_recipe(n) for n in names}


# --------------------------------------------------------------------------- running
@torch.no_grad()
def probe(model: nn.Module, x: Tensor) -> list:
    """``model.forward_features(x)[0]`` in eval mode (BN statistics untouched), mode restored."""
    was = model.training
    feats, _ = model.eval().forward_features(x)
    model.train(was)
    return feats


def make_context(task: Task, teacher: nn.Module | None, seed: int, student: nn.Module | None = None) -> Context:
    """The student of ``seed`` (same initial weights as the baseline's) and what recipes may know."""
    student = task.new_student(seed) if student is None else student
    student.to(task.device)
    data = task.student_data.train
    x = torch.stack([data[i][0] for i in range(2)]).to(task.device)
    return Context(task, seed, student, teacher, probe(student, x), probe(teacher, x) if teacher is not None else [],
                   len(data), len(task.student_loader(seed)), task.epochs)


def phase_epochs(shares: list[float], epochs: int) -> list[int]:
    """Epochs per phase: round(epochs * share) (at least 1) for all but the last, which takes the rest."""
    out = [max(1, round(epochs * s)) for s in shares[:-1]]
    return out + [max(1, epochs - sum(out))]


def run_recipe(recipe: Recipe, task: Task, teacher: nn.Module | None, seed: int, settings: dict | None = None,
               track: bool = False, progress: bool = False, student: nn.Module | None = None) -> tuple[nn.Module, History]:
    """Train the student of ``seed`` with ``recipe`` on ``task``; returns it and its History.

    ``settings``: overrides of the recipe's settings on this task. ``track``: score the student on
    the task's test loader after every epoch (``History.test_acc``; notebooks plot it; the benchmark
    scores only the last epoch). The teacher's outputs are cached when the inputs are not augmented."""
    if recipe.skip is not None:
        raise ValueError(f"{recipe.paper_id} is not run: {recipe.skip}")
    if recipe.needs_teacher and teacher is None:
        raise ValueError(f"{recipe.paper_id} needs a teacher")
    s = recipe.settings_for(task.name, **(settings or {}))
    ctx = make_context(task, teacher, seed, student)
    if recipe.run is not None:
        return recipe.run(ctx, s)
    phases = recipe.phases(ctx, s)
    t_in = teacher
    if teacher is not None and not task.student_data.augmented:
        t_in = TeacherCache.build(teacher, task.student_data.train, device=task.device)
    hist = History()
    for ph, epochs in zip(phases, phase_epochs([p.share for p in phases], task.epochs)):
        h = train(ctx.student, task.student_loader(seed), epochs=epochs, lr=task.lr if ph.lr is None else ph.lr,
                  optimizer=ph.optimizer or task.optimizer, weight_decay=task.weight_decay, loss_fn=ph.loss,
                  teacher=t_in if ph.loss is not None else None, params=ph.params, extra_modules=ph.modules,
                  test_loader=task.test_loader if track else None, metric=task.metric.fn, device=task.device,
                  progress=progress, desc=f"{recipe.paper_id} {ph.name} s{seed}")
        hist.extend(h, ph.name)
    return ctx.student, hist


def _baseline_phases(ctx: Context, s: dict) -> list:
    return [Phase("ce", None)]


# The student alone: the reference every method is compared with (cross-entropy on the labels).
BASELINE = Recipe("baseline", phases=_baseline_phases, needs_teacher=False, tasks=None)
