"""``kdatlas new ID``: scaffold a paper's files from the conventions.

papers/ID.yaml, implementations/ID.py (torch only), src/kdatlas/recipes/ID.py (how the harness runs
it: the benchmark, benchmarks/*.py and the notebook read its settings), tests/implementations/test_ID.py
(the shared silent-bug catchers of kdatlas.testing, plus the paper's claims) and the notebook pair.

For a paper already in the catalog (papers/ID.yaml exists) the record is kept as it is and the other
files are created. The scaffolded files are deliberately incomplete: the YAML fails validation and the test fails until
the author writes the record, the implementation and the claims. Nothing is written if any of the
files already exists or the id is malformed.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import jupytext

from .schema import ID_RE

YAML = """\
# yaml-language-server: $schema=../schema/paper.schema.json
# Fill every field from a primary source (arXiv abstract page, proceedings page, DOI record);
# `kdatlas validate` tells you what is still missing.
id: {id}
title: {title}
authors: []
year:
venue:
venue_type:
venue_full:
venue_year:
arxiv:
doi:
url:
pdf:
code: []
sources: []
unconfirmed: []
added: {today}
tags:
  knowledge: []
  scheme: []
  teacher-setup: []
  data: []
  mechanism: []
  task: []
  purpose: []
  relation-to-kd: []
tldr: >-
summary: |
method: |
results: []
related: []
seed:
  entries: []
  errata: []
implementation:
  status: pending
  scope: core-mechanism
  reason: Scaffolded by `kdatlas new`; the implementation, test and notebook are being written.
"""

IMPL = '''\
r"""{title}

Paper: <landing page URL>
Id:    {id}

Idea: <2-4 sentences>.

Loss (Sec. ?): <the equation, with the paper's symbols>.
Defaults: <where each comes from>. Simplified: <what and why>.
Depends only on torch.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__: list[str] = []
'''

RECIPE = '''\
"""{title}: how the harness runs implementations/{id}.py.

<Which outputs/layers feed the loss, and where each setting below comes from (the paper's section or
table, or the authors' code). For a method that is not one student + a loss, replace phases= by
run= (see kdatlas.recipes); for a paper with nothing to benchmark, use skip="<the reason>".>"""
from kdatlas.implementations import {id} as impl
from kdatlas.recipes import Phase, Recipe, ce


def phases(ctx, s):
    def loss(so, to, y, progress):
        # so / to: the student's and the teacher's Outputs (logits, features, embedding, index)
        raise NotImplementedError("return {{'ce': ce(so, y), '<term>': s['<weight>'] * impl.<loss>(...)}}")
    return [Phase("{id}", loss)]


RECIPE = Recipe("{id}", settings={{}}, phases=phases)
'''

TEST = '''\
"""Claims of {id}: one test per checkable claim of the paper (a formula on a small hand-checkable
case, limits, invariances, the effect the paper claims where a toy shows it), plus the shared
silent-bug catchers of kdatlas.testing."""
import torch
from torch import nn

from kdatlas.implementations import {id} as impl
from kdatlas.testing import Case, catchers, seeded

# The catchers: write loss(student, teacher, x, y) with the paper's loss on small models. Set
# zero_when_equal=True where the loss is zero with the student equal to the teacher, or give the
# reason it is not; trains_teacher=True for methods that train their teacher or peers.
test_catchers = catchers(Case(
    loss=lambda s, t, x, y: impl.paper_loss(s(x), t(x)),  # rename to the file's loss function
    student=lambda: nn.Linear(6, 5),
    teacher=lambda seed: seeded(lambda: nn.Linear(6, 5), seed),
    zero_when_equal=True))


def test_formula_on_a_hand_checkable_case():
    raise NotImplementedError("compute the paper's equation by hand on a tiny input and compare")
'''

NOTEBOOK = '''\
# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # {title}
#
# <What this notebook shows, in one paragraph.>

# %%
# On Colab, install the atlas (harness + implementation files); locally the README set-up did it.
import sys, subprocess
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "kdatlas @ git+{repo_url}"], check=True)

# %%
from kdatlas.harness import compare, get_task, plot_curves, setup, table
from kdatlas.recipes import get_recipe

FULL_SIZE = False  # True: the paper-scale CIFAR-100 run (GPU advised; downloads CIFAR-100)
QUICK = setup()    # True when KDATLAS_QUICK=1 (CI sets it): a CI-sized budget
task = get_task("cifar100" if FULL_SIZE else "mnist1d", quick=QUICK)
teacher, teacher_score = task.teacher(seed=0)  # trained once, then read from the disk cache
recipe = get_recipe("{pid}")
print(task.description, recipe.settings_for(task.name))
'''


def repo_url(root: Path) -> str:
    import yaml

    class _Loader(yaml.SafeLoader):
        pass
    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    cfg = yaml.load((root / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    return cfg["repo_url"]


def scaffold(root: Path, pid: str, title: str | None = None) -> list[str]:
    if not ID_RE.match(pid):
        raise ValueError(f"'{pid}' is not an id of the form surname + year + first title word, e.g. hinton2015distilling")
    record = root / "papers" / f"{pid}.yaml"
    if record.exists() and title is None:  # a catalogued paper: its record is kept, its title used
        import yaml
        title = (yaml.safe_load(record.read_text(encoding="utf-8")) or {}).get("title")
    title = title or "<Paper title>"
    targets = {
        record: YAML.format(id=pid, title=title, today=dt.date.today().isoformat()),
        root / "implementations" / f"{pid}.py": IMPL.format(id=pid, title=title),
        root / "src" / "kdatlas" / "recipes" / f"{pid}.py": RECIPE.format(id=pid, title=title),
        root / "tests" / "implementations" / f"test_{pid}.py": TEST.format(id=pid),
        root / "notebooks" / f"{pid}.py": NOTEBOOK.format(title=title, repo_url=repo_url(root), pid=pid),
    }
    if record.exists():
        del targets[record]
    ipynb = root / "notebooks" / f"{pid}.ipynb"
    existing = [p for p in [*targets, ipynb] if p.exists()]
    if existing:
        raise FileExistsError("already exists, nothing written: " + ", ".join(str(p.relative_to(root)) for p in existing))
    written: list[Path] = []
    try:
        for path, text in targets.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8") as fh:
                fh.write(text)
            written.append(path)
        nb = jupytext.reads(targets[root / "notebooks" / f"{pid}.py"], fmt="py:percent")
        jupytext.write(nb, ipynb, fmt="ipynb")
        written.append(ipynb)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return [str(p.relative_to(root)) for p in written]
