"""Load and validate the whole catalog: every ``papers/*.yaml`` against the schema and the vocabularies.

``load_catalog`` never stops at the first problem: it collects every problem as a :class:`Problem`
(file, field, plain reason) so that ``kdatlas validate`` can report them all at once.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from .schema import ID_RE, Paper

ROOT_MARKERS = ("mkdocs.yml", "papers")


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder above ``start`` with mkdocs.yml and papers/."""
    here = Path(start or Path.cwd()).resolve()
    for cand in (here, *here.parents):
        if all((cand / m).exists() for m in ROOT_MARKERS):
            return cand
    pkg_root = Path(__file__).resolve().parents[2]
    if all((pkg_root / m).exists() for m in ROOT_MARKERS):
        return pkg_root
    raise FileNotFoundError(
        f"no KD Atlas checkout found at or above {here} (looked for {', '.join(ROOT_MARKERS)})"
    )


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.reason}"


@dataclass
class Vocab:
    facets: dict[str, dict[str, str]]
    facet_titles: dict[str, str]
    models: dict[str, list[str]]
    datasets: dict[str, list[str]]
    metrics: dict[str, list[str]]

    @classmethod
    def load(cls, root: Path) -> "Vocab":
        tax = yaml.safe_load((root / "vocab" / "taxonomy.yaml").read_text(encoding="utf-8"))
        def names(kind: str) -> dict[str, list[str]]:
            data = yaml.safe_load((root / "vocab" / f"{kind}.yaml").read_text(encoding="utf-8")) or {}
            return {str(k): [str(a) for a in (v or [])] for k, v in data.items()}

        return cls(
            facets={k: dict(v["values"]) for k, v in tax.items()},
            facet_titles={k: v["title"] for k, v in tax.items()},
            models=names("models"),
            datasets=names("datasets"),
            metrics=names("metrics"),
        )

    def check_name(self, kind: str, value: str | None) -> str | None:
        """None if ``value`` is a canonical name of ``kind``, else the reason it is not."""
        if value is None:
            return None
        table: dict[str, list[str]] = getattr(self, kind)
        if value in table:
            return None
        for canon, aliases in table.items():
            if value in aliases:
                return f"'{value}' is an alias: write '{canon}'"
        close = difflib.get_close_matches(value, list(table), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"'{value}' is not in vocab/{kind}.yaml{hint}; append it there if it is new"


@dataclass
class Catalog:
    root: Path
    papers: dict[str, Paper] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    vocab: Vocab | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def sorted_papers(self) -> list[Paper]:
        return sorted(self.papers.values(), key=lambda p: (p.year, p.id))

    def raise_if_invalid(self) -> None:
        if self.problems:
            raise CatalogError(self.problems)


class CatalogError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(
            f"the catalog has {len(problems)} problem(s); nothing was written:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line of each top-level key (for error messages)."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False):
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=deep)
    lines = {}
    for key_node, _ in node.value:
        lines[key_node.value] = key_node.start_mark.line + 1
    mapping["__lines__"] = lines
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip_lines(obj):
    if isinstance(obj, dict):
        return {k: _strip_lines(v) for k, v in obj.items() if k != "__lines__"}
    if isinstance(obj, list):
        return [_strip_lines(v) for v in obj]
    return obj


def _line_of(raw: dict, loc: tuple) -> int | None:
    node, line = raw, None
    for part in loc:
        if isinstance(node, dict):
            line = node.get("__lines__", {}).get(part, line)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            break
    return line


