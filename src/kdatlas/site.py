"""Generate the site's pages from the catalog at build time (called by the mkdocs hook).

Every page is a function of the paper records, the implementation/notebook files that exist, and the
reproduced results in ``results/``; nothing generated is committed. ``build_pages`` returns a mapping
from a page path (relative to docs/) to its Markdown, and ``build_nav`` the matching navigation.
"""
from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from . import bib
from .catalog import Catalog, files_on_disk
from .results import REFERENCES, load_all_results
from .schema import Paper


@dataclass(frozen=True)
class SiteContext:
    repo_url: str
    branch: str = "main"

    @property
    def github_path(self) -> str:
        """'owner/repo' from a https://github.com/owner/repo URL."""
        parts = urlparse(self.repo_url).path.strip("/").split("/")
        return "/".join(parts[:2])

    def colab_url(self, pid: str) -> str:
        return f"https://colab.research.google.com/github/{self.github_path}/blob/{self.branch}/notebooks/{pid}.ipynb"

    def blob_url(self, path: str) -> str:
        return f"{self.repo_url.rstrip('/')}/blob/{self.branch}/{path}"


def safe_md(text: str) -> str:
    """Markdown from a record field, with raw HTML neutralised (the schema already rejects tags;
    this is the second line of defence, so nothing from a YAML file can inject markup)."""
    return text.replace("<", "&lt;")


def link_ids(text: str, ids: set[str], from_dir: str) -> str:
    """Turn bare mentions of atlas paper ids in record prose into links to their pages."""
    if not ids:
        return text
    pattern = re.compile(r"(?<![\w/\[`-])(" + "|".join(sorted(map(re.escape, ids), key=len, reverse=True)) + r")(?![\w/`-])")
    return pattern.sub(lambda m: f"[{m.group(1)}]({_rel(from_dir, f'papers/{m.group(1)}.md')})", text)


