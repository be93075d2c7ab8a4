r"""Small helpers the notebooks share, so that their set-up is a few lines and the rest is the paper.

    QUICK = setup()                                    # KDATLAS_QUICK=1 (CI): a CI-sized budget
    task = get_task("mnist1d", quick=QUICK)
    teacher, teacher_score = task.teacher(seed=0)      # trained once, then read from the disk cache
    res = compare(task, teacher, "hinton2015distilling", seeds=(1, 2, 3), teacher_score=teacher_score)
    plot_curves(res)                                   # the task's metric per epoch, one line per method
    table(res)                                         # mean +- std per method, parameter counts

``compare`` trains the student alone (:data:`kdatlas.recipes.BASELINE`) and each method with its
recipe's settings on ``task`` (``run_recipe``, tracking the metric every epoch), on the same seeds:
a seed fixes the student's initial weights and its batch order, so the rows differ only by the
method. ``watch(recipe)`` keeps what a run's phases own (regressors, embedding heads, memory banks)
for the plots that look inside a method; it can also call a function after every loss evaluation.
Nothing here holds a method setting: those live in ``kdatlas.recipes.<paper id>``.
"""
from __future__ import annotations

import dataclasses
import html
import math
import os
import statistics
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from torch import nn

from .loop import History
from .tasks import Task

__all__ = ["setup", "n_params", "Run", "Comparison", "compare", "watch", "plot_curves", "table", "Table",
           "BASELINE_LABEL", "eval_examples", "to_teacher", "plot_terms", "class_sorted", "show_matrices"]

BASELINE_LABEL = "student alone"


def setup(quick: bool | None = None) -> bool:
    """Whether to run quick: ``quick`` if given, else ``KDATLAS_QUICK=1`` in the environment (CI)."""
    if quick is not None:
        return bool(quick)
    return os.environ.get("KDATLAS_QUICK", "").strip().lower() in ("1", "true", "yes")


