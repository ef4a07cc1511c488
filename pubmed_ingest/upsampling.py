"""The paper's PMC upsampling score (MEDITRON, table 10; rules in DESIGN.md).

A paper's score is the sum of the scores of the categories it belongs to; each row of the table is
one category, counted once however many of its publication types the paper has. Recency and
citations are added only when the other rows sum above 0. A paper in a "drop" category (veterinary
observational studies, retracted publications, preprints, MeSH "Animals") is excluded from the
corpus. The mixer repeats each paper ``1 + score`` times, rounded probabilistically.

Publication types come from the paper's matching PubMed citation when there is one, else from the
JATS article type (mapped below) and subjects that name a publication type.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import pyarrow as pa

_PUNCTUATION = re.compile(r"[^a-z0-9]+")


def type_key(name: str) -> str:
    """'Clinical Trial, Phase IV' and 'clinical trial phase iv' are the same type."""
    return _PUNCTUATION.sub(" ", name.lower()).strip()


# (publication types of the category, score)
PUBLICATION_TYPE_ROWS: tuple[tuple[frozenset[str], float], ...] = tuple(
    (frozenset(type_key(name) for name in names), score)
    for names, score in [
        (("Guideline", "Practice Guideline", "Patient Education Handout", "Meta-Analysis"), 1.0),
        (("Systematic Review", "Clinical Trial, Phase IV"), 0.8),
        (("Clinical Trial, Phase III",), 0.6),
        (("Randomized Controlled Trial", "Review", "Observational Study", "Comparative Study"), 0.5),
        (("Clinical Trial, Phase II", "Clinical Study"), 0.4),
        (("Clinical Trial, Phase I",), 0.2),
        (("Editorial", "Letter", "Comment"), 0.1),
    ]
)
DROP_PUBLICATION_TYPES = frozenset(type_key(name) for name in (
    "Observational Study, Veterinary", "Retracted Publication", "Preprint"))
DROP_MESH = frozenset({"animals"})
KNOWN_TYPES = frozenset().union(*(names for names, _ in PUBLICATION_TYPE_ROWS)) | DROP_PUBLICATION_TYPES

# JATS article-type values that name a PubMed publication type.
JATS_ARTICLE_TYPES = {
    "review-article": "Review",
    "systematic-review": "Systematic Review",
    "meta-analysis": "Meta-Analysis",
    "case-report": "Case Reports",
    "editorial": "Editorial",
    "letter": "Letter",
    "reply": "Letter",
    "article-commentary": "Comment",
    "retraction": "Retracted Publication",
    "practice-guideline": "Practice Guideline",
}


@dataclass(frozen=True)
class UpsamplingRules:
    reference_date: date
    clinical_journals: frozenset[str] = frozenset()  # journal titles, lower-cased
    # Citations per year at the 25th and 75th percentiles of the corpus, when a citation table is given.
    citation_quartiles: tuple[float, float] | None = None


@dataclass(frozen=True)
class Upsampling:
    score: float
    excluded: str | None = None  # the drop category, when the paper is excluded


def paper_types(publication_types: Iterable[str] | None, keywords: Iterable[str] | None) -> list[str]:
    """Publication types of a paper: PubMed's, the JATS article type mapped, and subjects naming a type."""
    types: list[str] = []
    for name in publication_types or ():
        types.append(JATS_ARTICLE_TYPES.get(name, name))
    for subject in keywords or ():
        if type_key(subject) in KNOWN_TYPES:
            types.append(subject)
    return list(dict.fromkeys(types))


def recency_score(year: int | None, reference: date) -> float:
    if year is None:
        return 0.0
    age = (reference - date(year, 7, 1)).days / 365.25  # mid-year: PubMed years have no month
    if age < 5.5:
        return 1.0
    return 0.2 if age < 10 else 0.0


def citation_score(citations_per_year: float | None, quartiles: tuple[float, float] | None) -> float:
    if citations_per_year is None or quartiles is None:
        return 0.0
    low, high = quartiles
    if citations_per_year >= high:
        return 1.0
    return 0.5 if citations_per_year >= low else 0.0


def upsampling(publication_types: Iterable[str] | None, mesh_descriptors: Iterable[str] | None,
               journal: str | None, year: int | None, citations_per_year: float | None,
               rules: UpsamplingRules) -> Upsampling:
    keys = {type_key(name) for name in publication_types or ()}
    for name in sorted(keys & DROP_PUBLICATION_TYPES):
        return Upsampling(0.0, f"publication type {name}")
    for descriptor in mesh_descriptors or ():
        if descriptor.lower() in DROP_MESH:
            return Upsampling(0.0, f"MeSH {descriptor}")
    score = sum(row_score for names, row_score in PUBLICATION_TYPE_ROWS if keys & names)
    if journal and journal.strip().lower() in rules.clinical_journals:
        score += 1.0
    if score > 0:
        score += recency_score(year, rules.reference_date)
        score += citation_score(citations_per_year, rules.citation_quartiles)
    return Upsampling(round(score, 6))


def citations_per_year(citations: int | None, year: int | None, reference: date) -> float | None:
    if citations is None or year is None:
        return None
    return citations / max(1, reference.year - year + 1)


def _descriptors(mesh_terms, rows: Sequence[int]) -> list[list[str] | None]:
    """The MeSH descriptors of `rows` of an Arrow ``list<struct<descriptor, ...>>`` column, read from its
    flattened descriptor strings and offsets: no dict per term."""
    import pyarrow.compute as pc

    if isinstance(mesh_terms, pa.ChunkedArray):
        mesh_terms = mesh_terms.combine_chunks()
    offsets = mesh_terms.offsets.to_pylist()
    names = pc.struct_field(mesh_terms.values, "descriptor").to_pylist()
    valid = mesh_terms.is_valid().to_pylist()
    return [names[offsets[row]:offsets[row + 1]] if valid[row] else None for row in rows]


def score_batch(batch, rows: Sequence[int], citations_column: str, rules: UpsamplingRules) -> list[Upsampling]:
    """:func:`upsampling` of the papers at `rows` of an Arrow batch (columns publication_types, keywords,
    mesh_terms, journal, year and `citations_column`), read column by column: only those columns become Python
    values, and no row a dict."""

    def values(name: str) -> list:
        column = batch.column(name)
        return column.take(pa.array(rows, pa.int64())).to_pylist()

    types, keywords, journals, years, citations = (values(name) for name in (
        "publication_types", "keywords", "journal", "year", citations_column))
    mesh = _descriptors(batch.column("mesh_terms"), rows)
    return [upsampling(paper_types(types[i], keywords[i]), mesh[i], journals[i], years[i], citations[i], rules)
            for i in range(len(rows))]
