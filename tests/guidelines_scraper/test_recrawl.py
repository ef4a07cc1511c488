"""A recrawl revalidates stored pages with conditional requests; a 304 keeps the stored body."""

from __future__ import annotations

import os
import shutil

from gap_replay.guidelines_scraper.crawl import crawl
from gap_replay.guidelines_scraper.extract import extract_document
from gap_replay.guidelines_scraper.fetch import Fetcher
from gap_replay.guidelines_scraper.local_site import host_mirror, serve_site
from gap_replay.guidelines_scraper.raw_store import RawStore
from gap_replay.guidelines_scraper.sources import load_sources

from .conftest import FIXTURES, Reply

NICE = "https://www.nice.org.uk"


def nice_crawl(site, store_path, **options):
    source = load_sources()["nice"]
    with RawStore(store_path) as store, Fetcher(min_delay=0, max_retries=0) as fetcher:
        report = crawl([source], store, fetcher=fetcher, mirror=host_mirror(site.base, [source]), **options)
    return source, report.sources["nice"]


def test_recrawl_sends_validators_and_keeps_bodies_on_304(tmp_path):
    root = tmp_path / "sites"
    shutil.copytree(FIXTURES / "sites" / "www.nice.org.uk", root / "www.nice.org.uk")
    chapter = root / "www.nice.org.uk" / "guidance" / "ng931" / "chapter" / "Recommendations"
    with serve_site(root) as site:
        source, first = nice_crawl(site, tmp_path / "raw")
        assert first.fetched == 5 and first.not_modified == 0
        before = {r["url"]: r for r in RawStore(tmp_path / "raw").records(kinds=["article"])}

        # A plain rerun fetches no article again.
        site.log.clear()
        _, rerun = nice_crawl(site, tmp_path / "raw")
        assert rerun.fetched == 0 and not [t for t, _ in site.log if "/chapter/" in t]

        # One chapter changes; a recrawl revalidates every stored chapter.
        chapter.write_text(chapter.read_text().replace("for three days", "for five days"))
        os.utime(chapter, (chapter.stat().st_mtime + 10, chapter.stat().st_mtime + 10))
        site.log.clear()
        _, again = nice_crawl(site, tmp_path / "raw", recrawl=True)
    assert again.fetched == 5 and again.not_modified == 4
    sent = {target: headers for target, headers in site.log if "/chapter/" in target}
    assert len(sent) == 5
    for target, headers in sent.items():
        assert headers.get("if-none-match", "").startswith('"') and headers.get("if-modified-since"), target

    latest = {r["url"]: r for r in RawStore(tmp_path / "raw").records(kinds=["article"], latest=True)}
    changed = f"{NICE}/guidance/ng931/chapter/Recommendations"
    for url, record in latest.items():
        if url == changed:
            assert record["status"] == 200 and record["body"] != before[url]["body"]
            assert "for five days" in extract_document(record, source)["text"]
        else:
            assert record["status"] == 304 and record["body"] == before[url]["body"]
            assert record["body_sha256"] == before[url]["body_sha256"]
            assert extract_document(record, source) == extract_document(before[url], source)  # same document


def test_recrawl_failure_does_not_hide_the_stored_page(server, tmp_path, make_fetcher):
    from gap_replay.guidelines_scraper.sources import parse_sources

    spec = dict(name="Flaky", base_url="https://flaky.example.org", seeds=["/a"], discovery="static", min_words=3)
    source = parse_sources({"flaky": spec})["flaky"]
    mirror = {"https://flaky.example.org": server.base}
    server.route("/a", Reply(200, "<html><head><title>A</title></head><body><p>Offer the first dose now.</p></body>"
                                  "</html>", {"Content-Type": "text/html", "Last-Modified": "Fri, 01 Mar 2024 10:00:00 GMT"}))
    crawl([source], RawStore(tmp_path), fetcher=make_fetcher(max_retries=0), mirror=mirror)
    server.route("/a", Reply(503, "down for maintenance"))
    report = crawl([source], RawStore(tmp_path), fetcher=make_fetcher(max_retries=0), mirror=mirror, recrawl=True)
    assert report.sources["flaky"].errors == 1
    assert server.requests[-1][1]["if-modified-since"] == "Fri, 01 Mar 2024 10:00:00 GMT"
    assert "if-none-match" not in server.requests[-1][1]  # no ETag was stored
    (latest,) = RawStore(tmp_path).records(kinds=["article"], latest=True)
    assert latest["status"] == 200 and b"first dose" in latest["body"]  # the 503 did not replace the page
    # A page that is gone for good (404) does replace it.
    server.route("/a", Reply(404, "gone"))
    crawl([source], RawStore(tmp_path), fetcher=make_fetcher(max_retries=0), mirror=mirror, recrawl=True)
    (latest,) = RawStore(tmp_path).records(kinds=["article"], latest=True)
    assert latest["status"] == 404
