"""The project's one HTTP client: urllib3's connection pools, and urllib3's ``Retry`` for every
retry decision (which statuses are worth another attempt, how many attempts, the backoff and its
jitter, ``Retry-After``). The crawler and the NCBI downloader both fetch through it.

:meth:`HttpClient.get` makes one logical GET: it opens the response (headers read, body not), hands
it to the caller's ``read`` function, and retries, by the same ``Retry`` object, three kinds of
failure:

- no response: connection refused or reset, a timeout before the headers;
- a status in :data:`RETRY_STATUSES` (429, the 5xx that may pass): the wait is the answer's
  ``Retry-After`` (seconds or an HTTP-date), or else the backoff; a ``Retry-After`` beyond
  ``max_retry_after`` ends the request at once (coming back tomorrow is not a retry);
- a body that failed after its headers: urllib3's read errors while streaming (a dropped
  connection, a stall, fewer bytes than announced), or :class:`BodyFailed`, which ``read`` raises
  for its own reasons (the downloader's mis-answered range). A :class:`BodyFailed` whose attempt
  received bytes (``progressed``) is not counted: a download resumed after a drop starts afresh.

The loop is ours rather than urllib3's own (``PoolManager.request(retries=...)``) because urllib3
retries only up to the headers, because each attempt may have to wait its turn (``pace``: the
crawler's per-host politeness holds between retries too), and because waits go through an
injectable ``sleep`` (tests run on a fake clock). Redirects are urllib3's (``redirects=n``) or, with
``redirects=0``, handed back to the caller (the crawler checks each hop itself).

Nothing else is retried: a URL urllib3 cannot use, a TLS failure, too many redirects (urllib3's
"other" errors) end the request at the first attempt. Every ending is a :class:`RequestFailed`
with a reason a person can read.

A body over a size cap is an answer, not a failed read: ``read`` returns it as such (or raises its
own exception, which ends the request), never :class:`BodyFailed` nor a urllib3 error, which would
fetch it again. And ``read`` should check its caps on each piece as it arrives (``read1``; decoding
as it goes, with ``decode_content=False`` and its own capped decoder), since a read of a fixed-size
block, or urllib3 decoding a block at a time, can meet a stall, and a read timeout, after the bytes
that already passed the cap: :func:`read_capped` does exactly that (the crawler's fetcher, the NCBI
downloader and the PMC Cloud Service client all read through it).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TypeVar

import urllib3
from urllib3.exceptions import HTTPError, InvalidHeader, MaxRetryError, ProtocolError
from urllib3.response import BaseHTTPResponse
from urllib3.util import Retry, Timeout

T = TypeVar("T")

# Worth another attempt: rate limited, or a server error that may pass. 501 (Not Implemented) and
# 505 (HTTP Version Not Supported) are verdicts on the request, not on the server's state.
RETRY_STATUSES = frozenset({429, *range(500, 600)} - {501, 505})


class RequestFailed(Exception):
    """No usable response. ``status``/``headers`` (lower-case names) are those of the last answer
    when there was one (e.g. the 503 still there after the last retry), else None/{}."""

    def __init__(self, reason: str, status: int | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(reason)
        self.reason, self.status, self.headers = reason, status, dict(headers or {})


class BodyFailed(ProtocolError):
    """Raised by a ``read`` function: this attempt failed after its headers arrived and another may
    succeed. A ``ProtocolError``, so urllib3's ``Retry`` counts it as a read error; ``progressed``:
    the attempt received bytes (it is not counted against the retries). Never for a body over a cap
    (module docstring): another attempt would get the same body."""

    def __init__(self, reason: str, progressed: bool = False):
        super().__init__(reason)
        self.reason, self.progressed = reason, progressed


def describe(error: Exception) -> str:
    """An error in one line: its type and its own message, without urllib3's nested repr of a cause."""
    if isinstance(error, BodyFailed):
        return error.reason
    first = error.args[0] if error.args else ""
    return f"{type(error).__name__}: {first if isinstance(first, str) and first else error}"


