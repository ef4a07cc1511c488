from __future__ import annotations

import gzip
import socket
import time
import zlib
from email.utils import formatdate

import pytest

from gap_replay.guidelines_scraper.crawl import crawl
from gap_replay.guidelines_scraper.fetch import Mirror, decode_content, host_allowed, normalize_url
from gap_replay.guidelines_scraper.raw_store import RawStore
from gap_replay.guidelines_scraper.sources import parse_sources

from .conftest import Reply, html

ROBOTS = {"Content-Type": "text/plain"}


# -- URL normalisation -------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("HTTP://WWW.Example.ORG", "http://www.example.org/"),
    ("https://www.example.org:443/a#frag", "https://www.example.org/a"),
    ("http://www.example.org:80/a/./b/../c?q=1#x", "http://www.example.org/a/c?q=1"),
    ("http://www.example.org:8080/a b", "http://www.example.org:8080/a%20b"),
    ("https://user:pw@Example.org/x", "https://example.org/x"),
    ("  https://example.org/\ta\n ", "https://example.org/a"),
    ("https://example.org/index.php/Hypertension_in_adults:_x", "https://example.org/index.php/Hypertension_in_adults:_x"),
    # percent-escapes: unreserved characters unescaped, the others upper-case, non-ASCII as UTF-8
    ("https://example.org/%7Efoo", "https://example.org/~foo"),
    ("https://example.org/a%2fb%c3%a9", "https://example.org/a%2Fb%C3%A9"),
    ("https://example.org/caf\u00e9?q=\u00e9", "https://example.org/caf%C3%A9?q=%C3%A9"),
    # query arguments sorted (by key, then value); spaces in the query one way
    ("https://example.org/s?b=2&a=1&a=0", "https://example.org/s?a=0&a=1&b=2"),
    ("https://example.org/s?q=a%20b&r=c+d", "https://example.org/s?q=a+b&r=c+d"),
    ("https://example.org/s?q=a%26b", "https://example.org/s?q=a%26b"),  # an escaped & stays data
    # fragments dropped, also after a query
    ("https://example.org/s?x=1#section-2", "https://example.org/s?x=1"),
    ("https://example.org/#top", "https://example.org/"),
    ("https://Example.org.:8443/x", "https://example.org:8443/x"),
])
def test_normalize_url(raw, expected):
    assert normalize_url(raw) == expected


def test_spellings_of_one_page_normalise_alike():
    spellings = ["https://www.example.org/g?id=7&lang=en#s1", "HTTPS://WWW.EXAMPLE.ORG:443/g?lang=en&id=7",
                 "https://www.example.org/x/../g?lang=%65n&id=7", "https://user@www.example.org/./g?id=7&lang=en#s2"]
    assert {normalize_url(url) for url in spellings} == {"https://www.example.org/g?id=7&lang=en"}
    assert normalize_url("https://example.org/a%2Fb") != normalize_url("https://example.org/a/b")  # %2F is data


def test_normalize_url_relative_and_errors():
    assert normalize_url("../b?x=1#y", base="https://example.org/a/c/d") == "https://example.org/a/b?x=1"
    assert normalize_url("//cdn.example.org/x", base="https://example.org/") == "https://cdn.example.org/x"
    assert normalize_url("mailto:someone@example.org").startswith("mailto:")
    with pytest.raises(ValueError):
        normalize_url("http://example.org:99999/")


def test_host_allowed_and_mirror():
    assert host_allowed("https://www.who.int/x", ["www.who.int"])
    assert not host_allowed("https://evil.who.int.example.com/", ["www.who.int"])
    assert host_allowed("https://iris.who.int/", [".who.int"]) and host_allowed("https://who.int/", ["*.who.int"])
    assert not host_allowed("https://notwho.int/", [".who.int"])
    mirror = Mirror({"https://www.who.int": "http://127.0.0.1:9/who/"})
    assert mirror.to_actual("https://www.who.int/a?b=1") == "http://127.0.0.1:9/who/a?b=1"
    assert mirror.to_actual("https://www.who.intruder.org/a") == "https://www.who.intruder.org/a"
    assert mirror.to_canonical("http://127.0.0.1:9/who/a/") == "https://www.who.int/a/"
    assert mirror.to_canonical("http://127.0.0.1:9/whoever") == "http://127.0.0.1:9/whoever"