def esc(text: str) -> str:
    """Plain text for a Markdown table cell or link label."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def fmt_num(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:g}"


# ---------------------------------------------------------------------------------------------
# File state: which implementation, test and notebook files exist (computed, never stored).

@dataclass(frozen=True)
class PaperFiles:
    implementation: bool
    notebook: bool
    test: bool


def paper_files(cat: Catalog) -> dict[str, PaperFiles]:
    return {pid: PaperFiles(implementation=h["implementation"], notebook=h["notebook pair"], test=h["test"])
            for pid, h in files_on_disk(cat.root, cat.papers).items()}


def load_benchmark(root: Path) -> dict[str, dict]:
    """{task: its results} from results/bench/<task>/ (see kdatlas.results)."""
    return load_all_results(root)


def papers_by_year(cat: Catalog) -> dict[int, list[Paper]]:
    """Papers grouped by year, years and papers in catalog order."""
    by_year: dict[int, list[Paper]] = defaultdict(list)
    for p in cat.sorted_papers():
        by_year[p.year].append(p)
    return by_year


# ---------------------------------------------------------------------------------------------
# Links between generated pages (relative .md links, so mkdocs validates every one).

def paper_link(p: Paper, from_dir: str) -> str:
    return f"[{esc(p.title)}]({_rel(from_dir, f'papers/{p.id}.md')})"


def _rel(from_dir: str, target: str) -> str:
    depth = len([d for d in from_dir.split("/") if d])
    return "../" * depth + target


def tag_path(facet: str, value: str) -> str:
    return f"tags/{facet}/{value}.md"


def board_key(task: str, dataset: str, metric: str) -> str:
    return f"leaderboards/{slug(task)}--{slug(dataset)}--{slug(metric)}.md"


def _year_label(p: Paper) -> str:
    return f"{p.venue} · first public {p.year}" if (p.venue_year and p.venue_year != p.year) else p.venue


# ---------------------------------------------------------------------------------------------
# Pages

def page_paper(p: Paper, cat: Catalog, files: PaperFiles, ctx: SiteContext, bench: dict[str, dict],
               backlinks: list[tuple[Paper, str]]) -> str:
    d = "papers"
    out = [f"# {esc(p.title)}", ""]
    out.append(f"**{esc(', '.join(p.authors))}**  ")
    out.append(f"{esc(_year_label(p))} · [{p.year} on the timeline]({_rel(d, f'years/{p.year}.md')})")
    out.append("")
    links = [f"[Landing page]({p.url})"]
    if p.arxiv:
        links.append(f"[arXiv:{p.arxiv}](https://arxiv.org/abs/{p.arxiv})")
    if p.pdf:
        links.append(f"[PDF]({p.pdf})")
    if p.doi:
        links.append(f"[DOI {esc(p.doi)}](https://doi.org/{p.doi})")
    for c in p.code:
        links.append(f"[Code{' (official)' if c.official else ' (unofficial)'}]({c.url})")
    out += [" · ".join(links), ""]
    chips = []
    for facet, values in p.tags.items():
        for v in values:
            chips.append(f"[`{facet}: {v}`]({_rel(d, tag_path(facet, v))})")
    out += ["Tags: " + " ".join(chips), ""]
    if p.unconfirmed:
        out += ['!!! warning "Unconfirmed facts"', "    These fields could not be confirmed from a primary source; the value shown is the best available.", ""]
        for u in p.unconfirmed:
            out.append(f"    - **{esc(u.field)}**: {esc(u.note)}")
        out.append("")
    out += [f"!!! abstract \"TL;DR\"\n    {safe_md(p.tldr)}", ""]
    ids = set(cat.papers) - {p.id}
    out += ["## Summary", "", link_ids(safe_md(p.summary), ids, d), "", "## Method", "", safe_md(p.method), ""]

    out += ["## Reported results", ""]
    if p.results:
        out += ["Numbers as the paper reports them (not reproduced by us), with the table or section they come from.", ""]
        out += ["| Task | Dataset | Metric | Teacher → student | Method | Value | Student alone | Teacher | Source |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in p.results:
            pair = f"{esc(r.teacher or '–')} → {esc(r.student or '–')}"
            board = _rel(d, board_key(r.task, r.dataset, r.metric))
            out.append(f"| {esc(r.task)} | [{esc(r.dataset)}]({board}) | {esc(r.metric)} | {pair} | {method_cell(r.method, cat, d)} "
                       f"| {fmt_num(r.value)} | {fmt_num(r.baseline)} | {fmt_num(r.teacher_value)} | {esc(r.source)}{' · ' + esc(r.setting) if r.setting else ''} |")
        out.append("")
    else:
        out += ["No reported numbers are recorded for this paper yet.", ""]

    out += reproduced_section(p.id, bench, d)

    out += ["## Implementation", ""]
    impl = p.implementation
    out.append(f"Scope: **{impl.scope.replace('-', ' ')}**. " + (safe_md(impl.notes) if impl.notes else ""))
    out.append("")
    if files.implementation:
        src = (cat.root / "implementations" / f"{p.id}.py").read_text(encoding="utf-8")
        out += [f"One file, torch only: copy [`implementations/{p.id}.py`]({ctx.blob_url(f'implementations/{p.id}.py')}) into your project.", "",
                f'~~~~python title="implementations/{p.id}.py"', src.rstrip("\n"), "~~~~", ""]
    else:
        out += ['!!! note "No implementation yet"',
                f"    This paper has no implementation file in the atlas yet. {safe_md(impl.reason or '')}", ""]

    out += ["## Notebook", ""]
    if files.notebook:
        out += [f"[Read the notebook]({_rel(d, f'notebooks/{p.id}.ipynb')}) · "
                f"[![Open in Colab]({_rel(d, 'assets/colab-badge.svg')})]({ctx.colab_url(p.id)}){{ .colab-badge }}", ""]
    else:
        out += ['!!! note "No notebook yet"', "    This paper has no notebook in the atlas yet.", ""]

    out += ["## Cite", "", "```bibtex", bib.to_bibtex([p]).strip(), "```", "",
            f"All entries: [BibTeX]({_rel(d, 'atlas.bib')}) · [CSL-JSON]({_rel(d, 'atlas.json')}) · [Bibliography]({_rel(d, 'bibliography.md')})", ""]

    if p.related or backlinks:
        out += ["## Related papers", ""]
        for link in p.related:
            other = cat.papers.get(link.id)
            if other:
                out.append(f"- This paper **{link.relation.replace('-', ' ')}** {paper_link(other, d)} ({other.year})"
                           + (f": {esc(link.note)}" if link.note else ""))
        for other, relation in backlinks:
            out.append(f"- {paper_link(other, d)} ({other.year}) **{relation.replace('-', ' ')}** this paper")
        out.append("")

    if p.seed.errata:
        out += ["## What the seed list gets wrong", "",
                "| Field | The list says | The atlas says | Note |", "|---|---|---|---|"]
        for e in p.seed.errata:
            out.append(f"| {esc(e.field)} | {esc(e.listed or '')} | {esc(e.actual or '')} | {esc(e.note or '')} |")
        out.append("")
    if p.sources:
        out += ["<small>Bibliographic facts checked against: " + ", ".join(f"<{s}>" for s in p.sources) + "</small>", ""]
    return "\n".join(out)


def method_cell(method: str, cat: Catalog, from_dir: str) -> str:
    other = cat.papers.get(method)
    if other:
        return f"[{esc(short_name(other))}]({_rel(from_dir, f'papers/{other.id}.md')})"
    return esc(method)


def short_name(p: Paper) -> str:
    """A short label for a method: the acronym before a colon in the title, else the id."""
    head = p.title.split(":")[0]
    return head if len(head) <= 24 else p.id


def _metric_label(res: dict) -> str:
    m = res["task"].get("metric", {})
    return f"{m.get('name', 'score')} ({m.get('unit', '')})".replace(" ()", "")


def _pm(e: dict) -> str:
    return f"{e['mean']:.2f} ± {e['std']:.2f}"


def reproduced_section(pid: str, bench: dict[str, dict], from_dir: str) -> list[str]:
    """The paper page's table of our numbers: one block per task the method ran on."""
    tasks = [(name, res) for name, res in bench.items() if pid in res]
    if not tasks:
        return []
    out = ["## Reproduced on embedded data (ours)", "",
           '!!! info "Our numbers, not the paper\'s"',
           f"    Mean ± std over seeds on the atlas's embedded tasks, by `kdatlas bench`. Protocol and all "
           f"methods: [reproduced results]({_rel(from_dir, 'reproduced.md')}).", ""]
    for name, res in tasks:
        m = res[pid]
        out += [f"**{esc(name)}**: {esc(res['task'].get('description', ''))}", "",
                f"| | {esc(_metric_label(res))} |", "|---|---|"]
        for label, key in (("Teacher", "teacher"), ("Student alone", "baseline")):
            if key in res:
                out.append(f"| {label} | {_pm(res[key])} |")
        out += [f"| Student with this method | {_pm(m)} |", ""]
    return out


