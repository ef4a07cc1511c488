"""Guideline extraction and crawl throughput. Prints one JSON line.

Extraction: the HTML article pages of the fixture sites of all 15 sources that need no browser
(tests/guidelines_scraper/fixtures/sites: pages of 8-20 KB carrying the real sites' chrome: navigation,
cookie banners, scripts, related boxes, footers) and of the embedded sample site, crawled once into a
raw store through their source specs, each page then stored in ``--variants`` copies with about 30 KB of
production page weight added (a mega-menu, a sitemap footer, a style sheet, inline JSON page state; each
copy different, so no cache can serve a repeat: at least 300 pages of tens of KB by default), then timed
in the same run, interleaved, best of ``--repeat`` rounds:

- ``ours``: :func:`guidelines_scraper.extract.extract_document` on each stored record (decoding,
  selectors, trafilatura, cleaning, the finished document);
- ``trafilatura``: plain ``trafilatura.extract(body, output_format="markdown")`` on the same bodies.

The overhead is ``trafilatura pages/s / ours pages/s - 1`` (target: at most 0.15; negative means
ours is faster: trafilatura only sees the selected article, not the whole page). PDF documents per
second (pdfminer.six, headings included) are reported on the fixture PDFs for information.

Health check: ``guidelines check``'s probe (:func:`guidelines_scraper.health.probe_sources`, three
listing pages and five articles) of each fixture source, rate limiting off: seconds per source.

Crawl: a generated site of ``--crawl-pages`` article pages (copies of the fixture pages) behind
paginated listings, served on 127.0.0.1 and crawled with :func:`guidelines_scraper.crawl.crawl`
with rate limiting off (``min_delay=0``), robots.txt on, every response fsynced to the raw store's
journal before the next request: pages (articles + listings) per second.

    python bench/guidelines.py [--repeat K] [--variants V] [--crawl-pages N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from gap_replay.guidelines_scraper.crawl import crawl
from gap_replay.guidelines_scraper.extract import extract_document, is_pdf
from gap_replay.guidelines_scraper.fetch import Fetcher
from gap_replay.guidelines_scraper.local_site import (
    host_mirror,
    sample_mirror,
    sample_site_root,
    sample_sources_path,
    serve_site,
    write_listing_pages,
)
from gap_replay.guidelines_scraper.pdf import pdf_to_markdown
from gap_replay.guidelines_scraper.raw_store import RawStore
from gap_replay.guidelines_scraper.sources import load_sources, parse_sources, select_sources

SITES = ROOT / "tests" / "guidelines_scraper" / "fixtures" / "sites"
TARGET_OVERHEAD = 0.15


FIXTURE_TAGS = ("aafp", "cco", "cdc", "cma", "cps", "drugs", "gc", "icrc", "idsa", "mayo", "nice", "rch", "spor", "who",
                "wikidoc")


def stored_pages(workdir: Path, variants: int):
    """(record, source) of every article the fixture and sample sites hold, fetched into a raw store,
    each HTML page `variants` times with a distinct comment."""
    pairs = []
    builtins = load_sources()
    fixture_sources = [builtins[tag] for tag in FIXTURE_TAGS]
    with serve_site(SITES) as site, Fetcher(min_delay=0, max_retries=0) as fetcher, \
            RawStore(workdir / "fixtures") as store:
        crawl(fixture_sources, store, fetcher=fetcher, mirror=host_mirror(site.base, fixture_sources, SITES))
    sample = select_sources(load_sources(sample_sources_path()), ["who", "nice", "wikidoc"])
    with serve_site(sample_site_root()) as site, Fetcher(min_delay=0, max_retries=0) as fetcher, \
            RawStore(workdir / "sample") as store:
        crawl(sample, store, fetcher=fetcher, mirror=sample_mirror(site.base, sample))
    for name, sources in (("fixtures", fixture_sources), ("sample", sample)):
        by_tag = {source.tag: source for source in sources}
        for record in RawStore(workdir / name).records(kinds=["article"], latest=True):
            if record["status"] == 200 and record["body"]:
                if is_pdf(record["body"]):
                    pairs.append((record, by_tag[record["source"]]))
                    continue
                for variant in range(variants):
                    body = with_site_chrome(record["body"], variant)
                    pairs.append(({**record, "body": body}, by_tag[record["source"]]))
    return pairs


def site_chrome(variant: int) -> bytes:
    """The weight a production page carries beyond the fixture's own chrome (about 30 KB): a mega-menu and
    a sitemap footer of a few hundred links, a style sheet and a framework's inline JSON page state, as
    CMS and single-page-app front ends serve them. Differs per variant, so no cache can serve a repeat."""
    menu = "".join(f'<li><a href="/topics/section-{i}/item-{j}">Topic {i}.{j} for clinicians and patients</a></li>'
                   for i in range(12) for j in range(14))
    footer = "".join(f'<a href="/about/page-{i}">About page {i}</a> ' for i in range(90))
    style = "".join(f".c{i}{{margin:{i % 7}px;padding:{i % 5}px;color:#{i * 2654435761 % 0xFFFFFF:06x}}}" for i in range(220))
    state = ",".join(f'{{"id":{i},"slug":"item-{i}-{variant}","title":"Navigation entry {i}","children":[]}}'
                     for i in range(120))
    return (f'<nav class="mega-menu" aria-label="All topics"><ul>{menu}</ul></nav><style>{style}</style>'
            f'<footer class="site-map">{footer}</footer>'
            f'<script id="__PAGE_STATE__" type="application/json">{{"variant":{variant},"nav":[{state}]}}</script>'
            ).encode()


def with_site_chrome(body: bytes, variant: int) -> bytes:
    """`body` with :func:`site_chrome` before its closing body tag (appended when it has none)."""
    at = body.rfind(b"</body>")
    return body + site_chrome(variant) if at < 0 else body[:at] + site_chrome(variant) + body[at:]


def time_health_check(workdir: Path) -> dict:
    from gap_replay.guidelines_scraper.health import probe_sources

    builtins = load_sources()
    seconds, verdicts = {}, {}
    with serve_site(SITES) as site, Fetcher(min_delay=0, max_retries=0) as fetcher:
        for tag in FIXTURE_TAGS:
            source = builtins[tag]
            started = time.perf_counter()
            health = probe_sources([source], str(workdir / "check" / tag), fetcher=fetcher,
                                   mirror=host_mirror(site.base, [source], SITES))[tag]
            seconds[tag] = round(time.perf_counter() - started, 3)
            verdicts[tag] = health.verdict()
    return {"health_check": {"max_listings": 3, "max_articles": 5, "rate_limit": "off", "seconds_per_source": seconds,
                             "mean_seconds": round(sum(seconds.values()) / len(seconds), 3), "verdicts": verdicts}}


def time_extraction(pairs, repeat: int) -> dict:
    import trafilatura

    html = [(r, s) for r, s in pairs if not is_pdf(r["body"])]
    pdfs = [r["body"] for r, _ in pairs if is_pdf(r["body"])]

    def ours():
        for record, source in html:
            extract_document(record, source)

    def plain():
        for record, _ in html:
            trafilatura.extract(record["body"], output_format="markdown", include_links=False, include_tables=False,
                                include_images=False, include_comments=False)

    def pdf():
        for body in pdfs:
            pdf_to_markdown(body)

    for warm in (ours, plain, pdf):
        warm()
    best = {"ours": float("inf"), "plain": float("inf"), "pdf": float("inf")}
    for _ in range(repeat):
        for name, run in (("ours", ours), ("plain", plain), ("pdf", pdf)):
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    ours_pps, plain_pps = len(html) / best["ours"], len(html) / best["plain"]
    overhead = plain_pps / ours_pps - 1.0
    return {
        "extraction": {"pages": len(html), "distinct_pages": len({r["url"] for r, _ in html}),
                       "mean_page_kb": round(sum(len(r["body"]) for r, _ in html) / len(html) / 1024, 1),
                       "ours_pages_per_s": round(ours_pps, 1),
                       "trafilatura_pages_per_s": round(plain_pps, 1), "overhead": round(overhead, 3),
                       "target_overhead": TARGET_OVERHEAD, "within_target": overhead <= TARGET_OVERHEAD},
        "pdf_extraction": {"documents": len(pdfs), "documents_per_s": round(len(pdfs) / best["pdf"], 1)},
    }


def make_crawl_site(root: Path, pages: int, per_listing: int = 50) -> list[Path]:
    """A site of `pages` article pages (the fixture HTML pages, copied round robin) behind listings."""
    bodies = sorted(p for p in (SITES / "www.wikidoc.org" / "index.php").iterdir() if p.is_file()) + \
        sorted((SITES / "www.nice.org.uk" / "guidance").glob("ng*/chapter/*"))
    (root / "a").mkdir(parents=True)
    for n in range(pages):
        shutil.copyfile(bodies[n % len(bodies)], root / "a" / f"{n:05d}")
    write_listing_pages(root, pages, per_listing)
    return bodies


def time_crawl(workdir: Path, pages: int) -> dict:
    make_crawl_site(workdir / "site", pages)
    source = parse_sources({"bench": dict(name="Bench site", base_url="https://bench.example.org", seeds=["/list/0"],
                                          discovery="listing", listing_pattern=r"/list/\d+$", link_pattern=r"/a/\d+$",
                                          min_words=10)})["bench"]
    with serve_site(workdir / "site") as site, Fetcher(min_delay=0, max_retries=0) as fetcher, \
            RawStore(workdir / "crawl-raw") as store:
        started = time.perf_counter()
        report = crawl([source], store, fetcher=fetcher, mirror={source.base_url: site.base})
        store.flush()
        seconds = time.perf_counter() - started
        requests = sum(site.requests.values())
    rep = report.sources["bench"]
    return {"crawl": {"articles": rep.fetched, "listings": rep.listings, "requests": requests,
                      "seconds": round(seconds, 2), "pages_per_s": round((rep.fetched + rep.listings) / seconds, 1),
                      "rate_limit": "off", "durable_journal": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds of each extractor (best is kept)")
    parser.add_argument("--variants", type=int, default=6, help="copies of each HTML article page timed (default 6)")
    parser.add_argument("--crawl-pages", type=int, default=500, help="article pages of the generated crawl site")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gap-guidelines-bench-"))
    try:
        result = {"bench": "guidelines"}
        result.update(time_extraction(stored_pages(workdir, args.variants), args.repeat))
        result.update(time_health_check(workdir))
        result.update(time_crawl(workdir, args.crawl_pages))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["cpus"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
