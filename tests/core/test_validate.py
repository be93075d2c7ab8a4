"""`kdatlas validate`: every kind of bad input is reported with file, field and a plain reason,
all problems at once, and nothing is written from an invalid catalog."""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from kdatlas.catalog import load_catalog


def mini_repo_record() -> dict:
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("atlas_root_conftest", Path(__file__).parents[1] / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return copy.deepcopy(mod.VALID)


def problems_of(repo):
    return [str(p) for p in load_catalog(repo).problems]


def test_valid_fixture_is_valid(mini_repo):
    assert problems_of(mini_repo) == []


def test_yaml_syntax_error_reports_the_line(mini_repo):
    mini_repo.write_paper(name="doe2020example", text="id: doe2020example\ntitle: [unclosed\nyear: 2020\n")
    (msg,) = problems_of(mini_repo)
    assert msg.startswith("papers/doe2020example.yaml:")
    assert "(YAML syntax)" in msg
    line = int(msg.split(":")[1])
    assert line in (2, 3, 4)


def _broken(mini_repo, mutate):
    rec = copy.deepcopy(mini_repo_record())
    mutate(rec)
    mini_repo.write_paper(rec, name="doe2020example")
    return problems_of(mini_repo)


def test_missing_required_field(mini_repo):
    (msg,) = _broken(mini_repo, lambda r: r.pop("title"))
    assert msg == "papers/doe2020example.yaml: title: required field is missing"


def test_wrong_type_names_field_and_value(mini_repo):
    (msg,) = _broken(mini_repo, lambda r: r.update(year="twenty twenty"))
    assert "papers/doe2020example.yaml:" in msg and ": year:" in msg and "twenty" in msg


def test_unknown_tag_suggests_the_close_one(mini_repo):
    (msg,) = _broken(mini_repo, lambda r: r["tags"].update(knowledge=["responce"]))
    assert "tags.knowledge" in msg and "unknown tag 'responce'" in msg and "did you mean 'response'" in msg


def test_unknown_facet(mini_repo):
    (msg,) = _broken(mini_repo, lambda r: r["tags"].update(colour=["red"]))
    assert "tags.colour" in msg


def test_duplicate_id_and_id_not_matching_file_name(mini_repo):
    rec = mini_repo_record()
    mini_repo.write_paper(rec, name="doe2020copy")
    msgs = problems_of(mini_repo)
    assert any("doe2020copy.yaml" in m and "does not match the file name" in m for m in msgs)
    assert any("duplicate id 'doe2020example'" in m for m in msgs)


@pytest.mark.parametrize("field,value,needle", [
    ("arxiv", "arXiv:2001.00001v2", "not an arXiv id"),
    ("arxiv", "20010.001", "not an arXiv id"),
    ("doi", "https://doi.org/10.1145/123", "not a DOI"),
    ("doi", "11.1145/123", "not a DOI"),
])
def test_malformed_arxiv_or_doi(mini_repo, field, value, needle):
    (msg,) = _broken(mini_repo, lambda r: r.update({field: value}))
    assert f": {field}: " in msg and needle in msg


def test_related_id_that_does_not_exist(mini_repo):
    (msg,) = _broken(mini_repo, lambda r: r.update(related=[{"id": "nobody2020nothing", "relation": "extends"}]))
    assert msg == "papers/doe2020example.yaml: related[0].id: no paper with id 'nobody2020nothing' in papers/"


def test_result_without_source(mini_repo):
    (msg,) = _broken(mini_repo, lambda r: r["results"][0].pop("source"))
    assert "results[0].source: required field is missing" in msg


def test_result_model_alias_names_the_canonical_spelling(mini_repo):
    (msg,) = _broken(mini_repo, lambda r: r["results"][0].update(student="resnet8x4"))
    assert "results[0].student" in msg and "write 'ResNet-8x4'" in msg


@pytest.mark.parametrize("payload", ["<script>alert(1)</script>", "Hello <img src=x onerror=alert(1)>", "<!-- hidden -->"])
def test_raw_html_in_markdown_fields_is_rejected(mini_repo, payload):
    (msg,) = _broken(mini_repo, lambda r: r.update(summary=r["summary"] + payload))
    assert "summary" in msg and "raw HTML" in msg


def test_math_with_less_than_is_not_html(mini_repo):
    assert _broken(mini_repo, lambda r: r.update(method="We need $a < b$ and $$x<y$$ always." * 2)) == []


def test_latex_specials_and_diacritics_in_titles_and_names_are_fine(mini_repo):
    def mutate(r):
        r["title"] = "100% of {Knowledge} & $Cost_2$ #1 ~ ^ — Ångström"
        r["authors"] = ["Buciluǎ Cristian", "Alexandru Niculescu-Mizil", "Zoë O'Brien"]
    assert _broken(mini_repo, mutate) == []


def test_all_problems_reported_at_once(mini_repo):
    rec = mini_repo_record()
    rec["id"] = "doe2020other"
    rec.pop("tldr")
    rec["tags"]["task"] = ["knitting"]
    mini_repo.write_paper(rec)
    mini_repo.write_paper(name="zzz2020broken", text="id: [\n")
    msgs = problems_of(mini_repo)
    assert any("doe2020other.yaml: tldr" in m for m in msgs)
    assert any("zzz2020broken.yaml" in m for m in msgs)
    assert len(msgs) >= 2


def test_validate_cli_exits_nonzero_and_lists_every_problem(mini_repo):
    mini_repo.write_paper(name="zzz2020broken", text="id: [\n")
    res = subprocess.run([sys.executable, "-m", "kdatlas.cli", "validate"], cwd=mini_repo, capture_output=True, text=True)
    assert res.returncode == 1
    assert "zzz2020broken.yaml" in res.stderr and "1 problem(s)" in res.stderr


def test_nothing_written_from_an_invalid_catalog(mini_repo):
    mini_repo.write_paper(name="zzz2020broken", text="id: [\n")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=mini_repo, capture_output=True, text=True)
    assert res.returncode != 0
    assert "zzz2020broken.yaml" in res.stderr
    assert not (mini_repo / "site").exists()
    res = subprocess.run([sys.executable, "-m", "kdatlas.cli", "bib"], cwd=mini_repo, capture_output=True, text=True)
    assert res.returncode == 1 and res.stdout == ""


def test_result_method_that_looks_like_a_missing_id(mini_repo):
    (msg,) = _broken(mini_repo, lambda r: r["results"][0].update(method="hintn2015distilling"))
    assert "results[0].method" in msg and "looks like a paper id" in msg
