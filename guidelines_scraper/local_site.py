"""Serve a directory over HTTP on 127.0.0.1, and locate the embedded sample guideline site.

:func:`serve_directory` is used by the sample build and by the tests: a ``ThreadingHTTPServer``
on an ephemeral port in a daemon thread, quiet, shut down when the ``with`` block ends.

The sample site (``gap_replay/sample/guidelines_site/``) holds one folder per source tag, each a
static copy of that site's root (with its own ``robots.txt``). Files without an extension are served
as HTML, so pretty URLs such as ``/guidance/ng901/chapter/recommendations`` can be files, and a ``:``
in a URL path is ``%3A`` in the file name (``index.php/Special%3AAllPages``).
:func:`sample_mirror` maps each source's canonical base URL to ``<served base>/<tag>``, which is
what :func:`crawl` needs::

    sources = select_sources(load_sources(sample_sources_path()), ["who", "nice", "wikidoc"])
    with serve_directory(sample_site_root()) as base, RawStore(path) as store:
        crawl(sources, store, fetcher=Fetcher(min_delay=0), mirror=sample_mirror(base, sources))
"""

from __future__ import annotations

import functools
import os
import posixpath
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import gap_replay
from guidelines_scraper.sources import GuidelineSource

SAMPLE_TAGS = ("who", "nice", "wikidoc")


class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".html": "text/html; charset=utf-8",
                      ".xml": "application/xml", ".txt": "text/plain; charset=utf-8"}

    def translate_path(self, path):
        # Portable file names: a ":" in a URL path (MediaWiki's Special:AllPages) is "%3A" on disk,
        # since Windows checkouts cannot hold ":" in file names.
        local = super().translate_path(path)
        relative = os.path.relpath(local, self.directory)
        if ":" in relative:
            local = os.path.join(self.directory, relative.replace(":", "%3A"))
        return local

    def guess_type(self, path):
        # Static mirrors keep "pretty" extensionless URLs (/guidance/ng1/chapter/x): serve them as HTML.
        if not posixpath.splitext(posixpath.basename(str(path)))[1]:
            return "text/html; charset=utf-8"
        return super().guess_type(path)

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def serve_directory(root: str | Path) -> Iterator[str]:
    """Serve `root` on ``http://127.0.0.1:<free port>``; yields that base URL (no trailing slash)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"not a directory: {root}")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"serve:{root.name}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


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
