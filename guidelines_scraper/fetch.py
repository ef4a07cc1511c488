"""A polite, defensive HTTP fetcher for the guideline crawler, over the project's one HTTP client
(:class:`gap_replay.core.http.HttpClient`: urllib3, with urllib3's ``Retry`` for the retries).

What it guarantees:

- robots.txt obeyed as RFC 9309 and the major crawlers read it (protego, Scrapy's parser: ``*`` and
  ``$`` wildcards, the longest matching rule wins between ``Allow`` and ``Disallow``, the groups
  naming our product token merged, else ``*``), including ``Crawl-delay``/``Request-rate``; failures
  as RFC 9309 says: a 4xx robots.txt means "no rules", a 5xx or unreachable one means "disallow
  everything" for that site; its ``Sitemap:`` lines are offered to discovery (:meth:`Fetcher.sitemaps`);
- a minimum delay between two requests to the same host (the larger of ``min_delay`` and the
  site's crawl delay), measured from the end of the previous request;
- connect, read and total timeouts; retries (the client's: urllib3's ``Retry``, exponential backoff
  with jitter, ``Retry-After`` honoured) on timeouts, connection errors, 429 and 5xx, each attempt
  also waiting its turn for the host; no retry on other 4xx;
- a cap on the bytes read from the wire (streamed, aborted past the cap) and on the decompressed
  size (gzip/deflate are decoded here, as the body arrives, with a cap: no decompression bombs; a
  truncated or corrupt stream is an error). A body over either cap is a final answer (``response
  too large: ...``, with its status), recorded once and never retried, however slowly it arrives:
  the caps are checked on each piece read, before any timeout is judged;
- redirects followed by hand, at most ``max_redirects``, only to http(s) URLs on the allowed
  hosts, each hop checked against robots.txt; a loop is reported as such at its first repeat;
- conditional requests on demand (``headers=`` with ``If-None-Match``/``If-Modified-Since``): a
  ``304 Not Modified`` comes back as status 304 with an empty body and no error;
- URL normalisation (:func:`normalize_url`, mostly w3lib's ``canonicalize_url``) so that each URL
  has one spelling.

Nothing raises for network problems: every outcome is a :class:`FetchResult`, with ``error`` set
when no usable response was obtained. Time is injectable (``clock``/``sleep``/``now``) so tests run
without waiting.

A *mirror* (:class:`Mirror`) maps canonical site roots (``https://www.who.int``) to the base URL
actually fetched (``http://127.0.0.1:8123/who``): requests go to the mirror, but every URL the
fetcher reports, checks against robots.txt or against the allowed hosts is the canonical one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit, urlunsplit

import urllib3
from protego import Protego
from w3lib.url import canonicalize_url

from gap_replay.core.http import BodyTooLarge, ContentDecoder, HttpClient, RequestFailed, UnusableBody, read_capped

DEFAULT_USER_AGENT = "gap-replay/0.1 (clinical-guideline research crawler; polite, obeys robots.txt)"
_ACCEPT = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,application/pdf;q=0.8,*/*;q=0.5",
    "Accept-Encoding": "gzip, deflate",  # decoded here, with a cap (read_capped)
    "Accept-Language": "en",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_ROBOTS_MAX_BYTES = 512 * 1024


# -- URLs -------------------------------------------------------------------------------------------

def normalize_url(url: str, base: str | None = None) -> str:
    """Canonical spelling of an http(s) `url` (resolved against `base` when given): one page, one URL.

    w3lib's ``canonicalize_url`` does the most: lower-case scheme and host, empty path -> ``/``, dot
    segments resolved, percent-escapes normalised (unreserved characters unescaped, the others in
    upper case, non-ASCII as UTF-8), query arguments sorted, fragment and surrounding whitespace
    dropped. It keeps what a crawl must not tell apart, so this drops it too: the default port,
    user info, a trailing dot on the host. Other schemes (``mailto:``, ``javascript:``) come back as
    they are. Raises ``ValueError`` for a URL that cannot be parsed (e.g. a bad port).
    """
    url = url.strip()
    if base is not None:
        url = urljoin(base, url)
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return url
    parts = urlsplit(canonicalize_url(url))
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError(f"URL has no host: {url!r}")
    port = parts.port  # raises ValueError when not a number / out of range
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path, parts.query, ""))


def host_of(url_or_host: str) -> str:
    """The lower-cased host name of a URL (or of a bare ``host[:port]``)."""
    text = url_or_host.strip()
    if "://" not in text:
        text = "//" + text
    try:
        return (urlsplit(text).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def host_allowed(url_or_host: str, allowed_hosts: Iterable[str]) -> bool:
    """True when the host is listed; ``.example.org`` or ``*.example.org`` also admit subdomains."""
    host = host_of(url_or_host)
    if not host:
        return False
    for entry in allowed_hosts:
        entry = entry.strip().lower()
        if entry.startswith("*."):
            entry = entry[1:]
        if entry.startswith("."):
            if host == entry[1:] or host.endswith(entry):
                return True
        elif host == entry:
            return True
    return False


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Mirror:
    """Prefix mapping between canonical site roots and the base URLs actually fetched."""

    def __init__(self, mapping: Mapping[str, str] | None = None):
        pairs = []
        for canonical, actual in (mapping or {}).items():
            pairs.append((normalize_url(canonical).rstrip("/"), normalize_url(actual).rstrip("/")))
        self._by_canonical = sorted(pairs, key=lambda p: len(p[0]), reverse=True)
        self._by_actual = sorted(pairs, key=lambda p: len(p[1]), reverse=True)

    def __bool__(self) -> bool:
        return bool(self._by_canonical)

    @staticmethod
    def _swap(url: str, prefix: str, replacement: str) -> str | None:
        if url == prefix or url.startswith(prefix + "/") or url.startswith(prefix + "?"):
            return replacement + url[len(prefix):]
        return None

    def to_actual(self, url: str) -> str:
        """The URL to request for canonical `url` (unchanged when no mirror covers it)."""
        for canonical, actual in self._by_canonical:
            swapped = self._swap(url, canonical, actual)
            if swapped is not None:
                return swapped
        return url

    def to_canonical(self, url: str) -> str:
        """The canonical URL for a fetched `url` (unchanged when it is under no mirror)."""
        for canonical, actual in self._by_actual:
            swapped = self._swap(url, actual, canonical)
            if swapped is not None:
                return normalize_url(swapped)
        return url


# -- results ------------------------------------------------------------------------------------------

@dataclass
class FetchResult:
    """The outcome of one fetch. ``url``/``final_url`` are canonical; ``body`` is decoded
    (Content-Encoding removed) and None when nothing usable was read."""

    url: str
    final_url: str
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    error: str | None = None
    fetched_at: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class _Response:
    status: int | None
    headers: dict[str, str]
    body: bytes | None
    error: str | None = None


@dataclass
class _RobotsRules:
    parser: Protego | None  # None: allow everything
    disallow_all: bool = False
    delay: float | None = None
    reason: str = ""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds: sorts chronologically as text (the latest record wins)."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def decode_content(raw: bytes, content_encoding: str | None, cap: int) -> bytes:
    """Undo a Content-Encoding (gzip, deflate, identity) with a cap on the decoded size: the shared
    :class:`~gap_replay.core.http.ContentDecoder` (raises its ``BodyTooLarge``/``UnusableBody``)."""
    decoder = ContentDecoder(content_encoding, cap)
    decoder.feed(raw)
    return decoder.finish()


# -- the fetcher -------------------------------------------------------------------------------------

class Fetcher:
    """Polite HTTP GETs. One instance per crawl (it holds the robots cache and per-host timers).

    Not thread-safe: the crawler fetches sequentially, which is also what politeness asks for.
    """

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        min_delay: float = 1.0,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        total_timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
        jitter: float = 0.5,
        max_retry_after: float = 300.0,
        max_bytes: int = 50 * 1024 * 1024,
        max_decompressed_bytes: int = 200 * 1024 * 1024,
        max_redirects: int = 5,
        obey_robots: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = _utc_now,
    ):
        self.user_agent = user_agent
        # robots.txt groups are matched against the product token only ("gap-replay"), as RFC 9309
        # says: words of the comment ("crawler", "robots") must not pick another bot's group.
        self._robots_agent = user_agent.split("/", 1)[0].strip()
        self.min_delay = float(min_delay)
        self.total_timeout = float(total_timeout)
        self.max_bytes = int(max_bytes)
        self.max_decompressed_bytes = int(max_decompressed_bytes)
        self.max_redirects = int(max_redirects)
        self.obey_robots = obey_robots
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self.http = HttpClient(user_agent=user_agent, retries=max_retries, backoff=backoff, backoff_max=backoff_max,
                               jitter=jitter, max_retry_after=max_retry_after, sleep=sleep,
                               timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout))
        self._last_request: dict[str, float] = {}
        self._robots: dict[str, _RobotsRules] = {}
        self._robots_log: list[FetchResult] = []

    @property
    def requests_made(self) -> int:
        return self.http.requests_made

    # -- public ----------------------------------------------------------------------------------

    def fetch(self, url: str, *, allowed_hosts: Iterable[str] | None = None,
              mirror: Mirror | Mapping[str, str] | None = None,
              headers: Mapping[str, str] | None = None) -> FetchResult:
        """GET `url` (canonical) politely; never raises for network problems.

        `headers` are sent on the first request only (not on redirect hops): e.g. the
        ``If-None-Match``/``If-Modified-Since`` of a recrawl, answered ``304`` (``status`` 304, no
        body, no error) when the page did not change."""
        mirror = mirror if isinstance(mirror, Mirror) else Mirror(mirror)
        allowed = tuple(allowed_hosts) if allowed_hosts is not None else None
        return self._fetch(url, allowed, mirror, check_robots=self.obey_robots, extra_headers=headers)

    def robots_allowed(self, url: str, *, allowed_hosts: Iterable[str] | None = None,
                       mirror: Mirror | Mapping[str, str] | None = None) -> bool:
        """Whether robots.txt lets us fetch canonical `url` (fetches robots.txt once per site)."""
        mirror = mirror if isinstance(mirror, Mirror) else Mirror(mirror)
        allowed = tuple(allowed_hosts) if allowed_hosts is not None else None
        return self._robots_check(normalize_url(url), allowed, mirror) is None

    def sitemaps(self, url: str, *, allowed_hosts: Iterable[str] | None = None,
                 mirror: Mirror | Mapping[str, str] | None = None) -> list[str]:
        """The sitemaps that the robots.txt of canonical `url`'s site names (its ``Sitemap:`` lines),
        canonical, deduplicated, those outside `allowed_hosts` left out (fetches robots.txt once per site,
        also with ``obey_robots`` off: reading where a site lists its pages obeys nothing)."""
        mirror = mirror if isinstance(mirror, Mirror) else Mirror(mirror)
        allowed = tuple(allowed_hosts) if allowed_hosts is not None else None
        robots_url = _origin(normalize_url(url)) + "/robots.txt"
        if allowed is not None and not host_allowed(robots_url, allowed):
            return []
        parser = self._robots_rules(robots_url, allowed, mirror).parser
        found: list[str] = []
        for named in parser.sitemaps if parser is not None else ():
            try:
                # Named as the site's own (canonical) URLs; a relative one is read against robots.txt,
                # one naming the mirror itself is mapped back.
                sitemap = mirror.to_canonical(normalize_url(named, base=robots_url))
            except ValueError:
                continue
            if urlsplit(sitemap).scheme not in _DEFAULT_PORTS or sitemap in found:
                continue
            if allowed is None or host_allowed(sitemap, allowed):
                found.append(sitemap)
        return found

    def remember_robots(self, result: FetchResult) -> None:
        """Take a robots.txt answer fetched before (by an earlier attempt of the same crawl, read back
        from the raw store) as this fetcher's own: its site's robots.txt is not fetched again."""
        self._robots[_origin(result.url)] = self._rules_from(result)

    def requested_before(self, url: str, when: datetime) -> None:
        """Note that a request to canonical `url`'s site ended at `when` (an earlier attempt's, read
        back from the raw store): this fetcher's first request there waits out the site's delay from it."""
        elapsed = max(0.0, (self._now() - when).total_seconds())
        key = _origin(url)
        self._last_request[key] = max(self._last_request.get(key, float("-inf")), self._clock() - elapsed)

    def take_robots_results(self) -> list[FetchResult]:
        """The robots.txt fetches made since the last call (the crawler stores them)."""
        taken, self._robots_log = self._robots_log, []
        return taken

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------

    def _result(self, url: str, final_url: str, status: int | None = None, headers: dict | None = None,
                body: bytes | None = None, error: str | None = None) -> FetchResult:
        return FetchResult(url=url, final_url=final_url, status=status, headers=headers or {}, body=body,
                           error=error, fetched_at=_iso(self._now()))

    def _fetch(self, url: str, allowed: tuple[str, ...] | None, mirror: Mirror, *,
               check_robots: bool, extra_headers: Mapping[str, str] | None = None) -> FetchResult:
        try:
            canonical = normalize_url(url)
        except ValueError as exc:
            return self._result(url, url, error=f"invalid URL: {exc}")
        scheme = urlsplit(canonical).scheme
        if scheme not in _DEFAULT_PORTS:
            return self._result(canonical, canonical, error=f"unsupported URL scheme {scheme!r} (only http/https)")
        if allowed is not None and not host_allowed(canonical, allowed):
            return self._result(canonical, canonical, error=f"host {host_of(canonical)!r} is not in allowed_hosts")
        current = canonical
        redirects = 0
        chain = [canonical]
        while True:
            if check_robots:
                refusal = self._robots_check(current, allowed, mirror)
                if refusal is not None:
                    return self._result(canonical, current, error=refusal)
            actual = mirror.to_actual(current)
            response = self._request(current, actual, extra_headers if redirects == 0 else None)
            if response.error is not None:
                return self._result(canonical, current, response.status, response.headers, response.body,
                                    response.error)
            status = response.status
            if status in _REDIRECT_STATUSES:
                location = response.headers.get("location")
                if not location:
                    return self._result(canonical, current, status, response.headers, None,
                                        f"HTTP {status} redirect without a Location header")
                redirects += 1
                if redirects > self.max_redirects:
                    return self._result(canonical, current, status, response.headers, None,
                                        f"too many redirects (more than {self.max_redirects})")
                try:
                    target = mirror.to_canonical(normalize_url(location, base=actual))
                except ValueError as exc:
                    return self._result(canonical, current, status, response.headers, None,
                                        f"invalid redirect location {location!r}: {exc}")
                target_scheme = urlsplit(target).scheme
                if target_scheme not in _DEFAULT_PORTS:
                    return self._result(canonical, current, status, response.headers, None,
                                        f"redirect to unsupported scheme refused: {target}")
                if allowed is not None and not host_allowed(target, allowed):
                    return self._result(canonical, current, status, response.headers, None,
                                        f"redirect to a host outside allowed_hosts refused: {target}")
                if target in chain:
                    return self._result(canonical, current, status, response.headers, None,
                                        "redirect loop: " + " -> ".join(chain[chain.index(target):] + [target]))
                chain.append(target)
                current = target
                continue
            return self._result(canonical, current, status, response.headers, response.body, None)

    def _host_delay(self, key: str) -> float:
        rules = self._robots.get(key) if self.obey_robots else None
        delay = rules.delay if rules is not None and rules.delay is not None else 0.0
        return max(self.min_delay, delay)

    @contextmanager
    def _turn(self, key: str) -> Iterator[None]:
        """Around each attempt on the host `key`: wait until its delay has passed since the end of the
        previous request to it, and mark the end of this one."""
        last = self._last_request.get(key)
        if last is not None:
            wait = last + self._host_delay(key) - self._clock()
            if wait > 0:
                self._sleep(wait)
        try:
            yield
        finally:
            self._last_request[key] = self._clock()

    def _request(self, canonical: str, actual: str, headers: Mapping[str, str] | None = None) -> _Response:
        """One logical GET of `actual` with the client's retries; politeness keyed on the canonical origin."""
        key = _origin(canonical)
        try:
            return self.http.get(actual, self._read, headers={**_ACCEPT, **(headers or {})},
                                 pace=lambda: self._turn(key))
        except RequestFailed as failure:
            return _Response(failure.status, failure.headers, None, failure.reason)

    def _read(self, response) -> _Response:
        """The answer, its body read within the caps. A body over a cap is a final answer (recorded,
        never retried): each piece is checked as it arrives (``read1``: what the socket has, not a
        fixed-size block that a stall could cut short) and decoded at once, so a bomb is refused by
        its first bytes past the cap, before a stall, a read timeout or the total timeout can turn
        it into a failed read, which the client retries. A body too slow in total is worth a retry.
        The reading is the project's one capped reader, :func:`~gap_replay.core.http.read_capped`."""
        status = response.status
        headers = {k.lower(): v for k, v in response.headers.items()}
        if status in _REDIRECT_STATUSES:
            return _Response(status, headers, None)
        if status == 304:
            return _Response(status, headers, b"")
        try:
            body = read_capped(response, self.max_bytes, self.max_decompressed_bytes, total_timeout=self.total_timeout)
        except BodyTooLarge as exc:
            return _Response(status, headers, None, f"response too large: {exc.reason}")
        except UnusableBody as exc:  # corrupt, or a coding not undone here (we ask only for gzip, deflate)
            return _Response(status, headers, None, exc.reason)
        return _Response(status, headers, body)

    # -- robots.txt ------------------------------------------------------------------------------

    def _robots_check(self, canonical: str, allowed: tuple[str, ...] | None, mirror: Mirror) -> str | None:
        """None when allowed, else the refusal message."""
        rules = self._robots_rules(canonical, allowed, mirror)
        if rules.disallow_all:
            return rules.reason
        if rules.parser is not None and not rules.parser.can_fetch(canonical, self._robots_agent):
            return "disallowed by robots.txt"
        return None

    def _robots_rules(self, canonical: str, allowed: tuple[str, ...] | None, mirror: Mirror) -> _RobotsRules:
        key = _origin(canonical)
        rules = self._robots.get(key)
        if rules is not None:
            return rules
        robots_url = key + "/robots.txt"
        result = self._fetch(robots_url, allowed, mirror, check_robots=False)
        self._robots_log.append(result)
        rules = self._robots[key] = self._rules_from(result)
        return rules

    def _rules_from(self, result: FetchResult) -> _RobotsRules:
        """The rules a robots.txt answer sets (RFC 9309's reading of its failures too)."""
        status = result.status
        if result.error is None and status is not None and 200 <= status < 300 and result.body is not None:
            parser = Protego.parse(result.body[:_ROBOTS_MAX_BYTES].decode("utf-8", errors="replace"))
            delay: float | None = None
            crawl_delay = parser.crawl_delay(self._robots_agent)
            if crawl_delay is not None:
                delay = float(crawl_delay)
            # A rate limited to hours of the day (``1/10s 0900-1700``) is kept all day: the slower pace.
            rate = parser.request_rate(self._robots_agent)
            if rate is not None and rate.requests > 0:
                delay = max(delay or 0.0, rate.seconds / rate.requests)
            rules = _RobotsRules(parser, delay=delay)
        elif status is not None and 400 <= status < 500:
            rules = _RobotsRules(None, reason=f"robots.txt HTTP {status}: no rules")
        elif status is not None and status in _REDIRECT_STATUSES:
            # Unfollowable redirects: RFC 9309 lets crawlers treat robots.txt as unavailable.
            rules = _RobotsRules(None, reason=f"robots.txt redirect not followed: {result.error}")
        else:
            why = result.error or f"HTTP {status}"
            # RFC 9309: an unreachable robots.txt means "assume complete disallow" (for now: a
            # later crawl retries, since the message does not say "disallowed by robots.txt").
            rules = _RobotsRules(None, disallow_all=True,
                                 reason=f"robots.txt unreachable, site not crawled: {why}")
        return rules