def page_home(cat: Catalog, files: dict[str, PaperFiles], ctx: SiteContext) -> str:
    papers = cat.sorted_papers()
    n_impl = sum(f.implementation for f in files.values())
    n_nb = sum(f.notebook for f in files.values())
    n_res = sum(len(p.results) for p in papers)
    years = [p.year for p in papers] or [0]
    newest = sorted(papers, key=lambda p: (p.added, p.year, p.id), reverse=True)[:8]
    out = [
        "# KD Atlas", "",
        "An annotated, runnable and citable atlas of knowledge-distillation research: every paper has a record "
        "with verified bibliographic facts, our own summary and key equations, and the results the paper reports; "
        "papers with an implementation have one copyable PyTorch file with tests of the paper's claims, and a notebook.", "",
        "## How to use it", "",
        "- **Read**: browse the [papers](papers/index.md), the [timeline](years/index.md), the [tags](tags/index.md) "
        "and the [leaderboards](leaderboards/index.md) of reported numbers.",
        "- **Run**: each notebook has an *Open in Colab* badge; it installs the atlas on Colab and trains on data that needs no download.",
        "- **Copy**: each implementation is one file that imports only `torch`; the equation sits next to the code.",
        "- **Cite**: every paper page has a BibTeX box; the whole [bibliography](bibliography.md) is available as [BibTeX](atlas.bib) and [CSL-JSON](atlas.json).", "",
        "## The atlas in numbers", "",
        "| Papers | Implemented | Notebooks | Reported results | Years |", "|---|---|---|---|---|",
        f"| {len(papers)} | {n_impl} | {n_nb} | {n_res} | {min(years)}–{max(years)} |", "",
        f"Papers without an implementation or notebook yet: {len(papers) - n_impl} and {len(papers) - n_nb}. "
        "Their pages say so; see the [reproduced results](reproduced.md) for what we ran ourselves.", "",
        "## Newest additions", "",
    ]
    for p in newest:
        out.append(f"- {p.added.isoformat()}: {paper_link(p, '')} ({p.year})")
    out += ["", f"Source, issues and contributions: [{ctx.repo_url}]({ctx.repo_url}).", ""]
    return "\n".join(out)


