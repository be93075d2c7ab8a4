"""Conventions that keep the atlas joinable by paper id and the implementations copyable.

- every implementation imports only torch and the standard library (checked on the syntax tree),
  has a raw docstring naming its id, and defines __all__;
- every paper id has its implementation, test and notebook pair, or a declared, explained exemption;
- every notebook .py has its paired .ipynb, in sync, with one H1 title and the Colab install cell that
  points at the repository URL of mkdocs.yml.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import jupytext
import pytest

from kdatlas.catalog import files_on_disk, load_catalog
from kdatlas.scaffold import repo_url

ROOT = Path(__file__).resolve().parents[2]
IMPLS = sorted(p for p in (ROOT / "implementations").glob("*.py") if not p.name.startswith("_"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
ALLOWED_TOP = {"torch", "__future__"} | set(sys.stdlib_module_names)


@pytest.mark.parametrize("path", IMPLS, ids=[p.stem for p in IMPLS])
def test_implementation_is_torch_only_with_raw_docstring_and_all(path):
    src = path.read_text(encoding="utf-8")
    tree = ast.parse(src)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in ALLOWED_TOP, f"{path.name} imports {name}: only torch and the standard library"
    doc = ast.get_docstring(tree)
    assert doc and re.search(rf"^Id:\s+{path.stem}$", doc, re.M), f"{path.name}: docstring must name its id ('Id:    <id>')"
    first = tree.body[0]
    assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    assert src.lstrip().startswith(('r"""', "r'''")), f"{path.name}: the docstring must be a raw string (LaTeX)"
    assert any(isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in n.targets) for n in tree.body), \
        f"{path.name}: define __all__"


def test_every_paper_has_its_files_or_an_explained_exemption():
    cat = load_catalog(ROOT)
    on_disk = files_on_disk(ROOT, cat.papers)
    for pid, p in cat.papers.items():
        have = on_disk[pid]
        if p.implementation.status == "done":
            assert all(have.values()), f"{pid}: status done but missing {[k for k, v in have.items() if not v]}"
        else:
            assert p.implementation.reason and len(p.implementation.reason) >= 10, f"{pid}: exemption without a reason"
            assert not all(have.values()), f"{pid}: every file exists: set implementation.status to done"
    ids = set(cat.papers)
    for path in IMPLS:
        assert path.stem in ids, f"implementations/{path.name} has no paper record"
    for path in NOTEBOOKS:
        assert path.stem in ids, f"notebooks/{path.name} has no paper record"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_pair_in_sync_with_one_title_and_colab_cell(path):
    src_nb = jupytext.read(path)
    pair = path.with_suffix(".ipynb")
    assert pair.exists(), f"{pair.name} missing: run jupytext --to ipynb {path}"
    ipynb = jupytext.read(pair)
    strip = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]  # noqa: E731
    assert strip(src_nb) == strip(ipynb), f"{pair.name} is out of sync with {path.name}: run jupytext --to ipynb {path}"
    for cell in ipynb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{pair.name}: outputs must be stripped"
    md = "\n".join(c.source for c in src_nb.cells if c.cell_type == "markdown")
    h1 = [line for line in md.splitlines() if line.startswith("# ")]
    assert len(h1) == 1, f"{path.name}: exactly one '# ' title, found {h1}"
    code = [c.source for c in src_nb.cells if c.cell_type == "code"]
    assert "google.colab" in code[0] and f"kdatlas @ git+{repo_url(ROOT)}" in code[0], \
        f"{path.name}: the first code cell must install kdatlas from mkdocs.yml's repo_url on Colab"
    assert any("FULL_SIZE" in c and "KDATLAS_QUICK" in c for c in code[:3]), f"{path.name}: FULL_SIZE switch and quick mode"
