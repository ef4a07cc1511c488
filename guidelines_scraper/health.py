"""How healthy each guideline source is: what a crawl (or a bounded probe of one) found, fetched and
extracted, set against what MEDITRON's paper got from the same source.

Sites change under a crawler: a listing's markup moves and no article link is found, an article's
markup changes and the content selector misses, a seed is gone. :class:`SourceHealth` gathers the
figures that show it (links, fetches, extractions, fallbacks, failures by reason, words per article)
and :meth:`SourceHealth.verdict` reads them: ``broken`` (no article, or every article failed),
``degraded`` (fallbacks, a missed link selector, a dead seed, or a yield or length far from the
paper's) or ``healthy``. A fixture site (the embedded sample's, written for this project) is never set
against the paper: its size says nothing of the real source's. ``gap-replay guidelines check`` probes sources and prints these; the
guidelines stage puts the same figures in its ledger after a full crawl.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from gap_replay.core.outcome import Drop
from gap_replay.guidelines_scraper.clean import count_words
from gap_replay.guidelines_scraper.crawl import SourceReport
from gap_replay.guidelines_scraper.extract import FALLBACKS
from gap_replay.guidelines_scraper.sources import GuidelineSource

BROKEN, DEGRADED, HEALTHY, SKIPPED = "broken", "degraded", "healthy", "skipped"
# A projected yield or a median length this many times off the paper's (either way) is flagged.
FAR_OFF = 4.0
FIXTURE_NOTE = "a fixture site (the embedded sample's): no comparison with the paper's yields"
_TOO_SHORT_WORDS = re.compile(r"^(\d+) words after cleaning")


@dataclass
class SourceHealth:
    tag: str
    seeds: int = 0
    seeds_ok: int = 0
    listings: int = 0                 # listing/sitemap pages fetched
    listing_errors: int = 0
    pending_listings: int = 0         # found but not fetched (a capped probe)
    link_selector_misses: int = 0
    links: int = 0                    # article links found
    fetched: int = 0                  # articles fetched (this run)
    fetch_errors: int = 0
    kept: int = 0                     # articles extracted into a document
    fallbacks: dict[str, int] = field(default_factory=dict)   # extraction kind -> documents
    failures: dict[str, int] = field(default_factory=dict)    # drop reason -> articles
    median_words: float | None = None  # over the articles extracted (kept, or too short)
    under_min_words: int = 0           # articles dropped as too short
    paper_articles: int | None = None
    paper_words: int | None = None
    skipped: str | None = None         # why the source was not crawled (needs JavaScript)
    fixture: bool = False              # a fixture site (the embedded sample): no comparison with the paper
    messages: list[str] = field(default_factory=list)

    # -- derived figures ----------------------------------------------------------------------

    @property
    def extracted(self) -> int:
        """Articles whose text came out (kept or too short), as opposed to fetch or extraction errors."""
        return self.kept + self.under_min_words

    @property
    def fallback_total(self) -> int:
        return sum(self.fallbacks.values())

    @property
    def projected_links(self) -> int:
        """Article links the whole source would give: those found, scaled by the listing pages still
        to fetch when discovery was capped."""
        if not self.pending_listings or not self.listings:
            return self.links
        return round(self.links * (self.listings + self.pending_listings) / self.listings)

    @property
    def projected_articles(self) -> int:
        """Documents the whole source would give: projected links times the share of fetched articles kept."""
        attempted = self.kept + sum(self.failures.values())
        if not attempted:
            return 0
        return round(self.projected_links * self.kept / attempted)

    @property
    def paper_median_words(self) -> float | None:
        """The paper's mean words per article (its table gives totals only)."""
        if not self.paper_articles or not self.paper_words:
            return None
        return self.paper_words / self.paper_articles

    def problems(self) -> list[str]:
        """What is wrong, worst first; empty when the source is healthy."""
        if self.skipped:
            return []
        found: list[str] = []
        if not self.links:
            found.append("no article link found" + (" (every seed failed)" if self.seeds and not self.seeds_ok else ""))
        elif self.fetched and not self.kept:
            reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.failures.items()))
            found.append(f"every article failed ({reasons})")
        if self.seeds and self.seeds_ok < self.seeds:
            found.append(f"{self.seeds - self.seeds_ok} of {self.seeds} seeds failed")
        if self.link_selector_misses:
            found.append(f"link_selector missed on {self.link_selector_misses} listing page(s)")
        for kind, count in sorted(self.fallbacks.items()):
            found.append(f"{count} of {self.kept} documents by {kind} ({FALLBACKS.get(kind, kind)})")
        if self.fixture:
            return found
        if self.kept and self.paper_articles:
            ratio = self.projected_articles / self.paper_articles
            if not 1 / FAR_OFF <= ratio <= FAR_OFF:
                found.append(f"projected yield {ratio:.2g}x the paper's")
        paper_length = self.paper_median_words
        if self.median_words and paper_length:
            ratio = self.median_words / paper_length
            if not 1 / FAR_OFF <= ratio <= FAR_OFF:
                found.append(f"median length {ratio:.2g}x the paper's mean ({paper_length:,.0f} words)")
        return found

    def verdict(self) -> str:
        if self.skipped:
            return SKIPPED
        if not self.links or (self.fetched and not self.kept):
            return BROKEN
        return DEGRADED if self.problems() else HEALTHY

    def line(self) -> str:
        """One line for the terminal, e.g. ``nice: healthy: 31 links on 2 listing pages, projected ~1,600
        articles (paper: 1,656); 5 fetched, 5 kept, median 2,310 words``."""
        if self.skipped:
            return f"{self.tag}: skipped: {self.skipped}"
        paper = f" (paper: {self.paper_articles:,})" if self.paper_articles and not self.fixture else ""
        median = f", median {self.median_words:,.0f} words" if self.median_words is not None else ""
        line = (f"{self.tag}: {self.verdict()}: {self.links:,} links on {self.listings:,} listing page(s), "
                f"projected ~{self.projected_articles:,} articles{paper}; {self.fetched:,} fetched, "
                f"{self.kept:,} kept{median}")
        notes = self.problems() + ([FIXTURE_NOTE] if self.fixture else [])
        return line + (f"; {'; '.join(notes)}" if notes else "")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(verdict=self.verdict(), projected_links=self.projected_links,
                   projected_articles=self.projected_articles, problems=self.problems())
        return out