def test_decode_content_caps():
    data = b"guideline " * 100
    assert decode_content(gzip.compress(data), "gzip", 10_000) == data
    with pytest.raises(Exception, match="exceeds"):
        decode_content(gzip.compress(b"\0" * 1_000_000), "gzip", 50_000)


# -- robots.txt ----------------------------------------------------------------------------------

def test_robots_disallow_is_obeyed(server, make_fetcher):
    server.route("/robots.txt", Reply(200, "User-agent: *\nDisallow: /private/\n", ROBOTS))
    server.route("/private/page", html("secret"))
    server.route("/public", html("public"))
    fetcher = make_fetcher()
    blocked = fetcher.fetch(f"{server.base}/private/page")
    assert blocked.error == "disallowed by robots.txt" and blocked.status is None and blocked.body is None
    assert fetcher.fetch(f"{server.base}/public").ok
    assert "/private/page" not in server.paths()
    assert server.paths().count("/robots.txt") == 1  # cached per site
    robots = fetcher.take_robots_results()
    assert [r.url for r in robots] == [f"{server.base}/robots.txt"] and fetcher.take_robots_results() == []


def test_robots_specific_agent_group(server, make_fetcher):
    server.route("/robots.txt", Reply(200, "User-agent: gap-replay\nDisallow: /\n\nUser-agent: *\nAllow: /\n", ROBOTS))
    server.route("/a", html("a"))
    assert make_fetcher().fetch(f"{server.base}/a").error == "disallowed by robots.txt"
    assert make_fetcher(user_agent="other-bot/1.0").fetch(f"{server.base}/a").ok


def test_crawl_delay_is_honoured(server, make_fetcher, clock):
    server.route("/robots.txt", Reply(200, "User-agent: *\nCrawl-delay: 2\n", ROBOTS))
    for name in ("a", "b", "c"):
        server.route(f"/{name}", html(name))
    fetcher = make_fetcher(min_delay=0.5)
    for name in ("a", "b", "c"):
        assert fetcher.fetch(f"{server.base}/{name}").ok
    assert clock.sleeps == [2.0, 2.0, 2.0]  # robots.txt, then a, b, c each 2 s apart


def test_min_delay_is_per_host(server, make_fetcher, clock):
    server.route("/a", html("a"))
    server.route("/b", html("b"))
    fetcher = make_fetcher(min_delay=1.5)
    fetcher.fetch(f"{server.base}/a")                         # robots + page on 127.0.0.1
    fetcher.fetch(f"http://localhost:{server.port}/a")        # another host: robots + page
    fetcher.fetch(f"{server.base}/b")
    # 1.5 s before each page (after its site's robots.txt); none before /b: the 1.5 s spent on
    # localhost already separate it from the previous request to 127.0.0.1.
    assert clock.sleeps == [1.5, 1.5]


def test_robots_404_allows_and_5xx_disallows(server, make_fetcher):
    server.route("/a", html("a"))
    assert make_fetcher().fetch(f"{server.base}/a").ok  # robots.txt is 404 (unrouted)
    server.route("/robots.txt", Reply(503, "down"))
    result = make_fetcher(max_retries=1).fetch(f"{server.base}/a")
    assert result.error == "robots.txt unreachable, site not crawled: gave up after 2 attempts: HTTP 503"
    assert server.paths().count("/a") == 1  # only the first fetcher's request