def _paper_table(papers: list[Paper], files: dict[str, PaperFiles], from_dir: str) -> list[str]:
    out = ["| Year | Paper | Venue | Code | Notebook |", "|---|---|---|---|---|"]
    for p in papers:
        f = files[p.id]
        out.append(f"| {p.year} | {paper_link(p, from_dir)} | {esc(p.venue)} | {'yes' if f.implementation else '—'} | {'yes' if f.notebook else '—'} |")
    return out + [""]


def page_papers_index(cat: Catalog, files: dict[str, PaperFiles]) -> str:
    return "\n".join(["# All papers", "", f"{len(cat.papers)} papers, oldest first.", ""]
                     + _paper_table(cat.sorted_papers(), files, "papers"))


def page_year(year: int, papers: list[Paper], files: dict[str, PaperFiles]) -> str:
    return "\n".join([f"# {year}", "", f"{len(papers)} paper(s) first made public in {year}.", ""]
                     + _paper_table(papers, files, "years"))


def page_timeline(by_year: dict[int, list[Paper]]) -> str:
    out = ["# Timeline", "", "Papers by the year of their first public version (arXiv v1, or publication if earlier).", ""]
    for year in sorted(by_year):
        out += [f"## [{year}]({year}.md)", ""]
        for p in by_year[year]:
            out.append(f"- {paper_link(p, 'years')} — {esc(', '.join(p.authors[:3]))}{' et al.' if len(p.authors) > 3 else ''}, {esc(p.venue)}")
        out.append("")
    return "\n".join(out)


def page_tag(facet: str, value: str, desc: str, papers: list[Paper], files: dict[str, PaperFiles]) -> str:
    return "\n".join([f"# {facet}: {value}", "", esc(desc), "", f"{len(papers)} paper(s).", ""]
                     + _paper_table(papers, files, f"tags/{facet}"))


def page_tags_index(cat: Catalog, by_tag: dict[tuple[str, str], list[Paper]]) -> str:
    out = ["# Tags", "", "Every paper is tagged on several independent facets; each tag has a page listing its papers.", ""]
    for facet, values in cat.vocab.facets.items():
        out += [f"## {facet}: {esc(cat.vocab.facet_titles[facet])}", ""]
        for value, desc in values.items():
            n = len(by_tag.get((facet, value), []))
            out.append(f"- [{value}]({facet}/{value}.md) ({n}): {esc(desc)}")
        out.append("")
    return "\n".join(out)


def collect_boards(cat: Catalog) -> dict[tuple[str, str, str], list[tuple[Paper, object]]]:
    boards: dict[tuple[str, str, str], list] = defaultdict(list)
    for p in cat.sorted_papers():
        for r in p.results:
            boards[(r.task, r.dataset, r.metric)].append((p, r))
    return boards


REFERENCE_METHODS = ("teacher", "student alone")