def _field_name(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(record)"


def load_paper_file(path: Path, rel: str) -> tuple[Paper | None, list[Problem]]:
    """Parse and validate one YAML file on its own. Returns the paper (or None) and its problems."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(rel, "(file)", f"not valid UTF-8: {exc}")]
    try:
        raw = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(rel, "(YAML syntax)", f"{reason}", line)]
    if not isinstance(raw, dict):
        return None, [Problem(rel, "(record)", "the file must hold one mapping of fields")]
    data = _strip_lines(raw)
    try:
        paper = Paper.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "required field is missing"
            elif err["type"] == "extra_forbidden":
                msg = "unknown field (not in the schema; check the spelling)"
            elif isinstance(err.get("input"), (str, int, float, bool, type(None))) and not err["type"].startswith("value_error"):
                msg = f"{msg} (got {err['input']!r:.60})"
            problems.append(Problem(rel, _field_name(loc), msg, _line_of(raw, loc)))
        return None, problems
    return paper, []


def _check_paper_in_catalog(p: Paper, rel: str, stem: str, vocab: Vocab, raw_lines: dict, all_ids: set[str]) -> list[Problem]:
    problems: list[Problem] = []

    def add(fieldname: str, reason: str) -> None:
        problems.append(Problem(rel, fieldname, reason, raw_lines.get(fieldname.split(".")[0].split("[")[0])))

    if p.id != stem:
        add("id", f"'{p.id}' does not match the file name '{stem}.yaml'")
    for facet, values in p.tags.items():
        allowed = vocab.facets.get(facet, {})
        for v in values:
            if v not in allowed:
                close = difflib.get_close_matches(v, list(allowed), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                add(f"tags.{facet}", f"unknown tag '{v}' for facet '{facet}'{hint}; see vocab/taxonomy.yaml")
        if len(set(values)) != len(values):
            add(f"tags.{facet}", "a value is listed twice")
    for i, r in enumerate(p.results):
        if ID_RE.match(r.method) and r.method not in all_ids:
            add(f"results[{i}].method", f"'{r.method}' looks like a paper id but no paper has it")
        if r.task not in vocab.facets["task"]:
            add(f"results[{i}].task", f"'{r.task}' is not a value of the task facet")
        for kind, val, name in (("datasets", r.dataset, "dataset"), ("metrics", r.metric, "metric"),
                                ("models", r.teacher, "teacher"), ("models", r.student, "student")):
            reason = vocab.check_name(kind, val)
            if reason:
                add(f"results[{i}].{name}", reason)
    if p.implementation.status == "done" and p.implementation.scope == "none":
        add("implementation.scope", "a done implementation needs a scope other than 'none'")
    return problems


def load_catalog(root: Path | None = None) -> Catalog:
    """Load every paper record under ``root/papers`` and collect every problem."""
    root = find_root(root)
    return _load(root)


def _load(root: Path) -> Catalog:
    cat = Catalog(root=root, vocab=Vocab.load(root))
    files = sorted(p for p in (root / "papers").glob("*.yaml") if not p.name.startswith("_"))
    other = sorted(p for p in (root / "papers").iterdir() if p.suffix in (".yml", ".json"))
    for p in other:
        cat.problems.append(Problem(f"papers/{p.name}", "(file)", "paper records must be .yaml files"))
    seen: dict[str, str] = {}
    all_ids = {p.stem for p in files}
    for path in files:
        rel = f"papers/{path.name}"
        paper, probs = load_paper_file(path, rel)
        cat.problems.extend(probs)
        if paper is None:
            continue
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
            lines = raw.get("__lines__", {})
        except yaml.YAMLError:
            lines = {}
        cat.problems.extend(_check_paper_in_catalog(paper, rel, path.stem, cat.vocab, lines, all_ids))
        if paper.id in seen:
            cat.problems.append(Problem(rel, "id", f"duplicate id '{paper.id}' (also in {seen[paper.id]})", lines.get("id")))
            continue
        seen[paper.id] = rel
        cat.papers[paper.id] = paper
    for pid, paper in cat.papers.items():
        rel = seen[pid]
        for i, link in enumerate(paper.related):
            if link.id not in cat.papers and link.id not in seen:
                cat.problems.append(Problem(rel, f"related[{i}].id", f"no paper with id '{link.id}' in papers/"))
            if link.id == pid:
                cat.problems.append(Problem(rel, f"related[{i}].id", "a paper cannot be related to itself"))
    cat.problems.extend(_check_files(cat, seen))
    return cat


PAPER_FILES = ("implementation", "recipe", "test", "notebook", "notebook pair")


def paper_file_paths(pid: str) -> dict[str, str]:
    """The files a paper marked implemented has, by kind (paths relative to the root; the test may
    sit in any folder under tests/, shown as tests/.../)."""
    return {"implementation": f"implementations/{pid}.py", "recipe": f"src/kdatlas/recipes/{pid}.py",
            "test": f"tests/.../test_{pid}.py", "notebook": f"notebooks/{pid}.py",
            "notebook pair": f"notebooks/{pid}.ipynb"}


def files_on_disk(root: Path, ids) -> dict[str, dict[str, bool]]:
    """{paper id: {kind: exists}} for the kinds of PAPER_FILES (one listing of tests/ for all ids)."""
    tests = {p.stem.removeprefix("test_") for p in (root / "tests").rglob("test_*.py")}
    out = {}
    for pid in ids:
        paths = paper_file_paths(pid)
        out[pid] = {kind: (pid in tests) if kind == "test" else (root / paths[kind]).exists() for kind in PAPER_FILES}
    return out


def _check_files(cat: Catalog, seen: dict[str, str]) -> list[Problem]:
    """An implementation marked done must have its implementation, recipe, test and notebook pair."""
    problems = []
    done = [pid for pid, paper in cat.papers.items() if paper.implementation.status == "done"]
    for pid, have in files_on_disk(cat.root, done).items():
        paths = paper_file_paths(pid)
        missing = [paths[kind] for kind, ok in have.items() if not ok]
        if missing:
            problems.append(Problem(seen[pid], "implementation.status",
                                    f"'done' but missing: {', '.join(missing)}"))
    return problems
