"""The committed catalog: valid, its JSON Schema exported and in sync, and every entry of the seed
list covered by a paper record (duplicates included)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from kdatlas.catalog import load_catalog
from kdatlas.schema import json_schema


def test_catalog_is_valid(root):
    cat = load_catalog(root)
    assert [str(p) for p in cat.problems] == []


def test_exported_json_schema_is_in_sync(root):
    on_disk = json.loads((root / "schema" / "paper.schema.json").read_text(encoding="utf-8"))
    assert on_disk == json_schema(), "run `kdatlas schema` and commit schema/paper.schema.json"


def test_every_record_points_editors_at_the_schema(root):
    for path in sorted((root / "papers").glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schema/paper.schema.json", path.name


def parse_seed_list(path: Path) -> list[tuple[str, str]]:
    """(section, title) of every entry of the seed list, in order."""
    entries, section = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        m = re.match(r"^\s*[*-]\s*\[(.+?)\]\(", line)
        if m and section:
            entries.append((section, m.group(1).strip()))
    return entries


def test_seed_list_copy_is_the_source_list(root):
    shared = root.parent / "shared" / "seed-list.md"
    if shared.exists():
        assert shared.read_text(encoding="utf-8") == (root / "vocab" / "seed-list.md").read_text(encoding="utf-8")


def test_every_seed_entry_has_a_paper_record(root):
    entries = parse_seed_list(root / "vocab" / "seed-list.md")
    assert len(entries) == 112
    cat = load_catalog(root)
    covered = {(e.section, e.title) for p in cat.papers.values() for e in p.seed.entries}
    missing = [e for e in entries if e not in covered]
    assert missing == [], f"{len(missing)} seed entries without a record, e.g. {missing[:5]}"
    listed = set(entries)
    stray = [(p.id, e.section, e.title) for p in cat.papers.values() for e in p.seed.entries if (e.section, e.title) not in listed]
    assert stray == [], "seed.entries must copy the list's section and title exactly"
