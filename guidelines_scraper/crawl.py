"""Crawl guideline sources into a :class:`~guidelines_scraper.raw_store.RawStore`.

Per source: discover article URLs (``listing``: follow listing/pagination pages from the seeds (those
matching ``listing_pattern``, and the "next" links ``next_selector`` picks) and collect the links that
``link_selector`` picks and ``link_pattern`` matches (a page where the selector matches nothing falls
back to the pattern); ``sitemap``: read sitemap.xml files and sitemap indexes, gzipped or not, from
the seeds and from the ``Sitemap:`` lines of the sites' robots.txt;
``static``: the seeds are the articles), then fetch each article not already in the store. Every
response (robots.txt, listings, sitemaps, articles) is appended to the store, and each one is durable
before the next request is made (fsynced to the store's WARC file), so a rerun resumes where a
killed crawl stopped: articles already stored are not fetched again (only transient failures are
retried); robots.txt, listings and sitemaps are fetched again, to find new articles.

Within one *run* (a store opened with ``run=``: the attempts of one Spark task, retried after a
failure or a kill, or a speculative copy let in once the first attempt ended), a crawl takes every
answer an earlier attempt stored, robots.txt, listings, sitemaps and articles alike, transient
failures included, and counts it as if fetched now: the run fetches no page twice, and its report and
stored records are those of an undisturbed crawl. Each host's delay counts from the earlier attempt's
last request there. What can still be requested twice: the one request in flight when an attempt was
killed (its answer never reached the store), with the robots.txt fetched just before it.

A *recrawl* (``recrawl=True``) fetches every discovered article again, conditionally: a stored page
with an ``ETag`` or ``Last-Modified`` is requested with ``If-None-Match``/``If-Modified-Since``, and
a ``304 Not Modified`` is stored as a record with status 304 that carries the stored body (so the
newest record of a URL is always self-contained); a page without validators is fetched plainly.

The crawler never leaves a source's ``allowed_hosts`` and never fetches a URL twice in one run.
Sources with ``requires_js`` are skipped, with a message in the report.

Distribution (:func:`crawl_units`): sources whose allowed hosts overlap form one *unit*; a unit is
crawled by one fetcher (one Spark task in the job), so every request to a host goes through the
fetcher that holds that host's robots.txt and delay, whatever the number of executors; the unit's
crawl lease (:func:`~guidelines_scraper.raw_store.crawl_lease`) keeps it one fetcher whatever the
number of attempts of that task.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree
from lxml import html as lxml_html

from gap_replay.guidelines_scraper.fetch import Fetcher, FetchResult, Mirror, host_of, normalize_url
from gap_replay.guidelines_scraper.raw_store import RawStore, StoredPage
from gap_replay.guidelines_scraper.sources import GuidelineSource, css_selector

DEFAULT_MAX_LISTING_PAGES = 5000
_SITEMAP_MAX_BYTES = 100 * 1024 * 1024
_HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass
class SourceReport:
    """What happened to one source during a crawl."""

    tag: str
    discovered: int = 0          # article URLs found (after max_pages_per_source)
    fetched: int = 0             # article fetches made in this run (successful or not)
    skipped_existing: int = 0    # article URLs already in the store
    errors: int = 0              # article fetches that gave no usable page (incl. robots refusals)
    listings: int = 0            # listing/sitemap pages fetched
    listing_errors: int = 0
    link_selector_misses: int = 0  # listing pages with article links where link_selector matched nothing
    seeds: int = 0               # seed listing/sitemap pages fetched
    seeds_ok: int = 0            # seeds that answered with a usable page
    pending_listings: int = 0    # listing/sitemap pages found but not fetched (a capped discovery)
    not_modified: int = 0        # recrawl: articles answered 304 (stored body kept)
    skipped: bool = False        # the whole source was skipped (requires_js)
    messages: list[str] = field(default_factory=list)


@dataclass
class CrawlReport:
    sources: dict[str, SourceReport] = field(default_factory=dict)

    @property
    def messages(self) -> list[str]:
        return [f"{tag}: {m}" for tag, rep in self.sources.items() for m in rep.messages]

    def totals(self) -> dict[str, int]:
        keys = ("discovered", "fetched", "skipped_existing", "errors", "listings", "listing_errors", "not_modified",
                "link_selector_misses")
        return {k: sum(getattr(r, k) for r in self.sources.values()) for k in keys}

    def summary(self) -> str:
        lines = []
        for tag, r in self.sources.items():
            if r.skipped:
                lines.append(f"{tag}: skipped ({'; '.join(r.messages)})")
                continue
            unchanged = f" (not modified {r.not_modified})" if r.not_modified else ""
            misses = f" (link_selector missed on {r.link_selector_misses})" if r.link_selector_misses else ""
            lines.append(f"{tag}: discovered {r.discovered}, fetched {r.fetched}{unchanged}, already stored "
                         f"{r.skipped_existing}, errors {r.errors}, listing pages {r.listings}{misses}")
        return "\n".join(lines)


def _describe_failure(result: FetchResult) -> str:
    if result.error:
        return result.error
    return f"HTTP {result.status}"


def _is_html(result: FetchResult) -> bool:
    ctype = result.content_type
    if ctype:
        return ctype in _HTML_TYPES
    head = (result.body or b"")[:512].lstrip().lower()
    return head.startswith(b"<!doctype html") or head.startswith(b"<html")


def _parse_links_page(body: bytes, page_url: str):
    """``(document, base URL)`` of an HTML page, or None when it does not parse. The base is the page's
    ``<base href>`` when it has one, else `page_url` (canonical)."""
    if not body:
        return None
    try:
        doc = lxml_html.document_fromstring(body)
    except (etree.ParserError, ValueError):
        return None
    base = page_url
    for base_el in doc.iter("base"):
        href = base_el.get("href")
        if href:
            try:
                base = normalize_url(href, base=page_url)
            except ValueError:
                pass
            break
    return doc, base


def _anchor_links(elements: Iterable, base: str) -> list[str]:
    """Absolute, normalised http(s) targets of the anchors that are, or are inside, `elements`; in
    document order, deduplicated."""
    seen: set[str] = set()
    links: list[str] = []
    for element in elements:
        anchors = element.iter("a", "area") if isinstance(element.tag, str) else ()
        for anchor in anchors:
            href = (anchor.get("href") or "").strip()
            if not href or href.startswith("#"):
                continue
            try:
                url = normalize_url(href, base=base)
            except ValueError:
                continue
            if not url.startswith(("http://", "https://")) or url in seen:
                continue
            seen.add(url)
            links.append(url)
    return links


def extract_links(body: bytes, page_url: str) -> list[str]:
    """Absolute, normalised http(s) link targets of an HTML page, in document order, deduplicated.

    Relative links are resolved against `page_url` (canonical) or the page's ``<base href>``.
    """
    parsed = _parse_links_page(body, page_url)
    return _anchor_links([parsed[0]], parsed[1]) if parsed else []


def parse_sitemap(body: bytes) -> tuple[list[str], list[str]]:
    """``(page_urls, child_sitemap_urls)`` of a sitemap or sitemap index (optionally gzipped).

    Parsed with lxml with entity resolution, DTD loading and network access off.
    """
    data = body or b""
    if data[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            data = handle.read(_SITEMAP_MAX_BYTES + 1)
        if len(data) > _SITEMAP_MAX_BYTES:
            raise ValueError(f"decompressed sitemap exceeds {_SITEMAP_MAX_BYTES} bytes")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, recover=False)
    root = etree.fromstring(data, parser=parser)
    name = etree.QName(root).localname
    locs = []
    for element in root.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname == "loc" and element.text:
            locs.append(element.text.strip())
    if name == "sitemapindex":
        return [], locs
    if name == "urlset":
        return locs, []
    raise ValueError(f"not a sitemap: root element <{name}>")


class _Unreadable(Exception):
    """A listing or sitemap page that gave nothing usable; the message says why."""


class _SourceCrawl:
    def __init__(self, source: GuidelineSource, store: RawStore, fetcher: Fetcher, mirror: Mirror,
                 report: SourceReport, max_pages: int | None, max_listing_pages: int,
                 progress: Callable[[str, int, int], None] | None, depth_first: bool = False,
                 earlier: Mapping[tuple[str, str], tuple[str, int]] | None = None):
        self.source = source
        # (kind, url) -> place of the answer an earlier attempt of this run stored: taken, not fetched again
        self.earlier = earlier or {}
        self.store = store
        self.fetcher = fetcher
        self.mirror = mirror
        self.report = report
        self.max_pages = max_pages
        self.max_listing_pages = max_listing_pages
        self.progress = progress
        # A probe of few listing pages goes deep first, so it reaches articles behind category pages.
        self.depth_first = depth_first

    def _fetch(self, url: str, kind: str, stored: StoredPage | None = None) -> FetchResult:
        place = self.earlier.get((kind, url))
        if place is not None:  # answered to an earlier attempt of this run: counted as if fetched now
            result = self.store.stored_result(place, body=kind != "article")  # an article's body is not read here
            if stored is not None and result.status == 304 and result.error is None:
                self.report.not_modified += 1
            return result
        try:
            if stored is not None:
                result = self.fetcher.fetch(url, allowed_hosts=self.source.allowed_hosts, mirror=self.mirror,
                                            headers=stored.conditional_headers())
            else:
                result = self.fetcher.fetch(url, allowed_hosts=self.source.allowed_hosts, mirror=self.mirror)
        finally:  # a robots.txt fetched for this request is stored even when the request raised
            self._store_robots()
        if stored is not None and result.status == 304 and result.error is None:
            # Not modified: stored as a revisit of the stored page, which keeps its body, takes the new validators.
            self.report.not_modified += 1
            return self.store.add_not_modified(self.source.tag, kind, result, stored)
        self.store.add(self.source.tag, kind, result)
        return result

    def _store_robots(self) -> None:
        for robots in self.fetcher.take_robots_results():
            self.store.add(self.source.tag, "robots", robots)

    def _allowed(self, url: str) -> bool:
        return self.source.host_allowed(url)

    def _full(self, articles: list[str]) -> bool:
        return self.max_pages is not None and len(articles) >= self.max_pages

    def discover(self) -> list[str]:
        kind = self.source.discovery
        if kind == "static":
            articles = [u for u in dict.fromkeys(self.source.seeds) if self._allowed(u)]
            return articles[: self.max_pages] if self.max_pages is not None else articles
        if kind == "sitemap":
            return self._discover_sitemap()
        return self._discover_listing()

    def _discover_pages(self, kind: str, noun: str, read: Callable[[str, FetchResult], list[tuple[bool, str]]],
                        depth_first: bool, seeds: Iterable[str]) -> list[str]:
        """Fetch `kind` pages from the `seeds`, at most ``max_listing_pages``; `read(page, result)` gives
        a page's links in order as ``(is another page to fetch, url)`` (raising :class:`_Unreadable`
        for a page it cannot use). Pages are taken in the order found (breadth first), or, `depth_first`,
        the pages a page links to before the rest of the queue (the seeds still in their order)."""
        queue = list(dict.fromkeys(seeds))
        seeds = set(queue)
        seen = set(queue)
        articles: list[str] = []
        while queue and not self._full(articles):
            if self.report.listings >= self.max_listing_pages:
                self.report.messages.append(f"stopped after {self.max_listing_pages} {noun}")
                break
            page = queue.pop(0)
            result = self._fetch(page, kind)
            self.report.listings += 1
            self.report.seeds += page in seeds
            try:
                if not result.ok:
                    raise _Unreadable(_describe_failure(result))
                links = read(page, result)
            except _Unreadable as problem:
                self.report.listing_errors += 1
                self.report.messages.append(f"{kind} {page}: {problem}")
                continue
            self.report.seeds_ok += page in seeds
            found: list[str] = []
            for is_page, url in links:
                if url in seen:
                    continue
                seen.add(url)
                if is_page:
                    found.append(url)
                else:
                    articles.append(url)
                    if self._full(articles):
                        break
            if depth_first:
                queue[0:0] = found
            else:
                queue.extend(found)
        self.report.pending_listings = len(queue)
        return articles

    def _discover_listing(self) -> list[str]:
        return self._discover_pages("listing", "listing pages", self._listing_links, self.depth_first, self.source.seeds)

    def _listing_links(self, page: str, result: FetchResult) -> list[tuple[bool, str]]:
        if not _is_html(result):
            raise _Unreadable(f"not HTML ({result.content_type or 'no type'})")
        parsed = _parse_links_page(result.body or b"", result.final_url)
        if parsed is None:
            return []
        is_article, next_pages = self._listing_rules(page, *parsed)
        links = []
        for link in _anchor_links([parsed[0]], parsed[1]):
            if not self._allowed(link):
                continue
            if link in next_pages:
                links.append((True, link))
            elif is_article(link):
                links.append((False, link))
            elif self.source.is_listing(link):
                links.append((True, link))
        return links

    def _listing_rules(self, page: str, doc, base: str) -> tuple[Callable[[str], bool], set[str]]:
        """(which links of a listing page are articles, its next-page links).

        With a ``link_selector`` the articles are the selected links (that also match ``link_pattern``
        when set); on a page where the selector matches nothing, ``link_pattern`` alone decides, so a
        redesigned listing loses no article, and the miss is reported when the pattern found some."""
        source = self.source
        next_pages = set()
        if source.next_selector:
            next_pages = set(_anchor_links(css_selector(source.next_selector)(doc), base))
        if source.link_selector:
            matched = css_selector(source.link_selector)(doc)
            if matched:
                selected = set(_anchor_links(matched, base))

                def selected_article(url: str) -> bool:
                    return url in selected and (source.link_pattern is None or source.is_article(url))

                return selected_article, next_pages
            by_pattern = [url for url in _anchor_links([doc], base)
                          if source.link_pattern is not None and source.is_article(url) and self._allowed(url)]
            if by_pattern:
                self.report.link_selector_misses += 1
                self.report.messages.append(f"listing {page}: link_selector {source.link_selector!r} matched nothing; "
                                            f"{len(by_pattern)} link(s) taken by link_pattern")
        if source.link_pattern is None:  # is_article would take every link
            return (lambda url: False), next_pages
        return source.is_article, next_pages

    def _discover_sitemap(self) -> list[str]:
        # An index lists sitemaps only: breadth first, even for a probe.
        return self._discover_pages("sitemap", "sitemaps", self._sitemap_links, False,
                                    [*self.source.seeds, *self._robots_sitemaps()])

    def _robots_sitemaps(self) -> list[str]:
        """The sitemaps that the robots.txt of the source's sites name (base_url's and the seeds'):
        a site that moves its sitemap says so there, and a source may list no sitemap of its own."""
        named: list[str] = []
        for url in (self.source.base_url, *self.source.seeds):
            named += self.fetcher.sitemaps(url, allowed_hosts=self.source.allowed_hosts, mirror=self.mirror)
        self._store_robots()
        return list(dict.fromkeys(named))

    def _sitemap_links(self, page: str, result: FetchResult) -> list[tuple[bool, str]]:
        try:
            pages, children = parse_sitemap(result.body or b"")
        except (etree.XMLSyntaxError, ValueError, OSError, EOFError) as exc:
            raise _Unreadable(f"unreadable ({exc})") from None
        links = []
        for is_page, locs in ((True, children), (False, pages)):
            for loc in locs:
                try:
                    url = normalize_url(loc, base=result.final_url)
                except ValueError:
                    continue
                if self._allowed(url) and (is_page or self.source.is_article(url)):
                    links.append((is_page, url))
        return links

    def run(self, done: set[str], stored: dict[str, StoredPage] | None = None,
            max_articles: int | None = None) -> None:
        """Fetch the discovered articles: those not in `done` (URLs stored), or with `stored` (a
        recrawl) all of them, conditionally where a stored page has validators. `max_articles` fetches
        only that many, spread evenly over the discovered list (a probe of the whole site, not its first page)."""
        articles = self.discover()
        self.report.discovered = len(articles)
        if max_articles is not None and len(articles) > max_articles:
            step = len(articles) / max_articles
            articles = [articles[int(index * step)] for index in range(max_articles)]
        total = len(articles)
        fetched_now: set[str] = set()
        for index, url in enumerate(articles, start=1):
            if url in fetched_now or (stored is None and url in done and ("article", url) not in self.earlier):
                self.report.skipped_existing += 1
            else:
                page = stored.get(url) if stored is not None else None
                result = self._fetch(url, "article", page)
                self.report.fetched += 1
                fetched_now.add(url)
                if result.error is not None or result.status is None or result.status >= 400:
                    self.report.errors += 1
                    self.report.messages.append(f"article {url}: {_describe_failure(result)}")
                elif result.final_url != url:
                    fetched_now.add(result.final_url)
            if self.progress is not None:
                self.progress(self.source.tag, index, total)
        self.store.flush()


def crawl(
    sources: Iterable[GuidelineSource],
    store: RawStore,
    *,
    fetcher: Fetcher,
    mirror: dict[str, str] | None = None,
    max_pages_per_source: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    max_listing_pages: int = DEFAULT_MAX_LISTING_PAGES,
    recrawl: bool = False,
    max_articles_per_source: int | None = None,
    depth_first: bool = False,
) -> CrawlReport:
    """Crawl `sources` into `store`; returns per-source counts and messages.

    `mirror` maps canonical base URLs to the base URLs to fetch instead (a local copy of a
    site); every stored URL stays canonical. `max_pages_per_source` caps the article URLs taken
    from discovery (listing pagination stops once enough are found). `progress(tag, done, total)`
    is called after each article. `recrawl` revalidates the stored articles (module docstring).
    `max_articles_per_source` fetches that many of the discovered articles, evenly spread, and
    `depth_first` follows the newest listing page found first (a probe: few pages, down to articles).
    """
    mapped = Mirror(mirror)
    report = CrawlReport()
    sources = list(sources)
    earlier = _earlier_attempts(store, fetcher, [source.tag for source in sources if not source.requires_js])
    for source in sources:
        rep = report.sources.setdefault(source.tag, SourceReport(source.tag))
        if source.requires_js:
            rep.skipped = True
            note = f": {source.note}" if source.note else ""
            rep.messages.append(f"skipped: the site needs JavaScript, which this crawler does not run{note}")
            continue
        try:
            done = store.urls(sources=[source.tag])  # articles are stored (and resumed) per source
            stored = None
            if recrawl:
                stored = {url: page for (_, url), page in store.stored_pages([source.tag]).items()}
            _SourceCrawl(source, store, fetcher, mapped, rep, max_pages_per_source, max_listing_pages,
                         progress, depth_first, earlier.get(source.tag)).run(done, stored, max_articles_per_source)
        finally:
            store.flush()
    return report


def _earlier_attempts(store: RawStore, fetcher: Fetcher,
                      tags: list[str]) -> dict[str, dict[tuple[str, str], tuple[str, int]]]:
    """What earlier attempts of the store's run stored for the `tags` sources, per source as ``(kind, url)
    -> place``; their robots.txt answers go to `fetcher` at once (not fetched again), and every host they
    asked waits out its delay from their last request there."""
    earlier: dict[str, dict[tuple[str, str], tuple[str, int]]] = {}
    for (tag, kind, url), place in store.run_records(tags).items():
        if kind == "robots":
            result = store.stored_result(place)
            fetcher.remember_robots(result)
        else:
            earlier.setdefault(tag, {})[(kind, url)] = place
            result = store.stored_result(place, body=False)
        try:
            when = datetime.fromisoformat(result.fetched_at)
        except ValueError:
            continue
        if when.tzinfo is None:  # not a time this crawler wrote
            continue
        for asked in {result.url, result.final_url}:
            fetcher.requested_before(asked, when)
    return earlier


def _hosts_overlap(a: str, b: str) -> bool:
    """Whether two allowed_hosts entries (``host``, ``.domain`` or ``*.domain``) admit a common host."""
    a, b = a.strip().lower().lstrip("*"), b.strip().lower().lstrip("*")
    if a.startswith(".") and b.startswith("."):
        return a.endswith(b) or b.endswith(a)
    if a.startswith("."):
        a, b = b, a
    if b.startswith("."):
        return a == b[1:] or a.endswith(b)
    return host_of(a) == host_of(b)


def crawl_units(sources: Iterable[GuidelineSource]) -> list[list[GuidelineSource]]:
    """Sources grouped so that no host is reachable from two groups (connected components over
    overlapping ``allowed_hosts``), in source order. Crawling each group with its own fetcher, one
    group per task, keeps robots.txt and the per-host delay with one fetcher per host."""
    sources = list(sources)
    parent = list(range(len(sources)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, first in enumerate(sources):
        for j in range(i + 1, len(sources)):
            second = sources[j]
            if any(_hosts_overlap(a, b) for a in first.allowed_hosts for b in second.allowed_hosts):
                parent[find(j)] = find(i)
    groups: dict[int, list[GuidelineSource]] = {}
    for index, source in enumerate(sources):
        groups.setdefault(find(index), []).append(source)
    return list(groups.values())


__all__ = ["CrawlReport", "SourceReport", "crawl", "crawl_units", "extract_links", "parse_sitemap"]
