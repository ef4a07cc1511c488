"""The one document schema every stage reads and writes.

A document is a plain ``dict`` whose keys are the column names below; stages build them with
:func:`make_document` and turn lists of them into Arrow batches with :func:`documents_to_batch`.
Columns are flat (no per-source struct) so that pyarrow, pandas, DuckDB, Spark and Hugging Face
``datasets`` all read them without unnesting; columns that do not apply to a source are null.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = "1"

SOURCES = ("guidelines", "pubmed_abstracts", "pubmed_papers", "replay")

MESH_TERM = pa.struct([pa.field("descriptor", pa.string()), pa.field("major_topic", pa.bool_())])

# (name, type, nullable, description). The description is the schema's documentation: it is
# stored in the Parquet field metadata and rendered in the README's schema table.
_COLUMNS: list[tuple[str, pa.DataType, bool, str]] = [
    ("id", pa.string(), False,
     "Globally unique, stable id: `pmid:<PMID>`, `pmcid:PMC<n>`, `guideline:<tag>:<hash>`, `replay:<set>:<hash>`"),
    ("source", pa.string(), False, "Part of GAP-Replay: guidelines, pubmed_abstracts, pubmed_papers or replay"),
    ("subset", pa.string(), True, "Finer origin: guideline source tag (who, nice...), replay set name, article type"),
    ("title", pa.string(), True, "Title, when the document has one (also the first line of `text`)"),
    ("text", pa.string(), False, "The training text, cleaned (Markdown-style `#` headers, `- ` lists)"),
    ("url", pa.string(), True, "Canonical URL of the document, when known"),
    ("language", pa.string(), True, "Top language from fastText language ID (ISO 639 code), set by the filter stage"),
    ("language_score", pa.float32(), True, "fastText probability of `language`"),
    ("quality_score", pa.float32(), True, "Model-based quality score in [0, 1], when a quality model is configured"),
    ("upsampling_score", pa.float32(), True,
     "Papers: the MEDITRON upsampling score (table 10); the mixer repeats the paper 1 + score times"),
    ("pmid", pa.int64(), True, "PubMed id"),
    ("pmcid", pa.string(), True, "PubMed Central id, `PMC` prefix included"),
    ("doi", pa.string(), True, "DOI, lower-cased, no `https://doi.org/` prefix"),
    ("journal", pa.string(), True, "Journal title"),
    ("year", pa.int32(), True, "Publication year"),
    ("publication_types", pa.list_(pa.string()), True, "PubMed publication types / JATS article type"),
    ("mesh_terms", pa.list_(MESH_TERM), True, "MeSH descriptors with the major-topic flag"),
    ("keywords", pa.list_(pa.string()), True, "Author keywords / JATS subjects"),
    ("license", pa.string(), True, "Licence or redistribution status (e.g. `open`, `closed`, `cc-by`)"),
    ("retracted", pa.bool_(), True, "True when PubMed marks the article as retracted"),
    ("extra", pa.string(), True, "JSON object of further source-specific fields (e.g. audience, country, meta)"),
]

COLUMN_NAMES: tuple[str, ...] = tuple(name for name, *_ in _COLUMNS)
COLUMN_DOCS: dict[str, str] = {name: doc for name, _, _, doc in _COLUMNS}
REQUIRED: frozenset[str] = frozenset(name for name, _, nullable, _ in _COLUMNS if not nullable)

DOCUMENT_SCHEMA = pa.schema(
    [pa.field(name, typ, nullable=nullable, metadata={"description": doc}) for name, typ, nullable, doc in _COLUMNS],
    metadata={"gap_replay.schema_version": SCHEMA_VERSION},
)

# What a stage's pure core emits per input: the document columns plus the outcome. A row whose
# `drop_reason` is null is kept; otherwise it is dropped and only id/source/drop_* matter.
DROP_REASON, DROP_DETAIL = "drop_reason", "drop_detail"
OUTCOME_SCHEMA = pa.schema(
    [field.with_nullable(field.name != "id") for field in DOCUMENT_SCHEMA]
    + [pa.field(DROP_REASON, pa.string()), pa.field(DROP_DETAIL, pa.string())]
)

# The ledger's per-document table of drops.
DROPS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False, metadata={"description": "Id of the dropped document (or input)"}),
        pa.field("stage", pa.string(), nullable=False, metadata={"description": "Stage that dropped it"}),
        pa.field("reason", pa.string(), nullable=False, metadata={"description": "Machine-readable reason"}),
        pa.field("detail", pa.string(), nullable=True, metadata={"description": "Human-readable detail"}),
    ],
    metadata={"gap_replay.schema_version": SCHEMA_VERSION},
)


class SchemaError(ValueError):
    """A document does not fit the schema."""


def make_document(**fields: Any) -> dict[str, Any]:
    """Return a complete document dict: unknown keys rejected, required ones checked, the rest null."""
    unknown = set(fields) - set(COLUMN_NAMES)
    if unknown:
        raise SchemaError(f"unknown document field(s): {', '.join(sorted(unknown))}")
    missing = [name for name in REQUIRED if fields.get(name) is None]
    if missing:
        raise SchemaError(f"document is missing required field(s): {', '.join(sorted(missing))}")
    if fields["source"] not in SOURCES:
        raise SchemaError(f"source must be one of {SOURCES}, got {fields['source']!r}")
    extra = fields.get("extra")
    if isinstance(extra, Mapping):
        fields["extra"] = json.dumps(extra, sort_keys=True, ensure_ascii=False) if extra else None
    return {name: fields.get(name) for name in COLUMN_NAMES}


def documents_to_batch(documents: Iterable[Mapping[str, Any]]) -> pa.RecordBatch:
    """Build a record batch of DOCUMENT_SCHEMA from document dicts."""
    return pa.RecordBatch.from_pylist(list(documents), schema=DOCUMENT_SCHEMA)


def conform(table: pa.Table | pa.RecordBatch, schema: pa.Schema = DOCUMENT_SCHEMA) -> pa.Table:
    """Cast data read back (from Spark or Parquet) to `schema`: same columns, order, types and metadata."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise SchemaError(f"data lacks column(s) of the schema: {', '.join(missing)}")
    columns = []
    for field in schema:
        column = table.column(field.name)
        if not field.nullable and column.null_count:
            raise SchemaError(f"column {field.name!r} holds {column.null_count} null value(s)")
        columns.append(column.cast(field.type) if column.type != field.type else column)
    return pa.Table.from_arrays(columns, schema=schema)
