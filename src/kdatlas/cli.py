"""The ``kdatlas`` command line.

    kdatlas validate                      check every papers/*.yaml; report all problems
    kdatlas list [--year Y] [--tag T] [--text WORDS] [--json]
    kdatlas show ID
    kdatlas bib [IDS...] [--format bibtex|csl-json]
    kdatlas new ID                        scaffold the paper's YAML, implementation, test and notebook
    kdatlas schema [--check]              export (or check) schema/paper.schema.json
    kdatlas bench                         the reproduced benchmark on embedded data
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys

from . import bib
from .catalog import Catalog, load_catalog


def _valid_catalog() -> Catalog | None:
    cat = load_catalog()
    if cat.problems:
        for p in cat.problems:
            print(p, file=sys.stderr)
        print(f"{len(cat.problems)} problem(s): fix them first (nothing was written)", file=sys.stderr)
        return None
    return cat


def cmd_validate(args: argparse.Namespace) -> int:
    cat = load_catalog()
    for p in cat.problems:
        print(p, file=sys.stderr)
    n_files = len([p for p in (cat.root / "papers").glob("*.yaml") if not p.name.startswith("_")])
    if cat.problems:
        print(f"{len(cat.problems)} problem(s) in {n_files} file(s)", file=sys.stderr)
        return 1
    print(f"ok: {len(cat.papers)} paper record(s) valid")
    return 0


def _matches(p, args) -> bool:
    if args.year and p.year != args.year:
        return False
    if args.tag:
        facet, _, value = args.tag.partition(":")
        if value:
            if value not in p.tags.get(facet, []):
                return False
        elif not any(args.tag in vals for vals in p.tags.values()):
            return False
    if args.text:
        hay = " ".join([p.id, p.title, " ".join(p.authors), p.tldr, p.venue]).lower()
        if not all(w.lower() in hay for w in args.text.split()):
            return False
    return True


def cmd_list(args: argparse.Namespace) -> int:
    cat = _valid_catalog()
    if cat is None:
        return 1
    found = [p for p in cat.sorted_papers() if _matches(p, args)]
    if args.json:
        print(json.dumps([{"id": p.id, "year": p.year, "title": p.title, "venue": p.venue,
                           "authors": p.authors, "tags": p.tags} for p in found], ensure_ascii=False, indent=2))
    else:
        for p in found:
            print(f"{p.id:34} {p.year}  {p.title}")
    return 0 if found else 1


def cmd_show(args: argparse.Namespace) -> int:
    cat = _valid_catalog()
    if cat is None:
        return 1
    p = cat.papers.get(args.id)
    if p is None:
        import difflib
        close = difflib.get_close_matches(args.id, list(cat.papers), n=3)
        print(f"no paper with id '{args.id}'" + (f"; did you mean: {', '.join(close)}?" if close else ""), file=sys.stderr)
        return 1
    print(f"{p.title}\n{', '.join(p.authors)}\n{p.venue} (first public {p.year})  id: {p.id}")
    for label, val in (("arXiv", p.arxiv), ("DOI", p.doi), ("URL", str(p.url)), ("PDF", p.pdf and str(p.pdf))):
        if val:
            print(f"{label}: {val}")
    print("tags: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in p.tags.items()))
    print(f"\nTL;DR: {p.tldr}\n")
    impl = cat.root / "implementations" / f"{p.id}.py"
    print(f"implementation: {'implementations/' + p.id + '.py' if impl.exists() else 'none yet'} ({p.implementation.status})")
    print(f"reported results: {len(p.results)}")
    return 0


def cmd_bib(args: argparse.Namespace) -> int:
    cat = _valid_catalog()
    if cat is None:
        return 1
    missing = [i for i in args.ids if i not in cat.papers]
    if missing:
        print(f"unknown id(s): {', '.join(missing)}", file=sys.stderr)
        return 1
    papers = [cat.papers[i] for i in args.ids] if args.ids else cat.sorted_papers()
    sys.stdout.write(bib.to_csl_json(papers) if args.format == "csl-json" else bib.to_bibtex(papers))
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from .scaffold import scaffold
    try:
        created = scaffold(load_catalog().root, args.id, title=args.title)
    except (ValueError, FileExistsError) as exc:
        print(f"kdatlas new: {exc}", file=sys.stderr)
        return 1
    for path in created:
        print(f"created {path}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .schema import json_schema
    root = load_catalog().root
    path = root / "schema" / "paper.schema.json"
    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.check:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            print(f"{path.relative_to(root)} is out of date: run `kdatlas schema`", file=sys.stderr)
            return 1
        print("schema is up to date")
        return 0
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    print(f"wrote {path.relative_to(root)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kdatlas", description="KD Atlas: validate, browse and cite the catalog.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("validate", help="check every papers/*.yaml; report all problems").set_defaults(fn=cmd_validate)
    p = sub.add_parser("list", help="list papers, optionally filtered")
    p.add_argument("--year", type=int)
    p.add_argument("--tag", help="a tag value, or facet:value (e.g. knowledge:relation)")
    p.add_argument("--text", help="words that must all appear in id, title, authors, venue or TL;DR")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(fn=cmd_list)
    p = sub.add_parser("show", help="one paper")
    p.add_argument("id")
    p.set_defaults(fn=cmd_show)
    p = sub.add_parser("bib", help="BibTeX (or CSL-JSON) for all or chosen papers")
    p.add_argument("ids", nargs="*")
    p.add_argument("--format", choices=["bibtex", "csl-json"], default="bibtex")
    p.set_defaults(fn=cmd_bib)
    p = sub.add_parser("new", help="scaffold papers/ID.yaml, implementations/ID.py, its test and notebook pair")
    p.add_argument("id")
    p.add_argument("--title", default=None, help="the paper's title (used in the scaffolded files)")
    p.set_defaults(fn=cmd_new)
    p = sub.add_parser("schema", help="export the JSON Schema of a paper record to schema/paper.schema.json")
    p.add_argument("--check", action="store_true", help="only check that the exported file is up to date")
    p.set_defaults(fn=cmd_schema)
    if importlib.util.find_spec("kdatlas.bench") is not None:
        from .bench import add_parser as add_bench
        add_bench(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
