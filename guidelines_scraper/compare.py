"""Coverage of our guidelines output against MEDITRON's published corpus (``epfl-llm/guidelines``).

MEDITRON released the articles of its redistributable sources as ``open_guidelines.jsonl``: one
record per article with ``id``, ``source`` (a source tag: ``cco``, ``cdc``, ``cma``, ``icrc``,
``nice``, ``pubmed``, ``spor``, ``who``, ``wikidoc``; the same tags as ours), ``title``, ``url``,
``clean_text``, ``raw_text`` and ``overview``. Only some sources carry a ``title`` (CMA, NICE,
WikiDoc) or a ``url`` (NICE, WikiDoc, PubMed), so articles are paired per source:

1. by URL: scheme, ``www.``, a trailing slash and the fragment ignored;
2. then by title: :func:`guidelines_scraper.extract.title_key` (case, punctuation, spacing ignored);
3. then, for the articles still unpaired, by text: a pair whose word-shingle Jaccard similarity is
   at least ``TEXT_MATCH_MIN``, the most similar pairs first (candidates are the articles sharing
   one of their ``SKETCH_SIZE`` smallest shingle hashes, so not every pair is compared).

Each pairing is one to one. For every source the report gives the reference's articles, ours,
those paired (and how), ours not in the reference and the reference's not in ours, and over the
paired articles the distribution of the Jaccard similarity of their texts' ``SHINGLE_WORDS``-word
shingles (our ``text`` against the reference's ``clean_text``), with the least similar pairs.

The functions below work on plain records (dicts); :func:`read_reference` and
:func:`read_our_documents` read the files, and the command (``gap-replay guidelines compare``)
prints :func:`format_report` and writes the report as JSON.
"""

from __future__ import annotations

import heapq
import math
import re
import statistics
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gap_replay.core.errors import InputError

SHINGLE_WORDS = 5
TEXT_MATCH_MIN = 0.5
SKETCH_SIZE = 16
PARQUET_MAGIC = b"PAR1"
DOCUMENT_SOURCE = "guidelines"  # the documents' `source` column for guideline articles
REFERENCE_REQUIRED = ("source", "clean_text")
MATCH_METHODS = ("url", "title", "text")

_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class Article:
    """One article of either side, as far as comparing goes."""

    id: str
    source: str        # our source tag
    title: str | None
    url: str | None
    text: str


@dataclass(frozen=True)
class Pair:
    reference: Article
    ours: Article
    matched_by: str    # one of MATCH_METHODS
    similarity: float  # word-shingle Jaccard of the texts


def source_tag(reference_source: str) -> str:
    """Our tag for a reference `source` value (the dataset uses our tags; case and spaces ignored)."""
    return reference_source.strip().casefold()


def url_key(url: str | None) -> str | None:
    """What two URLs must share to name one article: the URL without scheme, ``www.``, fragment
    and trailing slash, host lower-cased."""
    from gap_replay.guidelines_scraper.fetch import normalize_url

    if not url or not url.strip():
        return None
    try:
        url = normalize_url(url.strip())
    except ValueError:
        url = url.strip()
    url = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", url).split("#", 1)[0]
    url = re.sub(r"^www\.", "", url, flags=re.IGNORECASE)
    return url.rstrip("/") or None


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[int]:
    """Hashes (CRC-32) of the text's runs of `size` words, case and punctuation ignored; a text
    shorter than `size` words is one shingle."""
    words = _WORDS.findall(unicodedata.normalize("NFKC", text).casefold())
    if not words:
        return set()
    if len(words) < size:
        return {zlib.crc32(" ".join(words).encode("utf-8"))}
    return {zlib.crc32(" ".join(words[index:index + size]).encode("utf-8"))
            for index in range(len(words) - size + 1)}


def jaccard(a: set[int], b: set[int]) -> float:
    if not a and not b:
        return 1.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)


