"""Real PubMed abstracts and PMC papers from ../shared/data, parsed once per session."""

from __future__ import annotations

import json

import pytest

from gap_replay.pubmed_ingest.jats import parse_jats
from gap_replay.pubmed_ingest.medline import iter_medline


@pytest.fixture(scope="session")
def real_abstracts(shared_data) -> list[dict]:
    """Every citation with an abstract in the real PubMed files (the parser drops the others)."""
    documents = []
    for path in sorted((shared_data / "pubmed").iterdir()):
        if path.name.endswith((".xml", ".xml.gz")):
            documents += [outcome for outcome in iter_medline(path, name=path.name) if isinstance(outcome, dict)]
    assert len(documents) > 700
    return documents


@pytest.fixture(scope="session")
def real_papers(shared_data) -> list[dict]:
    papers = []
    for path in sorted((shared_data / "pmc").iterdir()):
        if path.suffix in (".nxml", ".xml"):
            outcome = parse_jats(path.read_bytes(), name=path.name)
            assert isinstance(outcome, dict), outcome
            papers.append(outcome)
    assert len(papers) >= 10
    return papers


def extra(document: dict) -> dict:
    return json.loads(document["extra"] or "{}")
