"""`gap-replay pubmed download`: list and fetch NCBI's PubMed distributions.

Collections (directories under the base URL, default ``https://ftp.ncbi.nlm.nih.gov``):

==============  ==================================  =================================================
collection      directory                           files
==============  ==================================  =================================================
``baseline``    ``pubmed/baseline/``                ``pubmedYYnNNNN.xml.gz``, each with ``.md5``
``updatefiles`` ``pubmed/updatefiles/``             ``pubmedYYnNNNN.xml.gz``, each with ``.md5``
==============  ==================================  =================================================

PMC's full text is no longer here: NCBI moved its FTP ``oa_bulk`` packages (the collections ``oa_comm``,
``oa_noncomm``, ``oa_other``) to ``deprecated/`` in April 2026 and removed them in August 2026. The papers
now come from the PMC Cloud Service, ``--collections pmc`` (:mod:`gap_replay.pubmed_ingest.pmc_cloud`);
naming an old collection is a one-line error that says so. Packages downloaded before stay readable by
the pubmed stage.

:func:`list_remote` reads the Apache-style HTML index NCBI serves for each directory (parsed with
lxml.html: no network access, no external entities) and keeps the names that match the collection's
pattern; the ``.md5`` files and ``README.txt`` are not data files and are not returned.

Checksums. For PubMed, NCBI publishes ``<file>.md5`` beside every file, in OpenSSL's format
(``MD5(pubmed25n0001.xml.gz)= <32 hex digits>``); ``md5sum``'s ``<hex>  <name>`` is accepted too.
A file listed without one (a mirror that leaves them out) is verified by size (the length the server
announces, ``Content-Length`` or the total of ``Content-Range``) and recorded by the completed-download
marker below; the MD5 we compute while downloading is recorded there too, for later audits.

:func:`download_all` puts each file at ``<destination>/<collection>/<name>``:

- bytes go to ``<name>.part``, streamed in 1 MiB chunks; an existing ``.part`` (a killed run, a
  dropped connection) is resumed with ``Range: bytes=<size>-``. A server that ignores the range (200
  instead of 206) is read from zero again; 416 (nothing past the end) means the part is complete
  when its size equals the total in ``Content-Range: bytes */<total>``, and is restarted otherwise.
- requests go through the project's HTTP client (:class:`gap_replay.core.http.HttpClient`): connection
  errors, timeouts, HTTP 429 and 5xx (not 501/505) are retried by urllib3's ``Retry`` rules (the
  first retry at once, then ``backoff`` × 2^(n-1) seconds, capped at 60, plus up to 0.5 s of
  jitter), honouring ``Retry-After`` (one beyond 10 minutes fails the file); an attempt that
  received bytes before failing does not count against ``retries``. Other 4xx answers fail the file
  at once.
- a file with an ``.md5`` is verified against it; on a mismatch the part is deleted and fetched once
  more from zero, and a second mismatch fails the file. A file without one must have the announced
  size (a server that announces none cannot be verified: the file fails).
- a verified file gets a marker ``<name>.verified`` (JSON: name, url, size, md5, and ``verified_by``:
  ``"md5"`` or ``"size"``) and is then renamed into place (``os.replace``, atomic), so a file at its
  final name is always complete. A rerun skips a file whose marker matches the file's size: no
  request, no rehashing of gigabytes. NCBI never rewrites a file under the same name (new baselines
  and updates get new names), so trusting the marker is safe; delete a file or its marker to have it
  checked again. A file found in place without a valid marker (copied in by hand, or a run killed
  between the rename and the marker) is treated as a complete ``.part``: it costs one 416 answer and
  a local hash, not a download.

The ``.part`` and ``.verified`` names do not end in ``.xml.gz`` or ``.tar.gz``, so ``gap-replay pubmed
--input <destination>`` never mistakes them for input. One file's failure never stops the others: it
is recorded in :attr:`DownloadReport.failed` with its reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

import urllib3
from lxml import etree
from lxml import html as lxml_html

from gap_replay.core import storage
from gap_replay.core.http import (
    BodyFailed,
    BodyTooLarge,
    HttpClient,
    RequestFailed,
    UnusableBody,
    describe,
    read_capped,
)

DEFAULT_BASE_URL = "https://ftp.ncbi.nlm.nih.gov"
USER_AGENT = "gap-replay/0.1 (PubMed/PMC bulk download for corpus regeneration)"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
CHUNK_BYTES = 1 << 20
MAX_RETRY_AFTER = 600.0
MAX_REDIRECTS = 5
MAX_LISTING_BYTES = 64 << 20
MAX_CHECKSUM_BYTES = 64 << 10
PART_SUFFIX = ".part"
MARKER_SUFFIX = ".verified"

_PUBMED_FILE = r"pubmed\d{2}n\d{4}\.xml\.gz"


@dataclass(frozen=True)
class Collection:
    name: str
    directories: tuple[str, ...]  # paths under the base URL, tried in order (404: the next one)
    pattern: re.Pattern[str]  # full match on a listed file name


COLLECTIONS: dict[str, Collection] = {
    "baseline": Collection("baseline", ("pubmed/baseline/",), re.compile(_PUBMED_FILE)),
    "updatefiles": Collection("updatefiles", ("pubmed/updatefiles/",), re.compile(_PUBMED_FILE)),
}
# The PMC FTP packages, gone since August 2026: naming one says where the papers are now.
REMOVED_COLLECTIONS = ("oa_comm", "oa_noncomm", "oa_other")
REMOVED_MESSAGE = ("NCBI removed the PMC FTP packages ({names}) in August 2026; PMC's full text is now the PMC "
                   "Cloud Service: use --collections pmc")


@dataclass(frozen=True)
class RemoteFile:
    url: str
    name: str
    collection: str
    md5_url: str | None


class Failure(NamedTuple):
    name: str
    reason: str


@dataclass
class DownloadReport:
    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already complete and verified
    failed: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        return (f"{len(self.downloaded)} downloaded, {len(self.skipped)} already complete, "
                f"{len(self.failed)} failed")


class DownloadError(RuntimeError):
    """A directory listing could not be fetched (raised by :func:`list_remote` only)."""


class _Permanent(Exception):
    """Fails the file (or listing) without further attempts."""


def _client(http, retries: int, backoff: float, sleep: Callable[[float], None],
            say: Callable[[str], None] | None) -> HttpClient:
    """The HTTP client of a listing or a download run. A caller's own ``http`` (a ``PoolManager`` or
    ``ProxyManager``) is used with its own timeout settings; else connect/read timeouts of 10 s/60 s."""
    return HttpClient(user_agent=USER_AGENT, retries=retries, backoff=backoff, max_retry_after=MAX_RETRY_AFTER,
                      timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT), pool=http,
                      sleep=sleep, say=say)


def _get_small(client: HttpClient, url: str, limit: int) -> tuple[int, bytes]:
    """(status, body) of a small document (a listing, a checksum); the body only for 200.

    The body is read within `limit` bytes, on the wire and once gunzipped (:func:`read_capped`: each
    piece checked as it arrives, inflated at once), so a body over the cap, a decompression bomb
    included, is :class:`_Permanent` at its first bytes past it, however slowly it comes: failed
    once, never fetched again (a read left to stall past the cap would be a read timeout, retried).
    A corrupt gzip body is :class:`_Permanent` too."""

    def read(response) -> tuple[int, bytes]:
        if response.status != 200:
            return response.status, b""
        try:
            return 200, read_capped(response, limit)
        except BodyTooLarge as error:
            raise _Permanent(f"{url} is larger than {limit} bytes ({error.reason})") from None
        except UnusableBody as error:
            raise _Permanent(f"{url}: {error.reason}") from None

    return client.get(url, read, headers={"Accept-Encoding": "gzip"}, redirects=MAX_REDIRECTS)


# --- listing -------------------------------------------------------------------------------------

def parse_listing(page: bytes, directory_url: str) -> list[str]:
    """Names of the entries linked from an HTML directory index that lie directly in `directory_url`
    (no parent, subdirectories, sort links or other hosts), decoded, in page order, without repeats."""
    base = directory_url if directory_url.endswith("/") else directory_url + "/"
    parser = lxml_html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True)
    try:
        root = lxml_html.document_fromstring(page, parser=parser)
    except (etree.ParserError, ValueError):
        return []
    names: dict[str, None] = {}
    for anchor in root.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href:
            continue
        scheme, netloc, path, _, _ = urlsplit(urljoin(base, href))
        target = urlunsplit((scheme, netloc, path, "", ""))
        if not target.startswith(base):
            continue
        rest = target[len(base):]
        if rest and "/" not in rest:
            names[unquote(rest)] = None
    return list(names)


def list_remote(base_url: str, collections: Sequence[str], *, http=None) -> list[RemoteFile]:
    """The data files of `collections` (names from :data:`COLLECTIONS`) on the server at `base_url`,
    collection by collection in the order given, each sorted by name.

    Raises ``ValueError`` for an unknown collection and :class:`DownloadError` when a listing cannot
    be fetched (after the same retries as downloads).
    """
    removed = [name for name in collections if name in REMOVED_COLLECTIONS]
    if removed:
        raise ValueError(REMOVED_MESSAGE.format(names=", ".join(removed)))
    unknown = [name for name in collections if name not in COLLECTIONS]
    if unknown:
        raise ValueError(f"unknown collection(s) {', '.join(unknown)}; choose from {', '.join(COLLECTIONS)}")
    client = _client(http, retries=5, backoff=1.0, sleep=time.sleep, say=None)
    files: list[RemoteFile] = []
    for name in dict.fromkeys(collections):
        files.extend(_list_collection(client, base_url, COLLECTIONS[name]))
    return files


def _list_collection(client: HttpClient, base_url: str, collection: Collection) -> list[RemoteFile]:
    tried = []
    for directory in collection.directories:
        url = base_url.rstrip("/") + "/" + directory
        try:
            status, page = _get_small(client, url, MAX_LISTING_BYTES)
        except (RequestFailed, _Permanent) as error:
            raise DownloadError(f"cannot list {url}: {error}") from None
        tried.append(f"{url} (HTTP {status})")
        if status == 404:
            continue
        if status != 200:
            raise DownloadError(f"cannot list {url}: HTTP {status}")
        listed = parse_listing(page, url)
        present = set(listed)
        return [RemoteFile(url=url + quote(name), name=name, collection=collection.name,
                           md5_url=url + quote(name + ".md5") if name + ".md5" in present else None)
                for name in sorted(listed) if collection.pattern.fullmatch(name)]
    raise DownloadError(f"cannot list collection {collection.name}: {'; '.join(tried)}")


# --- checksums -----------------------------------------------------------------------------------

_OPENSSL_LINE = re.compile(r"MD5\s*\((?P<name>.*)\)\s*=\s*(?P<hex>[0-9a-fA-F]{32})")
_MD5SUM_LINE = re.compile(r"(?P<hex>[0-9a-fA-F]{32})(?:\s+\*?(?P<name>.+))?")


def parse_md5(text: str, name: str) -> str:
    """The MD5 (lower-case hex) that a checksum file gives for `name`.

    Accepts NCBI's OpenSSL format ``MD5(<name>)= <hex>`` and md5sum's ``<hex>  <name>`` (or
    ``<hex> *<name>``, or a bare ``<hex>``). Raises ``ValueError`` when no line gives one for `name`.
    """
    named_others = []
    for line in text.splitlines():
        line = line.strip()
        match = _OPENSSL_LINE.fullmatch(line) or _MD5SUM_LINE.fullmatch(line)
        if not match:
            continue
        listed = (match.group("name") or "").strip()
        if not listed or listed.rsplit("/", 1)[-1] == name:
            return match.group("hex").lower()
        named_others.append(listed)
    if named_others:
        raise ValueError(f"the checksum file is for {', '.join(named_others)}, not {name}")
    raise ValueError(f"no MD5 checksum found in {text[:80]!r}")


def _new_md5():
    return hashlib.md5(usedforsecurity=False)


# --- downloading ---------------------------------------------------------------------------------

class _PartFile:
    """The ``.part`` file and the MD5 of its bytes, updated as bytes are appended (rehashed from
    disk only when they are out of step, e.g. a part left by an earlier run)."""

    def __init__(self, path: Path):
        self.path, self.md5, self.size = path, None, -1

    def sync(self) -> int:
        actual = self.path.stat().st_size if self.path.exists() else 0
        if self.md5 is None or self.size != actual:
            self.md5, self.size = _new_md5(), 0
            if actual:
                with open(self.path, "rb") as stream:
                    for block in iter(lambda: stream.read(CHUNK_BYTES), b""):
                        self.md5.update(block)
                        self.size += len(block)
        return self.size

    def reset(self) -> None:
        with open(self.path, "wb"):
            pass
        self.md5, self.size = _new_md5(), 0


_CONTENT_RANGE = re.compile(r"bytes\s+(?:(?P<start>\d+)-(?P<end>\d+)|\*)/(?P<total>\d+|\*)")


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total) from a Content-Range header; None where absent or ``*``."""
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if not match:
        return None, None
    start = int(match.group("start")) if match.group("start") is not None else None
    total = int(match.group("total")) if match.group("total") != "*" else None
    return start, total


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.strip().isdigit() else None


