"""Exact duplicates: documents whose normalised text is the same.

Normalisation lower-cases, folds Unicode compatibility forms, drops punctuation and collapses
whitespace, so copies that differ only in formatting (a guideline served as two pages with other
markup, an abstract re-published with other line breaks) hash alike.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator

import pyarrow as pa

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)

# Which copy survives, best first: papers > abstracts > guidelines > replay, then the longer text,
# then the smallest id. A full paper carries its abstract, so it beats the abstract-only record.
SOURCE_PRIORITY = {"pubmed_papers": 0, "pubmed_abstracts": 1, "guidelines": 2, "replay": 3}


def normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", text).strip()


def text_hash(text: str) -> str:
    """128-bit hex digest of the normalised text."""
    return hashlib.blake2b(normalise_text(text).encode("utf-8"), digest_size=16).hexdigest()


HASH_COLUMN = "text_hash"


def add_text_hashes(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow core: append the HASH_COLUMN to each document batch."""
    for batch in batches:
        hashes = pa.array([text_hash(text) for text in batch.column("text").to_pylist()], pa.string())
        yield pa.RecordBatch.from_arrays([*batch.columns, hashes], names=[*batch.schema.names, HASH_COLUMN])