def test_robots_can_be_turned_off(server, make_fetcher):
    server.route("/robots.txt", Reply(200, "User-agent: *\nDisallow: /\n", ROBOTS))
    server.route("/a", html("a"))
    assert make_fetcher(obey_robots=False).fetch(f"{server.base}/a").ok
    assert "/robots.txt" not in server.paths()


# Rules the standard library's urllib.robotparser reads wrongly (it knows neither wildcards nor the
# longest match, takes the first of two groups for one agent, and no "1/5s" rate), read as RFC 9309 says.
PDF_END = "User-agent: *\nDisallow: /*.pdf$\n"
CHAPTERS = "User-agent: *\nDisallow: /guidance/\nAllow: /guidance/*/chapter/\n"
PRIVATE_PREFIX = "User-agent: *\nDisallow: /private*\n"
OUR_GROUPS = ("User-agent: gap-replay\nDisallow: /drafts/\n\nUser-agent: *\nDisallow: /\n\n"
              "User-agent: gap-replay\nDisallow: /archive/\n")


@pytest.mark.parametrize("robots, path, allowed", [
    (PDF_END, "/a/b.pdf", False),
    (PDF_END, "/a/b.pdf?x=1", True),        # "$" ends the whole path and query
    (PDF_END, "/a/b.pdf/page", True),
    (PDF_END, "/a/b.html", True),
    (CHAPTERS, "/guidance/ng1/chapter/recommendations", True),  # the longer Allow wins
    (CHAPTERS, "/guidance/ng1/resources", False),
    (CHAPTERS.replace("Disallow: /guidance/\nAllow: /guidance/*/chapter/", "Allow: /guidance/*/chapter/\n"
                      "Disallow: /guidance/"), "/guidance/ng1/chapter/recommendations", True),  # order does not matter
    ("User-agent: *\nDisallow: /page\nAllow: /page\n", "/page", True),  # a tie goes to Allow
    (PRIVATE_PREFIX, "/private", False),
    (PRIVATE_PREFIX, "/private-notes.html", False),
    (PRIVATE_PREFIX, "/private/x", False),
    (PRIVATE_PREFIX, "/public/private", True),
    (OUR_GROUPS, "/guides/a", True),        # our group, not "*"
    (OUR_GROUPS, "/drafts/x", False),
    (OUR_GROUPS, "/archive/y", False),      # both groups naming us count
    ("User-agent: crawler\nDisallow: /\n", "/a", True),  # a word of our user agent's comment is not our name
])
def test_robots_rules_as_rfc_9309_reads_them(server, make_fetcher, robots, path, allowed):
    server.route("/robots.txt", Reply(200, robots, ROBOTS))
    server.route(path, html("page"))
    result = make_fetcher().fetch(f"{server.base}{path}")
    if allowed:
        assert result.ok and server.paths() == ["/robots.txt", path]
    else:
        assert result.error == "disallowed by robots.txt" and server.paths() == ["/robots.txt"]


@pytest.mark.parametrize("robots, user_agent, pause", [
    ("User-agent: gap-replay\nRequest-rate: 1/5s\n\nUser-agent: *\nCrawl-delay: 1\n", None, 5.0),
    ("User-agent: gap-replay\nRequest-rate: 1/5s\n\nUser-agent: *\nCrawl-delay: 1\n", "other-bot/2", 1.0),
    ("User-agent: *\nRequest-rate: 3/1m\nCrawl-delay: 2\n", None, 20.0),  # the slower of the two
    ("User-agent: *\nRequest-rate: 1/30s 0900-1700\n", None, 30.0),      # kept outside those hours too
])
def test_request_rate_is_honoured(server, make_fetcher, clock, robots, user_agent, pause):
    server.route("/robots.txt", Reply(200, robots, ROBOTS))
    server.route("/a", html("a"))
    server.route("/b", html("b"))
    fetcher = make_fetcher(min_delay=0.5, **({"user_agent": user_agent} if user_agent else {}))
    assert fetcher.fetch(f"{server.base}/a").ok and fetcher.fetch(f"{server.base}/b").ok
    assert clock.sleeps == [pause, pause]  # robots.txt, then a and b each `pause` apart


