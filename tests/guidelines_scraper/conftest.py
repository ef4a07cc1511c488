"""Shared fixtures: a scripted HTTP server on 127.0.0.1, a fake clock, fetcher factories."""

from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gap_replay.guidelines_scraper.fetch import Fetcher

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Reply:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0              # seconds to wait before sending the body
    content_length: bool = True     # False: close-delimited body (no Content-Length)
    piece: int = 0                  # > 0: the body sent that many bytes at a time, `pause` seconds apart
    pause: float = 0.0
    stall_after: int | None = None  # after that many body bytes, wait until the client hangs up (or 30 s)

    def payload(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


def html(body: str, title: str = "Page") -> Reply:
    return Reply(200, f"<!DOCTYPE html><html><head><title>{title}</title></head><body>{body}</body></html>",
                 {"Content-Type": "text/html; charset=utf-8"})


class ScriptedServer:
    """Serves scripted replies per path (``/a?x=1``); a list of replies is played in order, the last
    one repeating. Unknown paths get 404. Every request is logged as (path, headers)."""

    def __init__(self):
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):  # noqa: N802 - http.server API
                with server._lock:
                    server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                    replies = server.routes.get(self.path)
                    if replies is None:
                        reply = Reply(404, b"not found", {"Content-Type": "text/plain"})
                    else:
                        reply = replies.pop(0) if len(replies) > 1 else replies[0]
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    if reply.content_length:
                        self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if reply.delay:
                        time.sleep(reply.delay)
                    if reply.piece or reply.stall_after is not None:
                        self._trickle(payload, reply)
                    else:
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _trickle(self, payload: bytes, reply: Reply) -> None:
                """The body in pieces; at `stall_after` bytes, silence until the client hangs up."""
                piece = reply.piece or len(payload) or 1
                stall_at = reply.stall_after
                for start in range(0, len(payload), piece):
                    if stall_at is not None and start >= stall_at:
                        stall_at = None
                        # readable with nothing to read: the client closed (it sends nothing after its request)
                        readable, _, _ = select.select([self.connection], [], [], 30)
                        if readable and not self.connection.recv(1, socket.MSG_PEEK):
                            return
                    self.wfile.write(payload[start:start + piece])
                    if reply.pause:
                        time.sleep(reply.pause)

            def log_message(self, format, *args):  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def route(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class FakeClock:
    """Monotonic clock advanced only by sleep(): delays are recorded, never waited."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


FIXED_NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make_fetcher(clock):
    """Factory of fetchers on the fake clock (no real waiting), short timeouts."""
    created: list[Fetcher] = []

    def factory(**overrides) -> Fetcher:
        options = dict(min_delay=0.0, connect_timeout=2.0, read_timeout=2.0, max_retries=2,
                       clock=clock.monotonic, sleep=clock.sleep, now=lambda: FIXED_NOW)
        options.update(overrides)
        fetcher = Fetcher(**options)
        created.append(fetcher)
        return fetcher

    yield factory
    for fetcher in created:
        fetcher.close()
