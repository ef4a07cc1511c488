"""Serve static copies of guideline sites on 127.0.0.1, and locate the embedded sample site.

:func:`serve_site` serves a directory (a ``ThreadingHTTPServer`` on an ephemeral port in a daemon
thread, quiet, shut down when the ``with`` block ends) the way the real sites answer a crawler:

- a URL path is a file under the root, else that file with ``.html`` appended (nginx's ``try_files
  $uri $uri.html $uri/``: how ``/guidance/ng930`` can be a page while ``/guidance/ng930/chapter/...``
  are below it); a folder answers with its ``index.html``, and a folder URL without its trailing
  slash is redirected (301) to the slash form, as Apache does; files without an extension are HTML
  (pretty URLs such as ``/guidance/ng901/chapter/recommendations``);
  a folder without ``index.html`` is a 404, never a listing;
- a URL with a query string is the file whose name is the last path segment, ``%3F``, then the
  query exactly as requested, which for the crawler is the normalised spelling (arguments sorted)
  (``/cbrowse?start=100`` is the file ``cbrowse%3Fstart=100``,
  ``/catalogsearch/result/?q=x`` is ``catalogsearch/result/%3Fq=x``); there is no fallback to the
  file without the query, so a listing's pagination ends where its files end;
- a ``:`` in a URL is ``%3A`` in the file name (``index.php/Special%3AAllPages`` is
  ``/index.php/Special:AllPages``), so that the trees check out on any OS;
- every file has an ``ETag`` (a hash of its bytes) and a ``Last-Modified`` (its mtime), and a
  request with a matching ``If-None-Match`` (or, without one, an ``If-Modified-Since`` not older
  than the file) is answered ``304 Not Modified``, as real servers do for recrawls;
- every request is counted per request target (:attr:`LocalSite.requests`) and every response
  actually sent is counted too (:attr:`LocalSite.served`), so tests can check that a crawl
  fetched nothing twice; an optional ``hook(path)`` runs before each answer (a test can block
  there, or return ``"abort"`` to close the connection without answering).

The sample site (``gap_replay/sample/guidelines_site/``) holds one folder per source tag, each a
static copy of that site's root (with its own ``robots.txt``). :func:`sample_mirror` maps each
source's canonical base URL to ``<served base>/<tag>``, which is what :func:`crawl` needs::

    sources = select_sources(load_sources(sample_sources_path()), ["who", "nice", "wikidoc"])
    with serve_directory(sample_site_root()) as base, RawStore(path) as store:
        crawl(sources, store, fetcher=Fetcher(min_delay=0), mirror=sample_mirror(base, sources))

Fixture sites laid out one folder per *host* (``www.who.int/``, ``iris.who.int/``...) are mapped
with :func:`host_mirror` instead.
"""

from __future__ import annotations

import email.utils
import hashlib
import posixpath
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import gap_replay
from gap_replay.guidelines_scraper.fetch import host_of
from gap_replay.guidelines_scraper.sources import GuidelineSource

SAMPLE_TAGS = ("who", "nice", "wikidoc")

_TYPES = {
    "": "text/html; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".xml": "application/xml",
    ".txt": "text/plain; charset=utf-8",
    ".pdf": "application/pdf",
    ".json": "application/json",
    ".css": "text/css",
    ".gz": "application/gzip",
    ".php": "text/html; charset=utf-8",   # server-side pages (index.php?title=...)
    ".aspx": "text/html; charset=utf-8",
    ".jsp": "text/html; charset=utf-8",
}


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