def test_sitemaps_named_by_robots_txt(server, make_fetcher):
    server.route("/site/robots.txt", Reply(200, (
        "User-agent: *\nDisallow: /hidden\n"
        "Sitemap: https://www.example.org/sitemaps/guides.xml.gz\n"
        "Sitemap: /sitemap.xml\n"                                   # relative: read against robots.txt
        "Sitemap: https://WWW.example.org/sitemaps/guides.xml.gz\n"  # the first one again
        "Sitemap: https://elsewhere.example.net/sitemap.xml\n"       # outside allowed_hosts
        f"Sitemap: {server.base}/site/news.xml\n"), ROBOTS))         # the mirror's own spelling
    fetcher = make_fetcher()
    mirror = {"https://www.example.org": f"{server.base}/site"}
    named = fetcher.sitemaps("https://www.example.org/any/page", allowed_hosts=["www.example.org"], mirror=mirror)
    assert named == ["https://www.example.org/sitemaps/guides.xml.gz", "https://www.example.org/sitemap.xml",
                     "https://www.example.org/news.xml"]
    assert fetcher.fetch("https://www.example.org/hidden", allowed_hosts=["www.example.org"],
                         mirror=mirror).error == "disallowed by robots.txt"
    assert server.paths() == ["/site/robots.txt"]  # read once, for both
    assert [r.url for r in fetcher.take_robots_results()] == ["https://www.example.org/robots.txt"]
    assert fetcher.sitemaps("https://www.example.org/", allowed_hosts=["other.example.net"], mirror=mirror) == []


def test_sitemaps_with_robots_off_read_robots_txt_and_obey_nothing(server, make_fetcher, clock):
    server.route("/robots.txt", Reply(200, "User-agent: *\nDisallow: /\nCrawl-delay: 9\nSitemap: /s.xml\n", ROBOTS))
    server.route("/a", html("a"))
    fetcher = make_fetcher(obey_robots=False)
    assert fetcher.sitemaps(f"{server.base}/") == [f"{server.base}/s.xml"]
    assert fetcher.fetch(f"{server.base}/a").ok and clock.sleeps == []


def test_no_sitemaps_without_a_readable_robots_txt(server, make_fetcher):
    assert make_fetcher().sitemaps(f"{server.base}/a") == []  # robots.txt 404
    server.route("/robots.txt", Reply(503, "down"))
    assert make_fetcher(max_retries=0).sitemaps(f"{server.base}/a") == []


# -- retries ---------------------------------------------------------------------------------------

def test_retry_on_503_then_success(server, make_fetcher, clock):
    server.route("/flaky", Reply(503, "busy"), Reply(503, "busy"), Reply(503, "busy"), html("finally"))
    result = make_fetcher(max_retries=3, backoff=1.0, jitter=0.5).fetch(f"{server.base}/flaky")
    assert result.ok and b"finally" in result.body and result.error is None
    assert server.paths().count("/flaky") == 4
    # urllib3's backoff: the first retry at once, then backoff * 2**(n-1) plus up to `jitter` seconds
    assert len(clock.sleeps) == 2
    assert 2.0 <= clock.sleeps[0] <= 2.5 and 4.0 <= clock.sleeps[1] <= 4.5


def test_429_honours_retry_after(server, make_fetcher, clock):
    server.route("/limited", Reply(429, "slow down", {"Retry-After": "7"}), html("ok"))
    result = make_fetcher().fetch(f"{server.base}/limited")
    assert result.ok and clock.sleeps == [7.0]


