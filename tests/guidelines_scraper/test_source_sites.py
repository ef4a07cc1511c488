"""Real crawls of the 15 sources that need no browser (the 8 redistributable ones and the 7 closed
ones: every source but MAGIC), each through its *built-in* spec (sources.toml),
against a local copy of the site (tests/guidelines_scraper/fixtures/sites/<host>/, invented content
in the real site's structure: listings, pagination, article pages, PDFs as the site serves them),
then extraction; every article's outcome is compared with its golden text in
fixtures/expected/<tag>.txt.

Regenerate the golden files after an intended change with ``GAP_REPLAY_UPDATE_GOLDEN=1 pytest ...``
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gap_replay.core.outcome import Drop
from gap_replay.guidelines_scraper.crawl import crawl
from gap_replay.guidelines_scraper.extract import ExtractionReport, deduplicate_titles, extract_document
from gap_replay.guidelines_scraper.fetch import Fetcher
from gap_replay.guidelines_scraper.local_site import host_mirror, serve_site
from gap_replay.guidelines_scraper.raw_store import RawStore
from gap_replay.guidelines_scraper.sources import load_sources

from .conftest import FIXTURES
from .fixture_html import FIXTURE_PAGES
from .fixture_pdfs import FIXTURE_PDFS, render_pdf

SITES = FIXTURES / "sites"
EXPECTED = FIXTURES / "expected"
OPEN_TAGS = ["cco", "cdc", "cma", "icrc", "nice", "spor", "who", "wikidoc"]
CLOSED_TAGS = ["aafp", "cps", "drugs", "gc", "idsa", "mayo", "rch"]  # MAGIC needs JavaScript: no fixture
PDF_TAGS = ["cco", "cdc", "icrc", "spor", "who"]
UPDATE = os.environ.get("GAP_REPLAY_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def site():
    with serve_site(SITES) as served:
        yield served


def crawl_and_extract(tag: str, site, path: Path, **crawl_options):
    source = load_sources()[tag]
    mirror = host_mirror(site.base, [source], site.root)
    with RawStore(path) as store, Fetcher(min_delay=0, max_retries=0, read_timeout=5) as fetcher:
        report = crawl([source], store, fetcher=fetcher, mirror=mirror, **crawl_options)
    records = list(RawStore(path).records(kinds=["article"], latest=True))
    outcomes = deduplicate_titles(extract_document(record, source) for record in records)
    return report.sources[tag], [(r["url"], o) for r, o in zip(records, outcomes)]


def render(pairs) -> str:
    """The golden form of a source's outcomes: one block per article URL, in URL order."""
    blocks = []
    for url, outcome in sorted(pairs, key=lambda pair: pair[0]):
        if isinstance(outcome, Drop):
            blocks.append(f"=== {url}\nDROP {outcome.reason}: {outcome.detail}\n")
        else:
            blocks.append(f"=== {url}\nKEPT {outcome['id']} title={outcome['title']!r}\n\n{outcome['text']}\n")
    return "\n".join(blocks)


@pytest.mark.parametrize("tag", OPEN_TAGS + CLOSED_TAGS)
def test_source_site_golden(tag, site, tmp_path):
    before = dict(site.served)
    report, pairs = crawl_and_extract(tag, site, tmp_path)
    assert pairs, f"{tag}: nothing discovered"
    assert report.discovered == len(pairs) and report.fetched == len(pairs)
    golden = EXPECTED / f"{tag}.txt"
    text = render(pairs)
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"{tag}: outcomes differ from {golden}"
    # Every article was requested once, and at least one document is kept.
    served_now = {path: count - before.get(path, 0) for path, count in site.served.items()
                  if count - before.get(path, 0)}
    assert all(count == 1 for count in served_now.values()), served_now
    assert any(isinstance(outcome, dict) for _, outcome in pairs)
    # The spec's content_selector matches the site's article markup (and every PDF's layout pass
    # worked): no document came from a fallback, and each says how it was extracted.
    assert ExtractionReport.of(outcome for _, outcome in pairs).fallbacks.total() == 0
    extractions = {json.loads(outcome["extra"])["extraction"] for _, outcome in pairs if isinstance(outcome, dict)}
    assert extractions == ({"pdf_layout"} if tag in PDF_TAGS else {"selector"}), extractions


def test_redesigned_site_loses_no_article(tmp_path):
    """IDSA's listing and guideline pages in new markup (fixtures/site_changes/idsa/): the built-in spec's
    link_selector and content_selector find nothing, link_pattern and whole-page extraction take over,
    every article is still found and extracted, and the reports say what fell back."""
    with serve_site(FIXTURES / "site_changes" / "idsa") as changed:
        report, pairs = crawl_and_extract("idsa", changed, tmp_path)
    assert report.link_selector_misses == 1 and "link_selector" in report.messages[0]
    # The same outcomes, text included, as the crawl of the site before its redesign.
    assert render(pairs) == (EXPECTED / "idsa.txt").read_text(encoding="utf-8")
    extraction = ExtractionReport.of(outcome for _, outcome in pairs)
    assert extraction.fallbacks["idsa", "fallback_whole_page"] == extraction.kept["idsa"] == 3
    assert extraction.summary() == ("idsa: kept 3 (fallback_whole_page 3: content_selector missed), "
                                    "dropped 1 (too_short 1)")


def test_committed_fixture_pdfs_are_what_the_writer_makes():
    for relative, spec in FIXTURE_PDFS.items():
        assert (SITES / relative).read_bytes() == render_pdf(spec), relative


def test_committed_fixture_pages_are_what_the_generator_makes():
    for relative, content in FIXTURE_PAGES.items():
        assert (FIXTURES / relative).read_bytes() == content, relative
