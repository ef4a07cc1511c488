"""The one HTTP client (gap_replay.core.http) against real servers on 127.0.0.1: what it retries,
how long it waits (urllib3's Retry), when it gives up, and that the crawler and the NCBI downloader
both send every request through it."""

from __future__ import annotations

import gzip
import hashlib
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate

import pytest
import urllib3

from gap_replay.core.http import BodyFailed, BodyTooLarge, ContentDecoder, HttpClient, RequestFailed, UnusableBody
from gap_replay.guidelines_scraper.fetch import Fetcher
from gap_replay.pubmed_ingest.download import RemoteFile, download_all
from tests.guidelines_scraper.conftest import Reply


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps):
    made = HttpClient(user_agent="test-agent/1", retries=2, backoff=1.0, jitter=0.5, max_retry_after=60,
                      timeout=urllib3.Timeout(connect=2.0, read=2.0), sleep=sleeps.append)
    yield made
    made.close()


def body(response) -> bytes:
    return response.read()


@contextmanager
def socket_server(*answers: bytes | str) -> Iterator[str]:
    """A server that takes one connection per answer, in order: ``"reset"`` reads the request and
    resets the connection (RST), any bytes are sent as they are before closing."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        for answer in answers:
            conn, _ = listener.accept()
            conn.recv(65536)
            if answer == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.sendall(answer)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    finally:
        listener.close()
        thread.join(timeout=5)


OK = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nfine\n"


# -- what is retried, and how long it waits -------------------------------------------------------

def test_503_with_retry_after_in_seconds_and_as_an_http_date(server, client, sleeps):
    soon = formatdate(time.time() + 40, usegmt=True)
    server.route("/busy", Reply(503, "", {"Retry-After": "7"}), Reply(503, "", {"Retry-After": soon}), Reply(200, "ok"))
    assert client.get(f"{server.base}/busy", body) == b"ok"
    assert server.paths() == ["/busy"] * 3
    assert sleeps[0] == 7 and 35 <= sleeps[1] <= 40


def test_429_without_retry_after_backs_off_exponentially_with_jitter(server, sleeps):
    client = HttpClient(user_agent="t", retries=3, backoff=2.0, jitter=0.5, sleep=sleeps.append)
    server.route("/limited", Reply(429), Reply(429), Reply(429), Reply(200, "ok"))
    assert client.get(f"{server.base}/limited", body) == b"ok"
    # urllib3's rule: the first retry at once, then backoff * 2**(n-1), plus up to `jitter` seconds
    assert len(sleeps) == 2 and 4.0 <= sleeps[0] <= 4.5 and 8.0 <= sleeps[1] <= 8.5


def test_gives_up_after_the_configured_retries_with_the_last_answer(server, client, sleeps):
    server.route("/down", Reply(503, "down", {"X-Why": "maintenance"}))
    with pytest.raises(RequestFailed) as failed:
        client.get(f"{server.base}/down", body)
    assert failed.value.reason == "gave up after 3 attempts: HTTP 503"
    assert failed.value.status == 503 and failed.value.headers["x-why"] == "maintenance"
    assert server.paths() == ["/down"] * 3 and len(sleeps) == 1


def test_a_retry_after_beyond_the_limit_ends_the_request_at_once(server, client, sleeps):
    server.route("/later", Reply(429, "", {"Retry-After": "3600"}), Reply(200, "ok"))
    with pytest.raises(RequestFailed, match=r"^HTTP 429: Retry-After '3600' exceeds max_retry_after \(60s\)$"):
        client.get(f"{server.base}/later", body)
    assert server.paths() == ["/later"] and sleeps == []


@pytest.mark.parametrize("status", [404, 410, 501, 505])
def test_other_answers_go_to_the_reader_unretried(server, client, sleeps, status):
    server.route("/x", Reply(status, "no"))
    assert client.get(f"{server.base}/x", lambda response: response.status) == status
    assert server.paths() == ["/x"] and sleeps == []


def test_a_connection_reset_is_retried(client):
    with socket_server("reset", OK) as url:
        assert client.get(url, body) == b"fine\n"
    with socket_server("reset", "reset", "reset") as url, pytest.raises(RequestFailed) as failed:
        client.get(url, body)
    assert failed.value.reason.startswith("gave up after 3 attempts: ProtocolError: Connection aborted.")
    assert failed.value.status is None


def test_a_body_cut_short_is_retried(client):
    short = b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\nonly ten.."
    with socket_server(short, OK) as url:
        assert client.get(url, body) == b"fine\n"


def test_an_attempt_that_made_progress_is_not_counted(server, sleeps):
    client = HttpClient(user_agent="t", retries=0, sleep=sleeps.append)
    server.route("/resumable", Reply(200, "a"), Reply(200, "b"), Reply(200, "c"))
    seen = []

    def read(response):
        seen.append(response.read())
        if len(seen) < 3:
            raise BodyFailed(f"cut after {seen[-1]!r}", progressed=True)
        return b"".join(seen)

    assert client.get(f"{server.base}/resumable", read) == b"abc" and sleeps == []

    def refuse(response):
        raise BodyFailed("the server sent garbage")  # no progress: counted, and no retries are left

    with pytest.raises(RequestFailed, match="^the server sent garbage$"):
        client.get(f"{server.base}/resumable", refuse)


def test_pace_is_entered_around_every_attempt_and_headers_may_change(server, client):
    server.route("/p", Reply(503), Reply(200, "ok"))
    events, calls = [], iter(range(10))

    @contextmanager
    def pace():
        events.append("enter")
        yield
        events.append("exit")

    assert client.get(f"{server.base}/p", body, pace=pace, headers=lambda: {"X-Attempt": str(next(calls))}) == b"ok"
    assert events == ["enter", "exit"] * 2
    assert [headers["x-attempt"] for _, headers in server.requests] == ["0", "1"]
    assert {headers["user-agent"] for _, headers in server.requests} == {"test-agent/1"}


def test_errors_that_would_recur_are_not_retried(client, sleeps):
    with pytest.raises(RequestFailed, match="^LocationParseError"):
        client.get("http://[not-a-host/x", body)
    assert sleeps == [] and client.requests_made == 1


# -- one client for the whole project ---------------------------------------------------------------

def test_the_crawler_and_the_downloader_send_every_request_through_the_client(server, tmp_path, monkeypatch):
    data = b"<PubmedArticleSet/>" * 50
    server.route("/page", Reply(200, "<html><body>guideline</body></html>", {"Content-Type": "text/html"}))
    server.route("/pubmed/f.xml.gz", Reply(200, data))
    server.route("/pubmed/f.xml.gz.md5", Reply(200, f"MD5(f.xml.gz)= {hashlib.md5(data).hexdigest()}\n"))
    gets, openers = [], []
    real_get, real_request = HttpClient.get, urllib3.PoolManager.request

    def spy_get(self, url, *args, **kwargs):
        gets.append(url.rsplit("/", 1)[-1])
        return real_get(self, url, *args, **kwargs)

    def spy_request(self, *args, **kwargs):
        openers.append(sys._getframe(1).f_globals["__name__"])
        return real_request(self, *args, **kwargs)

    monkeypatch.setattr(HttpClient, "get", spy_get)
    monkeypatch.setattr(urllib3.PoolManager, "request", spy_request)

    with Fetcher(min_delay=0, max_retries=0) as fetcher:
        assert fetcher.fetch(f"{server.base}/page").ok
    remote = RemoteFile(f"{server.base}/pubmed/f.xml.gz", "f.xml.gz", "baseline", f"{server.base}/pubmed/f.xml.gz.md5")
    report = download_all([remote], tmp_path, say=lambda _: None)
    assert report.downloaded == ["f.xml.gz"] and (tmp_path / "baseline" / "f.xml.gz").read_bytes() == data

    assert gets == ["robots.txt", "page", "f.xml.gz.md5", "f.xml.gz"]
    assert len(openers) == len(server.requests) == 4 and set(openers) == {"gap_replay.core.http"}


# -- bodies within caps (read_capped's decoder) ----------------------------------------------------

def test_the_content_decoder_inflates_within_its_cap():
    text = b"<html>" + b"<p>within the cap</p>" * 200 + b"</html>"

    def decode(data: bytes, coding: str | None, cap: int = 10_000, piece: int = 7) -> bytes:
        decoder = ContentDecoder(coding, cap)
        for start in range(0, len(data), piece):
            decoder.feed(data[start:start + piece])
        return decoder.finish()

    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    for data, coding in ((gzip.compress(text), "gzip"), (gzip.compress(text), "x-gzip"), (text, "identity"),
                         (zlib.compress(text), "deflate"), (raw_deflate.compress(text) + raw_deflate.flush(), "deflate"),
                         (zlib.compress(gzip.compress(text)), "gzip, deflate"), (text, None)):
        assert decode(data, coding) == text, coding
    with pytest.raises(BodyTooLarge, match="decompressed body exceeds 1000 bytes"):
        decode(gzip.compress(b"\0" * 5_000_000), "gzip", cap=1000, piece=4096)  # a bomb
    with pytest.raises(BodyTooLarge, match="decompressed body exceeds 1000 bytes"):  # identity counts too
        decode(text, None, cap=1000)
    with pytest.raises(UnusableBody, match="truncated stream"):
        decode(gzip.compress(text)[:-20], "gzip")
    with pytest.raises(UnusableBody, match="corrupt gzip body"):
        decode(b"not gzip at all", "gzip")
    with pytest.raises(UnusableBody, match="unsupported content-encoding 'br'"):
        ContentDecoder("br", 1000)
