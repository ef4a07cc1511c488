"""A hostile site: every way a server can misbehave, in one crawl. Every URL must end as fetched or
failed with a reason (in the raw store and in the extraction outcomes), and nothing may crash."""

from __future__ import annotations

import gzip

import pytest

from gap_replay.core.outcome import Drop
from gap_replay.guidelines_scraper.crawl import crawl
from gap_replay.guidelines_scraper.extract import deduplicate_titles, extract_document
from gap_replay.guidelines_scraper.raw_store import RawStore
from gap_replay.guidelines_scraper.sources import parse_sources

from .conftest import Reply

CANONICAL = "https://hostile.example.org"
HTML = {"Content-Type": "text/html; charset=utf-8"}
PARAGRAPH = ("Clinicians should assess every adult with suspected sepsis using a structured early warning score, "
             "start antibiotics within one hour when sepsis is likely, and reassess the patient regularly. ")


def page(title: str, body: str, head: str = "") -> str:
    return (f"<!DOCTYPE html><html><head>{head}<title>{title}</title></head><body><nav><a href='/'>Home</a></nav>"
            f"<article><h1>{title}</h1>{body}</article><footer>Fixture</footer></body></html>")


GOOD = page("Sepsis in adults", "<h2>Recognition</h2>" + f"<p>{PARAGRAPH * 3}</p>" * 2)
MALFORMED = ("<html><head><title>Malformed but readable</title><body><div><article><h1>Malformed but readable"
             "<h2>Assessment<p>" + PARAGRAPH * 4 + "<p>Second paragraph without closing tags " + PARAGRAPH * 2 +
             "</div></div></span><table><tr><td>cell<td>cell</table><li>stray item</ul>\x00\x01 trailing garbage <<>>")
CP1252 = page("Caf\u00e9 au lait spots \u2013 \u201cguidance\u201d",
              "<h2>Assessment</h2><p>" + PARAGRAPH * 4 + "Check for caf\u00e9-au-lait macules \u2013 six or more "
              "are significant \u2026</p>").encode("cp1252")
SJIS = page("\u9ad8\u8840\u5727\u30ac\u30a4\u30c9\u30e9\u30a4\u30f3 (hypertension guideline)",
            "<h2>\u8a3a\u65ad Diagnosis</h2><p>" + PARAGRAPH * 4 + "</p>",
            head='<meta charset="Shift_JIS">').encode("shift_jis")
DUP_SHORT = page("Asthma in Children", f"<h2>Treatment</h2><p>{PARAGRAPH * 3}</p>")
DUP_LONG = page("Asthma in children", f"<h2>Treatment</h2><p>{PARAGRAPH * 3}</p><p>Review inhaler technique at "
                                      "every visit and give every child a written asthma action plan.</p>")
CORRUPT_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\n\x00\xff garbage, no xref, no trailer"

# path -> (replies, expected raw-store outcome, expected extraction outcome)
#   raw outcome: an HTTP status (fetched) or a substring of the error; extraction: None (kept) or
#   (reason, substring of the detail)
CASES = {
    "/h/good": ([Reply(200, GOOD, HTML)], 200, None),
    "/h/server-error": ([Reply(500, "boom", HTML)], "gave up after 3 attempts: HTTP 500",
                        ("fetch_error", "500")),
    "/h/busy-then-ok": ([Reply(503, "busy", HTML), Reply(200, GOOD.replace("Sepsis in adults", "Sepsis review"), HTML)],
                        200, None),
    "/h/rate-limited": ([Reply(429, "slow down", {"Retry-After": "5"}),
                         Reply(200, GOOD.replace("Sepsis in adults", "Sepsis triage"), HTML)], 200, None),
    "/h/rate-limited-forever": ([Reply(429, "go away", {"Retry-After": "86400"})], "exceeds max_retry_after",
                                ("fetch_error", "429")),
    "/h/slow": ([Reply(200, GOOD, HTML, delay=1.5, content_length=False)], "timed out",
                ("fetch_error", "timed out")),
    "/h/loop-a": ([Reply(302, "", {"Location": "/h/loop-b"})], "redirect loop", ("fetch_error", "redirect loop")),
    "/h/loop-b": ([Reply(302, "", {"Location": "/h/loop-a"})], "redirect loop", ("fetch_error", "redirect loop")),
    "/h/elsewhere": ([Reply(301, "", {"Location": "https://elsewhere.example.net/landing"})],
                     "redirect to a host outside allowed_hosts refused", ("fetch_error", "outside allowed_hosts")),
    "/h/huge": ([Reply(200, b"<html>" + b"x" * 300_000, HTML, content_length=False)], "response too large",
                ("fetch_error", "response too large")),
    "/h/huge-declared": ([Reply(200, b"<html>" + b"x" * 300_000, HTML)], "Content-Length 300006 exceeds",
                         ("fetch_error", "too large")),
    "/h/bomb": ([Reply(200, gzip.compress(b" " * 5_000_000), {**HTML, "Content-Encoding": "gzip"})],
                "decompressed body exceeds", ("fetch_error", "decompressed body exceeds")),
    "/h/broken-gzip": ([Reply(200, b"\x1f\x8b\x08\x00garbage", {**HTML, "Content-Encoding": "gzip"})],
                       "corrupt gzip body", ("fetch_error", "corrupt gzip body")),
    "/h/malformed": ([Reply(200, MALFORMED, HTML)], 200, None),
    "/h/windows-1252": ([Reply(200, CP1252, {"Content-Type": "text/html; charset=windows-1252"})], 200, None),
    "/h/shift-jis": ([Reply(200, SJIS, {"Content-Type": "text/html"})], 200, None),
    "/h/mislabelled": ([Reply(200, CP1252.replace(b"spots", b"macules"), {"Content-Type": "text/html; charset=utf-8"})],
                       200, None),
    "/h/private/draft": ([Reply(200, GOOD, HTML)], "disallowed by robots.txt",
                         ("fetch_error", "disallowed by robots.txt")),
    "/h/dup-long": ([Reply(200, DUP_LONG, HTML)], 200, None),
    "/h/dup-short": ([Reply(200, DUP_SHORT, HTML)], 200, ("duplicate_title", "guideline:hostile:")),
    "/h/corrupt.pdf": ([Reply(200, CORRUPT_PDF, {"Content-Type": "application/pdf"})], 200,
                       ("extract_error", "unreadable PDF")),
    "/h/empty": ([Reply(200, b"", HTML)], 200, ("extract_error", "empty body")),
    "/h/binary": ([Reply(200, bytes(range(256)) * 40, {"Content-Type": "application/octet-stream"})], 200,
                  ("extract_error", "not HTML (application/octet-stream)")),
    "/h/gone": ([Reply(410, "gone", HTML)], 410, ("fetch_error", "410")),
    "/h/no-location": ([Reply(302, "", {})], "redirect without a Location header", ("fetch_error", "without a Location")),
    "/h/javascript-redirect": ([Reply(200, "<html><head><meta http-equiv='refresh' content='0;url=/h/good'>"
                                           "</head><body><script>location='/h/good'</script></body></html>", HTML)],
                               200, ("too_short", "0 words")),  # no selector match, no text on the page
}


