from __future__ import annotations

import gzip
import shutil

import pytest
from lxml import etree

from gap_replay.guidelines_scraper.crawl import crawl, extract_links, parse_sitemap
from gap_replay.guidelines_scraper.local_site import serve_directory
from gap_replay.guidelines_scraper.raw_store import RawStore
from gap_replay.guidelines_scraper.sources import parse_sources

from .conftest import FIXTURES, Reply, html

CANONICAL = "https://guides.example.org"
ASTHMA, SEPSIS, HYPERTENSION = (f"{CANONICAL}/guides/{n}.html" for n in ("asthma", "sepsis", "hypertension"))
DRAFT, WITHDRAWN = f"{CANONICAL}/private/draft.html", f"{CANONICAL}/guides/withdrawn.html"

COMMON = dict(name="Fixture guidelines", base_url=CANONICAL, content_selector="div.guideline-body",
              title_selector="h1.guideline-title", min_words=40)
SPECS = {
    "listing": dict(COMMON, seeds=["/list/index.html"], discovery="listing",
                    listing_pattern=r"^https://guides\.example\.org/list/page\d+\.html$",
                    link_pattern=r"^https://guides\.example\.org/(guides|private)/[^/]+\.html$"),
    "sitemap": dict(COMMON, seeds=["/sitemap.xml"], discovery="sitemap", link_pattern=r"/guides/"),
    "sitemap_gz": dict(COMMON, seeds=["/sitemap-gz.xml"], discovery="sitemap", link_pattern=r"/guides/"),
    # Article links picked by CSS (the sidebar's are not), "next" pages by CSS (no listing_pattern).
    "cards": dict(COMMON, seeds=["/cards/index.html"], discovery="listing", link_selector="ul.results a.result-link",
                  link_pattern=r"/guides/", next_selector="nav.pager a[rel=next]"),
    # The same spec on a redesigned listing where the selector finds nothing: the pattern takes over.
    "redesign": dict(COMMON, seeds=["/redesign/index.html"], discovery="listing",
                     link_selector="ul.results a.result-link", link_pattern=r"/guides/"),
    "static": dict(COMMON, seeds=["/guides/asthma.html", "/guides/sepsis.html", "/guides/asthma.html#x"],
                   discovery="static"),
    "needs_js": dict(COMMON, seeds=["/app/"], discovery="static", requires_js=True,
                     note="single-page app; use its JSON API"),
}


def source(tag):
    return parse_sources({tag: SPECS[tag]})[tag]


@pytest.fixture(scope="module")
def site():
    with serve_directory(FIXTURES / "site") as base:
        yield {CANONICAL: base}


def article_urls(store):
    return [r["url"] for r in store.records(kinds=["article"])]


def test_listing_discovery_with_pagination_robots_and_errors(site, tmp_path, make_fetcher):
    fetcher = make_fetcher()
    store = RawStore(tmp_path)
    report = crawl([source("listing")], store, fetcher=fetcher, mirror=site)
    rep = report.sources["listing"]
    assert (rep.discovered, rep.fetched, rep.skipped_existing, rep.errors, rep.listings) == (5, 5, 0, 2, 3)
    assert article_urls(store) == [ASTHMA, DRAFT, SEPSIS, HYPERTENSION, WITHDRAWN]  # each once, canonical
    by_url = {r["url"]: r for r in store.records(kinds=["article"])}
    assert by_url[DRAFT]["status"] is None and by_url[DRAFT]["error"] == "disallowed by robots.txt"
    assert by_url[WITHDRAWN]["status"] == 404 and by_url[ASTHMA]["status"] == 200
    assert [r["url"] for r in store.records(kinds=["listing"])] == [
        f"{CANONICAL}/list/index.html", f"{CANONICAL}/list/page2.html", f"{CANONICAL}/list/page3.html"]
    assert [r["url"] for r in store.records(kinds=["robots"])] == [f"{CANONICAL}/robots.txt"]
    assert not any("other.example.net" in r["url"] for r in store.records())  # never left allowed_hosts
    assert fetcher.requests_made == 1 + 3 + 4  # robots, listings, articles (the draft was never requested)
    assert any("disallowed by robots.txt" in m for m in report.messages)
    assert any("HTTP 404" in m and WITHDRAWN in m for m in report.messages)