def page_board(key: tuple[str, str, str], rows: list, cat: Catalog) -> str:
    task, dataset, metric = key
    d = "leaderboards"
    higher = rows[0][1].higher_is_better
    out = [f"# {esc(dataset)} · {esc(metric)}", "",
           f"Task: [{task}]({_rel(d, tag_path('task', task))}). {'Higher' if higher else 'Lower'} is better. "
           "Every number is as reported by the paper in the last column (not reproduced by us); "
           "numbers from different papers may differ in protocol.", ""]
    # Rows for a model trained without distillation (a teacher, or a student alone) are reference
    # points, not entries of a teacher -> student pair: they get their own table below.
    ref = [(p, r) for p, r in rows if r.method in REFERENCE_METHODS or not (r.teacher and r.student)]
    by_pair: dict[str, list] = defaultdict(list)
    for p, r in rows:
        if (p, r) not in ref:
            by_pair[f"{r.teacher} → {r.student}"].append((p, r))
    for pair in sorted(by_pair):
        out += [f"## {esc(pair)}", "", "| Method | Value | Student alone | Teacher | Reported in | Source |", "|---|---|---|---|---|---|"]
        items = sorted(by_pair[pair], key=lambda pr: pr[1].value, reverse=higher)
        for p, r in items:
            out.append(f"| {method_cell(r.method, cat, d)} | {fmt_num(r.value)} | {fmt_num(r.baseline)} | {fmt_num(r.teacher_value)} "
                       f"| [{esc(p.id)}]({_rel(d, f'papers/{p.id}.md')}) | {esc(r.source)}{' · ' + esc(r.setting) if r.setting else ''} |")
        out.append("")
    if ref:
        out += ["## Reference points and single-model results", "",
                "Teachers and students trained without distillation, and results reported without a teacher → student pair.", "",
                "| Method | Model | Value | Reported in | Source |", "|---|---|---|---|---|"]
        for p, r in sorted(ref, key=lambda pr: (pr[1].teacher or pr[1].student or "", pr[1].method)):
            model = r.teacher if r.method == "teacher" else (r.student or r.teacher or "–")
            out.append(f"| {method_cell(r.method, cat, d)} | {esc(model)} | {fmt_num(r.value)} "
                       f"| [{esc(p.id)}]({_rel(d, f'papers/{p.id}.md')}) | {esc(r.source)}{' · ' + esc(r.setting) if r.setting else ''} |")
        out.append("")
    return "\n".join(out)


def page_boards_index(boards: dict) -> str:
    out = ["# Leaderboards", "", "Reported results grouped by task, dataset and metric, then by teacher → student pair. "
           "Each row links to the paper and the table it came from.", "",
           "| Task | Dataset | Metric | Numbers |", "|---|---|---|---|"]
    for key in sorted(boards):
        task, dataset, metric = key
        out.append(f"| {esc(task)} | [{esc(dataset)}]({board_key(*key).split('/', 1)[1]}) | {esc(metric)} | {len(boards[key])} |")
    return "\n".join(out + [""])


def page_bibliography(cat: Catalog) -> str:
    out = ["# Bibliography", "", "Generated from the paper records. Keys are paper ids.", "",
           "Download: [atlas.bib](atlas.bib) (BibTeX) · [atlas.json](atlas.json) (CSL-JSON, for Zotero and pandoc).", ""]
    for p in sorted(cat.papers.values(), key=lambda p: (p.authors[0].split()[-1].lower(), p.year)):
        out.append(f"- {esc(', '.join(p.authors))}. {paper_link(p, '')}. *{esc(p.venue_full or p.venue)}*, {p.venue_year or p.year}. `{p.id}`")
    return "\n".join(out + [""])


