"""Append-only store of raw fetch results: a directory of Parquet files (``RAW_SCHEMA``).

Fetching and parsing are separate (GUIDELINE_SOURCES.md section 6.4): the crawler appends every
response here (robots.txt, listings, sitemaps, articles: bytes, status, headers, time), and the
deterministic extraction stage reads it back, from Python or from Spark
(``spark.read.schema(...).parquet(path)``; files whose name starts with ``.`` are ignored by Spark).

Durability: records are buffered in memory and each :meth:`RawStore.flush` writes one new file
``part-<seq>-<token>.parquet`` atomically (write a hidden temp file, fsync, rename, fsync the
directory). A crawl killed at any moment loses at most the records not yet flushed and never
leaves a partial ``part-*`` file. One writer at a time per directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from guidelines_scraper.fetch import FetchResult

KINDS = ("robots", "listing", "sitemap", "article")

RAW_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False, metadata={"description": "Guideline source tag"}),
        pa.field("kind", pa.string(), nullable=False, metadata={"description": "robots, listing, sitemap or article"}),
        pa.field("url", pa.string(), nullable=False, metadata={"description": "Canonical URL requested"}),
        pa.field("final_url", pa.string(), nullable=True, metadata={"description": "Canonical URL after redirects"}),
        pa.field("status", pa.int32(), nullable=True, metadata={"description": "HTTP status (null: no response)"}),
        pa.field("headers", pa.string(), nullable=True, metadata={"description": "Response headers, JSON object"}),
        pa.field("fetched_at", pa.string(), nullable=False, metadata={"description": "UTC ISO-8601 fetch time"}),
        pa.field("body", pa.binary(), nullable=True, metadata={"description": "Decoded response body"}),
        pa.field("body_sha256", pa.string(), nullable=True, metadata={"description": "SHA-256 hex of body"}),
        pa.field("error", pa.string(), nullable=True, metadata={"description": "Why no usable response, if so"}),
    ],
    metadata={"gap_replay.raw_store_version": "1"},
)

_PART_RE = re.compile(r"^part-(\d{6,})-[0-9a-f]+\.parquet$")


def is_transient(status: int | None, error: str | None) -> bool:
    """True for outcomes worth retrying on a later crawl (no response, 429, 5xx)."""
    if status is None:
        return error is None or not error.startswith("disallowed by robots.txt")
    return status == 429 or status >= 500


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _local_path(path: str | Path) -> Path:
    text = str(path)
    if "://" not in text:
        return Path(text)
    parsed = urlsplit(text)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise ValueError(f"the raw store must be a local directory (the crawl runs on one machine), got {text!r}")
    return Path(unquote(parsed.path))


class RawStore:
    """An append-only directory of raw fetch records (a path or a ``file://`` URI). Use as a context
    manager to flush on exit."""

    def __init__(self, path: str | Path, *, flush_records: int = 256, flush_bytes: int = 64 * 1024 * 1024):
        self.path = _local_path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.flush_records = flush_records
        self.flush_bytes = flush_bytes
        self._buffer: list[dict[str, Any]] = []
        self._buffered_bytes = 0
        for stale in self.path.glob(".part-*.tmp"):  # left by a writer killed mid-flush
            stale.unlink(missing_ok=True)

    # -- writing ---------------------------------------------------------------------------------

    def add(self, source: str, kind: str, result: FetchResult | Mapping[str, Any]) -> None:
        """Buffer one fetch result; flushes automatically past the record/byte thresholds."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        get = result.get if isinstance(result, Mapping) else (lambda k, d=None: getattr(result, k, d))
        body = get("body")
        headers = get("headers") or {}
        record = {
            "source": source,
            "kind": kind,
            "url": get("url"),
            "final_url": get("final_url") or get("url"),
            "status": get("status"),
            "headers": headers if isinstance(headers, str) else json.dumps(dict(headers), sort_keys=True),
            "fetched_at": get("fetched_at") or "",
            "body": body,
            "body_sha256": hashlib.sha256(body).hexdigest() if body is not None else None,
            "error": get("error"),
        }
        self._buffer.append(record)
        self._buffered_bytes += len(body or b"") + 512
        if len(self._buffer) >= self.flush_records or self._buffered_bytes >= self.flush_bytes:
            self.flush()

    def _next_seq(self) -> int:
        seqs = [int(m.group(1)) for p in self.path.iterdir() if (m := _PART_RE.match(p.name))]
        return max(seqs, default=-1) + 1

    def flush(self) -> Path | None:
        """Write the buffered records as one new Parquet file, atomically. Returns its path."""
        if not self._buffer:
            return None
        table = pa.Table.from_pylist(self._buffer, schema=RAW_SCHEMA)
        name = f"part-{self._next_seq():06d}-{uuid.uuid4().hex[:12]}.parquet"
        final = self.path / name
        temp = self.path / f".{name}.tmp"
        try:
            with open(temp, "wb") as handle:
                pq.write_table(table, handle, compression="zstd", row_group_size=64)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.path)
        self._buffer = []
        self._buffered_bytes = 0
        return final

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> RawStore:
        return self

    def __exit__(self, *exc) -> None:
        self.flush()

    # -- reading ---------------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """The complete Parquet files, in write order."""
        parts = [(int(m.group(1)), p) for p in self.path.iterdir() if (m := _PART_RE.match(p.name))]
        return [p for _, p in sorted(parts)]

    def _iter_rows(self, columns: list[str] | None, kinds: Iterable[str] | None,
                   sources: Iterable[str] | None) -> Iterator[dict[str, Any]]:
        kinds = set(kinds) if kinds is not None else None
        sources = set(sources) if sources is not None else None
        for file in self.files():
            reader = pq.ParquetFile(file)
            for batch in reader.iter_batches(batch_size=64, columns=columns):
                for row in batch.to_pylist():
                    if kinds is not None and row["kind"] not in kinds:
                        continue
                    if sources is not None and row["source"] not in sources:
                        continue
                    yield row
        for row in list(self._buffer):
            if kinds is not None and row["kind"] not in kinds:
                continue
            if sources is not None and row["source"] not in sources:
                continue
            yield {k: row[k] for k in columns} if columns else dict(row)

    def records(self, kinds: Iterable[str] | None = None, *, sources: Iterable[str] | None = None,
                latest: bool = False) -> Iterator[dict[str, Any]]:
        """Stored records as dicts (``headers`` still JSON), flushed files first, in write order.

        ``latest=True`` keeps only the last record per (source, kind, url), e.g. the successful
        refetch of an article whose first attempt hit a 503 (this holds the URLs in memory).
        """
        if not latest:
            yield from self._iter_rows(None, kinds, sources)
            return
        last: dict[tuple[str, str, str], int] = {}
        for index, row in enumerate(self._iter_rows(["source", "kind", "url"], kinds, sources)):
            last[(row["source"], row["kind"], row["url"])] = index
        keep = set(last.values())
        for index, row in enumerate(self._iter_rows(None, kinds, sources)):
            if index in keep:
                yield row

    def urls(self, kinds: Iterable[str] | None = ("article",), *, sources: Iterable[str] | None = None,
             include_transient: bool = False) -> set[str]:
        """URLs already fetched (``url`` and ``final_url``), for resuming a crawl.

        A URL whose only outcomes are transient failures (no response, 429, 5xx) is left out, so
        a later crawl retries it, unless `include_transient`. Robots refusals and 4xx count as done.
        """
        done: set[str] = set()
        for row in self._iter_rows(["kind", "source", "url", "final_url", "status", "error"], kinds, sources):
            if not include_transient and is_transient(row["status"], row["error"]):
                continue
            done.add(row["url"])
            if row["final_url"]:
                done.add(row["final_url"])
        return done

    def __len__(self) -> int:
        total = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files())
        return total + len(self._buffer)


def record_headers(record: Mapping[str, Any]) -> dict[str, str]:
    """The headers of a stored record as a dict (they are stored as JSON text)."""
    headers = record.get("headers")
    if headers is None:
        return {}
    if isinstance(headers, str):
        try:
            parsed = json.loads(headers)
        except ValueError:
            return {}
        return {str(k).lower(): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
    return {str(k).lower(): str(v) for k, v in dict(headers).items()}