def test_503_honours_retry_after_as_seconds_and_as_http_date(server, make_fetcher, clock):
    in_a_minute = formatdate(time.time() + 60, usegmt=True)
    server.route("/busy", Reply(503, "busy", {"Retry-After": "12"}), Reply(503, "busy", {"Retry-After": in_a_minute}),
                 html("ok"))
    result = make_fetcher(max_retries=2).fetch(f"{server.base}/busy")
    assert result.ok and server.paths().count("/busy") == 3
    assert clock.sleeps[0] == 12 and 55 <= clock.sleeps[1] <= 60


def test_gives_up_after_max_retries(server, make_fetcher):
    server.route("/broken", Reply(500, "error"))
    result = make_fetcher(max_retries=2).fetch(f"{server.base}/broken")
    assert result.status == 500 and result.error == "gave up after 3 attempts: HTTP 500"
    assert server.paths().count("/broken") == 3
    server.route("/limited", Reply(429, "slow down"))
    result = make_fetcher(max_retries=0).fetch(f"{server.base}/limited")
    assert result.status == 429 and result.error == "HTTP 429" and server.paths().count("/limited") == 1


def test_no_retry_on_501(server, make_fetcher):
    server.route("/odd", Reply(501, "not implemented"))
    result = make_fetcher(max_retries=3).fetch(f"{server.base}/odd")
    assert result.status == 501 and result.error is None and server.paths().count("/odd") == 1


def test_no_retry_on_404(server, make_fetcher, clock):
    result = make_fetcher(max_retries=3).fetch(f"{server.base}/missing")
    assert result.status == 404 and result.error is None and not result.ok
    assert server.paths().count("/missing") == 1 and clock.sleeps == []


def test_read_timeout_is_retried_then_reported(server, make_fetcher):
    server.route("/slow", Reply(200, "late", {"Content-Type": "text/plain"}, delay=1.0, content_length=False))
    result = make_fetcher(read_timeout=0.2, max_retries=1).fetch(f"{server.base}/slow")
    assert result.status is None and result.body is None
    assert result.error.startswith("gave up after 2 attempts") and "timed out" in result.error.lower()
    assert server.paths().count("/slow") == 2


def test_connection_error_becomes_error(make_fetcher):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = make_fetcher(max_retries=1, obey_robots=False).fetch(f"http://127.0.0.1:{port}/x")
    assert result.status is None and result.error.startswith("gave up after 2 attempts: NewConnectionError")
    # With robots.txt on, the unreachable robots.txt is what gets reported (and nothing is fetched).
    result = make_fetcher(max_retries=0).fetch(f"http://127.0.0.1:{port}/x")
    assert result.status is None and result.error.startswith("robots.txt unreachable, site not crawled")


# -- size caps -------------------------------------------------------------------------------------

def test_size_cap_with_content_length(server, make_fetcher):
    server.route("/big", Reply(200, b"x" * 5000, {"Content-Type": "text/html"}))
    result = make_fetcher(max_bytes=1000).fetch(f"{server.base}/big")
    assert result.body is None and "too large" in result.error and result.status == 200


def test_size_cap_while_streaming(server, make_fetcher):
    server.route("/big", Reply(200, b"x" * 300_000, {"Content-Type": "text/html"}, content_length=False))
    result = make_fetcher(max_bytes=100_000).fetch(f"{server.base}/big")
    assert result.body is None and result.error == "response too large: exceeds 100000 bytes"


def test_gzip_is_decoded_and_bomb_refused(server, make_fetcher):
    page = b"<html><body>" + b"<p>Offer advice.</p>" * 50 + b"</body></html>"
    server.route("/gz", Reply(200, gzip.compress(page), {"Content-Type": "text/html", "Content-Encoding": "gzip"}))
    server.route("/bomb", Reply(200, gzip.compress(b"\0" * 2_000_000),
                                {"Content-Type": "text/html", "Content-Encoding": "gzip"}))
    fetcher = make_fetcher(max_decompressed_bytes=100_000)
    assert fetcher.fetch(f"{server.base}/gz").body == page
    bomb = fetcher.fetch(f"{server.base}/bomb")
    assert bomb.body is None and "decompressed body exceeds 100000 bytes" in bomb.error
    assert server.requests[-1][1]["accept-encoding"] == "gzip, deflate"


