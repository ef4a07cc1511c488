"""Pure cores: normalisation, shingles, datasketch-compatible signatures, LSH parameters, decontamination."""

from __future__ import annotations

import random
import re
import unicodedata

import numpy as np
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from gap_replay.dedup.decontaminate import benchmark_files, benchmark_ngrams, benchmark_texts, overlap_ratios
from gap_replay.dedup.exact import normalise_bytes, normalise_text
from gap_replay.dedup.lsh import optimal_bands
from gap_replay.dedup.minhash import (MinHasher, TextBuffer, band_keys, jaccard, ngram_spans, pair_jaccard, poly_hash32,
                           poly_hash64, poly_hash64_spans, shingle_sets, shingles, word_spans)
from gap_replay.build import sample_dir
from gap_replay.pubmed_ingest.medline import iter_medline

EDGE_TEXTS = ["", "   ", "One", "two words", "Ünïcödé — ß ﬁle ‘quoted’ 数字 ①②③ and_underscores", "a b c d e"]


def test_fast_normalisation_equals_the_regex_definition():
    rng = random.Random(5)
    for _ in range(30):
        text = "".join(chr(rng.choice([rng.randrange(0x20, 0x80), rng.randrange(0x80, 0x3000),
                                       rng.randrange(0x1F000, 0x1F700)])) for _ in range(400))
        expected = re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).casefold()).strip()
        assert normalise_text(text) == expected
        assert normalise_bytes(text) == expected.encode()


def test_shingles_are_slices_of_the_normalised_text(abstracts):
    texts = [document["text"] for document in abstracts[:40]] + EDGE_TEXTS
    buffer = TextBuffer.from_texts(texts)
    spans = ngram_spans(word_spans(buffer), 5)
    for i, text in enumerate(texts):
        expected = shingles(text)
        got = [buffer.data[s:e].tobytes() for s, e in zip(spans.start[spans.doc_offsets[i]:spans.doc_offsets[i + 1]],
                                                         spans.end[spans.doc_offsets[i]:spans.doc_offsets[i + 1]])]
        assert got == expected
    assert shingles("two words") == [b"two words"] and shingles("") == []
    hashes = poly_hash64_spans(buffer.data, spans.start, spans.end)
    assert hashes.tolist() == [poly_hash64(s) for text in texts for s in shingles(text)]


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
@pytest.mark.parametrize("shingle_hash", ["poly64", "sha1"])
def test_signatures_equal_datasketch_minhash(abstracts, scheme, shingle_hash):
    texts = [document["text"] for document in abstracts[::7][:60]] + EDGE_TEXTS
    hasher = MinHasher(num_perm=128, seed=3, scheme=scheme, hash=shingle_hash)
    signatures = hasher.signatures(texts)
    assert signatures.shape == (len(texts), 128)
    extra = {"hashfunc": poly_hash32} if shingle_hash == "poly64" else {}
    for text, signature in zip(texts, signatures):
        reference = MinHash(num_perm=128, seed=3, scheme=scheme, **extra)
        reference.update_batch(shingles(text))
        assert np.array_equal(signature.astype(np.uint64), reference.hashvalues.astype(np.uint64))


def test_signatures_do_not_depend_on_batching(abstracts):
    texts = [document["text"] for document in abstracts[:50]]
    hasher = MinHasher(num_perm=64)
    whole = hasher.signatures(texts)
    assert np.array_equal(whole, np.concatenate([hasher.signatures(texts[:17]), hasher.signatures(texts[17:])]))
    keys = band_keys(whole, 8, 8)
    assert keys.shape == (50, 8) and keys.dtype == np.int64
    assert np.array_equal(keys[3], band_keys(whole[3:4], 8, 8)[0])


@pytest.mark.parametrize("threshold, num_perm, weights", [
    (0.8, 128, (0.5, 0.5)), (0.8, 128, (0.05, 0.95)), (0.9, 256, (0.5, 0.5)), (0.5, 64, (0.3, 0.7)), (0.7, 100, (0.9, 0.1)),
])
def test_bands_and_rows_are_chosen_like_datasketch(threshold, num_perm, weights):
    assert optimal_bands(threshold, num_perm, *weights) == _optimal_param(threshold, num_perm, *weights)


def test_exact_jaccard_of_shingle_sets():
    left, right = shingle_sets(["a b c d e f g", "a b c d e f h"], 5)
    assert jaccard(left, right) == pytest.approx(2 / 4)  # {abcde, bcdef, cdefg} vs {abcde, bcdef, cdefh}
    assert jaccard(left, left) == 1.0


def test_decontamination_ratios_on_the_sample():
    files = benchmark_files([str(sample_dir() / "benchmarks")])
    grams = benchmark_ngrams(benchmark_texts(files), 8)
    documents = [outcome for path in sorted((sample_dir() / "pubmed").iterdir())
                 for outcome in iter_medline(path, name=path.name) if isinstance(outcome, dict)]
    ratios = dict(zip([d["id"] for d in documents],
                      overlap_ratios(TextBuffer.from_texts([d["text"] for d in documents]), grams, 8)))
    assert ratios["pmid:90000027"] == pytest.approx(0.92, abs=0.01)  # title + abstract; the abstract is quoted
    assert all(ratio < 0.1 for pmid, ratio in ratios.items() if pmid != "pmid:90000027")
    short = overlap_ratios(TextBuffer.from_texts(["only seven words in this short text"]), grams, 8)
    assert np.isnan(short[0])


def test_pair_jaccard_equals_the_jaccard_of_shingle_sets(abstracts):
    rng = random.Random(9)
    texts = [document["text"] for document in abstracts[:120]]
    left = [rng.choice(texts) for _ in range(150)] + ["", "", "a b", "a b c d e f g", "x y"]
    right = [text if rng.random() < 0.3 else " ".join(text.split()[rng.randrange(1, 9):]) if rng.random() < 0.5
             else rng.choice(texts) for text in left[:150]] + ["", "x", "a b", "a b c d e f h", "x y x y x y x"]
    expected = [jaccard(*shingle_sets([a, b], 5)) for a, b in zip(left, right)]
    assert pair_jaccard(left, right, 5).tolist() == expected
    assert pair_jaccard([], [], 5).tolist() == []


def test_hashes_and_signatures_do_not_depend_on_chunk_sizes(abstracts, monkeypatch):
    import gap_replay.dedup.minhash as minhash

    texts = [document["text"] for document in abstracts[:80]] + EDGE_TEXTS
    hasher = MinHasher(num_perm=32)
    buffer = TextBuffer.from_texts(texts)
    spans = ngram_spans(word_spans(buffer), 5)
    hashes = poly_hash64_spans(buffer.data, spans.start, spans.end)
    signatures = hasher.signatures(texts)
    similarities = pair_jaccard(texts[:40], texts[40:80], 5)
    monkeypatch.setattr(minhash, "CHUNK_BYTES", 300)  # far below one abstract
    monkeypatch.setattr(minhash, "PERMUTE_SHINGLES", 37)
    monkeypatch.setattr(minhash, "PAIR_TEXT_CHARS", 2000)
    assert np.array_equal(poly_hash64_spans(buffer.data, spans.start, spans.end), hashes)
    shuffled = np.random.default_rng(1).permutation(len(spans.start))
    assert np.array_equal(poly_hash64_spans(buffer.data, spans.start[shuffled], spans.end[shuffled]), hashes[shuffled])
    assert np.array_equal(hasher.signatures(texts), signatures)
    assert np.array_equal(pair_jaccard(texts[:40], texts[40:80], 5), similarities)
