"""Append-only store of raw fetch results as WARC 1.1 files (``.warc.gz``, one gzip member per record).

Fetching and parsing are separate (GUIDELINE_SOURCES.md section 6.4): the crawler appends every
response here (robots.txt, listings, sitemaps, articles), and the deterministic extraction stage
reads it back as rows of ``RAW_SCHEMA`` (:meth:`RawStore.records`, :func:`read_warc_records`, one
file per Spark task). Standard WARC tools (warcio, pywb, wget's readers) read the files too.

Records (written with warcio):

- a fetched page is a ``response`` record: WARC-Target-URI is the URL after redirects, WARC-Date
  the fetch time, the block the HTTP status line, headers and the body. The body is the one the
  fetcher returns, Content-Encoding already undone, so ``Content-Encoding``/``Transfer-Encoding``
  (and a ``Content-Length`` that no longer matches) are kept as ``X-Archive-Orig-*`` headers.
  A response whose body was not kept (too large, a refused redirect) has ``WARC-Truncated``;
- a 304 to a conditional request is a ``revisit`` record (profile server-not-modified) whose
  WARC-Refers-To is the stored response: it reads back as that body with the response's headers
  updated by the 304's;
- a fetch with no response (timeout, robots.txt refusal) is a ``metadata`` record;
- the project's own facts are WARC headers: ``GAP-Replay-Source``, ``GAP-Replay-Kind``,
  ``GAP-Replay-Requested-URI`` (when redirected), ``GAP-Replay-Error``, ``GAP-Replay-Fetched-At``
  (when it is not a valid WARC-Date), ``GAP-Replay-Headers`` (the headers as JSON, when a value is
  not ASCII, which the HTTP block can only hold %-encoded), and for a revisit the stored
  response's place (``GAP-Replay-Refers-To-File``/``-Offset``) so it is read without an index.

Durability: each record is one gzip member appended to the writer's open file
(``.<token>-<n>.warc.gz.open``) and fsynced before :meth:`RawStore.add` returns, so a fetch is on
disk before the crawler makes its next request. :meth:`RawStore.flush` (or ``flush_records`` /
``flush_bytes``) closes the file: renamed to ``part-<seq>-<token>-<n>.warc.gz`` (``seq`` in
completion order, so a revisit only points back). A writer killed at any moment (even SIGKILL)
leaves an open file whose complete members the next :class:`RawStore` opened on the directory
keeps: a torn last member is cut off (truncate, fsync) and the file renamed to a part.

Several writers may share a directory (one per Spark task, or a task's retry): each has its own
random token, so file names never collide, and holds an exclusive lock (``.writer-<token>.lock``,
``flock``) while it lives; recovery only touches the files of writers whose lock is free, i.e.
dead ones. The directory must be a local (or locally mounted) path.

Crawl leases (:func:`crawl_lease`): one crawler per source at a time, whatever Spark runs. A crawl
unit's task holds ``.lease-<tag>.lock`` (``flock``) for each of its sources while it crawls; a second
attempt of the task (a retry started while the first still runs, a speculative copy) waits until the
first lets go: when it ends, or dies, SIGKILL included (the kernel drops a dead process's locks, so a
killed attempt never blocks the next one). The holder writes its pid, host and start time in the file
for the waiter to report, and deletes the file as it lets go (a waiter then finds another file in
place and locks that one instead). Waiting rather than giving up: a copy that returned at once would
be counted as the task's result, and Spark would kill the attempt doing the work.

Runs: a store opened with ``run=`` marks each record it writes with ``GAP-Replay-Run``; the attempts
of one crawl run share the run. :meth:`RawStore.run_records` finds what earlier attempts of the run
stored (opened after they ended, the store has recovered the open files of the dead ones), and the
crawl takes those answers instead of fetching the pages again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import pyarrow as pa
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from gap_replay.guidelines_scraper.fetch import FetchResult

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
    metadata={"gap_replay.raw_store_version": "2"},
)

_PART_RE = re.compile(r"^part-(\d{6,})-[0-9a-f]+-\d+\.warc\.gz$")
_OPEN_SUFFIX = ".warc.gz.open"
_WRITER_FILE_RE = re.compile(r"^\.(?:(?P<token>[0-9a-f]+)-\d+\.warc\.gz\.open"
                             r"|writer-(?P<t2>[0-9a-f]+)\.lock(?:\.new)?)$")
_WARC_DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z$")
_NOT_MODIFIED = "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
_ORIG = "X-Archive-Orig-"
_DECODED = ("content-encoding", "transfer-encoding", "content-length")  # no longer true of the stored body
_GZIP_LEVEL = 6   # warcio's own writer uses 9: several times slower for a few % smaller files
_CHUNK = 1 << 20
_OWN = "GAP-Replay-"  # prefix of the WARC headers carrying the project's own facts

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no writer locks, an open file is recovered when seen
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


def _take_lease(path: Path, holder: str, on_wait: Callable[[str], None] | None) -> int | None:
    """Lock the lease file `path` (waiting while another holds it) and write `holder` in it: the locked fd."""
    if fcntl is None:  # pragma: no cover - not POSIX: no leases (the store must be a POSIX directory)
        return None
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait(os.pread(fd, 1024, 0).decode("utf-8", "replace").strip() or "another attempt")
                    on_wait = None  # said once
                fcntl.flock(fd, fcntl.LOCK_EX)
            # The file locked must still be the one in place: a holder deletes it as it lets go.
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                os.ftruncate(fd, 0)
                os.pwrite(fd, holder.encode("utf-8") + b"\n", 0)
                return fd
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


@contextmanager
def crawl_lease(path: str | Path, names: Iterable[str], *, holder: str | None = None,
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the leases `names` (a crawl unit's source tags) of the raw store directory `path` for the
    duration of the block: ``.lease-<name>.lock`` files, each ``flock``ed, taken in sorted order (two
    units sharing a name never deadlock). Another process or thread holding one makes this wait until
    it lets go; `on_wait(who)` is called once first, with what the holder wrote (`holder`: by default
    its pid, host and start time). A holder's death, SIGKILL included, lets go of its leases (the
    kernel drops its locks), so a dead attempt never blocks the next one."""
    directory = _local_path(path)
    directory.mkdir(parents=True, exist_ok=True)
    holder = holder or (f"pid {os.getpid()} on {socket.gethostname()} since "
                        f"{datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}")
    held: list[tuple[Path, int | None]] = []
    try:
        for name in sorted(set(names)):
            if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                raise ValueError(f"a lease name must be letters, digits, '_' and '-', got {name!r}")
            lease = directory / f".lease-{name}.lock"
            held.append((lease, _take_lease(lease, holder, on_wait)))
        yield
    finally:
        for lease, fd in reversed(held):
            if fd is not None:
                lease.unlink(missing_ok=True)  # before letting go: a waiter on this file then takes a new one
                os.close(fd)


