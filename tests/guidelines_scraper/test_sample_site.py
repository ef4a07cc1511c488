"""Crawl + extract the embedded sample site (gap_replay/sample/guidelines_site) end to end."""

from __future__ import annotations

import json

import pytest

from gap_replay.core.outcome import Drop, outcomes_to_batches
from gap_replay.core.schema import documents_to_batch
from gap_replay.guidelines_scraper.crawl import crawl
from gap_replay.guidelines_scraper.extract import document_id, extract_records
from gap_replay.guidelines_scraper.fetch import Fetcher
from gap_replay.guidelines_scraper.local_site import (
    sample_mirror,
    sample_site_root,
    sample_sources_path,
    serve_directory,
)
from gap_replay.guidelines_scraper.raw_store import RawStore
from gap_replay.guidelines_scraper.sources import load_sources, select_sources

WHO, NICE, WIKI = "https://www.who.int", "https://www.nice.org.uk", "https://www.wikidoc.org/index.php"

KEPT = {
    f"{WHO}/publications/i/item/sepsis-triage-adults": "Recognition and early management of sepsis in adults",
    f"{WHO}/publications/i/item/childhood-asthma": "Management of asthma in children aged 5 to 11 years",
    f"{WHO}/publications/i/item/diabetic-foot": "Prevention and care of foot ulcers in people with diabetes",
    f"{NICE}/guidance/ng901/chapter/recommendations": "Hypertension in adults: diagnosis and management",
    f"{NICE}/guidance/ng902/chapter/recommendations": "Falls in older people: assessing risk and prevention",
    f"{NICE}/guidance/ng905/chapter/recommendations": "Otitis media (acute) in children: antimicrobial prescribing",
    f"{WIKI}/Community-acquired_pneumonia": "Community-acquired pneumonia",
    f"{WIKI}/Hypertension_in_adults:_diagnosis_and_management": "Hypertension in adults: diagnosis and management",
}
DROPPED = {
    f"{WHO}/publications/i/item/draft-tuberculosis-screening-prisons": ("fetch_error", "disallowed by robots.txt"),
    f"{NICE}/guidance/ng903/chapter/recommendations": ("fetch_error", "404"),
    f"{WIKI}/Pertussis": ("too_short", None),
}


def tag_of(url: str) -> str:
    return "who" if url.startswith(WHO) else "nice" if url.startswith(NICE) else "wikidoc"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    sources = load_sources(sample_sources_path())
    selected = select_sources(sources, ["who", "nice", "wikidoc"])
    path = tmp_path_factory.mktemp("raw")
    with serve_directory(sample_site_root()) as base:
        mirror = sample_mirror(base, selected)
        with RawStore(path) as store, Fetcher(min_delay=0) as fetcher:
            first = crawl(selected, store, fetcher=fetcher, mirror=mirror)
        with Fetcher(min_delay=0) as fetcher:
            second = crawl(selected, RawStore(path), fetcher=fetcher, mirror=mirror)
            second_requests = fetcher.requests_made
    outcomes = list(extract_records(RawStore(path).records(kinds=["article"]), sources))
    return dict(sources=sources, first=first, second=second, second_requests=second_requests, outcomes=outcomes,
                path=path)


def test_crawl_report(sample):
    counts = {tag: (r.discovered, r.fetched, r.errors) for tag, r in sample["first"].sources.items()}
    assert counts == {"who": (4, 4, 1), "nice": (4, 4, 1), "wikidoc": (3, 3, 0)}
    assert sample["first"].sources["who"].listings == 2     # two paginated listing pages
    assert sample["first"].sources["nice"].listings == 3    # sitemap index + two sitemaps


