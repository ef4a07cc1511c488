"""Real abstracts from ../shared/data/pubmed (read in place) and corpora built from them."""

from __future__ import annotations

import random

import pytest

from gap_replay.pubmed_ingest.medline import iter_medline


@pytest.fixture(scope="session")
def abstracts(shared_data) -> list[dict]:
    """English abstracts of the real PubMed files, one per PMID, in file order."""
    seen, documents = set(), []
    for path in sorted((shared_data / "pubmed").iterdir()):
        if not path.name.endswith((".xml", ".xml.gz")):
            continue
        for outcome in iter_medline(path, name=path.name):
            if isinstance(outcome, dict) and outcome["id"] not in seen and len(outcome["text"].split()) >= 60:
                seen.add(outcome["id"])
                documents.append(outcome)
    assert len(documents) > 500
    return documents


def edit_words(text: str, edits: int, rng: random.Random) -> str:
    """`edits` random word substitutions, spread over the text."""
    words = text.split()
    for position in rng.sample(range(len(words)), min(edits, len(words))):
        words[position] = f"zq{rng.randrange(10**6)}"
    return " ".join(words)