def _local_path(path: str | Path) -> Path:
    text = str(path)
    if "://" not in text:
        return Path(text)
    parsed = urlsplit(text)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise ValueError(f"the raw store must be a local directory (the crawl runs on one machine), got {text!r}")
    return Path(unquote(parsed.path))


# -- WARC header values ----------------------------------------------------------------------------

def _field(text: str) -> str:
    """A WARC header value for `text`, as is when a header line keeps it intact, else a JSON string."""
    if text and text == text.strip() and text.isprintable() and not text.startswith('"'):
        return text
    return json.dumps(text)


def _unfield(value: str) -> str:
    return json.loads(value) if value.startswith('"') else value


def _plain_header(name: Any, value: Any) -> bool:
    """Whether an HTTP header line of the WARC block holds it unchanged."""
    return (isinstance(name, str) and isinstance(value, str) and name.isascii() and name.isprintable()
            and ":" not in name and name == name.strip() and bool(name)
            and value.isascii() and value.isprintable() and value == value.strip())


def _headers_json(headers: Any) -> str:
    return headers if isinstance(headers, str) else json.dumps(dict(headers or {}), sort_keys=True)


def _complete_members(handle, size: int) -> Iterator[tuple[int, bytes]]:
    """(end offset, decompressed data) of each complete gzip member from the start of `handle`;
    stops at the first torn or corrupt one (checked by gzip's CRC-32 and length)."""
    offset, pending = 0, b""
    while offset < size:
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        out, used = [], 0
        data = pending or handle.read(_CHUNK)
        pending = b""
        while True:
            try:
                out.append(inflater.decompress(data))
            except zlib.error:
                return
            if inflater.eof:
                pending = inflater.unused_data
                used += len(data) - len(pending)
                break
            used += len(data)
            data = handle.read(_CHUNK)
            if not data:
                return
        offset += used
        yield offset, b"".join(out)


