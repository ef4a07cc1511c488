"""What a stage's pure core yields per input: a kept document, or a :class:`Drop` with its reason.

Every stage core is a generator of ``dict | Drop`` (the dict a document from
:func:`gap_replay.core.schema.make_document`). :func:`outcomes_to_batches` packs such a stream into
Arrow batches of :data:`~gap_replay.core.schema.OUTCOME_SCHEMA`, which the Spark shell splits into the
kept shards and the ledger's drop table. Keeping both in one stream is what makes
``in = kept + dropped`` hold by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Union

import pyarrow as pa

from gap_replay.core.schema import COLUMN_NAMES, DROP_DETAIL, DROP_REASON, OUTCOME_SCHEMA


@dataclass(frozen=True)
class Drop:
    """An input that a stage did not keep.

    ``id`` is the document id when there is one, else an id for the input itself
    (e.g. ``file:/path/pubmed24n0001.xml.gz`` for an unreadable file). ``reason`` is a short
    snake_case key (``non_english``, ``parse_error``...); ``detail`` says what exactly happened.
    """

    id: str
    reason: str
    detail: str | None = None
    source: str | None = None


Outcome = Union[dict, Drop]


def _outcome_row(outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Drop):
        row = dict.fromkeys(COLUMN_NAMES)
        row.update(id=outcome.id, source=outcome.source, **{DROP_REASON: outcome.reason, DROP_DETAIL: outcome.detail})
        return row
    row = dict(outcome)
    row[DROP_REASON] = None
    row[DROP_DETAIL] = None
    return row


def outcomes_to_batches(outcomes: Iterable[Outcome], batch_size: int = 1024) -> Iterator[pa.RecordBatch]:
    """Pack outcomes into OUTCOME_SCHEMA batches of at most `batch_size` rows (bounded memory)."""
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        rows.append(_outcome_row(outcome))
        if len(rows) >= batch_size:
            yield pa.RecordBatch.from_pylist(rows, schema=OUTCOME_SCHEMA)
            rows = []
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=OUTCOME_SCHEMA)