def test_sitemap_index_discovery(site, tmp_path, make_fetcher):
    store = RawStore(tmp_path)
    report = crawl([source("sitemap")], store, fetcher=make_fetcher(), mirror=site)
    rep = report.sources["sitemap"]
    assert (rep.discovered, rep.fetched, rep.errors, rep.listings) == (3, 3, 0, 3)
    assert article_urls(store) == [ASTHMA, SEPSIS, HYPERTENSION]
    assert [r["url"] for r in store.records(kinds=["sitemap"])] == [
        f"{CANONICAL}/sitemap.xml", f"{CANONICAL}/sitemaps/a.xml", f"{CANONICAL}/sitemaps/b.xml"]


def test_gzipped_sitemap_behind_an_index(site, tmp_path, make_fetcher):
    store = RawStore(tmp_path)
    rep = crawl([source("sitemap_gz")], store, fetcher=make_fetcher(), mirror=site).sources["sitemap_gz"]
    assert (rep.discovered, rep.fetched, rep.errors, rep.listings, rep.listing_errors) == (2, 2, 0, 2, 0)
    assert article_urls(store) == [HYPERTENSION, SEPSIS]
    assert [r["url"] for r in store.records(kinds=["sitemap"])] == [
        f"{CANONICAL}/sitemap-gz.xml", f"{CANONICAL}/sitemaps/guides.xml.gz"]


@pytest.fixture
def site_naming_its_sitemaps(tmp_path):
    """The fixture site, its robots.txt naming its gzipped sitemap (in no source's seeds), the index again
    (canonical, in another spelling) and a sitemap on a host outside allowed_hosts."""
    root = tmp_path / "site"
    shutil.copytree(FIXTURES / "site", root)
    (root / "robots.txt").write_text(
        "User-agent: *\nDisallow: /private/\n\n"
        f"Sitemap: {CANONICAL}/sitemaps/guides.xml.gz\n"
        "Sitemap: HTTPS://guides.example.org:443/sitemap.xml\n"
        "Sitemap: https://other.example.net/sitemap.xml\n")
    with serve_directory(root) as base:
        yield {CANONICAL: base}


def test_sitemaps_named_by_robots_txt_are_seeds(site_naming_its_sitemaps, tmp_path, make_fetcher):
    store = RawStore(tmp_path / "store")
    rep = crawl([source("sitemap")], store, fetcher=make_fetcher(), mirror=site_naming_its_sitemaps).sources["sitemap"]
    # Seeds: the source's index, then the robots.txt's gzipped sitemap (the index named again counts once).
    assert (rep.seeds, rep.seeds_ok, rep.listings, rep.listing_errors) == (2, 2, 4, 0)
    assert [r["url"] for r in store.records(kinds=["sitemap"])] == [
        f"{CANONICAL}/sitemap.xml", f"{CANONICAL}/sitemaps/guides.xml.gz",
        f"{CANONICAL}/sitemaps/a.xml", f"{CANONICAL}/sitemaps/b.xml"]
    assert article_urls(store) == [HYPERTENSION, SEPSIS, ASTHMA]
    assert [r["url"] for r in store.records(kinds=["robots"])] == [f"{CANONICAL}/robots.txt"]  # read once
    assert not any("other.example.net" in r["url"] for r in store.records())


def test_a_sitemap_source_may_rely_on_robots_txt_alone(site_naming_its_sitemaps, tmp_path, make_fetcher):
    src = parse_sources({"robots_only": dict(SPECS["sitemap"], seeds=[])})["robots_only"]
    store = RawStore(tmp_path / "store")
    rep = crawl([src], store, fetcher=make_fetcher(), mirror=site_naming_its_sitemaps).sources["robots_only"]
    assert (rep.seeds, rep.seeds_ok, rep.discovered, rep.errors) == (2, 2, 3, 0)
    assert sorted(article_urls(store)) == sorted([ASTHMA, SEPSIS, HYPERTENSION])


def test_listing_source_takes_no_sitemap_from_robots_txt(site_naming_its_sitemaps, tmp_path, make_fetcher):
    store = RawStore(tmp_path / "store")
    rep = crawl([source("listing")], store, fetcher=make_fetcher(), mirror=site_naming_its_sitemaps).sources["listing"]
    assert (rep.seeds, rep.discovered) == (1, 5) and list(store.records(kinds=["sitemap"])) == []