def test_expected_documents_and_drops(sample):
    outcomes = sample["outcomes"]
    kept = {doc["url"]: doc for doc in outcomes if isinstance(doc, dict)}
    drops = {d.id: d for d in outcomes if isinstance(d, Drop)}
    assert {url: doc["title"] for url, doc in kept.items()} == KEPT
    assert len(outcomes) == len(KEPT) + len(DROPPED)
    for url, (reason, detail) in DROPPED.items():
        drop = drops[document_id(tag_of(url), url)]
        assert drop.reason == reason and drop.source == "guidelines"
        if detail is not None:
            assert drop.detail == detail
    for url, doc in kept.items():
        tag = tag_of(url)
        assert doc["id"] == document_id(tag, url) and doc["subset"] == tag and doc["license"] == "open"
        assert doc["text"].startswith(doc["title"] + "\n\n# ")
        for debris in ("cookie", "Cookie", "http", "www.", "[1]", "Accept all", "Editor-In-Chief", "References",
                       "Acknowledgements", "edit]", "Suggested citation", "Under the terms", "Figure 1",
                       "Table 1", "Download", "Subscribe", "Previous page", "See also"):
            assert debris not in doc["text"], (url, debris)
    documents_to_batch(kept.values())
    assert sum(batch.num_rows for batch in outcomes_to_batches(outcomes)) == 11


def test_cleaning_details(sample):
    docs = {doc["url"]: doc for doc in sample["outcomes"] if isinstance(doc, dict)}
    sepsis = docs[f"{WHO}/publications/i/item/sepsis-triage-adults"]["text"]
    assert "# Key recommendations\n\n## Recognition at first contact" in sepsis
    assert "# Annex 1: Bedside checklist" in sepsis            # after the removed reference list
    assert "Global incidence of sepsis" not in sepsis          # the reference list itself
    assert "- Reassess the patient at least every hour" in sepsis  # a "•" paragraph became a list item
    foot = docs[f"{WHO}/publications/i/item/diabetic-foot"]
    assert json.loads(foot["extra"])["final_url"] == f"{WHO}/publications/i/item/diabetic-foot/"  # redirect
    nice = docs[f"{NICE}/guidance/ng901/chapter/recommendations"]["text"]
    assert "\n\n# 1 Recommendations\n\n" in nice and "\n\n## 1.1 Measuring blood pressure\n\n" in nice  # h3/h4 rescaled
    assert "[2022]" not in nice and "Committee members" not in nice
    pneumonia = docs[f"{WIKI}/Community-acquired_pneumonia"]["text"]
    assert "Contents" not in pneumonia and "patient information" not in pneumonia
    assert pneumonia.rstrip().endswith("Smoking cessation reduces the risk of recurrence.")


def test_cross_source_duplicate_is_kept_for_the_dedup_stage(sample):
    docs = {doc["url"]: doc for doc in sample["outcomes"] if isinstance(doc, dict)}
    nice = docs[f"{NICE}/guidance/ng901/chapter/recommendations"]
    wiki = docs[f"{WIKI}/Hypertension_in_adults:_diagnosis_and_management"]
    assert nice["text"] == wiki["text"] and nice["id"] != wiki["id"]


def test_robots_disallowed_page_never_requested(sample):
    records = {r["url"]: r for r in RawStore(sample["path"]).records(kinds=["article"])}
    draft = records[f"{WHO}/publications/i/item/draft-tuberculosis-screening-prisons"]
    assert draft["status"] is None and draft["body"] is None and draft["error"] == "disallowed by robots.txt"


def test_second_crawl_fetches_nothing_new(sample):
    for rep in sample["second"].sources.values():
        assert rep.fetched == 0 and rep.skipped_existing == rep.discovered
    assert sample["second_requests"] == 3 + 2 + 3 + 1  # robots x3, WHO listings, NICE sitemaps, AllPages
    urls = [r["url"] for r in RawStore(sample["path"]).records(kinds=["article"])]
    assert len(urls) == len(set(urls)) == 11


def test_recorded_urls_are_canonical(sample):
    for r in RawStore(sample["path"]).records():
        assert r["url"].startswith(("https://www.who.int/", "https://www.nice.org.uk/", "https://www.wikidoc.org/"))
        assert "127.0.0.1" not in (r["final_url"] or "")