@pytest.fixture
def hostile(server):
    server.route("/robots.txt", Reply(200, "User-agent: *\nDisallow: /h/private/\n", {"Content-Type": "text/plain"}))
    links = "".join(f'<li><a href="{path}">{path}</a></li>' for path in CASES)
    server.route("/index", Reply(200, f"<html><body><ul>{links}</ul>"
                                      f"<a href='mailto:x@example.org'>mail</a><a href='javascript:void(0)'>js</a>"
                                      f"<a href='ftp://hostile.example.org/file'>ftp</a></body></html>", HTML))
    for path, (replies, _, _) in CASES.items():
        server.route(path, *replies)
    return server


def test_every_url_ends_fetched_or_failed_with_a_reason(hostile, tmp_path, make_fetcher, clock):
    source = parse_sources({"hostile": dict(
        name="Hostile fixture", base_url=CANONICAL, seeds=["/index"], discovery="listing", link_pattern=r"/h/",
        min_words=50, content_selector="article")})["hostile"]
    fetcher = make_fetcher(read_timeout=0.3, max_retries=2, max_bytes=200_000, max_decompressed_bytes=1_000_000,
                           max_retry_after=60)
    store = RawStore(tmp_path)
    report = crawl([source], store, fetcher=fetcher, mirror={CANONICAL: hostile.base})
    store.close()

    rep = report.sources["hostile"]
    assert rep.discovered == len(CASES) and rep.fetched == len(CASES) and rep.listing_errors == 0
    records = {r["url"]: r for r in RawStore(tmp_path).records(kinds=["article"], latest=True)}
    assert set(records) == {CANONICAL + path for path in CASES}
    for path, (_, expected, _) in CASES.items():
        record = records[CANONICAL + path]
        if isinstance(expected, int):
            assert record["status"] == expected and record["error"] is None, (path, record["error"])
        else:
            assert record["error"] and expected in record["error"], (path, record["error"])
    assert "/h/private/draft" not in hostile.paths()                     # robots.txt obeyed
    assert "/landing" not in hostile.paths()                             # never left the allowed host
    assert hostile.paths().count("/h/bomb") == 1                         # a capped body is final: never retried
    assert 5.0 in clock.sleeps                                           # Retry-After honoured

    outcomes = deduplicate_titles(extract_document(r, source) for r in records.values())
    by_url = dict(zip(records, outcomes))
    for path, (_, _, expected) in CASES.items():
        outcome = by_url[CANONICAL + path]
        if expected is None:
            assert isinstance(outcome, dict), (path, outcome)
        else:
            reason, detail = expected
            assert isinstance(outcome, Drop) and outcome.reason == reason and detail in outcome.detail, (path, outcome)

    docs = {url[len(CANONICAL):]: doc for url, doc in by_url.items() if isinstance(doc, dict)}
    assert docs["/h/windows-1252"]["title"] == "Caf\u00e9 au lait spots \u2013 \u201cguidance\u201d"
    assert "caf\u00e9-au-lait macules \u2013 six or more are significant \u2026" in docs["/h/windows-1252"]["text"]
    assert docs["/h/mislabelled"]["title"] == "Caf\u00e9 au lait macules \u2013 \u201cguidance\u201d"  # utf-8 label
    assert docs["/h/shift-jis"]["title"] == "\u9ad8\u8840\u5727\u30ac\u30a4\u30c9\u30e9\u30a4\u30f3 (hypertension guideline)"
    assert "# \u8a3a\u65ad Diagnosis" in docs["/h/shift-jis"]["text"]
    assert "Second paragraph without closing tags" in docs["/h/malformed"]["text"]
    assert by_url[CANONICAL + "/h/dup-short"].detail == docs["/h/dup-long"]["id"]  # the longer one is kept