def test_link_selector_and_next_selector(site, tmp_path, make_fetcher):
    store = RawStore(tmp_path)
    rep = crawl([source("cards")], store, fetcher=make_fetcher(), mirror=site).sources["cards"]
    # Page 1: asthma (about.html is selected but fails link_pattern; the sidebar's sepsis is not selected);
    # page 2, reached only through rel=next: hypertension.
    assert article_urls(store) == [ASTHMA, HYPERTENSION]
    assert [r["url"] for r in store.records(kinds=["listing"])] == [
        f"{CANONICAL}/cards/index.html", f"{CANONICAL}/cards/more?from=2"]
    assert (rep.listings, rep.link_selector_misses, rep.messages) == (2, 0, [])


def test_link_selector_miss_falls_back_to_link_pattern(site, tmp_path, make_fetcher):
    store = RawStore(tmp_path)
    report = crawl([source("redesign")], store, fetcher=make_fetcher(), mirror=site)
    rep = report.sources["redesign"]
    assert article_urls(store) == [ASTHMA, HYPERTENSION]  # nothing lost to the redesign
    assert rep.link_selector_misses == 1
    assert rep.messages == [f"listing {CANONICAL}/redesign/index.html: link_selector 'ul.results a.result-link' "
                            "matched nothing; 2 link(s) taken by link_pattern"]
    assert "link_selector missed on 1" in report.summary()


def test_static_discovery_and_progress(site, tmp_path, make_fetcher):
    calls = []
    report = crawl([source("static")], RawStore(tmp_path), fetcher=make_fetcher(), mirror=site,
                   progress=lambda tag, done, total: calls.append((tag, done, total)))
    assert report.sources["static"].fetched == 2
    assert calls == [("static", 1, 2), ("static", 2, 2)]


def test_requires_js_is_skipped_not_failed(tmp_path, make_fetcher):
    fetcher = make_fetcher()
    report = crawl([source("needs_js")], RawStore(tmp_path), fetcher=fetcher)
    rep = report.sources["needs_js"]
    assert rep.skipped and rep.fetched == 0 and rep.errors == 0 and fetcher.requests_made == 0
    assert "JavaScript" in rep.messages[0] and "JSON API" in rep.messages[0]
    assert "needs_js: skipped" in report.summary()


def test_max_pages_per_source_stops_pagination(site, tmp_path, make_fetcher):
    store = RawStore(tmp_path)
    rep = crawl([source("listing")], store, fetcher=make_fetcher(), mirror=site,
                max_pages_per_source=2).sources["listing"]
    assert (rep.discovered, rep.listings) == (2, 1) and article_urls(store) == [ASTHMA, DRAFT]


def test_second_crawl_fetches_nothing_new(site, tmp_path, make_fetcher):
    crawl([source("listing"), source("sitemap")], RawStore(tmp_path), fetcher=make_fetcher(), mirror=site)
    before = article_urls(RawStore(tmp_path))
    fetcher = make_fetcher()
    report = crawl([source("listing"), source("sitemap")], RawStore(tmp_path), fetcher=fetcher, mirror=site)
    for rep in report.sources.values():
        assert rep.fetched == 0 and rep.skipped_existing == rep.discovered
    assert article_urls(RawStore(tmp_path)) == before
    assert fetcher.requests_made == 1 + 3 + 3  # robots.txt, listing pages and sitemaps only


class Killer:
    """Wraps a fetcher and dies (like a killed process) on the n-th article fetch."""

    def __init__(self, fetcher, die_on: int):
        self.fetcher, self.die_on, self.articles = fetcher, die_on, 0

    def fetch(self, url, **kwargs):
        if "/guides/" in url or "/private/" in url:
            self.articles += 1
            if self.articles == self.die_on:
                raise KeyboardInterrupt("killed")
        return self.fetcher.fetch(url, **kwargs)

    def take_robots_results(self):
        return self.fetcher.take_robots_results()