def n_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``model``."""
    return sum(p.numel() for p in model.parameters())


@dataclass
class Run:
    """One trained student: its label, seed, model, History (metric per epoch) and final score."""

    label: str
    seed: int
    model: nn.Module
    history: History
    score: float


@dataclass
class Comparison:
    """What :func:`compare` returns: the runs of each label (the student alone first), by seed."""

    task: Task
    runs: dict[str, list[Run]] = field(default_factory=dict)
    teacher: nn.Module | None = None
    teacher_score: float | None = None

    @property
    def labels(self) -> list[str]:
        return list(self.runs)

    def scores(self, label: str) -> list[float]:
        return [r.score for r in self.runs[label]]

    def histories(self, label: str) -> list[History]:
        return [r.history for r in self.runs[label]]

    def model(self, label: str, seed: int | None = None) -> nn.Module:
        """The student of ``label`` trained from ``seed`` (default: the first seed)."""
        for r in self.runs[label]:
            if seed is None or r.seed == seed:
                return r.model
        raise KeyError(f"no run of {label!r} with seed {seed}")

    def summary(self, label: str) -> tuple[float, float]:
        """(mean, sample std) of the final scores of ``label`` (std 0 for one seed)."""
        s = self.scores(label)
        return statistics.fmean(s), (statistics.stdev(s) if len(s) > 1 else 0.0)


def _as_methods(methods) -> dict:
    """``"id"`` / Recipe / a list of them / a ``{label: id or Recipe}`` dict -> ``{label: Recipe}``."""
    from ..recipes import Recipe, get_recipe

    if isinstance(methods, (str, Recipe)):
        methods = [methods]
    if not isinstance(methods, Mapping):
        methods = {(m if isinstance(m, str) else m.paper_id): m for m in methods}
    return {label: (get_recipe(m) if isinstance(m, str) else m) for label, m in methods.items()}


def compare(task: Task, teacher: nn.Module | None, methods, seeds: Iterable[int] = (1,), *,
            baseline: bool = True, teacher_score: float | None = None, progress: bool = False) -> Comparison:
    """Train the student alone (if ``baseline``) and every method on ``task``, once per seed.

    ``methods``: a recipe id, a :class:`~kdatlas.recipes.Recipe`, a list of them, or a dict
    ``{label: id or Recipe}`` (labels for the plots and tables; ids label themselves). Each run goes
    through ``run_recipe(recipe, task, teacher, seed, track=True)``: the recipe's own settings on
    this task, the metric on the test set after every epoch."""
    from ..recipes import BASELINE, run_recipe

    todo = ({BASELINE_LABEL: BASELINE} if baseline else {}) | _as_methods(methods)
    out = Comparison(task, teacher=teacher, teacher_score=teacher_score)
    for label, recipe in todo.items():
        for seed in seeds:
            model, hist = run_recipe(recipe, task, teacher if recipe.needs_teacher else None, seed,
                                     track=True, progress=progress)
            score = hist.test_acc[-1] if hist.test_acc else task.score(model)
            out.runs.setdefault(label, []).append(Run(label, seed, model, hist, score))
    return out


def watch(recipe, on_loss: Callable | None = None):
    """A copy of ``recipe`` that keeps, per seed, the phases its runs built, and optionally calls
    ``on_loss(ctx, phase, terms, student_out, teacher_out, targets, progress)`` after every loss
    evaluation (``terms``: the loss's dict). Returns ``(recipe_copy, kept)``: ``kept[seed]`` is the
    list of :class:`~kdatlas.recipes.Phase` of the run from ``seed`` (``phase.modules``: the
    regressor, heads or banks it trained). Only recipes that train in phases can be watched."""
    from ..recipes import get_recipe

    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    if recipe.phases is None:
        raise ValueError(f"{recipe.paper_id}: only recipes with phases= can be watched")
    kept: dict[int, list] = {}

    def phases(ctx, s):
        built = recipe.phases(ctx, s)
        if on_loss is not None:
            built = [_tapped(ctx, ph, on_loss) for ph in built]
        kept[ctx.seed] = built
        return built

    return dataclasses.replace(recipe, phases=phases), kept


def _tapped(ctx, phase, on_loss):
    if phase.loss is None:
        return phase

    def loss(so, to, y, progress):
        terms = phase.loss(so, to, y, progress)
        on_loss(ctx, phase, terms, so, to, y, progress)
        return terms
    return dataclasses.replace(phase, loss=loss)


def eval_examples(task: Task, n: int | None = None):
    """The first ``n`` (default: all) test examples of ``task`` as two tensors ``(x, y)``, in the
    test set's order (for plots of a fixed, class-sorted handful of examples)."""
    import torch

    data = task.student_data.test
    items = [data[i] for i in range(len(data) if n is None else min(n, len(data)))]
    return torch.stack([it[0] for it in items]), torch.tensor([int(it[1]) for it in items])


def to_teacher(results: Comparison, fn: Callable, *, batch_size: int = 512) -> dict[str, float]:
    """How far each label's students are from the teacher on the test set: for every run, the mean
    over test batches of ``fn(student_out, teacher_out)`` (both :class:`~kdatlas.harness.Outputs`:
    logits, stage features, embedding) weighted by batch length, then the mean over the label's
    seeds. ``batch_size`` matters for batch-level losses (similarity or probability matrices over a
    batch): pass the training batch size there. Models are put in eval mode; no gradient is kept."""
    import torch

    from .data import make_loader
    from .train import model_outputs

    if results.teacher is None:
        raise ValueError("to_teacher needs the Comparison's teacher (compare(task, teacher, ...))")
    device = results.task.device
    teacher = results.teacher.eval()
    loader = make_loader(results.task.student_data.test, batch_size=batch_size, shuffle=False)

    @torch.no_grad()
    def one(model):
        model.eval()
        total, n = 0.0, 0
        for x, _, index in loader:
            x = x.to(device)
            value = fn(model_outputs(model, x, index), model_outputs(teacher, x, index))
            total, n = total + float(value) * len(x), n + len(x)
        return total / n

    return {label: statistics.fmean(one(r.model) for r in runs) for label, runs in results.runs.items()}


def plot_terms(history: History, ax=None, *, log: bool = True, title: str | None = None):
    """The loss terms of one run (``History.terms``, as the loss returned them, i.e. weighted), one
    line per term, per epoch; log scale by default. Returns the matplotlib axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for name, values in history.terms.items():
        ax.plot(range(1, len(values) + 1), values, label=name)
    ax.set_xlabel("epoch"), ax.set_ylabel("mean training loss term (weighted)")
    if log:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if history.terms:
        ax.legend(fontsize=8)
    return ax


def class_sorted(labels, per_class: int = 4, classes: int = 10):
    """Indices of the first ``per_class`` examples of each of the first ``classes`` classes present
    in ``labels`` (a 1-D tensor), grouped by class in increasing order: the rows of a matrix plot in
    which same-class blocks lie on the diagonal."""
    import torch

    present = sorted(int(c) for c in torch.unique(labels))[:classes]
    return torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in present])


def show_matrices(matrices: Mapping[str, object], label: str, *, cmap: str = "viridis", shared_scale: bool = True):
    """One panel per ``{title: (n, n) tensor}``, side by side, on one colour scale (``shared_scale``:
    from the smallest to the largest entry of all the matrices) with one colour bar named
    ``label``. Returns the figure."""
    import matplotlib.pyplot as plt

    mats = {k: (m.detach().cpu() if hasattr(m, "detach") else m) for k, m in matrices.items()}
    lo = min(float(m.min()) for m in mats.values()) if shared_scale else None
    hi = max(float(m.max()) for m in mats.values()) if shared_scale else None
    fig, axes = plt.subplots(1, len(mats), figsize=(4 * len(mats), 4), squeeze=False)
    for ax, (title, m) in zip(axes[0], mats.items()):
        im = ax.imshow(m, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(title)
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label=label)
    return fig


def _groups(histories) -> dict[str, list[History]]:
    if isinstance(histories, Comparison):
        return {label: histories.histories(label) for label in histories.labels}
    if isinstance(histories, History):
        return {"": [histories]}
    return {label: ([h] if isinstance(h, History) else list(h)) for label, h in histories.items()}


def plot_curves(histories, task: Task | None = None, *, teacher_score: float | None = None, ax=None,
                title: str | None = None):
    """The test metric per epoch: one line per label (the mean over seeds, a band from the lowest
    to the highest seed), a dotted line at the teacher's score, a thin vertical line where a
    multi-phase run changes phase. ``histories``: a :class:`Comparison` (its task and teacher
    score are used) or ``{label: History or [History, ...]}`` with ``task`` for the axis label.
    Returns the matplotlib axes."""
    import matplotlib.pyplot as plt

    if isinstance(histories, Comparison):
        task = task or histories.task
        teacher_score = histories.teacher_score if teacher_score is None else teacher_score
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    for label, hs in _groups(histories).items():
        curves = [h.test_acc for h in hs if h.test_acc]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        epochs = range(1, n + 1)
        mean = [statistics.fmean(c[i] for c in curves) for i in range(n)]
        suffix = f" ({len(curves)} seeds)" if len(curves) > 1 else ""
        line, = ax.plot(epochs, mean, label=f"{label}{suffix}" if label else None)
        if len(curves) > 1:
            ax.fill_between(epochs, [min(c[i] for c in curves) for i in range(n)],
                            [max(c[i] for c in curves) for i in range(n)], color=line.get_color(), alpha=0.15)
        done = 0
        for _, k in hs[0].phases[:-1]:
            done += k
            ax.axvline(done + 0.5, color=line.get_color(), lw=0.8, ls="--")
    if teacher_score is not None:
        ax.axhline(teacher_score, color="gray", ls=":", label="teacher")
    metric = task.metric if task is not None else None
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"test {metric.name} ({metric.unit})" if metric is not None else "test metric")
    if title:
        ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return ax


def _fmt(v) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.4g}"
    return str(v)


@dataclass
class Table:
    """A small table that prints as markdown and shows as HTML in Jupyter."""

    header: list[str]
    rows: list[list[str]]
    align: list[str]   # "l" or "r" per column

    def markdown(self) -> str:
        sep = ["---:" if a == "r" else "---" for a in self.align]
        return "\n".join("| " + " | ".join(r) + " |" for r in [self.header, sep, *self.rows])

    __str__ = markdown

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _repr_html_(self) -> str:
        def row(cells, tag):
            return "<tr>" + "".join(f'<{tag} style="text-align:{"right" if a == "r" else "left"}">'
                                    f"{html.escape(c)}</{tag}>" for c, a in zip(cells, self.align)) + "</tr>"
        return ("<table><thead>" + row(self.header, "th") + "</thead><tbody>"
                + "".join(row(r, "td") for r in self.rows) + "</tbody></table>")


def table(results: Comparison, extra: Mapping[str, Mapping[str, object]] | None = None, digits: int = 1) -> Table:
    """Mean +- std over seeds of each label's final score, its parameter count and the per-seed
    scores, with a teacher row when the teacher is known. ``extra``: further columns,
    ``{column: {label or "teacher": value}}`` (a missing value shows as "-")."""
    metric = results.task.metric
    extra = dict(extra or {})
    header = ["model", "parameters", f"test {metric.name} ({metric.unit}), mean ± std", "seeds", "per seed",
              *extra]
    rows = []
    if results.teacher is not None or results.teacher_score is not None:
        rows.append(["teacher", f"{n_params(results.teacher):,}" if results.teacher is not None else "-",
                     f"{results.teacher_score:.{digits}f}" if results.teacher_score is not None else "-",
                     "-", "-", *[_fmt(col.get("teacher", "-")) for col in extra.values()]])
    for label in results.labels:
        runs = results.runs[label]
        mean, std = results.summary(label)
        rows.append([label, f"{n_params(runs[0].model):,}", f"{mean:.{digits}f} ± {std:.{digits}f}",
                     ", ".join(str(r.seed) for r in runs), ", ".join(f"{r.score:.{digits}f}" for r in runs),
                     *[_fmt(col.get(label, "-")) for col in extra.values()]])
    return Table(header, rows, ["l", "r", "r", "r", "r", *["r"] * len(extra)])
