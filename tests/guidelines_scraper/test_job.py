"""The Spark side of the guidelines stage: crawl units as Spark tasks (politeness across executors),
extraction and title deduplication on Spark, which must agree with the pure Python path (the
golden files of test_source_sites)."""

from __future__ import annotations

import re
from collections import defaultdict


from gap_replay.core.spark import spark_schema
from gap_replay.guidelines_scraper.crawl import crawl_units
from gap_replay.guidelines_scraper.extract import document_id
from gap_replay.guidelines_scraper.fetch import host_of
from gap_replay.guidelines_scraper.job import (
    EXTRACT_SCHEMA,
    crawl_on_spark,
    crawl_tasks,
    deduplicate_titles,
    extract_partition,
    latest_articles,
)
from gap_replay.guidelines_scraper.local_site import host_mirror, serve_site
from gap_replay.guidelines_scraper.raw_store import RawStore, read_warc_records
from gap_replay.guidelines_scraper.sources import load_sources, parse_sources

from .test_source_sites import EXPECTED, OPEN_TAGS, SITES


def golden(tag: str) -> dict[str, tuple]:
    """{document id: ("kept", text) | (reason, detail)} from fixtures/expected/<tag>.txt."""
    out = {}
    text = (EXPECTED / f"{tag}.txt").read_text(encoding="utf-8")
    for block in re.split(r"^=== ", text, flags=re.MULTILINE)[1:]:
        url, _, rest = block.partition("\n")
        doc_id = document_id(tag, url)
        if rest.startswith("DROP "):
            reason, _, detail = rest[5:].strip().partition(": ")
            out[doc_id] = (reason, detail)
        else:
            header, _, body = rest.partition("\n\n")
            assert header.split()[1] == doc_id
            out[doc_id] = ("kept", body.rstrip("\n"))
    return out


def test_crawl_units_group_sources_sharing_a_host():
    def source(tag, hosts):
        return parse_sources({tag: dict(name=tag, base_url=f"https://{hosts[0].lstrip('.')}", seeds=["/"],
                                        discovery="static", allowed_hosts=hosts)})[tag]

    a, b = source("a", ["www.a.org"]), source("b", ["www.b.org", "cdn.shared.org"])
    c, d = source("c", ["www.c.org", ".shared.org"]), source("d", ["www.d.org"])
    assert [[s.tag for s in unit] for unit in crawl_units([a, b, c, d])] == [["a"], ["b", "c"], ["d"]]
    builtin = crawl_units(load_sources().values())
    assert all(len(unit) == 1 for unit in builtin)  # the 16 sites share no host: one task each
    assert [s.tag for unit in builtin for s in unit] == list(load_sources())


def test_spark_crawl_one_task_per_site_and_extraction_matches_goldens(spark, tmp_path):
    sources = [load_sources()[tag] for tag in OPEN_TAGS]
    raw = tmp_path / "raw"
    finished = []
    with serve_site(SITES) as site:
        tasks = crawl_tasks(sources, str(raw), {"min_delay": 0.0, "max_retries": 0, "read_timeout": 10.0},
                            host_mirror(site.base, sources, SITES))
        assert len(tasks) == len(OPEN_TAGS)
        report = crawl_on_spark(spark, tasks, lambda task, reports: finished.append(sorted(reports)))
    assert sorted(tag for tags in finished for tag in tags) == sorted(OPEN_TAGS)  # reported as each task ended
    assert list(report.sources) == OPEN_TAGS
    assert site.served and all(count == 1 for count in site.served.values())  # nothing fetched twice

    # Politeness across executors: every record of a host was written by one task's writer.
    writers_by_host = defaultdict(set)
    store = RawStore(raw)
    for file in store.files():
        token = file.name.split("-")[2]
        for url in (row["url"] for row in read_warc_records(file)):
            writers_by_host[host_of(url)].add(token)
    assert writers_by_host and all(len(tokens) == 1 for tokens in writers_by_host.values()), writers_by_host
    assert writers_by_host["joulecma.ca"] == writers_by_host["www.canada.ca"]  # one source, one task

    by_tag = {source.tag: source for source in sources}
    files = [str(path) for path in store.files()]
    outcomes = latest_articles(spark, files, OPEN_TAGS).mapInArrow(extract_partition(by_tag),
                                                                    spark_schema(EXTRACT_SCHEMA))
    rows = deduplicate_titles(outcomes).collect()
    got = {row["id"]: ("kept", row["text"]) if row["drop_reason"] is None else (row["drop_reason"], row["drop_detail"])
           for row in rows}
    expected = {doc_id: outcome for tag in OPEN_TAGS for doc_id, outcome in golden(tag).items()}
    assert len(rows) == len(got) == len(expected)
    assert got == expected
