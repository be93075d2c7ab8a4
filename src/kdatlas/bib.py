"""The atlas bibliography, generated from the paper records: BibTeX (via bibtexparser 2.x) and CSL-JSON.

Keys are paper ids. Entry types follow the venue type: ``@inproceedings`` (booktitle) for
conference and workshop papers, ``@article`` (journal) for journal papers, ``@misc`` with
``eprint``/``archivePrefix`` for arXiv-only papers. Titles keep acronyms and mixed-case words in
braces so that bibliography styles that lower-case titles do not mangle them; LaTeX special
characters are escaped; diacritics are kept as UTF-8.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable

import bibtexparser
from bibtexparser.model import Entry, Field
from bibtexparser.library import Library

from .schema import Paper

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_SPECIAL_RE = re.compile(r"[\\&%$#_{}~^]")


def escape_latex(text: str) -> str:
    """Escape the characters that BibTeX/LaTeX treat specially. Diacritics stay as UTF-8."""
    return _SPECIAL_RE.sub(lambda m: _SPECIAL[m.group(0)], text)


def _needs_protection(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return False
    # Acronyms and mixed case (CNN, FitNets, LiDAR, StyleGAN2, 3D, BERT), not plain Title Case words.
    return any(c.isupper() for c in word[1:]) or (any(c.isdigit() for c in word) and any(c.isupper() for c in word))


def protect_title(title: str) -> str:
    """Escape a title and wrap case-sensitive words in braces: 'FitNets: Hints' -> '{FitNets}: Hints'."""
    out = []
    for token in re.split(r"(\s+)", title):
        if not token.strip():
            out.append(token)
            continue
        m = re.match(r"^([(\[\"']*)(.*?)([)\]\"'.,:;!?]*)$", token)
        lead, core, trail = m.groups() if m else ("", token, "")
        parts = core.split("-")
        core_out = "-".join("{" + escape_latex(p) + "}" if _needs_protection(p) else escape_latex(p) for p in parts)
        out.append(escape_latex(lead) + core_out + escape_latex(trail))
    return "".join(out)


def _entry_type(p: Paper) -> str:
    return {"conference": "inproceedings", "workshop": "inproceedings", "journal": "article",
            "book-chapter": "incollection", "thesis": "phdthesis", "techreport": "techreport"}.get(p.venue_type, "misc")


def to_entry(p: Paper) -> Entry:
    """One paper as a bibtexparser Entry (values already escaped for BibTeX)."""
    etype = _entry_type(p)
    year = p.venue_year or p.year
    fields: list[tuple[str, str]] = [
        ("title", protect_title(p.title)),
        ("author", " and ".join(escape_latex(a) for a in p.authors)),
    ]
    container = escape_latex(p.venue_full or p.venue)
    if etype == "inproceedings":
        fields.append(("booktitle", container))
    elif etype == "article":
        fields.append(("journal", container))
    elif etype == "incollection":
        fields.append(("booktitle", container))
        fields.append(("publisher", escape_latex(p.publisher or "Unknown publisher")))
    elif etype == "phdthesis":
        fields.append(("school", escape_latex(p.publisher or p.venue)))
    elif etype == "techreport":
        fields.append(("institution", escape_latex(p.publisher or p.venue)))
    else:  # arXiv-only preprint
        fields.append(("howpublished", f"arXiv preprint arXiv:{p.arxiv}" if p.arxiv else container))
    fields.append(("year", str(year)))
    # plain.bst allows volume and number together only in @article (AAAI-style issue numbers are dropped).
    for name in ("volume", "number", "pages") if etype == "article" else ("volume", "pages"):
        val = getattr(p, name)
        if val:
            fields.append((name, escape_latex(val.replace("-", "--") if name == "pages" and "--" not in val else val)))
    if p.publisher and etype in ("inproceedings", "article"):
        fields.append(("publisher", escape_latex(p.publisher)))
    if p.arxiv:
        fields += [("eprint", p.arxiv), ("archivePrefix", "arXiv")]
    if p.doi:
        fields.append(("doi", p.doi))
    fields.append(("url", str(p.url)))
    return Entry(etype, p.id, [Field(k, v) for k, v in fields])


def to_bibtex(papers: Iterable[Paper]) -> str:
    lib = Library([to_entry(p) for p in papers])
    return bibtexparser.write_string(lib)


def _csl_name(full: str) -> dict[str, str]:
    parts = full.rsplit(" ", 1)
    return {"given": parts[0], "family": parts[1]} if len(parts) == 2 else {"literal": full}


def to_csl(p: Paper) -> dict:
    """One paper as a CSL-JSON item (for Zotero, pandoc/citeproc)."""
    ctype = {"conference": "paper-conference", "workshop": "paper-conference", "journal": "article-journal",
             "book-chapter": "chapter", "thesis": "thesis", "techreport": "report"}.get(p.venue_type, "article")
    item: dict = {
        "id": p.id,
        "type": ctype,
        "title": p.title,
        "author": [_csl_name(a) for a in p.authors],
        "issued": {"date-parts": [[p.venue_year or p.year]]},
        "container-title": p.venue_full or p.venue,
        "URL": str(p.url),
    }
    if p.venue_type == "preprint":
        item["publisher"] = "arXiv"
        item["number"] = f"arXiv:{p.arxiv}" if p.arxiv else None
    for src, dst in (("doi", "DOI"), ("volume", "volume"), ("number", "issue"), ("pages", "page"), ("publisher", "publisher")):
        val = getattr(p, src)
        if val and dst not in item:
            item[dst] = val
    return {k: v for k, v in item.items() if v is not None}


def to_csl_json(papers: Iterable[Paper]) -> str:
    return json.dumps([to_csl(p) for p in papers], ensure_ascii=False, indent=2) + "\n"
