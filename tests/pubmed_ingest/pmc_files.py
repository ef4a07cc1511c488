"""The real PMC articles in ../shared/data/pmc, parsed once per test run."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

from gap_replay.pubmed_ingest.jats import parse_jats

PMC = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pmc"


@cache
def parsed_article(file_name: str) -> dict:
    """Our document of a PMC article (a Drop fails the calling test)."""
    document = parse_jats((PMC / file_name).read_bytes(), name=file_name)
    assert isinstance(document, dict), document
    return document


@cache
def article_tree(file_name: str) -> etree._Element:
    return etree.fromstring((PMC / file_name).read_bytes(), etree.XMLParser(resolve_entities=False, no_network=True))