class _Place(NamedTuple):
    """Where a response with a body is, and what a revisit of it names (WARC-Refers-To-*)."""

    file: str
    offset: int
    record_id: str
    target_uri: str
    date: str
    digest: str


class _Entry(NamedTuple):
    file: str
    offset: int
    warc: StatusAndHeaders
    http: StatusAndHeaders | None
    payload: bytes


def _scan(path: str | Path, kinds: set[str] | None = None, sources: set[str] | None = None,
          start: int = 0, limit: int | None = None) -> Iterator[_Entry]:
    """The store's records of one WARC file (other records, e.g. warcinfo, are skipped)."""
    with open(path, "rb") as handle:
        handle.seek(start)
        records = ArchiveIterator(handle)
        for count, record in enumerate(records):
            warc = record.rec_headers
            kind, source = warc.get_header(_OWN + "Kind"), warc.get_header(_OWN + "Source")
            if kind is None or (kinds is not None and kind not in kinds) or (
                    sources is not None and source not in sources):
                continue
            payload = record.raw_stream.read()
            yield _Entry(str(path), records.get_record_offset(), warc, record.http_headers, payload)
            if limit is not None and count + 1 >= limit:
                return


def _entry_at(path: str | Path, offset: int) -> _Entry:
    for entry in _scan(path, start=offset, limit=1):
        return entry
    raise ValueError(f"no raw store record at {path}:{offset}")


def _response_headers(entry: _Entry) -> dict[str, str]:
    stored = entry.warc.get_header(_OWN + "Headers")
    if stored is not None:
        parsed = json.loads(stored)
        return parsed if isinstance(parsed, dict) else {}
    headers = {}
    for name, value in entry.http.headers if entry.http is not None else ():
        if name[:len(_ORIG)].lower() == _ORIG.lower() and name[len(_ORIG):].lower() in _DECODED:
            name = name[len(_ORIG):]
        headers[name] = value
    return headers


def _row(entry: _Entry, resolve: bool = True) -> tuple[dict[str, Any], _Place | None]:
    """A record as a ``RAW_SCHEMA`` row, and the place of its body (None: no body). A revisit takes
    the body and headers of the response it refers to, unless not `resolve` (body left None)."""
    warc = entry.warc
    kind = warc.get_header("WARC-Type")
    final_url = warc.get_header("WARC-Target-URI")
    fetched_at = warc.get_header(_OWN + "Fetched-At")
    error = warc.get_header(_OWN + "Error")
    stored_headers = warc.get_header(_OWN + "Headers")
    row = {"source": warc.get_header(_OWN + "Source"), "kind": warc.get_header(_OWN + "Kind"),
           "url": warc.get_header(_OWN + "Requested-URI") or final_url, "final_url": final_url, "status": None,
           "headers": stored_headers if stored_headers is not None else "{}",
           "fetched_at": _unfield(fetched_at) if fetched_at is not None else warc.get_header("WARC-Date"),
           "body": None, "body_sha256": None, "error": _unfield(error) if error is not None else None}
    place = None
    if kind in ("response", "revisit"):
        row["status"] = int(entry.http.get_statuscode())
        headers = _response_headers(entry)
        if kind == "response":
            if warc.get_header("WARC-Truncated") is None:
                row["body"] = entry.payload
                place = _Place(entry.file, entry.offset, warc.get_header("WARC-Record-ID"), final_url,
                               warc.get_header("WARC-Date"), warc.get_header("WARC-Payload-Digest"))
        else:
            ref_file = warc.get_header(_OWN + "Refers-To-File")
            ref_path = str(Path(entry.file).with_name(ref_file)) if ref_file else entry.file
            place = _Place(ref_path, int(warc.get_header(_OWN + "Refers-To-Offset")), warc.get_header("WARC-Refers-To"),
                           warc.get_header("WARC-Refers-To-Target-URI"), warc.get_header("WARC-Refers-To-Date"),
                           warc.get_header("WARC-Payload-Digest"))
            if resolve:
                stored = _entry_at(place.file, place.offset)
                row["body"] = stored.payload
                headers = {**_response_headers(stored), **headers}
        if stored_headers is None or kind == "revisit":
            row["headers"] = json.dumps(headers, sort_keys=True)
    elif kind == "resource":
        row["body"] = entry.payload
    if row["body"] is not None:
        row["body_sha256"] = hashlib.sha256(row["body"]).hexdigest()
    return row, place