def page_errata(cat: Catalog) -> str:
    out = ["# Seed errata", "", "The atlas started from a curated list of papers. This page lists what that list gets wrong, "
           "paper by paper, and what the atlas says instead (checked against primary sources).", ""]
    n = 0
    for p in cat.sorted_papers():
        if not p.seed.errata:
            continue
        out += [f"## {paper_link(p, '')}", "", "| Field | The list says | The atlas says | Note |", "|---|---|---|---|"]
        for e in p.seed.errata:
            n += 1
            out.append(f"| {esc(e.field)} | {esc(e.listed or '')} | {esc(e.actual or '')} | {esc(e.note or '')} |")
        out.append("")
    out.insert(4, f"{n} errata across {sum(1 for p in cat.papers.values() if p.seed.errata)} papers.\n")
    return "\n".join(out)


def page_reproduced(bench: dict[str, dict], cat: Catalog, files: dict[str, PaperFiles] | None = None) -> str:
    out = ["# Reproduced on embedded data", "",
           '!!! info "Our numbers"', "    Everything on this page was produced by `kdatlas bench` in this repository, on data that "
           "needs no download. It is kept apart from the numbers papers report (those are on each paper page and the leaderboards).", ""]
    if not bench:
        return "\n".join(out + ["No benchmark results are committed yet (`results/bench/` is empty). Run `kdatlas bench`.", ""])
    for name, res in bench.items():
        info = res["task"]
        metric = _metric_label(res)
        higher = info.get("metric", {}).get("higher_is_better", True)
        out += [f"## {esc(name)}", "", esc(info.get("description", "")), "",
                f"Seeds {', '.join(map(str, info['protocol']['seeds']))}; {esc(info['protocol']['selection'])}; "
                f"std: {esc(info['protocol']['std'])}. Environment: torch {esc(info['environment']['torch'])}, "
                f"{esc(info['environment']['cpu'])}, {info['environment']['threads_per_run']} thread per run. "
                f"{esc(info.get('reproducibility', ''))}", "",
                f"| Model | {esc(metric)} | Δ vs student alone | Per-seed values | Wall time per seed (s) |",
                "|---|---|---|---|---|"]
        base = res.get("baseline")

        def row(label: str, e: dict, delta: bool = True) -> str:
            vals = ", ".join(f"{v:.2f}" for v in e["values"])
            d = f"{e['mean'] - base['mean']:+.2f}" if (delta and base) else ""
            return f"| {label} | {_pm(e)} | {d} | {vals} | {e['wall_s']:.1f} |"
        if "teacher" in res:
            out.append(row("Teacher", res["teacher"], delta=False))
        if base:
            out.append(row("Student alone", base, delta=False))
        methods = [k for k in res if k not in ("task", *REFERENCES)]
        for pid in sorted(methods, key=lambda k: res[k]["mean"], reverse=higher):
            p = cat.papers.get(pid)
            out.append(row(paper_link(p, "") if p else esc(pid), res[pid]))
        if base and "teacher" in res:
            out += ["", f"Teacher minus student alone: {res['teacher']['mean'] - base['mean']:+.2f}."]
            kd = res.get("hinton2015distilling")
            if kd:
                two_std = 2 * max(kd["std"], base["std"])
                gain = kd["mean"] - base["mean"]
                out.append(f"Hinton KD minus student alone: {gain:+.2f}, against two standard deviations {two_std:.2f} "
                           f"({'larger' if gain > two_std else 'not larger'}).")
        missing = sorted(pid for pid, f in (files or {}).items() if f.implementation and pid not in res)
        if missing:
            out += ["", "Implemented but not run on this task (each recipe says why): "
                    + ", ".join(paper_link(cat.papers[pid], "") for pid in missing) + "."]
        out += ["", "<details><summary>Task configuration</summary>", "", "```json",
                json.dumps(info.get("config", {}), indent=2), "```", "", "</details>", ""]
    out += ["Settings are each paper's published defaults (each method's result file and recipe list them), except "
            "the loss weights chosen on held-out data below."]
    out += _weight_selection_section(cat)
    return "\n".join(out + [""])


