"""The ``kdatlas`` command line: validate | list | show | bib | new | schema | bench."""
from __future__ import annotations

import argparse
import sys

from .catalog import load_catalog


def cmd_validate(args: argparse.Namespace) -> int:
    cat = load_catalog()
    for p in cat.problems:
        print(p, file=sys.stderr)
    if cat.problems:
        print(f"{len(cat.problems)} problem(s) in {len(list((cat.root / 'papers').glob('*.yaml')))} file(s)", file=sys.stderr)
        return 1
    print(f"ok: {len(cat.papers)} paper record(s) valid")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kdatlas", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("validate", help="check every papers/*.yaml; report all problems").set_defaults(fn=cmd_validate)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