def read_warc_records(path: str | Path, kinds: Iterable[str] | None = None,
                      sources: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
    """The records of one store file as ``RAW_SCHEMA`` rows, in order (what a Spark task reads).
    A revisit's body is read from the file of its response, next to this one."""
    kinds = set(kinds) if kinds is not None else None
    sources = set(sources) if sources is not None else None
    for entry in _scan(path, kinds, sources):
        yield _row(entry)[0]


class RawStore:
    """An append-only directory of raw fetch records in WARC files (a path or a ``file://`` URI).
    Use as a context manager (or call :meth:`close`) to close the open file and release the writer
    lock on exit.

    ``flush_records``/``flush_bytes`` close the open file into a part past that many records or
    compressed bytes (1 GB: the usual WARC file size). ``durable=False`` skips the fsync of each
    record (faster, but a machine crash, not merely a killed process, may then lose the last ones).
    ``run`` names the crawl run the records written belong to (``GAP-Replay-Run``): the attempts of
    one run find each other's records with :meth:`run_records` (module docstring)."""

    def __init__(self, path: str | Path, *, flush_records: int | None = None, flush_bytes: int = 1 << 30,
                 durable: bool = True, run: str | None = None):
        self.path = _local_path(path)
        self.run = run
        self.path.mkdir(parents=True, exist_ok=True)
        self.flush_records = flush_records
        self.flush_bytes = flush_bytes
        self.durable = durable
        self.token = uuid.uuid4().hex[:12]
        self._segment = 0
        self._file: Any = None           # the open WARC file of the current segment
        self._records = 0                # records in it
        self._size = 0                   # its length in bytes
        self._renamed: dict[str, str] = {}  # open file -> the part it became (for places found before)
        self._lock_fd: int | None = None
        self.recovered = self.recover()

    # -- writing ---------------------------------------------------------------------------------

    def add(self, source: str, kind: str, result: FetchResult | Mapping[str, Any]) -> None:
        """Append one fetch result (durable when this returns): a ``response`` record, or with no
        response a ``metadata`` one. Closes the file into a part past the record/byte thresholds."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        get = result.get if isinstance(result, Mapping) else (lambda k, d=None: getattr(result, k, d))
        url = get("url")
        final_url = get("final_url") or url
        status, body, headers = get("status"), get("body"), get("headers") or {}
        facts = self._facts(source, kind, url, final_url, get("fetched_at") or "", get("error"), headers)
        if self.run is not None:
            facts[_OWN + "Run"] = self.run
        writer = WARCWriter(None, gzip=False, warc_version="1.1")
        if status is None:
            if body is None:
                fields = "" if get("error") is None else f"fetch-error: {_field(get('error'))}\r\n"
                payload, record_type = fields.encode("utf-8"), "metadata"
            else:
                payload, record_type = body, "resource"
            record = writer.create_warc_record(final_url, record_type, payload=io.BytesIO(payload),
                                               length=len(payload), warc_headers_dict=facts)
        else:
            if body is None:
                facts["WARC-Truncated"] = "length" if "too large" in (get("error") or "") else "unspecified"
            record = writer.create_warc_record(final_url, "response", payload=io.BytesIO(body or b""),
                                               length=len(body or b""), warc_headers_dict=facts,
                                               http_headers=self._http_headers(status, headers, body))
        self._append(writer, record)

    def add_not_modified(self, source: str, kind: str, result: FetchResult, stored: StoredPage) -> FetchResult:
        """Append a 304 answer to the conditional request made for `stored` as a ``revisit`` record
        (profile server-not-modified) of its response. Returns the result as the crawl keeps it: the
        stored body, the stored headers updated by the 304's (how the record reads back)."""
        place: _Place = stored._where
        place_file = self._renamed.get(place.file, place.file)
        facts = self._facts(source, kind, result.url, result.final_url or result.url, result.fetched_at,
                            result.error, result.headers)
        if self.run is not None:
            facts[_OWN + "Run"] = self.run
        facts["WARC-Refers-To"] = place.record_id
        if self._file is None or place_file != self._file.name:
            facts[_OWN + "Refers-To-File"] = Path(place_file).name
        facts[_OWN + "Refers-To-Offset"] = str(place.offset)
        writer = WARCWriter(None, gzip=False, warc_version="1.1")
        record = writer.create_revisit_record(result.final_url or result.url, place.digest, place.target_uri,
                                              place.date, http_headers=self._http_headers(304, result.headers, b""),
                                              warc_headers_dict=facts)
        record.rec_headers.replace_header("WARC-Profile", _NOT_MODIFIED)
        self._append(writer, record)
        return FetchResult(url=result.url, final_url=result.final_url, status=304,
                           headers={**stored.headers, **result.headers}, body=self.stored_body(stored),
                           fetched_at=result.fetched_at)

    @staticmethod
    def _facts(source, kind, url, final_url, fetched_at, error, headers) -> dict[str, str]:
        facts = {_OWN + "Source": source, _OWN + "Kind": kind}
        if url != final_url:
            facts[_OWN + "Requested-URI"] = url
        if _WARC_DATE_RE.match(fetched_at):
            facts["WARC-Date"] = fetched_at
        else:  # kept as given; WARC-Date says when it was written
            facts["WARC-Date"] = datetime_to_iso_date(datetime.now(timezone.utc).replace(tzinfo=None), use_micros=True)
            facts[_OWN + "Fetched-At"] = _field(fetched_at)
        if error is not None:
            facts[_OWN + "Error"] = _field(error)
        if isinstance(headers, str) or not all(_plain_header(k, v) for k, v in dict(headers).items()):
            # the HTTP block holds a header only as printable ASCII, trimmed (warcio %-encodes others)
            facts[_OWN + "Headers"] = _headers_json(headers)
        return facts

    @staticmethod
    def _http_headers(status: int, headers: Any, body: bytes | None) -> StatusAndHeaders:
        if isinstance(headers, str):
            try:
                headers = json.loads(headers)
            except ValueError:
                headers = {}
        pairs = []
        for name, value in dict(headers or {}).items():
            name, value = str(name), str(value)
            lower = name.lower()
            if lower in _DECODED and not (lower == "content-length" and value.strip() == str(len(body or b""))):
                name = _ORIG + name  # the stored body is decoded: these describe the bytes on the wire
            pairs.append((name, value))
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        return StatusAndHeaders(f"{status} {reason}".strip(), pairs, protocol="HTTP/1.1")

    def _open_path(self, segment: int) -> Path:
        return self.path / f".{self.token}-{segment}{_OPEN_SUFFIX}"

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

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self._file.write(view):]
        if self.durable:
            os.fsync(self._file.fileno())
        self._size += len(data)

    def _append(self, writer: WARCWriter, record) -> None:
        if self._file is None:
            self._acquire_lock()
            self._file = open(self._open_path(self._segment), "xb", buffering=0)
            self._records = self._size = 0
            info = writer.create_warcinfo_record(None, {"software": "gap-replay guidelines crawler (warcio)",
                                                        "format": "WARC File Format 1.1"})
            self._write(self._member(writer, info))
            if self.durable:
                _fsync_dir(self.path)
        self._write(self._member(writer, record))
        self._records += 1
        if (self.flush_records is not None and self._records >= self.flush_records) or self._size >= self.flush_bytes:
            self.flush()

    @staticmethod
    def _member(writer: WARCWriter, record) -> bytes:
        """One record as one gzip member: a reader can seek to it, and a torn one is cut off alone."""
        plain = io.BytesIO()
        writer.out = plain
        writer.write_record(record)
        deflater = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        return deflater.compress(plain.getvalue()) + deflater.flush()

    def _next_seq(self) -> int:
        seqs = [int(m.group(1)) for p in self.path.iterdir() if (m := _PART_RE.match(p.name))]
        return max(seqs, default=-1) + 1

    def _close_into_part(self, open_path: Path, token: str, segment: int) -> Path:
        final = self.path / f"part-{self._next_seq():06d}-{token}-{segment}.warc.gz"
        os.replace(open_path, final)
        _fsync_dir(self.path)
        return final

    def flush(self) -> Path | None:
        """Close the open WARC file into a part (a rename: its records are already on disk). Returns
        the part's path (None: nothing written since the last flush)."""
        if self._file is None:
            return None
        open_path = Path(self._file.name)
        self._file.close()
        self._file = None
        final = self._close_into_part(open_path, self.token, self._segment)
        self._renamed[str(open_path)] = str(final)
        self._segment += 1
        return final

    def close(self) -> None:
        """Flush and release the writer lock (the store stays readable)."""
        self.flush()
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
        """Close the open files of dead writers into parts (a torn last record cut off) and remove
        their lock files; returns the number of records kept. Live writers' files are left alone."""
        files: dict[str, list[Path]] = {}
        for entry in self.path.iterdir():
            match = _WRITER_FILE_RE.match(entry.name)
            if match:
                files.setdefault(match.group("token") or match.group("t2"), []).append(entry)
        recovered = 0
        for token, entries in sorted(files.items()):
            if token == self.token:
                continue
            lock = _try_lock(self.path / f".writer-{token}.lock")
            if lock is False:
                continue  # alive
            try:
                for entry in sorted(entries):
                    if entry.name.endswith(_OPEN_SUFFIX):
                        segment = int(entry.name[len(token) + 2:-len(_OPEN_SUFFIX)])
                        recovered += self._recover_open(entry, token, segment)
                for entry in entries:
                    if entry.name.endswith(".lock.new"):
                        entry.unlink(missing_ok=True)
                (self.path / f".writer-{token}.lock").unlink(missing_ok=True)
            finally:
                if isinstance(lock, int):
                    os.close(lock)
        return recovered

    def _recover_open(self, open_path: Path, token: str, segment: int) -> int:
        size = open_path.stat().st_size
        end = records = 0
        with open(open_path, "rb") as handle:
            for end, data in _complete_members(handle, size):
                records += not data.startswith(b"WARC/1.1\r\nWARC-Type: warcinfo\r\n")
        if records == 0:
            open_path.unlink()
        else:
            if end < size:  # the record being written when the writer died
                with open(open_path, "r+b") as handle:
                    handle.truncate(end)
                    os.fsync(handle.fileno())
            self._close_into_part(open_path, token, segment)
        _fsync_dir(self.path)
        return records

    # -- reading ---------------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """The complete WARC files (parts), in write order."""
        parts = [(int(m.group(1)), p.name, p) for p in self.path.iterdir() if (m := _PART_RE.match(p.name))]
        return [p for _, _, p in sorted(parts)]

    def _entries(self, kinds: Iterable[str] | None, sources: Iterable[str] | None) -> Iterator[_Entry]:
        """Every record: the parts, then this writer's open file (its records are complete)."""
        kinds = set(kinds) if kinds is not None else None
        sources = set(sources) if sources is not None else None
        paths = self.files() + ([Path(self._file.name)] if self._file is not None else [])
        for path in paths:
            yield from _scan(path, kinds, sources)

    def records(self, kinds: Iterable[str] | None = None, *, sources: Iterable[str] | None = None,
                latest: bool = False) -> Iterator[dict[str, Any]]:
        """Stored records as ``RAW_SCHEMA`` dicts (``headers`` as JSON), in write order.

        ``latest=True`` keeps one record per (source, kind, url): the last one that is not a
        transient failure, else the last one (:func:`is_transient`). So the successful refetch of an
        article whose first attempt hit a 503 wins, and a recrawl that hits a 503 does not hide the
        page stored before it; a later 404 does (the page is gone). Holds the URLs in memory.
        """
        if not latest:
            for entry in self._entries(kinds, sources):
                yield _row(entry)[0]
            return
        last: dict[tuple[str, str, str], tuple[bool, int, str, int]] = {}
        for index, entry in enumerate(self._entries(kinds, sources)):
            row = _row(entry, resolve=False)[0]
            key = (row["source"], row["kind"], row["url"])
            usable = not is_transient(row["status"], row["error"])
            if key not in last or usable or not last[key][0]:
                last[key] = (usable, index, entry.file, entry.offset)
        for _, _, file, offset in sorted(last.values(), key=lambda kept: kept[1]):
            yield _row(_entry_at(file, offset))[0]

    def urls(self, kinds: Iterable[str] | None = ("article",), *, sources: Iterable[str] | None = None,
             include_transient: bool = False) -> set[str]:
        """URLs already fetched (``url`` and ``final_url``), for resuming a crawl.

        A URL whose only outcomes are transient failures (no response, 429, 5xx) is left out, so
        a later crawl retries it, unless `include_transient`. Robots refusals and 4xx count as done.
        """
        done: set[str] = set()
        for entry in self._entries(kinds, sources):
            row = _row(entry, resolve=False)[0]
            if not include_transient and is_transient(row["status"], row["error"]):
                continue
            done.add(row["url"])
            if row["final_url"]:
                done.add(row["final_url"])
        return done

    def stored_pages(self, sources: Iterable[str] | None = None) -> dict[tuple[str, str], StoredPage]:
        """The latest usable (2xx or 304 with a body) article record of each (source, URL), without its
        body: what a recrawl needs to send conditional requests (:class:`StoredPage`)."""
        found: dict[tuple[str, str], StoredPage] = {}
        for entry in self._entries(["article"], sources):
            row, place = _row(entry)
            status = row["status"]
            if status is None or not (200 <= status < 300 or status == 304) or place is None:
                continue
            headers = record_headers(row)
            found[(row["source"], row["url"])] = StoredPage(
                url=row["url"], etag=headers.get("etag"), last_modified=headers.get("last-modified"),
                body_sha256=row["body_sha256"], fetched_at=row["fetched_at"], headers=headers, _where=place)
        return found

    def stored_body(self, page: StoredPage) -> bytes | None:
        """The body of a record found by :meth:`stored_pages`."""
        place: _Place = page._where
        return _entry_at(self._renamed.get(place.file, place.file), place.offset).payload

    def run_records(self, sources: Iterable[str] | None = None) -> dict[tuple[str, str, str], tuple[str, int]]:
        """Where the records of this store's run are (earlier attempts of the run wrote them), by
        ``(source, kind, url)``, the last of each; pass a place to :meth:`stored_result`. Empty
        without a run. Read after :meth:`recover` (a store opened once the earlier attempts are
        dead, or done), it holds every answer they received."""
        if self.run is None:
            return {}
        found: dict[tuple[str, str, str], tuple[str, int]] = {}
        for entry in self._entries(None, sources):
            warc = entry.warc
            if warc.get_header(_OWN + "Run") == self.run:
                url = warc.get_header(_OWN + "Requested-URI") or warc.get_header("WARC-Target-URI")
                key = (warc.get_header(_OWN + "Source"), warc.get_header(_OWN + "Kind"), url)
                found[key] = (entry.file, entry.offset)
        return found

    def stored_result(self, place: tuple[str, int], body: bool = True) -> FetchResult:
        """The fetch result a record holds (as the fetcher gave it: a revisit as its 304 with the stored
        body), found by :meth:`run_records`; without `body` the body is not read (None)."""
        file, offset = place
        row = _row(_entry_at(self._renamed.get(file, file), offset), resolve=body)[0]
        return FetchResult(url=row["url"], final_url=row["final_url"] or row["url"], status=row["status"],
                           headers=record_headers(row), body=row["body"] if body else None, error=row["error"],
                           fetched_at=row["fetched_at"])

    def __len__(self) -> int:
        return sum(1 for _ in self._entries(None, None))


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