def _weight_selection_section(cat: Catalog) -> list[str]:
    """The tables of results/weight_selection.json (benchmarks/select_weights.py), if committed."""
    path = cat.root / "results" / "weight_selection.json"
    if not path.exists():
        return []
    sel = json.loads(path.read_text(encoding="utf-8"))
    out = ["", "## Loss weights chosen on held-out data", "",
           "Produced by `python benchmarks/select_weights.py`: each candidate trained with the benchmark's budget "
           "and scored on held-out training samples that no student sees. The test set plays no part.", ""]
    for task, methods in sel.get("tasks", {}).items():
        proto = sel.get("protocol", {}).get(task, {})
        out += [f"### {esc(task)}", "",
                f"Seeds {', '.join(map(str, proto.get('seeds', [])))}, scored on {esc(proto.get('holdout', 'held-out data'))}; "
                f"rule: {esc(proto.get('rule', ''))}.", "",
                "| Method | Candidate | Held-out mean | Student alone, held-out | Chosen |", "|---|---|---|---|---|"]
        for pid, entry in methods.items():
            p = cat.papers.get(pid)
            for c in entry.get("candidates", []):
                setting = ", ".join(f"{k} = {v:g}" for k, v in c["settings"].items())
                chosen = "yes" if c["settings"] == entry.get("chosen") else ""
                name = f"[{esc(short_name(p))}]({_rel('', f'papers/{p.id}.md')})" if p else esc(pid)
                out.append(f"| {name} | {setting} | {c['holdout_mean']:.2f} | "
                           f"{c['student_alone_holdout_mean']:.2f} | {chosen} |")
        out.append("")
    return out


# (file under results/, section title, the script that writes it): the Benchmarks page, in this order.
BENCHMARK_OUTPUTS = (
    ("overhead.json", "Training-step overhead of each method", "benchmarks/overhead.py"),
    ("budgets.json", "Notebook run times and the projected CI time", "benchmarks/budgets.py"),
    ("mutants", "Mutation check: do the tests catch a dropped detach or swapped arguments?",
     "benchmarks/mutants.py"),
    ("site_build.json", "Site build time and size", "benchmarks/site_build.py"),
)


def _mutants_table(files: list[Path]) -> list[str]:
    """One row per paper of results/mutants/, then every mutant that was not killed, with its reason."""
    out = ["| Paper | Mutants | Killed | Equivalent | Survived |", "|---|---|---|---|---|"]
    notes = []
    for f in files:
        d = json.loads(f.read_text(encoding="utf-8"))
        s = d["summary"]
        out.append(f"| {esc(d['paper_id'])} | {s['mutants']} | {s['killed']} | {s['equivalent']} | {s['survived']} |")
        notes += [f"- {esc(d['paper_id'])}, {esc(r['kind'])} at {esc(r['where'])}: "
                  f"{esc(r['equivalent'] or 'SURVIVED')}" for r in d["mutants"] if not r["killed"]]
        if d.get("no_swap"):
            notes.append(f"- {esc(d['paper_id'])}: no student/teacher pair to swap: {esc(d['no_swap'])}")
    if files:
        out += ["", f"Protocol: {esc(json.loads(files[0].read_text(encoding='utf-8'))['protocol'])}."]
    return out + ([""] + notes if notes else []) + [""]


