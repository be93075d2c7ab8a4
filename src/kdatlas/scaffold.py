"""``kdatlas new ID``: scaffold the four files of a paper from the conventions.

The scaffolded files are deliberately incomplete: the YAML fails validation and the test fails until
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

TEST = '''\
"""Claims of {id}: write one test per checkable claim of the paper (formula on a small case, limits,
invariances), plus: the loss changes with the teacher, no gradient reaches the teacher, the teacher
stays frozen."""
import importlib


def test_implementation_has_public_api():
    mod = importlib.import_module("kdatlas.implementations.{id}")
    assert mod.__all__, "define the public functions in __all__ and test the paper's claims here"
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
import os
FULL_SIZE = False  # True: the paper-scale CIFAR-100 run (GPU advised; downloads CIFAR-100)
QUICK = os.environ.get("KDATLAS_QUICK") == "1"  # CI sets this to shrink the budget
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
    title = title or "<Paper title>"
    targets = {
        root / "papers" / f"{pid}.yaml": YAML.format(id=pid, title=title, today=dt.date.today().isoformat()),
        root / "implementations" / f"{pid}.py": IMPL.format(id=pid, title=title),
        root / "tests" / "implementations" / f"test_{pid}.py": TEST.format(id=pid),
        root / "notebooks" / f"{pid}.py": NOTEBOOK.format(title=title, repo_url=repo_url(root)),
    }
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
