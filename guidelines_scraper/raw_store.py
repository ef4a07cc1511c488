"""Append-only store of raw fetch results: a directory of Parquet files (``RAW_SCHEMA``).

Fetching and parsing are separate (GUIDELINE_SOURCES.md section 6.4): the crawler appends every
response here (robots.txt, listings, sitemaps, articles: bytes, status, headers, time), and the
deterministic extraction stage reads it back, from Python or from Spark
(``spark.read.schema(...).parquet(path)``; files whose name starts with ``.`` are ignored by Spark).

Durability: every record is appended to the writer's journal (``.journal-<token>-<n>.wal``: framed,
checksummed Arrow IPC records) and fsynced before :meth:`RawStore.add` returns, so a fetch is on
disk before the crawler makes its next request. :meth:`RawStore.flush` compacts the journal into
one new file ``part-<seq>-<token>-<n>.parquet`` atomically (write a hidden temp file, fsync,
rename, fsync the directory) and deletes the journal. A writer killed at any moment (even with
SIGKILL) leaves a journal whose complete records the next :class:`RawStore` opened on the directory
turns into a part (a torn last record is ignored), and never leaves a partial ``part-*`` file.

Several writers may share a directory (one per Spark task, or a task's retry): each has its own
random token, so file names never collide, and holds an exclusive lock (``.writer-<token>.lock``,
``flock``) while it lives; recovery only touches the files of writers whose lock is free, i.e.
dead ones. The directory must be a local (or locally mounted) path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
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

_PART_RE = re.compile(r"^part-(\d{6,})-[0-9a-f]+(?:-\d+)?\.parquet$")
_JOURNAL_RE = re.compile(r"^\.journal-(?P<token>[0-9a-f]+)-(?P<segment>\d+)\.wal$")
_WRITER_FILE_RE = re.compile(r"^\.(?:journal-(?P<token>[0-9a-f]+)-\d+\.wal|part-\d+-(?P<t2>[0-9a-f]+)(?:-\d+)?"
                             r"\.parquet\.tmp|writer-(?P<t3>[0-9a-f]+)\.lock(?:\.new)?)$")
_MAGIC = b"GRJ1"
_FRAME = struct.Struct(">4sII")  # magic, payload length, CRC-32 of the payload

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no writer locks, a journal is recovered when seen
    fcntl = None


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


def _encode_record(record: dict[str, Any]) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, RAW_SCHEMA) as writer:
        writer.write_batch(pa.RecordBatch.from_pylist([record], schema=RAW_SCHEMA))
    return sink.getvalue().to_pybytes()


def read_journal(path: str | Path) -> Iterator[dict[str, Any]]:
    """The complete records of a journal, in order; stops at the first torn or corrupt frame."""
    with open(path, "rb") as handle:
        while True:
            head = handle.read(_FRAME.size)
            if len(head) < _FRAME.size:
                return
            magic, length, crc = _FRAME.unpack(head)
            payload = handle.read(length)
            if magic != _MAGIC or len(payload) < length or zlib.crc32(payload) != crc:
                return
            try:
                table = pa.ipc.open_stream(payload).read_all()
            except (pa.ArrowInvalid, OSError):
                return
            yield from table.to_pylist()


def _try_lock(path: Path) -> int | bool | None:
    """Lock a writer's lock file if its writer is dead: the locked fd (close it when done), None when
    there is no lock file (dead too), False when the writer is alive."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    return fd


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
    manager (or call :meth:`close`) to compact the journal and release the writer lock on exit.

    ``durable=False`` skips the fsync of each journal record (faster, but a machine crash, not
    merely a killed process, may then lose the last records)."""

    def __init__(self, path: str | Path, *, flush_records: int = 256, flush_bytes: int = 64 * 1024 * 1024,
                 durable: bool = True):
        self.path = _local_path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.flush_records = flush_records
        self.flush_bytes = flush_bytes
        self.durable = durable
        self.token = uuid.uuid4().hex[:12]
        self._segment = 0
        self._journal: Any = None       # open journal file of the current segment
        self._lock_fd: int | None = None
        self._buffer: list[dict[str, Any]] = []
        self._buffered_bytes = 0
        self.recovered = self.recover()

    # -- writing ---------------------------------------------------------------------------------

    def add(self, source: str, kind: str, result: FetchResult | Mapping[str, Any]) -> None:
        """Append one fetch result to the journal (durable when this returns); compacts it into a
        Parquet part past the record/byte thresholds."""
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
        self._append_journal(record)
        self._buffer.append(record)
        self._buffered_bytes += len(body or b"") + 512
        if len(self._buffer) >= self.flush_records or self._buffered_bytes >= self.flush_bytes:
            self.flush()

    def _journal_path(self, segment: int) -> Path:
        return self.path / f".journal-{self.token}-{segment}.wal"

    def _acquire_lock(self) -> None:
        if self._lock_fd is not None:
            return
        final = self.path / f".writer-{self.token}.lock"
        temp = self.path / f".writer-{self.token}.lock.new"
        fd = os.open(temp, os.O_CREAT | os.O_RDWR, 0o644)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(temp, final)  # visible only once locked: a lock file in place is held or dead
        self._lock_fd = fd

    def _append_journal(self, record: dict[str, Any]) -> None:
        if self._journal is None:
            self._acquire_lock()
            self._journal = open(self._journal_path(self._segment), "ab", buffering=0)
            if self.durable:
                _fsync_dir(self.path)
        payload = _encode_record(record)
        self._journal.write(_FRAME.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload)
        if self.durable:
            os.fsync(self._journal.fileno())

    def _next_seq(self) -> int:
        seqs = [int(m.group(1)) for p in self.path.iterdir() if (m := _PART_RE.match(p.name))]
        return max(seqs, default=-1) + 1

    def _write_part(self, records: list[dict[str, Any]], token: str, segment: int) -> Path:
        table = pa.Table.from_pylist(records, schema=RAW_SCHEMA)
        name = f"part-{self._next_seq():06d}-{token}-{segment}.parquet"
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
        return final

    def flush(self) -> Path | None:
        """Compact the journal into one new Parquet file, atomically. Returns its path."""
        if not self._buffer:
            return None
        final = self._write_part(self._buffer, self.token, self._segment)
        self._buffer = []
        self._buffered_bytes = 0
        if self._journal is not None:
            self._journal.close()
            self._journal = None
            self._journal_path(self._segment).unlink(missing_ok=True)
        self._segment += 1
        return final

    def close(self) -> None:
        """Flush and release the writer lock (the store stays readable)."""
        self.flush()
        if self._journal is not None:  # nothing buffered but a journal open: it holds no record
            self._journal.close()
            self._journal = None
            self._journal_path(self._segment).unlink(missing_ok=True)
        if self._lock_fd is not None:
            (self.path / f".writer-{self.token}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> RawStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- recovery --------------------------------------------------------------------------------

    def recover(self) -> int:
        """Turn the journals of dead writers into parts and remove their temporary files; returns the
        number of records recovered. Writers still alive (their lock held) are left alone."""
        files: dict[str, list[Path]] = {}
        for entry in self.path.iterdir():
            match = _WRITER_FILE_RE.match(entry.name)
            if match:
                token = match.group("token") or match.group("t2") or match.group("t3")
                files.setdefault(token, []).append(entry)
        recovered = 0
        for token, entries in sorted(files.items()):
            if token == self.token:
                continue
            lock = _try_lock(self.path / f".writer-{token}.lock")
            if lock is False:
                continue  # alive
            try:
                for entry in sorted(entries):
                    match = _JOURNAL_RE.match(entry.name)
                    if match:
                        recovered += self._recover_journal(entry, token, int(match.group("segment")))
                for entry in entries:
                    if entry.name.endswith((".tmp", ".lock.new")):
                        entry.unlink(missing_ok=True)
                (self.path / f".writer-{token}.lock").unlink(missing_ok=True)
            finally:
                if isinstance(lock, int):
                    os.close(lock)
        return recovered

    def _recover_journal(self, journal: Path, token: str, segment: int) -> int:
        done = any(p.name.endswith(f"-{token}-{segment}.parquet") for p in self.path.iterdir()
                   if _PART_RE.match(p.name))
        records = [] if done else list(read_journal(journal))
        if records:
            self._write_part(records, token, segment)
        journal.unlink(missing_ok=True)
        _fsync_dir(self.path)
        return len(records)

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

        ``latest=True`` keeps one record per (source, kind, url): the last one that is not a
        transient failure, else the last one (:func:`is_transient`). So the successful refetch of an
        article whose first attempt hit a 503 wins, and a recrawl that hits a 503 does not hide the
        page stored before it; a later 404 does (the page is gone). Holds the URLs in memory.
        """
        if not latest:
            yield from self._iter_rows(None, kinds, sources)
            return
        last: dict[tuple[str, str, str], tuple[bool, int]] = {}
        for index, row in enumerate(self._iter_rows(["source", "kind", "url", "status", "error"], kinds, sources)):
            key = (row["source"], row["kind"], row["url"])
            usable = not is_transient(row["status"], row["error"])
            if key not in last or usable or not last[key][0]:
                last[key] = (usable, index)
        keep = {index for _, index in last.values()}
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

    def stored_pages(self, sources: Iterable[str] | None = None) -> dict[tuple[str, str], StoredPage]:
        """The latest usable (2xx or 304 with a body) article record of each (source, URL), without its
        body: what a recrawl needs to send conditional requests (:class:`StoredPage`)."""
        sources = set(sources) if sources is not None else None
        found: dict[tuple[str, str], StoredPage] = {}
        columns = ["source", "kind", "url", "status", "headers", "body_sha256", "fetched_at"]

        def consider(row: Mapping[str, Any], where: tuple) -> None:
            if row["kind"] != "article" or (sources is not None and row["source"] not in sources):
                return
            status = row["status"]
            if status is None or not (200 <= status < 300 or status == 304) or row["body_sha256"] is None:
                return
            headers = record_headers(row)
            found[(row["source"], row["url"])] = StoredPage(
                url=row["url"], etag=headers.get("etag"), last_modified=headers.get("last-modified"),
                body_sha256=row["body_sha256"], fetched_at=row["fetched_at"], headers=headers, _where=where)

        for file in self.files():
            reader = pq.ParquetFile(file)
            for group in range(reader.num_row_groups):
                for index, row in enumerate(reader.read_row_group(group, columns=columns).to_pylist()):
                    consider(row, (str(file), group, index))
        for index, row in enumerate(self._buffer):
            consider(row, ("", -1, index))
        return found

    def stored_body(self, page: StoredPage) -> bytes | None:
        """The body of a record found by :meth:`stored_pages`."""
        file, group, index = page._where
        if group < 0:
            return self._buffer[index]["body"]
        table = pq.ParquetFile(file).read_row_group(group, columns=["body"])
        return table.column("body")[index].as_py()

    def __len__(self) -> int:
        total = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files())
        return total + len(self._buffer)


@dataclass(frozen=True)
class StoredPage:
    """An article already in the store: its validators for a conditional request."""

    url: str
    etag: str | None
    last_modified: str | None
    body_sha256: str
    fetched_at: str
    headers: dict[str, str] = field(default_factory=dict, compare=False)
    _where: tuple = field(default=(), compare=False, repr=False)

    def conditional_headers(self) -> dict[str, str]:
        """``If-None-Match`` / ``If-Modified-Since`` for a revalidation (empty: no validator stored)."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


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