def page_benchmarks(root: Path) -> str:
    out = ["# Benchmarks", "", "Figures written by the benchmark scripts in this repository; the page is generated from their output files.", ""]
    for name, title, script in BENCHMARK_OUTPUTS:
        path = root / "results" / name
        raw = f"`results/{name}/<paper id>.json`" if path.is_dir() else f"`results/{name}`"
        out += [f"## {title}", "", f"Produced by `python {script}`; raw output: {raw}.", ""]
        if not path.exists():
            out += ["Not measured yet.", ""]
            continue
        if path.is_dir():
            out += _mutants_table(sorted(path.glob("*.json")))
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if name == "overhead.json":
            measured = {r.get("method") for r in data["step"]["rows"]} | set(data["step"].get("skipped", {}))
            missing = sorted(f.stem for f in (root / "src" / "kdatlas" / "recipes").glob("[!_]*.py")
                             if f.stem not in measured)
            if missing:
                out += ["Not measured yet (recipes added after the last run): " + ", ".join(missing) + ".", ""]
        out += ["```json", json.dumps(data, indent=2), "```", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------

def build_pages(cat: Catalog, ctx: SiteContext) -> dict[str, str]:
    """Every generated page: {path relative to docs/: markdown}. Also the .bib and CSL-JSON files."""
    cat.raise_if_invalid()
    files = paper_files(cat)
    bench = load_benchmark(cat.root)
    backlinks: dict[str, list[tuple[Paper, str]]] = defaultdict(list)
    for p in cat.papers.values():
        for link in p.related:
            backlinks[link.id].append((p, link.relation))
    pages: dict[str, str] = {"index.md": page_home(cat, files, ctx), "papers/index.md": page_papers_index(cat, files)}
    for p in cat.sorted_papers():
        pages[f"papers/{p.id}.md"] = page_paper(p, cat, files[p.id], ctx, bench, sorted(backlinks[p.id], key=lambda x: x[0].id))
    by_year = papers_by_year(cat)
    pages["years/index.md"] = page_timeline(by_year)
    for year, ps in by_year.items():
        pages[f"years/{year}.md"] = page_year(year, ps, files)
    by_tag: dict[tuple[str, str], list[Paper]] = defaultdict(list)
    for p in cat.sorted_papers():
        for facet, values in p.tags.items():
            for v in values:
                by_tag[(facet, v)].append(p)
    pages["tags/index.md"] = page_tags_index(cat, by_tag)
    for facet, values in cat.vocab.facets.items():
        for value, desc in values.items():
            pages[tag_path(facet, value)] = page_tag(facet, value, desc, by_tag.get((facet, value), []), files)
    boards = collect_boards(cat)
    pages["leaderboards/index.md"] = page_boards_index(boards)
    for key, rows in boards.items():
        pages[board_key(*key)] = page_board(key, rows, cat)
    pages["bibliography.md"] = page_bibliography(cat)
    pages["errata.md"] = page_errata(cat)
    pages["reproduced.md"] = page_reproduced(bench, cat, files)
    pages["benchmarks.md"] = page_benchmarks(cat.root)
    pages["atlas.bib"] = bib.to_bibtex(cat.sorted_papers())
    pages["atlas.json"] = bib.to_csl_json(cat.sorted_papers())
    return pages


def build_nav(cat: Catalog, pages: dict[str, str], notebooks: list[str], static_pages: list[str]) -> list:
    """The navigation: every generated page appears in it (so mkdocs' omitted-files check stays quiet)."""
    by_year = papers_by_year(cat)
    papers_nav: list = [{"All papers": "papers/index.md"}]
    for year in sorted(by_year):
        papers_nav.append({str(year): [{short_name(p): f"papers/{p.id}.md"} for p in by_year[year]]})
    years_nav: list = [{"Timeline": "years/index.md"}] + [{str(y): f"years/{y}.md"} for y in sorted(by_year)]
    tags_nav: list = [{"All tags": "tags/index.md"}]
    for facet, values in cat.vocab.facets.items():
        tags_nav.append({facet: [{v: tag_path(facet, v)} for v in values]})
    boards_nav: list = [{"All leaderboards": "leaderboards/index.md"}] + [
        {p.split("/", 1)[1].removesuffix(".md").replace("--", " · "): p} for p in sorted(pages) if p.startswith("leaderboards/") and not p.endswith("index.md")]
    nb_nav = [{cat.papers[n].id if n in cat.papers else n: f"notebooks/{n}.ipynb"} for n in notebooks]
    nav: list = [{"Home": "index.md"}, {"Papers": papers_nav}, {"Timeline": years_nav}, {"Tags": tags_nav},
                 {"Leaderboards": boards_nav}, {"Reproduced": "reproduced.md"}]
    if nb_nav:
        nav.append({"Notebooks": nb_nav})
    nav += [{"Bibliography": "bibliography.md"}, {"Seed errata": "errata.md"}, {"Benchmarks": "benchmarks.md"}]
    for sp in static_pages:
        nav.append(sp)
    return nav
