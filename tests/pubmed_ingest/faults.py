"""Reads cut short, for the tests of what a failure to read an input does (issue 24):

- :class:`CutStream`: bytes that read until a given point, where the next read raises ConnectionResetError,
  as a socket reset mid-transfer does; :func:`cut_stream` wraps one as ``ingest.open_input`` wraps an
  object-storage stream (buffered, peekable, not seekable);
- :func:`cut_storage`: ``cut://<local path>`` uris whose files read so, through pyarrow (streams, and the
  random-access files Parquet needs), for the stage's own readers;
- :class:`ResettingProxy`: an HTTP proxy in front of the S3 stand-in (moto) that resets the connection half-way
  through the body of one object's GETs (after its first bytes) until a reader starts the object over.
"""

from __future__ import annotations

import http.client
import io
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

RESET_MESSAGE = "Connection reset by peer"


class CutStream(io.RawIOBase):
    """`data`, until `cut` bytes have been served (wherever read from, for a seekable one): the read that
    would go past them raises ConnectionResetError (errno 104)."""

    def __init__(self, data: bytes, cut: int, *, seekable: bool = False) -> None:
        self._data = io.BytesIO(data)
        self._left = cut
        self._seekable = seekable

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("seek")
        return self._data.seek(offset, whence)

    def tell(self) -> int:
        return self._data.tell()

    def readinto(self, buffer) -> int:
        data = self._data.read(len(buffer))
        if len(data) > self._left:
            raise ConnectionResetError(104, RESET_MESSAGE)
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def cut_stream(data: bytes, share: float = 0.5) -> io.BufferedReader:
    """`data` as ``open_input`` gives an object-storage file, the connection reset after `share` of it."""
    return io.BufferedReader(CutStream(data, int(len(data) * share)))


def cut_storage(monkeypatch, share: float = 0.5) -> str:
    """Make ``cut://<path>`` name the local file at <path>, read through pyarrow with the connection reset
    after `share` of its bytes (``storage.resolve`` answers for it); returns the prefix, ``cut://``."""
    import pyarrow as pa
    import pyarrow.fs as pafs
    from fsspec.implementations.local import LocalFileSystem

    from gap_replay.core import storage

    class CutHandler(pafs.FSSpecHandler):
        def _cut(self, path: str):
            data = Path(path).read_bytes()
            return pa.PythonFile(CutStream(data, int(len(data) * share), seekable=True), mode="r")

        def open_input_stream(self, path: str):
            return self._cut(path)

        def open_input_file(self, path: str):
            return self._cut(path)

    filesystem = pafs.PyFileSystem(CutHandler(LocalFileSystem()))
    resolve = storage.resolve
    monkeypatch.setattr(storage, "resolve", lambda uri: (filesystem, uri[len("cut://"):])
                        if uri.startswith("cut://") else resolve(uri))
    return "cut://"


_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "host"}


class ResettingProxy:
    """A forwarding HTTP proxy on 127.0.0.1 in front of an S3 server (`upstream`) that disturbs one object, the
    key path `disturbed` (``/<bucket>/<key>``): every GET of it for a range after its first byte gets half of
    its body and then a reset connection (RST), until a GET of its first byte comes after a reset, that is
    until a reader has given up and starts the object again (a retried task). pyarrow's S3 client retries a
    reset request itself, some thirty times, before its read fails. Other requests pass untouched.
    `resets` and `starts` (GETs of the object's first byte) count what happened."""

    def __init__(self, upstream: str, disturbed: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname, parts.port or 80)
        self.disturbed = disturbed
        self.resets = self.starts = 0
        self._over = False
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                proxy._forward(self, "GET")

            def do_HEAD(self) -> None:  # noqa: N802
                proxy._forward(self, "HEAD")

            def do_PUT(self) -> None:  # noqa: N802
                proxy._forward(self, "PUT")

            def do_POST(self) -> None:  # noqa: N802
                proxy._forward(self, "POST")

            def do_DELETE(self) -> None:  # noqa: N802
                proxy._forward(self, "DELETE")

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # the connections it resets

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="resetting-proxy", daemon=True)
        self._thread.start()

    def _should_reset(self, method: str, path: str, byte_range: str) -> bool:
        if method != "GET" or unquote(path) != self.disturbed:
            return False
        first = int(byte_range.split("=", 1)[1].split("-", 1)[0]) if byte_range.startswith("bytes=") else 0
        with self._lock:
            if first == 0:
                self.starts += 1
                self._over = self._over or self.resets > 0
                return False
            if self._over:
                return False
            self.resets += 1
            return True

    def _forward(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        headers = {name: value for name, value in handler.headers.items() if name.lower() not in _HOP_BY_HOP}
        length = int(handler.headers.get("Content-Length") or 0)
        sent = handler.rfile.read(length) if length else None
        connection = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            connection.request(method, handler.path, body=sent, headers=headers)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        reset = self._should_reset(method, urlsplit(handler.path).path, handler.headers.get("Range", ""))
        handler.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() in _HOP_BY_HOP or (name.lower() == "content-length" and method != "HEAD"):
                continue
            handler.send_header(name, value)
        if method != "HEAD":
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not reset:
            handler.wfile.write(body)
            return
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        # Close with SO_LINGER 0: the peer gets an RST, "Connection reset by peer", not a clean end.
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
