"""Replay text: RedPajama-style JSONL (``{"text": ..., "meta": {"redpajama_set_name": ...}}``) as documents.

Reads plain, gzip or zstd files (detected by magic bytes). A line that is not a JSON object with a
string ``text`` is dropped as ``parse_error`` with its line number; an empty text as ``empty_text``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from collections.abc import Iterator
from typing import BinaryIO

from gap_replay.outcome import Drop, Outcome
from gap_replay.schema import make_document

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
SET_NAME_KEYS = ("redpajama_set_name", "set_name", "source")


def open_text_lines(stream: BinaryIO) -> io.TextIOBase:
    """Decompress by content, not by file name."""
    buffered = io.BufferedReader(stream) if not hasattr(stream, "peek") else stream
    head = buffered.peek(4)[:4]
    if head[:2] == GZIP_MAGIC:
        buffered = gzip.GzipFile(fileobj=buffered)
    elif head == ZSTD_MAGIC:
        import zstandard

        buffered = zstandard.ZstdDecompressor().stream_reader(buffered)
    return io.TextIOWrapper(buffered, encoding="utf-8", errors="replace")


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


def iter_replay(stream: BinaryIO, *, name: str) -> Iterator[Outcome]:
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
        yield Drop(f"file:{name}", "parse_error", f"{type(error).__name__}: {error} (after line {number})", "replay")