@dataclass
class LocalSite:
    """A served directory: its base URL and what it was asked for."""

    base: str
    root: Path
    requests: Counter = field(default_factory=Counter)   # request target -> requests received
    served: Counter = field(default_factory=Counter)     # request target -> responses fully sent
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (target, lower-cased headers)
    hook: Callable[[str], str | None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def url(self, path: str) -> str:
        return self.base + path

    def record(self, target: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests[target] += 1
            self.log.append((target, headers))

    def sent(self, target: str) -> None:
        with self._lock:
            self.served[target] += 1


class _Handler(BaseHTTPRequestHandler):
    site: LocalSite  # set on the subclass made per server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024  # headers and body leave in one write (no Nagle/delayed-ACK stalls)
    server_version = "gap-replay-fixture/1"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass

    # -- mapping URLs to files -------------------------------------------------------------------

    def _file_for(self, target: str) -> tuple[str, Path | None]:
        """('file' | 'redirect' | 'missing', path)"""
        parts = urlsplit(target)
        path = unquote(parts.path)
        segments = [s for s in path.split("/") if s not in ("", ".")]
        if any(s == ".." for s in segments):
            return "missing", None
        local = self.site.root.joinpath(*[s.replace(":", "%3A") for s in segments]) if segments else self.site.root
        if parts.query:
            query = parts.query.replace(":", "%3A")
            if path.endswith("/") or not segments:
                candidate = local / f"%3F{query}"
            else:
                candidate = local.with_name(local.name + f"%3F{query}")
            return ("file", candidate) if candidate.is_file() else ("missing", None)
        if not path.endswith("/") and segments:
            sibling = local.with_name(local.name + ".html")  # nginx's try_files $uri $uri.html $uri/
            if not local.is_file() and sibling.is_file():
                return "file", sibling
        if local.is_dir():
            if not path.endswith("/"):
                return "redirect", None
            index = local / "index.html"
            return ("file", index) if index.is_file() else ("missing", None)
        if path.endswith("/"):
            return "missing", None
        return ("file", local) if local.is_file() else ("missing", None)

    # -- answering -------------------------------------------------------------------------------

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def do_HEAD(self):  # noqa: N802 - http.server API
        self.do_GET()

    def do_GET(self):  # noqa: N802 - http.server API
        target = self.path
        self.site.record(target, {k.lower(): v for k, v in self.headers.items()})
        if self.site.hook is not None and self.site.hook(target) == "abort":
            self.close_connection = True
            return
        kind, path = self._file_for(target)
        try:
            if kind == "redirect":
                parts = urlsplit(target)
                self._send(301, {"Location": parts.path + "/" + (f"?{parts.query}" if parts.query else "")})
            elif kind == "missing":
                self._send(404, {"Content-Type": "text/html; charset=utf-8"},
                           b"<!DOCTYPE html><html><head><title>Not found</title></head>"
                           b"<body><h1>Page not found</h1></body></html>")
            else:
                self._send_file(path)
        except (BrokenPipeError, ConnectionResetError):
            return
        self.site.sent(target)

    def _send_file(self, path: Path) -> None:
        body = path.read_bytes()
        mtime = int(path.stat().st_mtime)
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        name = path.name.split("%3F", 1)[0]
        ctype = _TYPES.get(posixpath.splitext(name)[1].lower(), "application/octet-stream")
        headers = {"Content-Type": ctype, "ETag": etag, "Last-Modified": _http_date(mtime)}
        if self._not_modified(etag, mtime):
            self._send(304, {"ETag": etag, "Last-Modified": headers["Last-Modified"]})
            return
        self._send(200, headers, body)

    def _not_modified(self, etag: str, mtime: int) -> bool:
        match = self.headers.get("If-None-Match")
        if match is not None:
            tags = [t.strip() for t in match.split(",")]
            return "*" in tags or etag in tags or f"W/{etag}" in tags
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                when = email.utils.parsedate_to_datetime(since)
            except (TypeError, ValueError, IndexError, OverflowError):
                return False
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return datetime.fromtimestamp(mtime, timezone.utc) <= when
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def serve_site(root: str | Path, hook: Callable[[str], str | None] | None = None) -> Iterator[LocalSite]:
    """Serve `root` on ``http://127.0.0.1:<free port>``; yields the :class:`LocalSite`."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"not a directory: {root}")
    handler = type("Handler", (_Handler,), {})
    server = _Server(("127.0.0.1", 0), handler)
    site = LocalSite(base=f"http://127.0.0.1:{server.server_address[1]}", root=root, hook=hook)
    handler.site = site
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"serve:{root.name}", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def serve_directory(root: str | Path) -> Iterator[str]:
    """Serve `root` on ``http://127.0.0.1:<free port>``; yields that base URL (no trailing slash)."""
    with serve_site(root) as site:
        yield site.base


def sample_dir() -> Path:
    return Path(gap_replay.__file__).resolve().parent / "sample"


def sample_site_root() -> Path:
    """The embedded sample site: ``gap_replay/sample/guidelines_site``."""
    return sample_dir() / "guidelines_site"


def sample_sources_path() -> Path:
    """The TOML override declaring the sample's three sources."""
    return sample_dir() / "guidelines_sources.toml"


def sample_mirror(base_url: str, sources: Iterable[GuidelineSource]) -> dict[str, str]:
    """``{canonical base URL: <base_url>/<tag>}`` for each source (the sample site layout)."""
    base = base_url.rstrip("/")
    return {source.base_url: f"{base}/{source.tag}" for source in sources}


def host_mirror(base_url: str, sources: Iterable[GuidelineSource], root: str | Path | None = None) -> dict[str, str]:
    """``{https://<host>: <base_url>/<host>}`` for every allowed host of `sources` (a site tree laid out
    one folder per host); with `root`, only the hosts that have a folder there."""
    base = base_url.rstrip("/")
    mapping = {}
    for source in sources:
        for host in source.allowed_hosts:
            host = host_of(host.lstrip("*."))
            if root is not None and not (Path(root) / host).is_dir():
                continue
            mapping[f"https://{host}"] = f"{base}/{host}"
    return mapping


__all__ = ["LocalSite", "host_mirror", "sample_dir", "sample_mirror", "sample_site_root", "sample_sources_path",
           "serve_directory", "serve_site"]


def write_listing_pages(root: str | Path, articles: int, per_listing: int = 50) -> int:
    """Listing pages ``root/list/<n>`` over article pages ``/a/00000``... (``per_listing`` links each, a
    "Next" link to the following page) and a ``robots.txt``: the frame of the generated sites the benches
    crawl (they write the article pages themselves). Returns the number of listing pages."""
    root = Path(root)
    (root / "list").mkdir(parents=True, exist_ok=True)
    listings = -(-articles // per_listing)
    for page in range(listings):
        links = "".join(f'<li><a href="/a/{n:05d}">Article {n}</a></li>'
                        for n in range(page * per_listing, min(articles, (page + 1) * per_listing)))
        following = f'<a href="/list/{page + 1}">Next</a>' if page + 1 < listings else ""
        (root / "list" / str(page)).write_text(f"<html><body><ul>{links}</ul>{following}</body></html>")
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    return listings