class HttpClient:
    """GETs with retries. ``retries``: attempts after the first; ``backoff``: urllib3's
    ``backoff_factor`` (the n-th consecutive failure waits ``backoff * 2**(n-1)`` seconds, capped at
    ``backoff_max``; the first retry is immediate); ``jitter``: up to that many seconds added at
    random to each backoff. ``pool`` (a ``PoolManager`` or ``ProxyManager``) is used with its own
    timeouts; without one, a pool with ``timeout`` is made. ``say`` hears each retry."""

    def __init__(self, *, user_agent: str, retries: int = 3, backoff: float = 1.0, backoff_max: float = 60.0,
                 jitter: float = 0.5, max_retry_after: float = 300.0,
                 timeout: Timeout = Timeout(connect=10.0, read=60.0),
                 pool: urllib3.PoolManager | None = None, sleep: Callable[[float], None] = time.sleep,
                 say: Callable[[str], None] | None = None):
        self.user_agent = user_agent
        # `other=0`: errors that are neither connection nor read errors (TLS, an unusable URL, too
        # many redirects) would fail the same way again.
        self.retry = Retry(total=retries, connect=None, read=None, redirect=None, status=None, other=0,
                           allowed_methods=frozenset({"GET"}), status_forcelist=RETRY_STATUSES,
                           backoff_factor=backoff, backoff_max=backoff_max, backoff_jitter=jitter,
                           respect_retry_after_header=True, raise_on_status=False)
        self.max_retry_after = float(max_retry_after)
        self.pool = pool if pool is not None else urllib3.PoolManager(num_pools=32, timeout=timeout)
        self._sleep = sleep
        self._say = say
        self.requests_made = 0  # attempts sent, retries included (redirect hops urllib3 follows are not)

    def close(self) -> None:
        self.pool.clear()

    def get(self, url: str, read: Callable[[BaseHTTPResponse], T], *,
            headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None, redirects: int = 0,
            pace: Callable[[], AbstractContextManager] | None = None, label: str | None = None) -> T:
        """What ``read(response)`` returns for the first answer not worth retrying (body unread when
        ``read`` gets it; the connection is released after). `headers` may be a function, called for
        each attempt (a resumed download asks each time for the bytes it still lacks). ``pace()`` is
        entered around each attempt. Raises :class:`RequestFailed` when no attempt succeeded, and
        lets any other exception of ``read`` through."""
        retry, attempts = self.retry, 0
        while True:
            attempts += 1
            response: BaseHTTPResponse | None = None
            error: Exception | None = None
            with pace() if pace is not None else nullcontext():
                try:
                    response = self._open(url, headers() if callable(headers) else headers, redirects)
                    if not retry.is_retry("GET", response.status, "Retry-After" in response.headers):
                        return read(response)
                except HTTPError as failure:
                    # urllib3 wraps what ended its single attempt: the cause is what we judge.
                    error = failure.reason if isinstance(failure, MaxRetryError) and failure.reason else failure
                finally:
                    if response is not None:
                        response.close()  # an unread body is not worth reading: drop the connection
                        response.release_conn()
            status = response.status if response is not None and error is None else None
            answer = {name.lower(): value for name, value in response.headers.items()} if status is not None else {}
            what = describe(error) if error is not None else f"HTTP {status}"
            if not (isinstance(error, BodyFailed) and error.progressed):
                try:
                    retry = retry.increment("GET", url, response=response if error is None else None, error=error)
                except MaxRetryError:
                    raise RequestFailed(what if attempts == 1 else f"gave up after {attempts} attempts: {what}",
                                        status, answer) from None
            wait = retry.get_backoff_time()
            if status is not None:
                try:
                    after = retry.get_retry_after(response)
                except InvalidHeader:  # unparseable: the backoff decides
                    after = None
                # Waiting less than the server asked is not polite, waiting a day is not a retry: the
                # request ends. (Recent urllib3 cuts Retry-After to 6 hours, far above any limit here,
                # hence the header itself in the reason.)
                if after is not None and after > self.max_retry_after:
                    raise RequestFailed(f"{what}: Retry-After {answer['retry-after']!r} exceeds max_retry_after "
                                        f"({self.max_retry_after:.0f}s)", status, answer)
                if after is not None:
                    wait = after
            if self._say is not None:
                self._say(f"{label or url}: {what}; retrying in {wait:.1f} s")
            if wait > 0:
                self._sleep(wait)

    def _open(self, url: str, headers: Mapping[str, str] | None, redirects: int) -> BaseHTTPResponse:
        """One attempt: urllib3 follows up to `redirects` redirects and retries nothing."""
        self.requests_made += 1
        single = Retry(total=None, connect=0, read=0, status=0, other=0, redirect=redirects,
                       raise_on_redirect=True, raise_on_status=False, respect_retry_after_header=False)
        return self.pool.request("GET", url, headers={"User-Agent": self.user_agent, **(headers or {})},
                                 redirect=redirects > 0, retries=single, preload_content=False,
                                 decode_content=False)


# -- bodies within caps ---------------------------------------------------------------------------

READ_PIECE = 64 * 1024  # at most this much of a body per read1