# A throttled bomb: 50 MB of zeros, gzipped (~49 KB), sent 256 bytes at a time; after 4 KB (enough to
# inflate past the cap) the server goes silent until the client hangs up. A fetcher that reads fixed
# blocks, or inflates after the whole body, meets the silence first: a read timeout, retried.
BOMB = gzip.compress(b"\0" * 50_000_000)
THROTTLED = dict(piece=256, pause=0.002, stall_after=4096)


@pytest.mark.parametrize("reply, error", [
    (Reply(200, BOMB, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, **THROTTLED),
     "response too large: decompressed body exceeds 1000000 bytes"),
    (Reply(200, zlib.compress(b"\0" * 50_000_000), {"Content-Type": "text/html", "Content-Encoding": "deflate"},
           **THROTTLED), "response too large: decompressed body exceeds 1000000 bytes"),
    (Reply(200, BOMB, {"Content-Type": "application/gzip"}, content_length=False, **THROTTLED),
     "response too large: exceeds 2000 bytes"),  # a .gz file (no Content-Encoding): the wire cap
], ids=["gzip", "deflate", "gz-body"])
def test_a_capped_body_is_final_even_when_the_read_would_stall(server, make_fetcher, cpu_load, reply, error):
    server.route("/bomb", reply)
    fetcher = make_fetcher(obey_robots=False, read_timeout=2.0, max_retries=3, max_bytes=2000 if
                           "exceeds 2000" in error else 50_000_000, max_decompressed_bytes=1_000_000)
    result = fetcher.fetch(f"{server.base}/bomb")
    assert result.status == 200 and result.body is None and result.error.startswith(error), result.error
    assert server.paths() == ["/bomb"] and fetcher.requests_made == 1  # one request, no retry


def test_a_capped_body_is_stored_once_and_never_fetched_again(server, make_fetcher, cpu_load, tmp_path):
    server.route("/robots.txt", Reply(200, "User-agent: *\n", ROBOTS))
    small_bomb = gzip.compress(b"\0" * 5_000_000)  # ~5 KB on the wire, under the wire cap
    server.route("/bomb", Reply(200, small_bomb, {"Content-Type": "text/html", "Content-Encoding": "gzip"},
                                **THROTTLED))
    server.route("/big.gz", Reply(200, BOMB, {"Content-Type": "application/gzip"}, content_length=False,
                                  **{**THROTTLED, "stall_after": 8192}))
    canonical = "https://capped.example.org"
    source = parse_sources({"capped": dict(name="Capped", base_url=canonical, seeds=["/bomb", "/big.gz"],
                                           discovery="static")})["capped"]
    for _ in range(2):  # a second crawl finds both stored: a capped body is not a transient failure
        with RawStore(tmp_path) as store:
            crawl([source], store, fetcher=make_fetcher(read_timeout=2.0, max_retries=3, max_bytes=6000,
                                                        max_decompressed_bytes=1_000_000),
                  mirror={canonical: server.base})
    assert sorted(server.paths()) == ["/big.gz", "/bomb", "/robots.txt"]  # the second crawl fetched nothing
    records = {r["url"][len(canonical):]: r for r in RawStore(tmp_path).records(kinds=["article"])}
    assert records["/bomb"]["error"] == "response too large: decompressed body exceeds 1000000 bytes"
    assert records["/big.gz"]["error"] == "response too large: exceeds 6000 bytes"
    assert [r["status"] for r in records.values()] == [200, 200] and len(records) == 2


# -- redirects and schemes ---------------------------------------------------------------------------

