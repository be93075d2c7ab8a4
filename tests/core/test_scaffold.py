"""`kdatlas new ID`: every file a paper needs, nothing written when one exists or the id is bad."""
from __future__ import annotations

import ast

import pytest

from kdatlas.scaffold import scaffold

PID = "roe2021sample"  # not the fixture's paper


def test_scaffolds_yaml_implementation_recipe_test_and_notebook_pair(mini_repo):
    root = mini_repo
    created = scaffold(root, PID, title="An Example")
    assert sorted(created) == sorted([f"papers/{PID}.yaml", f"implementations/{PID}.py",
                                      f"src/kdatlas/recipes/{PID}.py", f"tests/implementations/test_{PID}.py",
                                      f"notebooks/{PID}.py", f"notebooks/{PID}.ipynb"])
    for rel in created:
        if rel.endswith(".py"):
            ast.parse((root / rel).read_text())  # every scaffolded Python file is valid Python
    recipe = (root / "src" / "kdatlas" / "recipes" / f"{PID}.py").read_text()
    assert f'RECIPE = Recipe("{PID}"' in recipe and f"import {PID} as impl" in recipe
    test = (root / "tests" / "implementations" / f"test_{PID}.py").read_text()
    assert "kdatlas.testing" in test  # the shared catchers, not pasted copies


def test_nothing_written_when_a_file_exists_or_the_id_is_malformed(mini_repo):
    root = mini_repo
    (root / "src" / "kdatlas" / "recipes").mkdir(parents=True, exist_ok=True)
    (root / "src" / "kdatlas" / "recipes" / f"{PID}.py").write_text("# mine\n")
    with pytest.raises(FileExistsError, match=f"recipes/{PID}.py"):
        scaffold(root, PID)
    assert not (root / "papers" / f"{PID}.yaml").exists()
    assert (root / "src" / "kdatlas" / "recipes" / f"{PID}.py").read_text() == "# mine\n"  # kept
    with pytest.raises(ValueError, match="not an id"):
        scaffold(root, "Doe-2020")


def test_a_catalogued_paper_keeps_its_record_and_gets_the_other_files(mini_repo):
    record = mini_repo / "papers" / "doe2020example.yaml"
    before = record.read_bytes()
    created = scaffold(mini_repo, "doe2020example")
    assert f"papers/doe2020example.yaml" not in created and len(created) == 5
    assert record.read_bytes() == before
    import yaml
    title = yaml.safe_load(before)["title"]
    assert title in (mini_repo / "implementations" / "doe2020example.py").read_text()
