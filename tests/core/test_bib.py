"""The bibliography: correct entry types and fields, escaping, round trip through bibtexparser, and a
clean compile with real BibTeX (zero errors, zero warnings)."""
from __future__ import annotations

import os
import shutil
import subprocess

import bibtexparser
import pytest
from pydantic import TypeAdapter

from kdatlas import bib
from kdatlas.catalog import load_catalog
from kdatlas.schema import Paper


def paper(rec: dict) -> Paper:
    return TypeAdapter(Paper).validate_python(rec)


def fields(entry) -> dict:
    return {f.key: f.value for f in entry.fields}


def test_entry_types_follow_the_venue(valid_record):
    conf = bib.to_entry(paper(valid_record))
    assert conf.entry_type == "inproceedings" and "booktitle" in fields(conf)
    valid_record.update(venue_type="journal", venue="TPAMI", venue_full="IEEE Transactions on Pattern Analysis and Machine Intelligence",
                        volume="45", pages="1-10", doi="10.1109/TPAMI.2023.1")
    art = bib.to_entry(paper(valid_record))
    assert art.entry_type == "article" and fields(art)["journal"].startswith("IEEE") and fields(art)["pages"] == "1--10"
    assert fields(art)["doi"] == "10.1109/TPAMI.2023.1"
    valid_record.update(venue_type="preprint", venue="arXiv preprint", venue_full=None, volume=None, pages=None, doi=None)
    pre = bib.to_entry(paper(valid_record))
    f = fields(pre)
    assert pre.entry_type == "misc" and f["eprint"] == "2001.00001" and f["archivePrefix"] == "arXiv"
    assert f["howpublished"] == "arXiv preprint arXiv:2001.00001"


def test_title_protection_and_escaping():
    assert bib.protect_title("FitNets: Hints for Thin Deep Nets") == "{FitNets}: Hints for Thin Deep Nets"
    assert bib.protect_title("KD-VLP for 3D LiDAR") == "{KD}-{VLP} for {3D} {LiDAR}"
    assert bib.protect_title("100% & $5 #1_a") == r"100\% \& \$5 \#1\_a"
    assert bib.escape_latex("Ångström Núñez") == "Ångström Núñez"  # diacritics stay UTF-8


def test_keys_are_ids_and_round_trip_without_failed_blocks(root):
    cat = load_catalog(root)
    if cat.problems:
        pytest.skip("catalog invalid: covered by test_catalog_is_valid")
    text = bib.to_bibtex(cat.sorted_papers())
    lib = bibtexparser.parse_string(text)
    assert lib.failed_blocks == []
    assert sorted(e.key for e in lib.entries) == sorted(cat.papers)
    for e in lib.entries:
        p = cat.papers[e.key]
        assert str(p.year if not p.venue_year else p.venue_year) == fields(e)["year"].strip("{}")


def _bibtex_available() -> bool:
    if shutil.which("bibtex"):
        return True
    if os.environ.get("CI"):
        pytest.fail("bibtex is not installed: .ci/run must install texlive-latex-base")
    pytest.skip("bibtex not installed (apt-get install texlive-latex-base)")


def test_compiles_with_real_bibtex_without_errors_or_warnings(root, tmp_path):
    _bibtex_available()
    cat = load_catalog(root)
    if cat.problems:
        pytest.skip("catalog invalid: covered by test_catalog_is_valid")
    (tmp_path / "atlas.bib").write_text(bib.to_bibtex(cat.sorted_papers()), encoding="utf-8")
    (tmp_path / "check.aux").write_text("\\citation{*}\n\\bibdata{atlas}\n\\bibstyle{plain}\n", encoding="utf-8")
    res = subprocess.run(["bibtex", "check"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Warning" not in res.stdout, res.stdout
    bbl = (tmp_path / "check.bbl").read_text(encoding="utf-8")
    assert bbl.count("\\bibitem") == len(cat.papers)


def test_csl_json_items(valid_record):
    item = bib.to_csl(paper(valid_record))
    assert item["id"] == "doe2020example" and item["type"] == "paper-conference"
    assert item["author"][1] == {"given": "José", "family": "Núñez-Pérez"}
    assert item["issued"] == {"date-parts": [[2021]]}