class UnusableBody(Exception):
    """Raised by :func:`read_capped`: the body cannot be used as it came (corrupt, a content coding
    not undone here). A final answer: neither a urllib3 error nor :class:`BodyFailed`, so
    :meth:`HttpClient.get` lets it through at once, without another attempt."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class BodyTooLarge(UnusableBody):
    """The body is over a cap (``Content-Length N exceeds M bytes``, ``exceeds M bytes``,
    ``decompressed body exceeds M bytes``): a final answer, fetched once."""


def _zlib_header(head: bytes) -> bool:
    """Whether a deflate body starts with a zlib header (RFC 1950), rather than being raw deflate,
    as some servers send it: method 8, a window of at most 32 KiB, no preset dictionary, a valid check."""
    return (head[0] & 0x0F) == 8 and (head[0] >> 4) <= 7 and not head[1] & 0x20 and (head[0] << 8 | head[1]) % 31 == 0


class _Inflater:
    """One gzip or deflate coding undone as its bytes arrive, never giving more than it has room for."""

    def __init__(self, coding: str):
        self.coding = coding
        self._zlib = None if coding == "deflate" else zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._head = b""  # deflate: its first bytes, until two tell zlib-wrapped from raw

    def inflate(self, data: bytes, room: int, final: bool = False) -> bytes | None:
        """The bytes `data` inflates to (`final`: the stream's last, which must end it); None past
        `room` bytes; ``zlib.error`` for a corrupt or truncated stream."""
        if self._zlib is None:
            self._head += data
            if len(self._head) < 2 and not final:
                return b""
            data, self._head = self._head, b""
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS if len(data) >= 2 and _zlib_header(data)
                                            else -zlib.MAX_WBITS)
        out = bytearray()
        while data and not self._zlib.eof:  # bytes after the end of the stream are ignored
            # max_length bounds the work a bomb costs: one byte past the room is enough to know
            out += self._zlib.decompress(data, room + 1 - len(out))
            if len(out) > room:
                return None
            data = self._zlib.unconsumed_tail
        if final:
            out += self._zlib.flush()
            if not self._zlib.eof:
                raise zlib.error("truncated stream")
        return bytes(out)


class ContentDecoder:
    """A body's Content-Encoding (gzip, deflate, identity, or a list of them) undone as the body
    arrives, within `cap` decoded bytes that each coding's output counts against: a decompression
    bomb is refused by the first bytes that inflate past the cap, not once all of it has been read.
    Raises :class:`UnusableBody` for a coding it does not know (at once) or a corrupt stream, and
    :class:`BodyTooLarge` past the cap."""

    def __init__(self, content_encoding: str | None, cap: int):
        codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        for coding in codings:
            if coding not in ("gzip", "x-gzip", "deflate"):
                raise UnusableBody(f"unsupported content-encoding {coding!r}")
        self.cap = cap
        self._stages = [_Inflater(coding) for coding in reversed(codings)]
        self._sizes = [0] * len(self._stages)
        self._body = bytearray()

    def feed(self, data: bytes, final: bool = False) -> None:
        """Decode the next bytes of the body (`final`: its last)."""
        for index, stage in enumerate(self._stages):
            try:
                data = stage.inflate(data, self.cap - self._sizes[index], final)
            except zlib.error as exc:
                raise UnusableBody(f"corrupt {stage.coding} body: {exc}") from None
            if data is None:
                raise BodyTooLarge(f"decompressed body exceeds {self.cap} bytes")
            self._sizes[index] += len(data)
        self._body += data
        if len(self._body) > self.cap:
            raise BodyTooLarge(f"decompressed body exceeds {self.cap} bytes")

    def finish(self) -> bytes:
        """The decoded body, once the stream has ended."""
        self.feed(b"", final=True)
        return bytes(self._body)


def read_capped(response: BaseHTTPResponse, max_bytes: int, max_decoded_bytes: int | None = None, *,
                total_timeout: float | None = None, piece: int = READ_PIECE) -> bytes:
    """The whole body of `response` (opened undecoded, as :meth:`HttpClient.get` opens it), its
    Content-Encoding undone, within `max_bytes` on the wire and `max_decoded_bytes` (default:
    `max_bytes`) decoded: a ``read`` function for :meth:`HttpClient.get` that keeps the rule of the
    module docstring. An announced Content-Length over the cap is refused before any byte is read;
    then each piece is taken as it arrives (``read1``) and inflated at once, and the caps are checked
    on it before anything else, so a bomb or an over-size body is :class:`BodyTooLarge` by its first
    bytes past a cap, however slowly it comes and whether or not it then stalls. A corrupt stream or
    an unknown coding is :class:`UnusableBody`; both are final. What is worth another attempt stays
    a failed read: urllib3's errors (a drop, a stall, fewer bytes than announced) and, past
    `total_timeout` seconds, :class:`BodyFailed`."""
    started = time.monotonic()
    cap = max_bytes if max_decoded_bytes is None else max_decoded_bytes
    length = (response.headers.get("Content-Length") or "").strip()
    if length.isdigit() and int(length) > max_bytes:
        raise BodyTooLarge(f"Content-Length {length} exceeds {max_bytes} bytes")
    decoder = ContentDecoder(response.headers.get("Content-Encoding"), cap)
    received = 0
    while chunk := response.read1(piece, decode_content=False):
        received += len(chunk)
        if received > max_bytes:
            raise BodyTooLarge(f"exceeds {max_bytes} bytes")
        decoder.feed(chunk)
        if total_timeout is not None and time.monotonic() - started > total_timeout:
            raise BodyFailed(f"total timeout: body not received within {total_timeout:.0f}s")
    return decoder.finish()