def source_health(source: GuidelineSource, crawled: SourceReport | None,
                  outcomes: Iterable[dict | Drop], *, fixture: bool = False) -> SourceHealth:
    """The health of `source` from its crawl report (None: not crawled in this run) and the extraction
    outcomes of its articles; `fixture`: the source is a fixture site, not to be set against the paper."""
    health = SourceHealth(source.tag, paper_articles=source.paper_articles, paper_words=source.paper_words,
                          fixture=fixture)
    if crawled is not None:
        if crawled.skipped:
            health.skipped = "; ".join(crawled.messages) or "skipped"
            return health
        health.seeds, health.seeds_ok = crawled.seeds, crawled.seeds_ok
        health.listings, health.listing_errors = crawled.listings, crawled.listing_errors
        health.pending_listings, health.link_selector_misses = crawled.pending_listings, crawled.link_selector_misses
        health.links, health.fetched, health.fetch_errors = crawled.discovered, crawled.fetched, crawled.errors
        health.messages = list(crawled.messages)
    fallbacks: Counter = Counter()
    failures: Counter = Counter()
    words: list[int] = []
    for outcome in outcomes:
        if isinstance(outcome, Drop):
            failures[outcome.reason] += 1
            if outcome.reason == "too_short":
                match = _TOO_SHORT_WORDS.match(outcome.detail or "")
                if match:
                    words.append(int(match.group(1)))
            continue
        health.kept += 1
        if outcome.get("text") is not None:  # a stage's tally reads ids and extra only
            words.append(count_words(outcome["text"]))
        extraction = json.loads(outcome.get("extra") or "{}").get("extraction")
        if extraction in FALLBACKS:
            fallbacks[extraction] += 1
    health.under_min_words = failures.get("too_short", 0)
    health.fallbacks, health.failures = dict(sorted(fallbacks.items())), dict(sorted(failures.items()))
    health.median_words = statistics.median(words) if words else None
    return health


def health_table(healths: Iterable[SourceHealth]) -> str:
    """A fixed-width table of sources, for the terminal."""
    header = (f"{'source':<9} {'verdict':<9} {'seeds':>5} {'lists':>5} {'links':>6} {'fetched':>7} {'kept':>5} "
              f"{'fallbk':>6} {'<min':>5} {'median w':>8} {'projected':>9} {'paper':>7}")
    rows = [header, "-" * len(header)]
    for health in healths:
        if health.skipped:
            rows.append(f"{health.tag:<9} {SKIPPED:<9} {health.skipped}")
            continue
        median = f"{health.median_words:,.0f}" if health.median_words is not None else "-"
        paper = "fixture" if health.fixture else f"{health.paper_articles:,}" if health.paper_articles else "-"
        rows.append(f"{health.tag:<9} {health.verdict():<9} {health.seeds_ok:>2}/{health.seeds:<2} "
                    f"{health.listings:>5} {health.links:>6,} {health.fetched:>7,} {health.kept:>5,} "
                    f"{health.fallback_total:>6,} {health.under_min_words:>5,} {median:>8} "
                    f"{health.projected_articles:>9,} {paper:>7}")
    return "\n".join(rows)


def healths_by_tag(sources: Mapping[str, GuidelineSource], crawled: Mapping[str, SourceReport],
                   outcomes: Iterable[dict | Drop], *, fixture: bool = False) -> dict[str, SourceHealth]:
    """Health of each source in `sources`, its outcomes told apart by document id (guideline:<tag>:...);
    `fixture`: the sources are fixture sites (the embedded sample), not set against the paper."""
    by_tag: dict[str, list[dict | Drop]] = {tag: [] for tag in sources}
    for outcome in outcomes:
        tag = outcome.id.split(":")[1] if isinstance(outcome, Drop) else outcome["subset"]
        by_tag.setdefault(tag, []).append(outcome)
    return {tag: source_health(source, crawled.get(tag), by_tag[tag], fixture=fixture)
            for tag, source in sources.items()}


def probe_sources(sources: Iterable[GuidelineSource], store_dir: str, *, fetcher, mirror: Mapping[str, str] | None = None,
                  max_listings: int = 3, max_articles: int = 5, fixture: bool = False) -> dict[str, SourceHealth]:
    """A bounded crawl of each source into a scratch raw store at `store_dir` (at most `max_listings`
    listing or sitemap pages, newest found first so that category pages lead to articles, then
    `max_articles` of the links found, spread over them), its articles extracted as the stage would:
    the health of each source. The projection from so few pages is rough: an order of magnitude."""
    from gap_replay.guidelines_scraper.crawl import crawl
    from gap_replay.guidelines_scraper.extract import extract_records
    from gap_replay.guidelines_scraper.raw_store import RawStore

    sources = {source.tag: source for source in sources}
    with RawStore(store_dir) as store:
        report = crawl(sources.values(), store, fetcher=fetcher, mirror=dict(mirror or {}),
                       max_listing_pages=max_listings, max_articles_per_source=max_articles, depth_first=True)
    records = RawStore(store_dir).records(kinds=["article"], latest=True)
    return healths_by_tag(sources, report.sources, extract_records(records, sources), fixture=fixture)
