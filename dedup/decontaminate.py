"""Benchmark decontamination: drop a training text when most of its word n-grams occur in benchmark questions.

The paper's rule (MEDITRON, section 4.1): a document is contaminated when at least 80% of its word
8-grams occur in the benchmarks' test questions. Words are those of the normalised text
(:func:`dedup.exact.normalise_bytes`), as for MinHash shingles, so punctuation and case do not matter.
The share counts n-gram occurrences (a repeated n-gram counts each time); a document with fewer
than n words has no n-gram and is never contaminated.

Benchmark files are JSON Lines, one question per line: a ``question`` string and optionally
``options``, a mapping of labels to answer texts (MedQA), a list of them, or one string. The question
and each option are separate texts: no n-gram spans two of them.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

from gap_replay.core import storage
from gap_replay.core.shards import InputError
from gap_replay.core.ingest import read_json_objects
from gap_replay.dedup.minhash import TextBuffer, ngram_spans, poly_hash64_spans, word_spans

BENCHMARK_SUFFIXES = (".jsonl", ".jsonl.gz", ".json")


def benchmark_files(paths: Iterable[str]) -> list[str]:
    """The files named, directories expanded to the JSONL files inside them (sorted)."""
    files: list[str] = []
    for path in paths:
        uri = storage.absolute_uri(path)
        if not storage.exists(uri):
            raise InputError(f"benchmark file not found: {path}")
        found = storage.list_files(uri, suffix="")
        if found:
            files += [name for name in found if name.endswith(BENCHMARK_SUFFIXES)]
        else:
            files.append(uri)
    return files


def _read_bytes(uri: str) -> bytes:
    fs, path = storage.resolve(uri)
    with fs.open_input_stream(path) as stream:
        data = stream.read()
    return gzip.decompress(data) if uri.endswith(".gz") else data


def benchmark_texts(files: Sequence[str]) -> list[str]:
    """Questions and options of every benchmark file, as separate texts."""
    texts: list[str] = []
    for uri in files:
        for number, record in enumerate(read_json_objects(uri, "benchmark file"), 1):
            if not isinstance(record.get("question"), str):
                raise InputError(f"benchmark file {uri}, record {number}: expected an object with a 'question' string")
            texts.append(record["question"])
            options = record.get("options")
            if isinstance(options, dict):
                texts += [str(value) for value in options.values()]
            elif isinstance(options, list):
                texts += [str(value) for value in options]
            elif isinstance(options, str):
                texts.append(options)
    return texts


def files_digest(files: Sequence[str]) -> str:
    """Identity of the benchmark files' contents (for the stage fingerprint)."""
    digest = hashlib.sha256()
    for uri in files:
        digest.update(uri.encode() + b"\0" + hashlib.sha256(_read_bytes(uri)).digest())
    return digest.hexdigest()[:16]


def ngram_hashes(buffer: TextBuffer, n: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every word n-gram of every document, and each document's range in them."""
    spans = ngram_spans(word_spans(buffer), n, whole_if_short=False)
    return poly_hash64_spans(buffer.data, spans.start, spans.end), spans.doc_offsets


def benchmark_ngrams(texts: Sequence[str], n: int) -> np.ndarray:
    """Sorted unique hashes of the word n-grams of the benchmark texts."""
    hashes, _ = ngram_hashes(TextBuffer.from_texts(texts), n)
    return np.unique(hashes)


def overlap_ratios(buffer: TextBuffer, benchmark: np.ndarray, n: int) -> np.ndarray:
    """Per document, the share of its word n-grams found in `benchmark` (NaN without n-grams)."""
    hashes, offsets = ngram_hashes(buffer, n)
    counts = np.diff(offsets)
    ratios = np.full(len(counts), np.nan)
    if len(hashes) == 0 or len(benchmark) == 0:
        ratios[counts > 0] = 0.0
        return ratios
    position = np.minimum(np.searchsorted(benchmark, hashes), len(benchmark) - 1)
    found = (benchmark[position] == hashes).astype(np.int64)
    cumulative = np.concatenate([[0], np.cumsum(found)])
    hits = cumulative[offsets[1:]] - cumulative[offsets[:-1]]
    has = counts > 0
    ratios[has] = hits[has] / counts[has]
    return ratios
