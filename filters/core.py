"""The filter stage's pure core: language, quality rules and quality score over a batch of documents.

For each document, in this order, the first failing check is its drop reason:

1. ``too_short`` (fewer than ``min_words`` words): language ID is unreliable on a few words, so a very
   short document is reported as too short rather than as whatever language it seemed to be;
2. ``non_english``: top language not among the configured ones, or its score below the threshold;
3. the heuristic rules of :mod:`filters.quality`, each under its own name;
4. ``low_quality_score``: the quality model's score below ``min_quality_score`` (when configured).

Kept documents get ``language``, ``language_score`` and, with a quality model, ``quality_score``; then
their personal data (e-mail addresses, phone numbers, IP addresses: :mod:`gap_replay.core.redaction`) is
replaced by placeholders, with the counts in ``extra.redacted``. The checks judge the text as it came in.
:func:`filter_batch` works on Arrow record batches (the Spark shell's unit); :func:`filter_documents`
on document dicts (tests, small tools). Both go through :meth:`DocumentFilter.decide`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from gap_replay.filters.langid import LanguageIdentifier
from gap_replay.filters.quality import TOO_SHORT, QualityRules
from gap_replay.core.redaction import Redactor, changed_columns, redact_rows, with_counts
from gap_replay.filters.settings import FilterConfig
from gap_replay.core.outcome import Drop, Outcome
from gap_replay.core.schema import COLUMN_NAMES, OUTCOME_SCHEMA

NON_ENGLISH = "non_english"
LOW_QUALITY_SCORE = "low_quality_score"


@dataclass
class Decisions:
    """Per document of a batch: language columns, quality score, and drop reason/detail (None = kept)."""

    languages: list[str | None]
    language_scores: list[float | None]
    quality_scores: list[float | None]
    reasons: list[str | None]
    details: list[str | None]


class DocumentFilter:
    """Language identifier, rules and optional quality scorer, ready to decide batches of documents."""

    def __init__(self, identifier: LanguageIdentifier, config: FilterConfig | None = None, scorer=None):
        self.identifier = identifier
        self.config = config if config is not None else FilterConfig()
        self.rules = QualityRules(self.config)
        self.scorer = scorer
        self.languages = frozenset(self.config.languages)
        self.redactor = Redactor.from_config(self.config)

    def decide(self, texts: list[str]) -> Decisions:
        size = len(texts)
        languages: list[str | None] = [None] * size
        language_scores: list[float | None] = [None] * size
        quality_scores: list[float | None] = [None] * size
        reasons: list[str | None] = [None] * size
        details: list[str | None] = [None] * size

        check = self.rules.check
        failures = [check(text) for text in texts]
        judged = [i for i, failure in enumerate(failures) if failure is None or failure[0] != TOO_SHORT]
        predictions = self.identifier.predict([texts[i] for i in judged] if len(judged) < size else texts)
        wanted, min_score = self.languages, self.config.min_language_score
        scored = []
        for i, (language, score) in zip(judged, predictions):
            languages[i], language_scores[i] = language, score
            if language not in wanted or score < min_score:
                reasons[i], details[i] = NON_ENGLISH, f"{language} {score:.2f}"
            elif failures[i] is not None:
                reasons[i], details[i] = failures[i]
            else:
                scored.append(i)
        for i, failure in enumerate(failures):
            if failure is not None and failure[0] == TOO_SHORT:
                reasons[i], details[i] = failure

        if self.scorer is not None and scored:
            threshold = self.config.min_quality_score
            for i, value in zip(scored, self.scorer.score([texts[i] for i in scored])):
                quality_scores[i] = value
                if value < threshold:
                    reasons[i], details[i] = LOW_QUALITY_SCORE, f"{value:.3f} < {threshold:g}"
        return Decisions(languages, language_scores, quality_scores, reasons, details)


def filter_documents(documents: Iterable[dict], identifier: LanguageIdentifier,
                     config: FilterConfig | None = None, scorer=None) -> Iterator[Outcome]:
    """Annotate each document dict and keep it, or drop it with the failing check's name."""
    documents = list(documents)
    document_filter = DocumentFilter(identifier, config, scorer)
    texts = [document["text"] for document in documents]
    decisions = document_filter.decide(texts)
    changed = redact_rows(document_filter.redactor, texts,
                          [i for i, reason in enumerate(decisions.reasons) if reason is None])
    for i, document in enumerate(documents):
        if decisions.reasons[i] is not None:
            yield Drop(document["id"], decisions.reasons[i], decisions.details[i], document["source"])
        else:
            quality_score = decisions.quality_scores[i] if scorer is not None else document.get("quality_score")
            redacted = {}
            if i in changed:
                text, counts = changed[i]
                redacted = {"text": text, "extra": with_counts(document.get("extra"), counts)}
            yield {**document, "language": decisions.languages[i], "language_score": decisions.language_scores[i],
                   "quality_score": quality_score, **redacted}


def filter_batch(batch: pa.RecordBatch, document_filter: DocumentFilter) -> pa.RecordBatch:
    """One Arrow batch of documents to one batch of OUTCOME_SCHEMA.

    Only the text column is converted to Python; the other columns pass through as Arrow arrays,
    with language, language_score (and quality_score with a scorer) replaced and the outcome
    columns added; text and extra are replaced only in the rows where something was redacted. Dropped
    rows keep their data; the outcome writer only reads id and reason there.
    """
    texts = batch.column("text").to_pylist()
    decisions = document_filter.decide(texts)
    replaced = {
        "language": pa.array(decisions.languages, pa.string()),
        "language_score": pa.array(decisions.language_scores, pa.float32()),
    }
    changed = redact_rows(document_filter.redactor, texts,
                          [i for i, reason in enumerate(decisions.reasons) if reason is None])
    if changed:
        replaced["text"], replaced["extra"] = changed_columns(batch, changed)
    if document_filter.scorer is not None:
        replaced["quality_score"] = pa.array(decisions.quality_scores, pa.float32())
    columns = []
    for name, target in zip(COLUMN_NAMES, OUTCOME_SCHEMA):
        column = replaced.get(name)
        if column is None:
            column = batch.column(name)
            if column.type != target.type:
                column = column.cast(target.type)
        columns.append(column)
    columns.append(pa.array(decisions.reasons, pa.string()))
    columns.append(pa.array(decisions.details, pa.string()))
    return pa.RecordBatch.from_arrays(columns, schema=OUTCOME_SCHEMA)
