r"""Mutation check: do the tests fail when an implementation drops a teacher ``.detach()`` or swaps
the student and teacher arguments?

For every ``implementations/<id>.py`` the script makes one mutant per

- ``detach``: each ``x.detach()`` call replaced by ``x`` (one at a time);
- ``no_grad``: each ``with torch.no_grad():`` block replaced by its body;
- ``swap``: each public function or ``forward`` whose first two parameters are a student/teacher
  pair (s/t, z/v, f_s/f_t, student/teacher, or any first name followed by a teacher_* one) with those two parameter names
  exchanged in its signature, so every caller's student argument lands where the teacher's was;

and runs that paper's test file against it, in a scratch copy of ``src/``, ``implementations/``
and ``tests/`` (``PYTHONPATH`` points at the copy; the repository is never modified). A mutant is
*killed* when the tests fail. A mutant that cannot change behaviour (a detach on a tensor that has
no gradient anyway) is listed in ``EQUIVALENT`` with the reason, and reported as such; every other
mutant must be killed. Output: ``results/mutants.json`` and a table.

    .venv/bin/python benchmarks/mutants.py            # all implementations
    .venv/bin/python benchmarks/mutants.py --ids hinton2015distilling   # one paper, merged into the file

The file records the hash of each implementation and test file it ran on; a test fails when either
changed since, so rerun the script (for that paper) after editing them.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kdatlas.atomic import write_json
from kdatlas.harness.tasks import file_hash

ROOT = Path(__file__).resolve().parents[1]
PARTNER = {"student": "teacher", "s": "t", "z": "v", "f_s": "f_t", "logits_s": "logits_t"}

# (paper id, kind, where) -> why the mutant cannot change what the code computes.
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("romero2014fitnets", "detach", "line 104: loss.detach()"):
        "the step's return value: detaching it only releases the graph after the update; the value, "
        "the gradients and the update are the same",
    ("romero2014fitnets", "detach", "line 118: loss.detach()"):
        "the step's return value: detaching it only releases the graph after the update; the value, "
        "the gradients and the update are the same",
    ("tian2019contrastive", "detach", "line 89: embedding.detach()"):
        "update_bank runs under its @torch.no_grad() decorator: the detach is a second guard "
        "(test_update_bank_records_no_graph_even_from_an_embedding_that_requires_grad pins the effect)",
    ("tian2019contrastive", "detach", "line 162: s.detach()"):
        "update_bank runs under @torch.no_grad() and detaches its embedding itself: a third guard",
    ("tian2019contrastive", "detach", "line 162: t.detach()"):
        "update_bank runs under @torch.no_grad() and detaches its embedding itself: a third guard",
}


def _is_pair(a: str, b: str) -> bool:
    """(student-side, teacher-side) parameter names: s/t and friends, or a teacher_* second one."""
    if a in PARTNER:
        return PARTNER[a] == b
    return "teacher" in b and "teacher" not in a


class _Mutator(ast.NodeTransformer):
    """Applies mutation number ``target`` of ``kind``; counts the sites as it walks."""

    def __init__(self, kind: str, target: int):
        self.kind, self.target, self.count, self.where = kind, target, 0, None

    def _hit(self, node, label: str) -> bool:
        hit = self.count == self.target
        if hit:
            self.where = f"line {node.lineno}: {label}"
        self.count += 1
        return hit

    def visit_Call(self, node):
        self.generic_visit(node)
        if (self.kind == "detach" and isinstance(node.func, ast.Attribute) and node.func.attr == "detach"
                and not node.args and self._hit(node, ast.unparse(node)[:60])):
            return node.func.value
        return node

    def visit_With(self, node):
        self.generic_visit(node)
        if self.kind == "no_grad" and any(ast.unparse(i.context_expr) == "torch.no_grad()" for i in node.items):
            if self._hit(node, "with torch.no_grad()"):
                return node.body
        return node

    def _func(self, node):
        self.generic_visit(node)
        args = node.args.args
        off = 1 if args and args[0].arg in ("self", "cls") else 0
        public = not node.name.startswith("_") or node.name == "forward"
        if (self.kind == "swap" and public and len(args) >= off + 2
                and _is_pair(args[off].arg, args[off + 1].arg)):
            if self._hit(node, f"{node.name}({args[off].arg}, {args[off + 1].arg})"):
                args[off].arg, args[off + 1].arg = args[off + 1].arg, args[off].arg
        return node

    visit_FunctionDef = _func


def mutants(source: str, kinds=("detach", "no_grad", "swap")):
    """Yield (kind, where, mutated source) for every mutation site of ``source``."""
    for kind in kinds:
        i = 0
        while True:
            m = _Mutator(kind, i)
            tree = m.visit(ast.parse(source))
            if m.where is None:
                break
            yield kind, m.where, ast.unparse(ast.fix_missing_locations(tree))
            i += 1


def _scratch() -> Path:
    d = Path(tempfile.mkdtemp(prefix="kdatlas-mutants-"))
    for name in ("src", "implementations", "tests"):
        shutil.copytree(ROOT / name, d / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", d / "pyproject.toml")
    return d


def _run_tests(scratch: Path, pid: str) -> tuple[bool, str]:
    env = dict(os.environ, PYTHONPATH=str(scratch / "src"), PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "--no-header", "-p", "no:cacheprovider",
                        "-p", "no:xdist", f"tests/implementations/test_{pid}.py"],
                       cwd=scratch, env=env, capture_output=True, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("FAILED") or " passed" in ln or " failed" in ln]
    return r.returncode == 0, (lines[0] if lines else r.stdout[-200:]).strip()


def run(ids: list[str] | None = None, log=print) -> dict:
    ids = ids or sorted(p.stem for p in (ROOT / "implementations").glob("*.py") if not p.name.startswith("_"))
    scratch = _scratch()
    rows, t0 = [], time.perf_counter()
    try:
        for pid in ids:
            path = scratch / "implementations" / f"{pid}.py"
            original = path.read_text()
            ok, detail = _run_tests(scratch, pid)
            if not ok:
                raise RuntimeError(f"{pid}: the tests fail on the unmutated file ({detail})")
            for kind, where, text in mutants(original):
                path.write_text(text)
                try:
                    passed, detail = _run_tests(scratch, pid)
                finally:
                    path.write_text(original)
                why = EQUIVALENT.get((pid, kind, where))
                row = {"paper_id": pid, "kind": kind, "where": where, "killed": not passed,
                       "equivalent": why, "by": detail if not passed else None}
                rows.append(row)
                log(f"{pid:22s} {kind:8s} {where:60s} {'killed' if not passed else ('equivalent' if why else 'SURVIVED')}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"protocol": "one mutant per .detach() call, per torch.no_grad() block and per student/teacher "
                        "parameter pair (names swapped in the signature); the paper's test file run against "
                        "each; killed = the tests fail",
            "implementations": ids, "mutants": rows,
            "hashes": {pid: {"implementation": file_hash(ROOT / "implementations" / f"{pid}.py"),
                             "tests": file_hash(ROOT / "tests" / "implementations" / f"test_{pid}.py")}
                       for pid in ids},
            "summary": _summary(rows),
            "python": platform.python_version(), "wall_s": round(time.perf_counter() - t0, 1)}


def _summary(rows: list[dict]) -> dict:
    return {"mutants": len(rows), "killed": sum(r["killed"] for r in rows),
            "equivalent": sum(bool(r["equivalent"]) and not r["killed"] for r in rows),
            "survived": sum(not r["killed"] and not r["equivalent"] for r in rows)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ids", nargs="+")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "mutants.json")
    args = ap.parse_args(argv)
    result = run(args.ids)
    if args.ids and args.out.exists():  # merge: the other papers' rows are kept
        old = json.loads(args.out.read_text())
        keep = [r for r in old["mutants"] if r["paper_id"] not in args.ids]
        result["mutants"] = sorted(keep + result["mutants"], key=lambda r: r["paper_id"])
        result["implementations"] = sorted(set(old["implementations"]) | set(args.ids))
        result["hashes"] = old.get("hashes", {}) | result["hashes"]
        result["summary"] = _summary(result["mutants"])
    write_json(args.out, result)
    print(f"wrote {args.out}")
    s = result["summary"]
    print(f"{s['mutants']} mutants: {s['killed']} killed, {s['equivalent']} equivalent, {s['survived']} survived")
    return 1 if s["survived"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