def test_resume_after_a_crash(site, tmp_path, make_fetcher):
    store = RawStore(tmp_path, flush_records=1)  # every record durable as soon as it is fetched
    with pytest.raises(KeyboardInterrupt):
        crawl([source("listing")], store, fetcher=Killer(make_fetcher(), die_on=4), mirror=site)
    (tmp_path / ".part-000099-deadbeef.parquet.tmp").write_bytes(b"PAR1 half written")  # a torn flush
    assert article_urls(RawStore(tmp_path)) == [ASTHMA, DRAFT, SEPSIS]
    report = crawl([source("listing")], RawStore(tmp_path), fetcher=make_fetcher(), mirror=site)
    rep = report.sources["listing"]
    assert (rep.fetched, rep.skipped_existing) == (2, 3)
    assert sorted(article_urls(RawStore(tmp_path))) == sorted([ASTHMA, DRAFT, SEPSIS, HYPERTENSION, WITHDRAWN])


def test_transient_failures_are_retried_on_the_next_crawl(server, tmp_path, make_fetcher):
    spec = dict(COMMON, seeds=["/a", "/b"], discovery="static")
    src = parse_sources({"flaky": spec})["flaky"]
    mirror = {CANONICAL: server.base}
    server.route("/a", html("<p>fine</p>"))
    server.route("/b", Reply(503, "busy"))
    first = crawl([src], RawStore(tmp_path), fetcher=make_fetcher(max_retries=0), mirror=mirror)
    assert first.sources["flaky"].errors == 1
    server.route("/b", html("<p>back</p>"))
    second = crawl([src], RawStore(tmp_path), fetcher=make_fetcher(max_retries=0), mirror=mirror)
    assert (second.sources["flaky"].fetched, second.sources["flaky"].skipped_existing) == (1, 1)
    latest = {r["url"]: r["status"] for r in RawStore(tmp_path).records(kinds=["article"], latest=True)}
    assert latest == {f"{CANONICAL}/a": 200, f"{CANONICAL}/b": 200}


def test_listing_on_foreign_redirect_is_not_followed(server, tmp_path, make_fetcher):
    spec = dict(COMMON, seeds=["/list"], discovery="listing", link_pattern=r"/guides/")
    src = parse_sources({"redir": spec})["redir"]
    server.route("/list", Reply(302, "", {"Location": f"http://localhost:{server.port}/list"}))
    report = crawl([src], RawStore(tmp_path), fetcher=make_fetcher(), mirror={CANONICAL: server.base})
    rep = report.sources["redir"]
    assert (rep.discovered, rep.listing_errors) == (0, 1) and "outside allowed_hosts" in rep.messages[0]
    assert server.paths() == ["/robots.txt", "/list"]


def test_extract_links():
    page = b"""<html><head><base href="https://guides.example.org/sub/"></head><body>
    <a href="a.html#x">a</a><a href="a.html">again</a><a href="/b.html">b</a><a href="#top">top</a>
    <a href="mailto:x@example.org">m</a><a href="javascript:void(0)">j</a><a href="http://h:bad/">bad</a>
    <area href="c.html"></body></html>"""
    assert extract_links(page, "https://guides.example.org/list") == [
        "https://guides.example.org/sub/a.html", "https://guides.example.org/b.html",
        "https://guides.example.org/sub/c.html"]
    assert extract_links(b"", "https://x.org/") == []


def test_parse_sitemap_variants():
    urlset = (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
              b"<url><loc>https://a.org/1</loc></url><url><loc> https://a.org/2 </loc></url></urlset>")
    assert parse_sitemap(urlset) == (["https://a.org/1", "https://a.org/2"], [])
    assert parse_sitemap(gzip.compress(urlset)) == (["https://a.org/1", "https://a.org/2"], [])
    index = b"<sitemapindex><sitemap><loc>https://a.org/s1.xml</loc></sitemap></sitemapindex>"
    assert parse_sitemap(index) == ([], ["https://a.org/s1.xml"])
    with pytest.raises(ValueError, match="not a sitemap"):
        parse_sitemap(b"<html><body>hi</body></html>")
    with pytest.raises(etree.XMLSyntaxError):
        parse_sitemap(b"<urlset><url>")


def test_parse_sitemap_does_not_resolve_entities(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file://{secret}">]>'
           '<urlset><url><loc>https://a.org/&xxe;</loc></url></urlset>').encode()
    try:
        pages, _ = parse_sitemap(xxe)
    except etree.XMLSyntaxError:
        return  # refusing the document is fine too
    assert not any("TOP-SECRET" in page for page in pages)
