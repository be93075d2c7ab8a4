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
no gradient anyway) is declared in the paper's own test file, with the reason, and reported as such;
every other mutant must be killed:

    MUTANTS_EQUIVALENT = {("detach", "line 89: embedding.detach()"): "why it cannot change anything"}
    MUTANTS_NO_SWAP = "why the file has no student/teacher argument pair"   # optional

Output: ``results/mutants/<id>.json`` per paper (so adding a paper writes only its own file) and a table.

    .venv/bin/python benchmarks/mutants.py            # all implementations
    .venv/bin/python benchmarks/mutants.py --ids hinton2015distilling   # one paper

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

OUT = ROOT / "results" / "mutants"
PROTOCOL = ("one mutant per .detach() call, per torch.no_grad() block and per student/teacher parameter pair "
            "(names swapped in the signature); the paper's test file run against each; killed = the tests fail")


def declared(pid: str, name: str, default=None):
    """A literal ``name = ...`` at the top level of tests/implementations/test_<pid>.py (not imported)."""
    tree = ast.parse((ROOT / "tests" / "implementations" / f"test_{pid}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return default


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


def run(pid: str, scratch: Path, log=print) -> dict:
    """Every mutant of implementations/<pid>.py against its test file, in ``scratch``."""
    equivalent = declared(pid, "MUTANTS_EQUIVALENT", {})
    path = scratch / "implementations" / f"{pid}.py"
    original = path.read_text()
    rows, t0 = [], time.perf_counter()
    ok, detail = _run_tests(scratch, pid)
    if not ok:
        raise RuntimeError(f"{pid}: the tests fail on the unmutated file ({detail})")
    for kind, where, text in mutants(original):
        path.write_text(text)
        try:
            passed, detail = _run_tests(scratch, pid)
        finally:
            path.write_text(original)
        why = equivalent.get((kind, where))
        rows.append({"kind": kind, "where": where, "killed": not passed, "equivalent": why,
                     "by": detail if not passed else None})
        log(f"{pid:22s} {kind:8s} {where:60s} {'killed' if not passed else ('equivalent' if why else 'SURVIVED')}")
    unused = sorted(set(equivalent) - {(r["kind"], r["where"]) for r in rows})
    if unused:
        raise RuntimeError(f"tests/implementations/test_{pid}.py: MUTANTS_EQUIVALENT names no mutant of the "
                           f"current file: {unused} (line numbers moved? rerun and update them)")
    return {"paper_id": pid, "protocol": PROTOCOL, "mutants": rows,
            "no_swap": declared(pid, "MUTANTS_NO_SWAP"),
            "hashes": {"implementation": file_hash(ROOT / "implementations" / f"{pid}.py"),
                       "tests": file_hash(ROOT / "tests" / "implementations" / f"test_{pid}.py")},
            "summary": summary(rows), "python": platform.python_version(),
            "wall_s": round(time.perf_counter() - t0, 1)}


def summary(rows: list[dict]) -> dict:
    return {"mutants": len(rows), "killed": sum(r["killed"] for r in rows),
            "equivalent": sum(bool(r["equivalent"]) and not r["killed"] for r in rows),
            "survived": sum(not r["killed"] and not r["equivalent"] for r in rows)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ids", nargs="+", help="paper ids (default: every implementation)")
    ap.add_argument("--out", type=Path, default=OUT, help="folder of <id>.json files")
    args = ap.parse_args(argv)
    ids = args.ids or sorted(p.stem for p in (ROOT / "implementations").glob("*.py") if not p.name.startswith("_"))
    scratch, survived = _scratch(), 0
    try:
        for pid in ids:
            result = run(pid, scratch)
            write_json(args.out / f"{pid}.json", result)
            s = result["summary"]
            survived += s["survived"]
            print(f"wrote {args.out / (pid + '.json')}: {s['mutants']} mutants, {s['killed']} killed, "
                  f"{s['equivalent']} equivalent, {s['survived']} survived")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
