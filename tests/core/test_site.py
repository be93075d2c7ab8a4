"""The generated site: built with `mkdocs build --strict` from the catalog, every page type present,
Markdown from records cannot inject HTML, and the Colab badge derives from mkdocs.yml's repo_url."""
from __future__ import annotations

import subprocess
import sys

import pytest

from kdatlas.catalog import load_catalog
from kdatlas.site import SiteContext, build_pages, safe_md


def test_safe_md_neutralises_tags():
    assert safe_md("x <script>alert(1)</script>") == "x &lt;script>alert(1)&lt;/script>"


def test_colab_and_blob_urls_derive_from_repo_url():
    ctx = SiteContext(repo_url="https://github.com/someone/atlas")
    assert ctx.colab_url("hinton2015distilling") == \
        "https://colab.research.google.com/github/someone/atlas/blob/main/notebooks/hinton2015distilling.ipynb"
    assert ctx.blob_url("implementations/x.py") == "https://github.com/someone/atlas/blob/main/implementations/x.py"


def test_pages_for_a_minimal_catalog(mini_repo):
    cat = load_catalog(mini_repo)
    pages = build_pages(cat, SiteContext(repo_url="https://github.com/someone/atlas"))
    paper = pages["papers/doe2020example.md"]
    assert "No implementation yet" in paper and "No notebook yet" in paper
    assert "@inproceedings{doe2020example," in paper
    assert "[`knowledge: response`](../tags/knowledge/response.md)" in paper
    assert "Table 1" in paper and "73.5" in paper
    for page in ("index.md", "years/2020.md", "tags/knowledge/response.md", "leaderboards/index.md",
                 "leaderboards/image-classification--cifar-100--top-1-accuracy.md", "bibliography.md",
                 "errata.md", "reproduced.md", "atlas.bib", "atlas.json"):
        assert page in pages, page
    assert "doe2020example" in pages["years/2020.md"] and "doe2020example" in pages["tags/knowledge/response.md"]
    board = pages["leaderboards/image-classification--cifar-100--top-1-accuracy.md"]
    assert "## ResNet-32x4 → ResNet-8x4" in board and "../papers/doe2020example.md" in board


def test_mkdocs_build_strict_on_a_minimal_catalog(mini_repo):
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q"], cwd=mini_repo, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    html = (mini_repo / "site" / "papers" / "doe2020example" / "index.html").read_text(encoding="utf-8")
    assert "An Example Paper" in html and "arithmatex" in html
    assert (mini_repo / "site" / "assets" / "mathjax" / "tex-chtml.js").exists()
    assert "fonts.googleapis.com" not in html


@pytest.mark.slow
def test_mkdocs_build_strict_on_the_real_catalog(root, tmp_path):
    cat = load_catalog(root)
    if cat.problems:
        pytest.fail("the catalog is invalid: " + str(cat.problems[0]))
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                         cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    for pid in cat.papers:
        assert (tmp_path / "site" / "papers" / pid / "index.html").exists()


def test_bare_paper_ids_in_prose_become_links_but_code_and_links_stay():
    from kdatlas.site import link_ids
    out = link_ids("as in FitNets (romero2014fitnets), see [x](../papers/romero2014fitnets.md), `romero2014fitnets`",
                   {"romero2014fitnets"}, "papers")
    assert out == ("as in FitNets ([romero2014fitnets](../papers/romero2014fitnets.md)), "
                   "see [x](../papers/romero2014fitnets.md), `romero2014fitnets`")


def test_teacher_and_student_alone_rows_are_reference_points_not_pairs(mini_repo, valid_record):
    base = valid_record["results"][0]
    valid_record["results"] += [
        {**base, "method": "teacher", "student": None, "value": 79.42, "baseline": None, "teacher_value": None},
        {**base, "method": "student alone", "teacher": None, "value": 72.5, "baseline": None, "teacher_value": None},
    ]
    mini_repo.write_paper(valid_record)
    pages = build_pages(load_catalog(mini_repo), SiteContext(repo_url="https://github.com/someone/atlas"))
    board = pages["leaderboards/image-classification--cifar-100--top-1-accuracy.md"]
    assert board.count("\n## ") == 2 and "→ –" not in board and "– →" not in board
    ref = board.split("## Reference points")[1]
    assert "| teacher | ResNet-32x4 | 79.42 |" in ref and "| student alone | ResNet-8x4 | 72.5 |" in ref