def reference_articles(records: Iterable[Mapping[str, Any]]) -> list[Article]:
    """Articles of reference records (``epfl-llm/guidelines`` fields); records without a source or
    a clean text raise InputError."""
    articles = []
    for number, record in enumerate(records, start=1):
        missing = [name for name in REFERENCE_REQUIRED if not isinstance(record.get(name), str)]
        if missing:
            raise InputError(f"reference record {number} has no {' or '.join(missing)} (expected the fields of "
                             f"epfl-llm/guidelines: id, source, title, url, clean_text)")
        articles.append(Article(id=str(record.get("id") or f"#{number}"), source=source_tag(record["source"]),
                                title=record.get("title") or None, url=record.get("url") or None,
                                text=record["clean_text"]))
    return articles


def our_articles(documents: Iterable[Mapping[str, Any]]) -> list[Article]:
    """Articles of our guideline documents (document schema rows); other parts are skipped."""
    return [Article(id=document["id"], source=document.get("subset") or "", title=document.get("title") or None,
                    url=document.get("url") or None, text=document.get("text") or "")
            for document in documents if document.get("source") == DOCUMENT_SOURCE]


def _pair_by_key(reference: list[Article], ours: list[Article], key, method: str) -> list[Pair]:
    """One-to-one pairs of articles with the same key (first come, in the given order); the paired
    articles are removed from both lists."""
    waiting: dict[str, list[int]] = defaultdict(list)
    for index, article in enumerate(reference):
        value = key(article)
        if value is not None:
            waiting[value].append(index)
    pairs, used_reference, used_ours = [], set(), set()
    for index, article in enumerate(ours):
        value = key(article)
        if value is not None and waiting.get(value):
            match = waiting[value].pop(0)
            used_reference.add(match)
            used_ours.add(index)
            pairs.append(Pair(reference[match], article, method,
                              jaccard(shingles(reference[match].text), shingles(article.text))))
    reference[:] = [article for index, article in enumerate(reference) if index not in used_reference]
    ours[:] = [article for index, article in enumerate(ours) if index not in used_ours]
    return pairs


def _pair_by_text(reference: list[Article], ours: list[Article]) -> list[Pair]:
    """One-to-one pairs of the most similar texts (Jaccard >= TEXT_MATCH_MIN), best first; the
    paired articles are removed from both lists."""
    by_hash: dict[int, list[int]] = defaultdict(list)
    for index, article in enumerate(reference):
        for value in heapq.nsmallest(SKETCH_SIZE, shingles(article.text)):
            by_hash[value].append(index)
    scored = []
    for ours_index, article in enumerate(ours):
        mine = shingles(article.text)
        candidates = {index for value in heapq.nsmallest(SKETCH_SIZE, mine) for index in by_hash.get(value, ())}
        for index in candidates:
            similarity = jaccard(shingles(reference[index].text), mine)
            if similarity >= TEXT_MATCH_MIN:
                scored.append((-similarity, index, ours_index))
    scored.sort()
    pairs, used_reference, used_ours = [], set(), set()
    for negative, index, ours_index in scored:
        if index in used_reference or ours_index in used_ours:
            continue
        used_reference.add(index)
        used_ours.add(ours_index)
        pairs.append(Pair(reference[index], ours[ours_index], "text", -negative))
    reference[:] = [article for index, article in enumerate(reference) if index not in used_reference]
    ours[:] = [article for index, article in enumerate(ours) if index not in used_ours]
    return pairs


def pair_articles(reference: Sequence[Article], ours: Sequence[Article]) -> tuple[list[Pair], list[Article],
                                                                                   list[Article]]:
    """(pairs, reference articles left, ours left) of one source's articles (see the module docstring)."""
    reference_left, ours_left = list(reference), list(ours)
    pairs = _pair_by_key(reference_left, ours_left, lambda article: url_key(article.url), "url")
    pairs += _pair_by_key(reference_left, ours_left, lambda article: _title_key(article.title), "title")
    pairs += _pair_by_text(reference_left, ours_left)
    return pairs, reference_left, ours_left