def test_redirect_followed_within_allowed_hosts(server, make_fetcher):
    server.route("/old", Reply(301, "", {"Location": "/new"}))
    server.route("/new", html("moved here"))
    result = make_fetcher().fetch(f"{server.base}/old", allowed_hosts=["127.0.0.1"])
    assert result.ok and result.url == f"{server.base}/old" and result.final_url == f"{server.base}/new"


def test_redirect_to_foreign_host_refused(server, make_fetcher):
    server.route("/away", Reply(302, "", {"Location": f"http://localhost:{server.port}/landing"}))
    server.route("/landing", html("elsewhere"))
    result = make_fetcher().fetch(f"{server.base}/away", allowed_hosts=["127.0.0.1"])
    assert result.status == 302 and result.body is None
    assert "outside allowed_hosts" in result.error and "/landing" not in server.paths()


def test_redirect_limit(server, make_fetcher):
    for i in range(10):
        server.route(f"/loop{i}", Reply(302, "", {"Location": f"/loop{i + 1}"}))
    result = make_fetcher(max_redirects=3).fetch(f"{server.base}/loop0")
    assert result.error == "too many redirects (more than 3)"
    assert [p for p in server.paths() if p.startswith("/loop")] == ["/loop0", "/loop1", "/loop2", "/loop3"]


def test_redirect_target_checked_against_robots(server, make_fetcher):
    server.route("/robots.txt", Reply(200, "User-agent: *\nDisallow: /private/\n", ROBOTS))
    server.route("/go", Reply(302, "", {"Location": "/private/x"}))
    result = make_fetcher().fetch(f"{server.base}/go")
    assert result.error == "disallowed by robots.txt" and result.final_url == f"{server.base}/private/x"
    assert "/private/x" not in server.paths()


def test_only_http_and_https(server, make_fetcher):
    fetcher = make_fetcher()
    assert "unsupported URL scheme 'ftp'" in fetcher.fetch("ftp://127.0.0.1/file").error
    assert "unsupported URL scheme 'file'" in fetcher.fetch("file:///etc/passwd").error
    server.route("/to-ftp", Reply(302, "", {"Location": "ftp://127.0.0.1/x"}))
    assert "unsupported scheme" in fetcher.fetch(f"{server.base}/to-ftp").error


def test_host_outside_allowed_hosts_not_fetched(server, make_fetcher):
    result = make_fetcher().fetch(f"{server.base}/a", allowed_hosts=["www.example.org"])
    assert "not in allowed_hosts" in result.error and server.requests == []


def test_mirror_keeps_canonical_urls(server, make_fetcher):
    server.route("/site/robots.txt", Reply(200, "User-agent: *\nDisallow: /hidden\n", ROBOTS))
    server.route("/site/page", Reply(301, "", {"Location": "/site/page/"}))
    server.route("/site/page/", html("mirrored"))
    fetcher = make_fetcher()
    mirror = {"https://www.example.org": f"{server.base}/site"}
    result = fetcher.fetch("https://www.example.org/page", allowed_hosts=["www.example.org"], mirror=mirror)
    assert result.ok and b"mirrored" in result.body
    assert (result.url, result.final_url) == ("https://www.example.org/page", "https://www.example.org/page/")
    hidden = fetcher.fetch("https://www.example.org/hidden", allowed_hosts=["www.example.org"], mirror=mirror)
    assert hidden.error == "disallowed by robots.txt"
    assert server.paths() == ["/site/robots.txt", "/site/page", "/site/page/"]
    assert fetcher.take_robots_results()[0].url == "https://www.example.org/robots.txt"


def test_user_agent_and_fetched_at(server, make_fetcher):
    server.route("/a", html("a"))
    result = make_fetcher(user_agent="test-agent/9").fetch(f"{server.base}/a")
    assert server.requests[-1][1]["user-agent"] == "test-agent/9"
    assert result.fetched_at == "2024-03-01T12:00:00.000Z"
    assert result.headers["content-type"].startswith("text/html")