class _Downloader:
    def __init__(self, client: HttpClient, progress, say):
        self.client, self.progress, self.say = client, progress, say

    def download(self, remote: RemoteFile, destination: Path) -> str:
        """``"downloaded"`` or ``"skipped"``; raises :class:`_Permanent` or :class:`RequestFailed` with
        the reason it failed."""
        _check_names(remote)
        folder = destination / remote.collection
        target = folder / remote.name
        marker = folder / (remote.name + MARKER_SUFFIX)
        if _marker_matches(marker, target):
            return "skipped"
        folder.mkdir(parents=True, exist_ok=True)
        part = _PartFile(folder / (remote.name + PART_SUFFIX))
        expected_md5 = self._expected_md5(remote) if remote.md5_url else None
        found_in_place = target.is_file()
        if found_in_place:  # not verified by us: check it as a complete part (416, then hash)
            marker.unlink(missing_ok=True)
            os.replace(target, part.path)
        label = f"{remote.collection}/{remote.name}"
        transferred = 0
        for fresh in (False, True):
            if fresh:
                part.path.unlink(missing_ok=True)
                part.md5, part.size = None, -1
            total, received = self._fetch(remote, part, label)
            transferred += received
            digest = part.md5.hexdigest()
            if expected_md5 is None or digest == expected_md5:
                break
            if not fresh:
                self.say(f"{label}: MD5 mismatch (expected {expected_md5}, got {digest}); downloading again from zero")
        else:
            part.path.unlink(missing_ok=True)
            raise _Permanent(f"MD5 mismatch: {remote.md5_url} gives {expected_md5}, the file has {digest} "
                             f"(also when downloaded again from zero)")
        if expected_md5 is None and total is None:
            part.path.unlink(missing_ok=True)
            raise _Permanent("no checksum is published and the server announced no size: cannot verify")
        record = {"name": remote.name, "url": remote.url, "size": part.size, "md5": digest,
                  "verified_by": "md5" if expected_md5 else "size"}
        temporary = marker.with_name(marker.name + ".tmp")
        temporary.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(temporary, marker)
        os.replace(part.path, target)
        if found_in_place and transferred == 0:
            return "skipped"
        self.say(f"{label}: {part.size} bytes, verified by {record['verified_by']}")
        return "downloaded"

    def _expected_md5(self, remote: RemoteFile) -> str:
        status, body = _get_small(self.client, remote.md5_url, MAX_CHECKSUM_BYTES)
        if status != 200:
            raise _Permanent(f"cannot fetch the checksum {remote.md5_url}: HTTP {status}")
        try:
            return parse_md5(body.decode("utf-8", "replace"), remote.name)
        except ValueError as error:
            raise _Permanent(f"unusable checksum file {remote.md5_url}: {error}") from None

    def _fetch(self, remote: RemoteFile, part: _PartFile, label: str) -> tuple[int | None, int]:
        """Bring the part file to the remote file's full length; (announced total, bytes received)."""

        def ask_for_the_rest() -> dict[str, str]:
            offset = part.sync()
            return {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}

        return self.client.get(remote.url, lambda response: self._receive(response, remote, part, label),
                               headers=ask_for_the_rest, redirects=MAX_REDIRECTS, label=label)

    def _receive(self, response, remote: RemoteFile, part: _PartFile, label: str) -> tuple[int | None, int]:
        """Append the answer to the part, whose size is the offset that was asked for. A failure worth
        another attempt (the client's) is a :class:`BodyFailed`."""
        offset, status = part.size, response.status
        if status == 416:
            _, total = _content_range(response.headers.get("Content-Range"))
            if offset and total == offset:
                self._report(remote.name, offset, total)
                return total, 0
            part.reset()
            raise BodyFailed(f"HTTP 416 for a {offset}-byte part (remote size {total}); restarting from zero")
        if status == 200:
            if offset:
                self.say(f"{label}: the server ignored the range request; downloading from zero")
                part.reset()
            total = _content_length(response)
        elif status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.reset()
                raise BodyFailed(f"the server sent bytes from {start}, not {offset}; restarting from zero")
            if total is None and (length := _content_length(response)) is not None:
                total = offset + length
        elif 400 <= status < 500:
            raise _Permanent(f"HTTP {status} for {remote.url}")
        else:
            raise _Permanent(f"unexpected HTTP {status} for {remote.url}")
        if part.size:
            self.say(f"{label}: resuming at byte {part.size}")
        before = part.size
        self._report(remote.name, part.size, total)
        try:
            with open(part.path, "ab") as out:
                for chunk in response.stream(CHUNK_BYTES, decode_content=False):
                    out.write(chunk)
                    part.md5.update(chunk)
                    part.size += len(chunk)
                    self._report(remote.name, part.size, total)
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as error:
            raise BodyFailed(f"connection lost after {part.size} bytes ({describe(error)})",
                             progressed=part.size > before) from None
        if total is not None and part.size < total:
            raise BodyFailed(f"connection closed after {part.size} of {total} bytes", progressed=part.size > before)
        if total is not None and part.size > total:
            part.reset()
            raise BodyFailed(f"received more than the announced {total} bytes; restarting from zero")
        return total, part.size - before

    def _report(self, name: str, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(name, done, total if total is not None else 0)


def _marker_matches(marker: str | Path, target: str | Path) -> bool:
    """Whether the verification marker names `target` (a local path or an object-storage URI) at its size."""
    try:
        record = json.loads(storage.read_text(str(marker)))
        return (isinstance(record, dict) and record.get("name") == str(target).rsplit("/", 1)[-1]
                and record.get("size") == storage.size(str(target)))
    except (OSError, ValueError):
        return False


def _check_names(remote: RemoteFile) -> None:
    """A listing names files and collections: nothing in them may leave the destination's folders."""
    for label, value in (("file name", remote.name), ("collection", remote.collection)):
        if not value or "/" in value or "\\" in value or value in (".", "..") or "\0" in value:
            raise _Permanent(f"unsafe {label} {value!r}")


def _published_on_object_storage(destination: str, remote: RemoteFile) -> bool:
    """Whether `remote` is complete at `destination` (object storage): its marker, written after the file."""
    target = storage.join(destination, remote.collection, remote.name)
    return _marker_matches(target + MARKER_SUFFIX, target)


def _publish_to_object_storage(staging: Path, destination: str, remote: RemoteFile) -> None:
    """Copy a verified file from the local `staging` tree to `destination`, the file first and its
    marker last (the marker is what a rerun trusts), then free the local copy."""
    import pyarrow.fs as pafs

    local_fs = pafs.LocalFileSystem()
    fs, root = storage.resolve(destination)
    fs.create_dir(f"{root.rstrip('/')}/{remote.collection}", recursive=True)
    for name in (remote.name, remote.name + MARKER_SUFFIX):
        source = staging / remote.collection / name
        pafs.copy_files(str(source), f"{root.rstrip('/')}/{remote.collection}/{name}",
                        source_filesystem=local_fs, destination_filesystem=fs)
    for name in (remote.name, remote.name + MARKER_SUFFIX):
        (staging / remote.collection / name).unlink(missing_ok=True)


def download_all(files: Sequence[RemoteFile], destination: str | Path, *, http=None, retries: int = 5,
                 backoff: float = 1.0, sleep=time.sleep, progress: Callable[[str, int, int], None] | None = None,
                 say: Callable[[str], None] = print) -> DownloadReport:
    """Download, verify and put in place each of `files` under ``destination/<collection>/<name>``,
    one after the other; files already complete and verified are skipped. Never raises for one
    file: failures are listed in the report with their reasons (see the module docstring).

    `destination` may be object storage (``s3://``, ``gs://``...), which has no append: each file is
    then downloaded (and resumed) in a local staging tree under the cache, verified there, and copied
    up with its marker last."""
    on_object_storage = "://" in str(destination) and not str(destination).startswith("file://")
    if on_object_storage:
        digest = hashlib.sha256(str(destination).encode()).hexdigest()[:16]
        local_root = Path(storage.cache_root()) / "downloads" / digest
    else:
        local_root = Path(str(destination).removeprefix("file://"))
    client = _client(http, retries=retries, backoff=backoff, sleep=sleep, say=say)
    downloader = _Downloader(client, progress, say)
    report = DownloadReport()
    for remote in files:
        try:
            _check_names(remote)
            if on_object_storage and _published_on_object_storage(str(destination), remote):
                outcome = "skipped"
            else:
                outcome = downloader.download(remote, local_root)
                if on_object_storage:
                    _publish_to_object_storage(local_root, str(destination), remote)
        except (_Permanent, RequestFailed) as error:
            reason = str(error)
        except Exception as error:  # one bad file (disk, permissions, a server's oddity) never stops the rest
            reason = f"{type(error).__name__}: {error}"
        else:
            (report.downloaded if outcome == "downloaded" else report.skipped).append(remote.name)
            continue
        report.failed.append(Failure(remote.name, reason))
        say(f"{remote.collection}/{remote.name}: FAILED: {reason}")
    say(f"download: {report.summary()}")
    return report