def _title_key(title: str | None) -> str | None:
    from gap_replay.guidelines_scraper.extract import title_key

    return title_key(title)


def similarity_summary(values: Sequence[float]) -> dict[str, float] | None:
    """min, p10 (nearest rank), median and mean of similarities, rounded to 4 places; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    p10 = ordered[max(0, math.ceil(0.1 * len(ordered)) - 1)]
    return {"min": round(ordered[0], 4), "p10": round(p10, 4), "median": round(statistics.median(ordered), 4),
            "mean": round(statistics.fmean(ordered), 4)}


def _describe(article: Article) -> dict[str, Any]:
    return {"id": article.id, "title": article.title, "url": article.url}


def compare(reference: Iterable[Article], ours: Iterable[Article], worst: int = 10,
            known_sources: Iterable[str] = ()) -> dict[str, Any]:
    """The coverage report (a JSON-ready dict): per source and in total. `known_sources` are the
    tags the guidelines stage crawls; a reference source outside them is marked as such."""
    reference_by_source: dict[str, list[Article]] = defaultdict(list)
    ours_by_source: dict[str, list[Article]] = defaultdict(list)
    for article in reference:
        reference_by_source[article.source].append(article)
    for article in ours:
        ours_by_source[article.source].append(article)
    known = set(known_sources)
    sources: dict[str, Any] = {}
    all_pairs: list[Pair] = []
    for tag in sorted(set(reference_by_source) | set(ours_by_source)):
        theirs, mine = reference_by_source.get(tag, []), ours_by_source.get(tag, [])
        pairs, reference_left, ours_left = pair_articles(theirs, mine)
        all_pairs += pairs
        entry = {
            "reference": len(theirs),
            "ours": len(mine),
            "matched": len(pairs),
            "matched_by": {method: sum(pair.matched_by == method for pair in pairs) for method in MATCH_METHODS},
            "ours_not_in_reference": len(ours_left),
            "reference_not_in_ours": len(reference_left),
            "reference_with_url": sum(article.url is not None for article in theirs),
            "reference_with_title": sum(article.title is not None for article in theirs),
            "similarity": similarity_summary([pair.similarity for pair in pairs]),
            "worst": [_pair_entry(pair) for pair in _worst(pairs, worst)],
            "ours_not_in_reference_articles": [_describe(article) for article in ours_left],
            "reference_not_in_ours_articles": [_describe(article) for article in reference_left],
        }
        if known:
            entry["crawled_by_us"] = tag in known
        sources[tag] = entry
    totals = {name: sum(entry[name] for entry in sources.values())
              for name in ("reference", "ours", "matched", "ours_not_in_reference", "reference_not_in_ours")}
    totals["similarity"] = similarity_summary([pair.similarity for pair in all_pairs])
    totals["worst"] = [_pair_entry(pair) for pair in _worst(all_pairs, worst)]
    return {"shingle_words": SHINGLE_WORDS, "text_match_min": TEXT_MATCH_MIN, "sources": sources, "total": totals}


def _worst(pairs: list[Pair], count: int) -> list[Pair]:
    return sorted(pairs, key=lambda pair: (pair.similarity, pair.reference.source, pair.ours.id))[:max(0, count)]


def _pair_entry(pair: Pair) -> dict[str, Any]:
    return {"source": pair.ours.source, "similarity": round(pair.similarity, 4), "matched_by": pair.matched_by,
            "reference": _describe(pair.reference), "ours": _describe(pair.ours)}


def format_report(report: Mapping[str, Any]) -> str:
    """The report as a table: one row per source and a total, then the least similar pairs."""
    header = ("source", "reference", "ours", "matched", "url", "title", "text", "ours only", "ref only",
              "min", "p10", "median", "mean")
    rows = []
    for tag, entry in report["sources"].items():
        note = "" if entry.get("crawled_by_us", True) else " *"
        rows.append(_row(tag + note, entry, entry["matched_by"]))
    total = report["total"]
    by_method = {method: sum(entry["matched_by"][method] for entry in report["sources"].values())
                 for method in MATCH_METHODS}
    rows.append(_row("total", total, by_method))
    widths = [max(len(str(row[column])) for row in [header, *rows]) for column in range(len(header))]
    lines = ["  ".join(str(value).ljust(width) if column == 0 else str(value).rjust(width)
                       for column, (value, width) in enumerate(zip(row, widths))) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if any(not entry.get("crawled_by_us", True) for entry in report["sources"].values()):
        lines.append("* not a source the guidelines stage crawls")
    lines.append(f"similarity: Jaccard of {report['shingle_words']}-word shingles of the texts")
    if total["worst"]:
        lines.append("least similar pairs:")
        for pair in total["worst"]:
            label = pair["ours"]["url"] or pair["ours"]["title"] or pair["ours"]["id"]
            lines.append(f"  {pair['similarity']:.3f}  {pair['source']:<8} {pair['matched_by']:<5}  {label}")
    return "\n".join(lines)


def _row(label: str, entry: Mapping[str, Any], by_method: Mapping[str, int]) -> tuple:
    similarity = entry["similarity"] or {}
    return (label, entry["reference"], entry["ours"], entry["matched"], *(by_method[m] for m in MATCH_METHODS),
            entry["ours_not_in_reference"], entry["reference_not_in_ours"],
            *(f"{similarity[name]:.3f}" if name in similarity else "-" for name in ("min", "p10", "median", "mean")))


# -- reading ------------------------------------------------------------------------------------

def read_reference(uri: str) -> list[Article]:
    """The articles of a reference file: JSONL (plain, gzip or zstd) or Parquet. InputError for a
    missing, unreadable or malformed file, in one line."""
    from gap_replay.core import storage

    from gap_replay.core.ingest import open_input, read_json_objects

    if not storage.exists(uri):
        raise InputError(f"reference file not found: {uri}")
    try:
        with open_input(uri) as stream:
            magic = stream.read(4)
    except OSError as exc:
        raise InputError(f"reference file {uri} is not readable: {exc}") from None
    if magic == PARQUET_MAGIC:
        return reference_articles(_parquet_records(uri))
    return reference_articles(read_json_objects(uri, "reference file"))


def _parquet_records(uri: str) -> Iterable[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gap_replay.core import storage

    fs, path = storage.resolve(uri)
    try:
        parquet = pq.ParquetFile(path, filesystem=fs)
        names = set(parquet.schema_arrow.names)
        columns = [name for name in ("id", "source", "title", "url", "clean_text") if name in names]
        missing = [name for name in REFERENCE_REQUIRED if name not in names]
        if missing:
            raise InputError(f"reference file {uri} has no column {', '.join(missing)}")
        for batch in parquet.iter_batches(columns=columns, batch_size=1024):
            yield from batch.to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"reference file {uri} is not readable Parquet: {exc}") from None


def read_our_documents(inputs: Sequence[str]) -> list[Article]:
    """Our guideline articles from stage or build outputs, or directories or files of Parquet shards."""
    import pyarrow.parquet as pq

    from gap_replay.core import storage
    from gap_replay.core.shards import resolve_document_dirs

    articles: list[Article] = []
    for directory in resolve_document_dirs(inputs):
        files = [directory] if directory.endswith(".parquet") else storage.list_files(directory)
        if not files and not storage.exists(storage.join(directory, storage.SUCCESS)):
            raise InputError(f"no Parquet shards in {directory}")
        for uri in files:
            fs, path = storage.resolve(uri)
            parquet = pq.ParquetFile(path, filesystem=fs)
            for batch in parquet.iter_batches(columns=["id", "source", "subset", "title", "url", "text"],
                                              batch_size=1024):
                articles += our_articles(batch.to_pylist())
    return articles
