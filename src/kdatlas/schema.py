"""The paper record: one YAML file per paper in ``papers/``, validated by these pydantic models.

Field names are the contract that the catalog, the bibliography, the site and the checks read.
Checks that need the whole catalog (unknown tags, ``related`` ids that do not exist, duplicate ids,
id vs. file name) live in :mod:`kdatlas.catalog`; this module checks one record on its own.
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

ID_RE = re.compile(r"^[a-z]+[0-9]{4}[a-z0-9]+$")
ARXIV_RE = re.compile(r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})$")
DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
# Anything that a Markdown renderer would pass through as an HTML tag, comment or declaration.
HTML_RE = re.compile(r"<\s*/?\s*[A-Za-z!?][^>]*>|<\s*[A-Za-z]+[\s/>]")

Facet = Literal[
    "knowledge", "scheme", "teacher-setup", "data", "mechanism", "task", "purpose", "relation-to-kd"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _no_html(value: str | None) -> str | None:
    if value is not None and HTML_RE.search(value):
        raise ValueError(
            "raw HTML is not allowed in Markdown fields (it would be injected into the site); "
            "write it as Markdown or escape '<' as '&lt;'"
        )
    return value


class CodeLink(_Strict):
    url: HttpUrl
    official: bool = Field(description="True only for code released by the paper's authors.")


class SeedEntry(_Strict):
    section: str = Field(description="Heading of the seed list under which the entry appears.")
    title: str = Field(description="The title exactly as the seed list gives it.")
    url: str | None = Field(default=None, description="The link as listed (may be broken or empty).")
    authors: str | None = Field(default=None, description="The author string as listed.")
    year: str | None = Field(default=None, description="The year or venue text as listed.")


class Erratum(_Strict):
    field: str = Field(description="Which fact the list gets wrong: authors, year, venue, url, title, duplicate, code, ...")
    listed: str | None = Field(default=None, description="What the seed list says.")
    actual: str | None = Field(default=None, description="What the primary source says.")
    note: str | None = None


class Seed(_Strict):
    entries: list[SeedEntry] = Field(min_length=1, description="Every listing of this paper in the seed list (duplicates included).")
    errata: list[Erratum] = Field(default_factory=list)


class Unconfirmed(_Strict):
    field: str = Field(description="The record field whose value could not be confirmed from a primary source.")
    note: str = Field(min_length=3, description="What was checked and why it is still open.")


class Result(_Strict):
    task: str = Field(description="A value of the `task` facet, e.g. image-classification.")
    dataset: str
    metric: str
    higher_is_better: bool
    value: float
    teacher: str | None = None
    student: str | None = None
    method: str = Field(description="An atlas paper id when the evaluated method is in the atlas, else its name (e.g. 'student alone').")
    baseline: float | None = Field(default=None, description="The student trained alone, as reported in the same table.")
    teacher_value: float | None = None
    source: str = Field(min_length=2, description="Where in the paper: 'Table 1', 'Sec. 4.2', 'Fig. 3'.")
    setting: str | None = Field(default=None, description="Anything that qualifies the number (split, budget, resolution).")


class RelatedLink(_Strict):
    id: str
    relation: Literal["extends", "baseline-of", "compares-with", "same-idea", "builds-on", "survey-of", "applies", "analyses"]
    note: str | None = None


class Implementation(_Strict):
    status: Literal["done", "pending", "exempt"] = Field(
        description="done: implementations/<id>.py, its test and notebook exist; pending: not yet written "
        "(reason says why); exempt: the paper gets no implementation (reason says why)."
    )
    scope: Literal["full-method", "core-mechanism", "concept-demo", "none"]
    notes: str | None = Field(default=None, description="What the file simplifies or leaves out, and which of paper vs. authors' code it follows.")
    reason: str | None = Field(default=None, description="Required unless status is done.")

    @model_validator(mode="after")
    def _reason_when_not_done(self) -> "Implementation":
        if self.status != "done" and not (self.reason and len(self.reason) >= 10):
            raise ValueError(f"status '{self.status}' needs a `reason` that explains it")
        return self


class Paper(_Strict):
    id: str = Field(description="The file's stem: lowercase ASCII surname + year + first significant title word.")
    title: str
    authors: list[str] = Field(min_length=1, description="Full names as published, with diacritics.")
    year: int = Field(ge=1950, le=2100, description="Year of the first public version (arXiv v1, or publication if earlier).")
    venue: str = Field(description="Official venue, short form: 'ICLR 2015', 'CVPR 2019', 'arXiv preprint'.")
    venue_type: Literal["conference", "workshop", "journal", "preprint", "book-chapter", "thesis", "techreport"]
    venue_full: str | None = Field(default=None, description="Full proceedings or journal name, for the BibTeX booktitle/journal.")
    venue_year: int | None = Field(default=None, ge=1950, le=2100)
    volume: str | None = None
    number: str | None = None
    pages: str | None = None
    publisher: str | None = None
    arxiv: str | None = Field(default=None, description="arXiv id without version, e.g. '1503.02531'.")
    doi: str | None = None
    url: HttpUrl = Field(description="Canonical landing page.")
    pdf: HttpUrl | None = None
    code: list[CodeLink] = Field(default_factory=list)
    sources: list[HttpUrl] = Field(default_factory=list, description="Primary sources the bibliographic fields were checked against.")
    unconfirmed: list[Unconfirmed] = Field(default_factory=list)
    added: _dt.date = Field(description="Date the record entered the atlas.")
    tags: dict[Facet, list[str]] = Field(description="Facet -> values from vocab/taxonomy.yaml.")
    tldr: str = Field(min_length=20, max_length=400)
    summary: str = Field(min_length=100)
    method: str = Field(min_length=40)
    results: list[Result] = Field(default_factory=list)
    related: list[RelatedLink] = Field(default_factory=list)
    seed: Seed
    implementation: Implementation

    @field_validator("id")
    @classmethod
    def _id_form(cls, v: str) -> str:
        if not ID_RE.match(v):
            raise ValueError("must be lowercase ASCII surname + 4-digit year + title word, e.g. hinton2015distilling")
        return v

    @field_validator("arxiv")
    @classmethod
    def _arxiv_form(cls, v: str | None) -> str | None:
        if v is not None and not ARXIV_RE.match(v):
            raise ValueError(f"'{v}' is not an arXiv id like 1503.02531 (no 'arXiv:' prefix, no version)")
        return v

    @field_validator("doi")
    @classmethod
    def _doi_form(cls, v: str | None) -> str | None:
        if v is not None and not DOI_RE.match(v):
            raise ValueError(f"'{v}' is not a DOI like 10.1145/1150402.1150464 (no URL prefix)")
        return v

    @field_validator("tldr", "summary", "method")
    @classmethod
    def _markdown_safe(cls, v: str) -> str:
        return _no_html(v)

    @field_validator("authors")
    @classmethod
    def _authors_nonempty(cls, v: list[str]) -> list[str]:
        for name in v:
            if not name.strip() or len(name.split()) < 2 and "." not in name:
                raise ValueError(f"'{name}' is not a full name")
        return v

    @field_validator("tags")
    @classmethod
    def _tags_nonempty(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for facet in ("knowledge", "scheme", "task", "relation-to-kd"):
            if not v.get(facet):
                raise ValueError(f"facet '{facet}' needs at least one value")
        return v


def json_schema() -> dict:
    """The JSON Schema that editors use to validate ``papers/*.yaml`` as you type."""
    schema = Paper.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "KD Atlas paper record"
    return schema
