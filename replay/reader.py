"""Replay text: RedPajama-style JSONL (``{"text": ..., "meta": {"redpajama_set_name": ...}}``) or Parquet
as documents.

Reads plain, gzip or zstd JSONL files (detected by magic bytes). A line that is not a JSON object with a
string ``text`` is dropped as ``parse_error`` with its line number; an empty text as ``empty_text``. A file
that turns out corrupt or truncated keeps what was read before and ends with a ``parse_error`` of the file;
a failed read (``gap_replay.core.errors.is_transient``: object storage, memory) raises instead, so that the
task is tried again (pyarrow reports a corrupt Parquet page as ``OSError`` too, so that one raises as well).
Parquet files need a string column ``text``; their ``meta`` column (a struct, or a JSON string) plays
the part of the JSONL ``meta``, and without one the other columns do (e.g. ``redpajama_set_name``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import BinaryIO

from gap_replay.core.errors import is_transient
from gap_replay.core.ingest import open_text_lines
from gap_replay.core.outcome import Drop, Outcome
from gap_replay.core.schema import make_document

SET_NAME_KEYS = ("redpajama_set_name", "set_name", "source")


def set_name(meta: dict) -> str:
    """`RedPajamaWikipedia` -> `wikipedia`; unknown -> `unknown`."""
    for key in SET_NAME_KEYS:
        value = meta.get(key)
        if isinstance(value, str) and value:
            name = re.sub(r"^redpajama", "", value, flags=re.IGNORECASE) or value
            return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return "unknown"


def replay_document(record: dict) -> dict:
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    subset = set_name(meta)
    text = record["text"].strip()
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
    return make_document(
        id=f"replay:{subset}:{digest}", source="replay", subset=subset, text=text,
        title=meta.get("title") if isinstance(meta.get("title"), str) else None,
        url=meta.get("url") if isinstance(meta.get("url"), str) else None,
        extra=meta or None,
    )


def _parquet_meta(row: dict) -> dict:
    meta = row.get("meta")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            meta = None
    if isinstance(meta, dict):
        return {key: value for key, value in meta.items() if value is not None}
    return {key: value for key, value in row.items() if key not in ("text", "meta") and value is not None}


def iter_replay_parquet(uri: str, *, name: str) -> Iterator[Outcome]:
    """Replay documents from a Parquet file with a ``text`` column."""
    import pyarrow.parquet as pq

    from gap_replay.core import storage

    number = 0
    try:
        fs, path = storage.resolve(uri)
        parquet = pq.ParquetFile(path, filesystem=fs)
        if "text" not in parquet.schema_arrow.names:
            yield Drop(f"file:{name}", "parse_error", "no column 'text'", "replay")
            return
        for batch in parquet.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                number += 1
                text = row.get("text")
                if not isinstance(text, str):
                    yield Drop(f"file:{name}#row{number}", "parse_error", "no string field 'text'", "replay")
                elif not text.strip():
                    yield Drop(f"file:{name}#row{number}", "empty_text", "text is empty", "replay")
                else:
                    yield replay_document({"text": text, "meta": json.loads(json.dumps(_parquet_meta(row), default=str))})
    except Exception as error:  # corrupt file: keep what was read, report the rest
        if is_transient(error):  # a failed read (object storage, memory): the task is tried again
            raise
        yield Drop(f"file:{name}", "parse_error", f"{type(error).__name__}: {error} (after row {number})", "replay")


def iter_replay(stream: BinaryIO, *, name: str, uri: str | None = None) -> Iterator[Outcome]:
    """Outcomes of one replay file; `name` (relative to the input root) goes into drop ids, `uri`
    (default: `name`) is where a Parquet file is opened."""
    if name.endswith(".parquet"):
        yield from iter_replay_parquet(uri or name, name=name)
        return
    lines = open_text_lines(stream)
    number = 0
    try:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                yield Drop(f"file:{name}#line{number}", "parse_error", f"invalid JSON: {error.msg}", "replay")
                continue
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                yield Drop(f"file:{name}#line{number}", "parse_error", "no string field 'text'", "replay")
                continue
            if not record["text"].strip():
                yield Drop(f"file:{name}#line{number}", "empty_text", "text is empty", "replay")
                continue
            yield replay_document(record)
    except Exception as error:  # truncated or corrupt compressed file: keep what was read, report the rest
        if is_transient(error):  # a read cut short is no end of the file: the task is tried again
            raise
        yield Drop(f"file:{name}", "parse_error", f"{type(error).__name__}: {error} (after line {number})", "replay")
