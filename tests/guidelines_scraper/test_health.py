"""Source health: `probe_sources` (a bounded crawl and extraction) against fixture sites in the four
states a real site can be in: healthy, listing markup changed, article markup changed, seed gone;
and `gap-replay guidelines check` on the embedded sample."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import pytest

from gap_replay.cli import main
from gap_replay.guidelines_scraper.fetch import Fetcher
from gap_replay.guidelines_scraper.health import BROKEN, DEGRADED, HEALTHY, SourceHealth, health_table, probe_sources
from gap_replay.guidelines_scraper.local_site import host_mirror, serve_site
from gap_replay.guidelines_scraper.sources import load_sources

from .conftest import FIXTURES

SITES = FIXTURES / "sites"


def probe(tag, site_root, tmp_path, without_paper=True, **limits):
    source = load_sources()[tag]
    if without_paper:  # a fixture site is a few pages: no yield to compare with the paper's
        source = dataclasses.replace(source, paper_articles=None, paper_words=None)
    with serve_site(site_root) as site, Fetcher(min_delay=0, max_retries=0, read_timeout=5) as fetcher:
        healths = probe_sources([source], str(tmp_path / "store"), fetcher=fetcher,
                                mirror=host_mirror(site.base, [source], site.root), **limits)
    return healths[tag]


def test_a_healthy_source(tmp_path):
    health = probe("nice", SITES, tmp_path, max_listings=3, max_articles=3)
    assert health.verdict() == HEALTHY, health.problems()
    assert health.seeds == health.seeds_ok == 1 and health.listings == 3
    assert health.links >= 3 and health.fetched == 3 and health.kept >= 2 and health.fallback_total == 0
    assert health.median_words and health.median_words > 100
    assert health.pending_listings > 0 and health.projected_links > health.links  # the probe saw part of the site
    assert "nice: healthy:" in health.line()


def test_the_papers_yield_and_length_are_compared(tmp_path):
    health = probe("nice", SITES, tmp_path, without_paper=False, max_listings=3, max_articles=3)
    assert health.paper_articles == 1656
    assert health.verdict() == DEGRADED  # a four-guideline fixture site is far from NICE's 1,656 articles
    assert any(problem.startswith("projected yield") for problem in health.problems())
    assert "(paper: 1,656)" in health.line()


def test_listing_markup_changed_so_no_article_link_is_found(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(SITES / "www.nice.org.uk", site / "www.nice.org.uk")
    for page in (site / "www.nice.org.uk").rglob("*"):
        if page.is_file() and page.suffix in ("", ".html"):
            text = page.read_text(encoding="utf-8", errors="replace")
            # The site moved its guidance pages: every link now points to /hub/... which the spec does not know.
            page.write_text(re.sub(r'href="(https://www\.nice\.org\.uk)?/guidance/', 'href="/hub/', text), encoding="utf-8")
    health = probe("nice", site, tmp_path, max_listings=3, max_articles=3)
    assert health.verdict() == BROKEN and health.links == 0 and health.fetched == 0
    assert health.problems()[0] == "no article link found"


def test_article_markup_changed_so_the_selector_misses(tmp_path):
    health = probe("idsa", FIXTURES / "site_changes" / "idsa", tmp_path, max_listings=2, max_articles=4)
    assert health.verdict() == DEGRADED
    assert health.kept == 3 and health.fallbacks == {"fallback_whole_page": 3}
    assert health.link_selector_misses == 1
    assert "3 of 3 documents by fallback_whole_page (content_selector missed)" in health.problems()


def test_a_dead_seed(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(SITES / "www.nice.org.uk", site / "www.nice.org.uk")
    for page in (site / "www.nice.org.uk" / "guidance").glob("published*"):
        page.unlink()  # the seed listing is gone: 404
    health = probe("nice", site, tmp_path, max_listings=3, max_articles=3)
    assert health.verdict() == BROKEN
    assert (health.seeds, health.seeds_ok, health.listing_errors) == (1, 0, 1)
    assert health.problems()[0] == "no article link found (every seed failed)"


def test_every_article_failing_is_broken():
    health = SourceHealth("x", seeds=1, seeds_ok=1, listings=1, links=4, fetched=4, fetch_errors=4,
                          failures={"fetch_error": 4})
    assert health.verdict() == BROKEN and health.problems()[0] == "every article failed (fetch_error 4)"
    assert "x" in health_table([health])


def test_check_command_on_the_sample(tmp_path, capsys):
    report = tmp_path / "health.json"
    assert main(["guidelines", "check", "--sample", "--max-listings", "2", "--max-articles", "3",
                 "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["source", "verdict", "seeds"]
    figures = json.loads(report.read_text())["sources"]
    assert set(figures) == {"who", "nice", "wikidoc"}
    assert all(entry["kept"] > 0 and entry["verdict"] != BROKEN and entry["seconds"] >= 0 for entry in figures.values())
    # The sample's sites are fixtures: said on each line, and never set against the paper's yields.
    assert all(entry["fixture"] and entry["verdict"] == HEALTHY for entry in figures.values()), figures
    assert re.search(r"^nice: healthy: \d+ links on \d+ listing page\(s\), projected ~\d+ articles; .*; a fixture "
                     r"site \(the embedded sample's\): no comparison with the paper's yields \[", out, re.M)
    table = out.split("\n\n")[0].splitlines()[2:]
    assert len(table) == 3 and all(row.split()[-1] == "fixture" for row in table)  # the paper column
    assert "projected yield" not in out and "(paper:" not in out


def test_a_fixture_is_not_compared_with_the_paper():
    figures = dict(seeds=1, seeds_ok=1, listings=1, links=4, fetched=4, kept=4, median_words=300.0,
                   paper_articles=1656, paper_words=1656 * 2300)
    real, fixture = SourceHealth("nice", **figures), SourceHealth("nice", fixture=True, **figures)
    assert real.verdict() == DEGRADED and any(p.startswith("projected yield") for p in real.problems())
    assert any(p.startswith("median length") for p in real.problems())
    assert fixture.verdict() == HEALTHY and fixture.problems() == []
    assert "(paper: 1,656)" in real.line() and "paper: 1,656" not in fixture.line()
    assert "fixture site" in fixture.line() and fixture.to_dict()["fixture"] is True


def test_check_exits_1_when_a_source_is_broken(tmp_path, capsys):
    sources = tmp_path / "sources.toml"
    # The sample's WHO source, its seed moved to a page that does not exist.
    sources.write_text('[sources.who]\nseeds = ["https://www.who.int/publications/no-such-listing"]\n')
    assert main(["guidelines", "check", "--sample", "--sources", "who", "--set",
                 f"guidelines.sources_config='{sources}'"]) == 1
    captured = capsys.readouterr()
    assert "who: broken: 0 links" in captured.out and "broken source(s): who" in captured.err


@pytest.mark.parametrize("flag", ["--max-listings", "--max-articles"])
def test_check_limits_are_validated(flag, capsys):
    assert main(["guidelines", "check", "--sample", flag, "0"]) == 2
    assert flag in capsys.readouterr().err
