"""The notebooks' report helpers (kdatlas.harness.report) on the quick MNIST-1D task, one epoch."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from kdatlas.harness import (  # noqa: E402
    Comparison,
    class_sorted,
    compare,
    get_task,
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
from kdatlas.recipes import get_recipe  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    task = get_task("mnist1d", quick=True, epochs=1, teacher_epochs=1)
    teacher, score = task.teacher(seed=0, cache_dir=tmp_path_factory.mktemp("teachers"), progress=False)
    return task, teacher, score


def test_setup_reads_kdatlas_quick(monkeypatch):
    monkeypatch.delenv("KDATLAS_QUICK", raising=False)
    assert setup() is False
    monkeypatch.setenv("KDATLAS_QUICK", "1")
    assert setup() is True
    assert setup(quick=False) is False  # an explicit choice wins
    monkeypatch.setenv("KDATLAS_QUICK", "0")
    assert setup() is False


def test_n_params():
    assert n_params(nn.Linear(3, 2)) == 8


def test_compare_runs_baseline_and_method_on_the_same_seeds(tiny):
    task, teacher, score = tiny
    res = compare(task, teacher, "hinton2015distilling", seeds=(1, 2), teacher_score=score)
    assert isinstance(res, Comparison)
    assert res.labels == ["student alone", "hinton2015distilling"]
    for label in res.labels:
        assert [r.seed for r in res.runs[label]] == [1, 2]
        for r in res.runs[label]:
            assert len(r.history.test_acc) == task.epochs  # tracked every epoch
            assert r.score == r.history.test_acc[-1]
    # the same seed gives the same student alone (initial weights and batches are the seed's)
    again = compare(task, None, {}, seeds=(1,))
    assert again.scores("student alone") == res.scores("student alone")[:1]
    mean, std = res.summary("student alone")
    assert min(res.scores("student alone")) <= mean <= max(res.scores("student alone")) and std >= 0


def test_compare_accepts_labels_and_recipes(tiny):
    task, teacher, _ = tiny
    res = compare(task, teacher, {"KD": get_recipe("hinton2015distilling")}, seeds=(3,), baseline=False)
    assert res.labels == ["KD"] and res.model("KD", seed=3) is res.runs["KD"][0].model
    with pytest.raises(KeyError):
        res.model("KD", seed=4)


def test_table_markdown_and_html(tiny):
    task, teacher, score = tiny
    res = compare(task, teacher, "hinton2015distilling", seeds=(1,), teacher_score=score)
    t = table(res, extra={"note": {"teacher": "frozen", "student alone": 1.5}})
    md = str(t)
    lines = md.splitlines()
    assert len(lines) == 2 + 3  # header, separator, teacher + two methods
    assert "top-1 accuracy (%)" in lines[0] and "±" in lines[3]
    assert f"{n_params(teacher):,}" in lines[2] and "frozen" in lines[2]
    assert lines[4].endswith("| - |")  # a missing extra value
    assert t._repr_html_().startswith("<table>") and t._repr_markdown_() == md


def test_plot_curves_labels_and_phases(tiny):
    task, teacher, score = tiny
    res = compare(task, teacher, "romero2014fitnets", seeds=(1, 2), teacher_score=score)
    ax = plot_curves(res)
    assert ax.get_ylabel() == "test top-1 accuracy (%)"
    labels = ax.get_legend_handles_labels()[1]
    assert "student alone (2 seeds)" in labels and "teacher" in labels
    assert len(res.histories("romero2014fitnets")[0].phases) == 2  # hint, then KD
    plt.close("all")
    ax = plot_curves({"one": res.histories("student alone")[0]}, task)
    assert ax.get_legend_handles_labels()[1] == ["one"]
    plt.close("all")


def test_watch_keeps_modules_and_taps_the_loss(tiny):
    task, teacher, _ = tiny
    calls = []
    recipe, kept = watch("tian2019contrastive", on_loss=lambda ctx, ph, terms, so, to, y, p: calls.append(set(terms)))
    res = compare(task, teacher, {"CRD": recipe}, seeds=(1,), baseline=False)
    assert len(calls) == len(task.student_loader(1)) * task.epochs and calls[0] == {"ce", "crd"}
    (phase,) = kept[1]
    assert phase.modules and isinstance(phase.modules[0], nn.Module)
    assert res.scores("CRD")
    with pytest.raises(ValueError):
        watch(get_recipe("hinton2015distilling").__class__("x", run=lambda c, s: None))


def test_eval_examples_are_the_test_set_in_order(tiny):
    task, _, _ = tiny
    x, y = eval_examples(task, 5)
    data = task.student_data.test
    assert x.shape == (5, *data[0][0].shape) and y.tolist() == [int(data[i][1]) for i in range(5)]
    assert (x[3] == data[3][0]).all()
    assert len(eval_examples(task)[0]) == len(data) == len(eval_examples(task, 10**9)[1])


def test_to_teacher_averages_batches_by_length_then_seeds(tiny):
    import torch.nn.functional as F

    task, teacher, score = tiny
    res = compare(task, teacher, "hinton2015distilling", seeds=(1, 2), teacher_score=score)

    def mse(s, t):
        return F.mse_loss(s.logits, t.logits)

    d = to_teacher(res, mse, batch_size=7)  # a batch size that leaves a short last batch
    assert list(d) == res.labels
    x, _ = eval_examples(task)
    with torch.no_grad():
        t = teacher.eval()(x)
        by_hand = {label: sum(F.mse_loss(r.model.eval()(x), t).item() for r in runs) / len(runs)
                   for label, runs in res.runs.items()}
    for label in res.labels:
        assert d[label] == pytest.approx(by_hand[label], rel=1e-5)
    assert to_teacher(res, lambda s, t_: F.mse_loss(t_.logits, t_.logits))["student alone"] == 0.0
    with pytest.raises(ValueError, match="teacher"):
        to_teacher(compare(task, None, {}, seeds=(1,)), mse)


def test_class_sorted_groups_the_first_examples_of_each_class():
    y = torch.tensor([2, 0, 1, 0, 2, 1, 0, 3])
    assert class_sorted(y, per_class=2).tolist() == [1, 3, 2, 5, 0, 4, 7]
    assert class_sorted(y, per_class=1, classes=2).tolist() == [1, 2]


def test_plot_terms_and_show_matrices(tiny):
    task, teacher, score = tiny
    res = compare(task, teacher, "hinton2015distilling", seeds=(1,), teacher_score=score)
    h = res.histories("hinton2015distilling")[0]
    ax = plot_terms(h)
    assert sorted(line.get_label() for line in ax.get_lines()) == sorted(h.terms)
    assert ax.get_yscale() == "log"
    fig = show_matrices({"a": torch.zeros(3, 3), "b": 2 * torch.eye(3)}, "value")
    images = [a.images[0] for a in fig.axes if a.images]
    assert len(images) == 2 and all(im.get_clim() == (0.0, 2.0) for im in images)  # one colour scale
    assert fig.axes[-1].get_ylabel() == "value"  # the colour bar
    plt.close("all")
