"""MinHash signatures of word n-gram shingles, vectorised over batches of documents.

Definitions (what makes a signature reproducible, and equal to ``datasketch.MinHash``'s):

* **Text.** A document's text is normalised by :func:`dedup.exact.normalise_bytes` (NFKC, case-folded,
  every run of non-alphanumeric characters turned into one space). Its *words* are the pieces
  between single spaces.
* **Shingles.** The shingles of a document with ``m`` words are its ``m - n + 1`` runs of ``n``
  consecutive words; a document with ``1 <= m < n`` words has one shingle, all its words; an empty one
  has none. A shingle's **bytes** are the UTF-8 of its words joined by one space (ASCII 0x20), i.e.
  ``" ".join(words[i:i + n]).encode("utf-8")``, which is a slice of the normalised text.
* **Shingle hash** (32 bits, the value MinHash permutes), one of
    - ``"poly64"`` (default): the polynomial hash of the bytes modulo 2**64 (Horner: ``h = h * P + byte``
      with ``P = POLY_MULTIPLIER``), xor-ed with ``len * LENGTH_MULTIPLIER``, passed through the 64-bit
      MurmurHash3 finaliser; the top 32 bits. :func:`poly_hash32` is the one-value reference, usable as
      ``datasketch.MinHash(hashfunc=poly_hash32)``. Computed for all shingles of a batch at once from
      prefix sums over the batch's bytes.
    - ``"sha1"``: datasketch's default ``sha1_hash32`` (first 4 bytes of SHA-1, little-endian), so the
      signatures equal those of a plain ``datasketch.MinHash()``; one ``hashlib`` call per shingle.
* **Permutations**, as datasketch 2.x draws and applies them (``seed``, ``num_perm``):
    - ``"affine32"`` (datasketch's default): ``a`` = 2 * randint(0, 2**31) + 1 and ``b`` = randint(0, 2**32)
      drawn as two vectors of ``num_perm`` uint32 from ``numpy.random.RandomState(seed)``; the hash is first
      mixed by the 32-bit MurmurHash3 finaliser, then ``a * h + b`` modulo 2**32.
    - ``"legacy"`` (datasketch < 2.0): pairs ``(a, b)`` drawn one permutation at a time,
      ``a`` = randint(1, 2**61 - 1), ``b`` = randint(0, 2**61 - 1) (uint64); ``(a * h + b)`` computed in uint64
      (so wrapping modulo 2**64), then modulo the Mersenne prime 2**61 - 1, then the low 32 bits.
  A signature holds, per permutation, the minimum over the document's shingles, or 2**32 - 1 for a
  document without shingles (datasketch's empty value).

Signatures are computed with NumPy over many documents at once: no Python loop per shingle (except
``"sha1"``'s hashlib call) and none per permutation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from gap_replay.dedup.exact import normalise_bytes

SCHEMES = ("affine32", "legacy")
HASHES = ("poly64", "sha1")

MERSENNE_PRIME = (1 << 61) - 1
MAX_HASH32 = (1 << 32) - 1
POLY_MULTIPLIER = 0x9E3779B97F4A7C15  # odd, so it has an inverse modulo 2**64
LENGTH_MULTIPLIER = 0xC2B2AE3D27D4EB4F
_MASK64 = (1 << 64) - 1

_U64 = np.uint64
_U32 = np.uint32

# Documents are processed in chunks of about this many bytes of normalised text (a longer document is a
# chunk of its own), and permuted in blocks of about this many shingles, to bound temporary memory.
CHUNK_BYTES = 1 << 20
BLOCK_SHINGLES = 4096
PERMUTE_SHINGLES = 1 << 16  # affine32: shingles permuted together, one permutation at a time
PAIR_TEXT_CHARS = 4 << 20  # candidate pairs are compared in groups of about this many characters of text


# --------------------------------------------------------------------------------------------------
# Mixing functions (MurmurHash3 finalisers), scalar references and vectorised versions.

# MurmurHash3's finalisers: (shift, multiplier, shift, multiplier, shift) for each word size.
_FMIX64 = (33, 0xFF51AFD7ED558CCD, 33, 0xC4CEB9FE1A85EC53, 33)
_FMIX32 = (16, 0x85EBCA6B, 13, 0xC2B2AE35, 16)


def fmix64_int(value: int) -> int:
    shift1, multiplier1, shift2, multiplier2, shift3 = _FMIX64
    value &= _MASK64
    value ^= value >> shift1
    value = (value * multiplier1) & _MASK64
    value ^= value >> shift2
    value = (value * multiplier2) & _MASK64
    return value ^ (value >> shift3)


def _fmix(values: np.ndarray, word: type, steps: tuple[int, int, int, int, int]) -> np.ndarray:
    shift1, multiplier1, shift2, multiplier2, shift3 = (word(step) for step in steps)
    values = values ^ (values >> shift1)  # a copy: the caller's array is left alone
    values *= multiplier1
    values ^= values >> shift2
    values *= multiplier2
    values ^= values >> shift3
    return values


def fmix64(values: np.ndarray) -> np.ndarray:
    return _fmix(values, _U64, _FMIX64)


def fmix32(values: np.ndarray) -> np.ndarray:
    return _fmix(values, _U32, _FMIX32)


def poly_hash64(data: bytes) -> int:
    """The 64-bit shingle hash of one byte string (reference for the vectorised version)."""
    value = 0
    for byte in data:
        value = (value * POLY_MULTIPLIER + byte) & _MASK64
    return fmix64_int(value ^ ((len(data) * LENGTH_MULTIPLIER) & _MASK64))


def poly_hash32(data: bytes) -> int:
    """The ``"poly64"`` 32-bit shingle hash: a ``hashfunc`` for ``datasketch.MinHash``."""
    return poly_hash64(data) >> 32


def sha1_hash32(data: bytes) -> int:
    """datasketch's default hash: the first 4 bytes of SHA-1, little-endian."""
    return int.from_bytes(hashlib.sha1(data).digest()[:4], "little")


# --------------------------------------------------------------------------------------------------
# Batches of normalised texts as one byte buffer, and spans (words, shingles) inside it.

@dataclass
class TextBuffer:
    """Normalised texts of a batch, concatenated: ``data[offsets[i]:offsets[i + 1]]`` is text ``i``."""

    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64, len = documents + 1

    @classmethod
    def from_normalised(cls, normalised: Sequence[bytes]) -> TextBuffer:
        offsets = np.zeros(len(normalised) + 1, np.int64)
        np.cumsum([len(item) for item in normalised], out=offsets[1:])
        return cls(np.frombuffer(b"".join(normalised), np.uint8), offsets)

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> TextBuffer:
        return cls.from_normalised([normalise_bytes(text) for text in texts])

    def __len__(self) -> int:
        return len(self.offsets) - 1


@dataclass
class Spans:
    """Byte ranges ``[start, end)`` in a TextBuffer, grouped by document: document ``i`` owns the spans
    ``doc_offsets[i]:doc_offsets[i + 1]``."""

    start: np.ndarray  # int64
    end: np.ndarray  # int64
    doc_offsets: np.ndarray  # int64, len = documents + 1

    def counts(self) -> np.ndarray:
        return np.diff(self.doc_offsets)


def word_spans(buffer: TextBuffer) -> Spans:
    """The words of every document (normalised text: words separated by exactly one space, none at
    either end, so a word starts at its document's start or after a space, and ends at a space or at
    its document's end)."""
    data, offsets = buffer.data, buffer.offsets
    starts_doc, ends_doc = offsets[:-1], offsets[1:]
    nonempty = ends_doc > starts_doc
    spaces = np.flatnonzero(data == 0x20)
    is_start = np.zeros(len(data) + 1, bool)
    is_start[starts_doc[nonempty]] = True
    is_start[spaces + 1] = True
    is_end = np.zeros(len(data) + 1, bool)
    is_end[ends_doc[nonempty]] = True
    is_end[spaces] = True
    start = np.flatnonzero(is_start[:-1]).astype(np.int64)
    end = np.flatnonzero(is_end).astype(np.int64)
    # Words are ordered, so a document's words are those whose start lies in its byte range.
    doc_offsets = np.searchsorted(start, offsets, side="left").astype(np.int64)
    return Spans(start, end, doc_offsets)


def ngram_spans(words: Spans, n: int, whole_if_short: bool = True) -> Spans:
    """Runs of ``n`` consecutive words; a document with fewer (but some) words gets one span of all
    of them when `whole_if_short`, none otherwise."""
    counts = words.counts()
    if whole_if_short:
        per_doc = np.where(counts >= n, counts - n + 1, np.minimum(counts, 1))
        width = np.minimum(counts, n)
    else:
        per_doc = np.maximum(counts - n + 1, 0)
        width = np.full_like(counts, n)
    doc_offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(per_doc, out=doc_offsets[1:])
    total = int(doc_offsets[-1])
    first_word = np.arange(total, dtype=np.int64) - np.repeat(doc_offsets[:-1] - words.doc_offsets[:-1], per_doc)
    last_word = first_word + np.repeat(width - 1, per_doc)
    return Spans(words.start[first_word], words.end[last_word], doc_offsets)


# --------------------------------------------------------------------------------------------------
# Vectorised hashing of spans.

class _Powers:
    """P**k and P**-k modulo 2**64 for k < len, grown on demand."""

    def __init__(self) -> None:
        self.forward = np.ones(1, _U64)
        self.inverse = np.ones(1, _U64)

    def ensure(self, length: int) -> None:
        if len(self.forward) >= length:
            return
        length = max(length, 2 * len(self.forward))
        self.forward = np.cumprod(np.concatenate([[_U64(1)], np.full(length - 1, POLY_MULTIPLIER, _U64)]), dtype=_U64)
        inverse = pow(POLY_MULTIPLIER, -1, 1 << 64)
        self.inverse = np.cumprod(np.concatenate([[_U64(1)], np.full(length - 1, inverse, _U64)]), dtype=_U64)


_POWERS = _Powers()


def poly_hash64_spans(data: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """poly_hash64 of every ``data[start[i]:end[i]]``, from prefix sums over the buffer.

    With ``S[k] = sum_{j<k} data[j] * P**-j``, the Horner hash of ``data[l:r]`` is
    ``(S[r] - S[l]) * P**(r-1)``, all modulo 2**64 (unsigned overflow is that modulo). Spans are taken
    in runs whose bytes lie within about CHUNK_BYTES of each other, so the prefix sums (and the table of
    powers) stay that small whatever the buffer.
    """
    if len(start) == 0:
        return np.zeros(0, _U64)
    if int(end.max()) - int(start.min()) > 2 * CHUNK_BYTES and len(start) > 1:
        order = None if np.all(start[1:] >= start[:-1]) else np.argsort(start, kind="stable")
        ordered_start = start if order is None else start[order]
        ordered_end = end if order is None else end[order]
        result = np.empty(len(start), _U64)
        first = 0
        while first < len(start):
            last = max(int(np.searchsorted(ordered_start, ordered_start[first] + CHUNK_BYTES, side="left")), first + 1)
            values = _poly_hash64_window(data, ordered_start[first:last], ordered_end[first:last])
            if order is None:
                result[first:last] = values
            else:
                result[order[first:last]] = values
            first = last
        return result
    return _poly_hash64_window(data, start, end)


def _poly_hash64_window(data: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    low, high = int(start.min()), int(end.max())
    _POWERS.ensure(high - low + 1)
    prefix = np.zeros(high - low + 1, _U64)
    np.cumsum(np.multiply(data[low:high], _POWERS.inverse[: high - low], dtype=_U64), out=prefix[1:])
    start, end = start - low, end - low
    length = end - start
    # end >= 1 for every non-empty span; an empty span (never produced) would hash as 0 anyway.
    value = (prefix[end] - prefix[start]) * _POWERS.forward[np.maximum(end - 1, 0)]
    value ^= length.astype(_U64) * _U64(LENGTH_MULTIPLIER)
    return fmix64(value)


def hash32_spans(data: np.ndarray, spans: Spans, hash_name: str) -> np.ndarray:
    if hash_name == "poly64":
        return (poly_hash64_spans(data, spans.start, spans.end) >> _U64(32)).astype(_U32)
    if hash_name == "sha1":
        raw = data.tobytes()
        sha1 = hashlib.sha1
        digests = b"".join(sha1(raw[s:e]).digest()[:4] for s, e in zip(spans.start.tolist(), spans.end.tolist()))
        return np.frombuffer(digests, "<u4").astype(_U32)
    raise ValueError(f"unknown shingle hash {hash_name!r}; known: {', '.join(HASHES)}")


# --------------------------------------------------------------------------------------------------
# Permutations and signatures.

def permutations(num_perm: int, seed: int, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) parameters datasketch 2.x draws for `seed` (see the module docstring)."""
    generator = np.random.RandomState(seed)
    if scheme == "affine32":
        a = generator.randint(0, 1 << 31, num_perm, dtype=_U32) * _U32(2) + _U32(1)
        b = generator.randint(0, 1 << 32, num_perm, dtype=_U32)
        return a, b
    if scheme == "legacy":
        pairs = np.empty((num_perm, 2), _U64)
        for i in range(num_perm):  # datasketch interleaves the draws: a0, b0, a1, b1, ...
            pairs[i, 0] = generator.randint(1, MERSENNE_PRIME, dtype=_U64)
            pairs[i, 1] = generator.randint(0, MERSENNE_PRIME, dtype=_U64)
        return pairs[:, 0].copy(), pairs[:, 1].copy()
    raise ValueError(f"unknown permutation scheme {scheme!r}; known: {', '.join(SCHEMES)}")


def _permute(hashes: np.ndarray, a: np.ndarray, b: np.ndarray, scheme: str) -> np.ndarray:
    """(num_perm, shingles) permuted values as uint32 (this layout makes the per-document minimum a
    contiguous reduction)."""
    if scheme == "affine32":
        block = a[:, None] * hashes[None, :]
        block += b[:, None]
        return block
    block = a[:, None] * hashes.astype(_U64)[None, :]
    block += b[:, None]
    block %= _U64(MERSENNE_PRIME)
    return (block & _U64(MAX_HASH32)).astype(_U32)


def minhash_signatures(hashes: np.ndarray, doc_offsets: np.ndarray, a: np.ndarray, b: np.ndarray,
                       scheme: str) -> np.ndarray:
    """Signatures (documents, num_perm) uint32 from the 32-bit hashes of every document's shingles."""
    documents, num_perm = len(doc_offsets) - 1, len(a)
    signatures = np.full((documents, num_perm), MAX_HASH32, _U32)
    if len(hashes) == 0:
        return signatures
    if scheme == "affine32":
        hashes = fmix32(hashes.astype(_U32))
        # One permutation at a time over runs of whole documents of about PERMUTE_SHINGLES shingles: the
        # run's values stay in cache through the multiply, the add and the per-document minimum.
        work = np.empty(min(len(hashes), max(PERMUTE_SHINGLES, int(np.diff(doc_offsets).max()))), _U32)
        for first, last in _chunks(doc_offsets, PERMUTE_SHINGLES):
            low, high = int(doc_offsets[first]), int(doc_offsets[last])
            if high == low:
                continue
            owners = first + np.flatnonzero(np.diff(doc_offsets[first:last + 1]))  # documents with shingles
            starts = doc_offsets[owners] - low
            values, minima = work[: high - low], np.empty((num_perm, len(owners)), _U32)
            for i in range(num_perm):
                np.multiply(hashes[low:high], a[i], out=values)
                np.add(values, b[i], out=values)
                np.minimum.reduceat(values, starts, out=minima[i])
            signatures[owners] = minima.T
        return signatures
    counts = np.diff(doc_offsets)
    owners = np.flatnonzero(counts)  # documents with at least one shingle, in order
    starts = doc_offsets[:-1][owners]
    total = len(hashes)
    for low in range(0, total, BLOCK_SHINGLES):
        high = min(low + BLOCK_SHINGLES, total)
        # Documents overlapping [low, high): their segments, clipped to the block.
        first = int(np.searchsorted(starts, low, side="right")) - 1
        last = int(np.searchsorted(starts, high, side="left"))
        segment_starts = np.maximum(starts[first:last], low) - low
        minima = np.minimum.reduceat(_permute(hashes[low:high], a, b, scheme), segment_starts, axis=1).T
        rows = owners[first:last]
        if starts[first] < low:  # the first document began in an earlier block
            np.minimum(minima[0], signatures[rows[0]], out=minima[0])
        signatures[rows] = minima
    return signatures


def _chunks(offsets: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Consecutive document ranges of about `limit` bytes each (at least one document)."""
    ranges, first, documents = [], 0, len(offsets) - 1
    while first < documents:
        last = int(np.searchsorted(offsets, offsets[first] + limit, side="right")) - 1
        last = max(last, first + 1)
        ranges.append((first, min(last, documents)))
        first = min(last, documents)
    return ranges


@dataclass(frozen=True)
class MinHasher:
    """MinHash over word n-gram shingles; see the module docstring for the exact definitions."""

    num_perm: int = 128
    seed: int = 1
    scheme: str = "affine32"
    hash: str = "poly64"
    ngram: int = 5

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown permutation scheme {self.scheme!r}; known: {', '.join(SCHEMES)}")
        if self.hash not in HASHES:
            raise ValueError(f"unknown shingle hash {self.hash!r}; known: {', '.join(HASHES)}")
        if self.num_perm < 1 or self.ngram < 1:
            raise ValueError("num_perm and ngram must be at least 1")

    @cached_property
    def parameters(self) -> tuple[np.ndarray, np.ndarray]:
        return permutations(self.num_perm, self.seed, self.scheme)

    def shingle_spans(self, buffer: TextBuffer) -> Spans:
        return ngram_spans(word_spans(buffer), self.ngram)

    def signatures_of_buffer(self, buffer: TextBuffer) -> np.ndarray:
        a, b = self.parameters
        parts = []
        for first, last in _chunks(buffer.offsets, CHUNK_BYTES):
            low, high = int(buffer.offsets[first]), int(buffer.offsets[last])
            chunk = TextBuffer(buffer.data[low:high], buffer.offsets[first:last + 1] - low)
            spans = self.shingle_spans(chunk)
            hashes = hash32_spans(chunk.data, spans, self.hash)
            parts.append(minhash_signatures(hashes, spans.doc_offsets, a, b, self.scheme))
        if not parts:
            return np.full((0, self.num_perm), MAX_HASH32, _U32)
        return np.concatenate(parts)

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """(documents, num_perm) uint32 signatures of raw texts."""
        return self.signatures_of_buffer(TextBuffer.from_texts(texts))


def shingles(text: str, n: int = 5) -> list[bytes]:
    """The shingle bytes of one text, in order, duplicates included (reference and tests)."""
    words = normalise_bytes(text).split(b" ") if text else []
    words = [word for word in words if word]
    if not words:
        return []
    if len(words) < n:
        return [b" ".join(words)]
    return [b" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


# --------------------------------------------------------------------------------------------------
# LSH banding.

def _band_multipliers(rows: int) -> np.ndarray:
    values, state = [], 0x5DEECE66D
    for _ in range(rows):
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        values.append(fmix64_int(state) | 1)
    return np.array(values, _U64)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(documents, bands) int64 keys: band ``i`` of a document is its values ``i*rows:(i+1)*rows``;
    two documents share a key in band ``i`` when those values agree (up to 64-bit hash collisions)."""
    documents = signatures.shape[0]
    if bands * rows > signatures.shape[1]:
        raise ValueError(f"{bands} bands x {rows} rows exceed {signatures.shape[1]} permutations")
    values = signatures[:, : bands * rows].reshape(documents, bands, rows).astype(_U64)
    values *= _band_multipliers(rows)[None, None, :]
    keys = values.sum(axis=2, dtype=_U64)
    keys += (np.arange(bands, dtype=_U64) + _U64(1)) * _U64(LENGTH_MULTIPLIER)
    return fmix64(keys).view(np.int64)


# --------------------------------------------------------------------------------------------------
# Exact Jaccard of shingle sets (candidate verification).

def shingle_sets(texts: Sequence[str], n: int) -> list[np.ndarray]:
    """Sorted unique 64-bit hashes of each text's shingles (poly64, whatever the MinHash hash)."""
    buffer = TextBuffer.from_texts(texts)
    spans = ngram_spans(word_spans(buffer), n)
    hashes = poly_hash64_spans(buffer.data, spans.start, spans.end)
    return [np.unique(hashes[spans.doc_offsets[i]:spans.doc_offsets[i + 1]]) for i in range(len(texts))]


def pair_jaccard(left: Sequence[str], right: Sequence[str], n: int) -> np.ndarray:
    """Exact Jaccard similarity of the shingle sets of ``left[i]`` and ``right[i]`` for every i (the same
    value as ``jaccard(*shingle_sets([left[i], right[i]], n))``), with no Python loop over shingles.
    Pairs are compared in groups of about PAIR_TEXT_CHARS characters, to bound memory."""
    if len(left) != len(right):
        raise ValueError("left and right must have the same length")
    sizes = np.cumsum([len(a) + len(b) for a, b in zip(left, right)])
    results, first = [np.zeros(0)], 0
    while first < len(left):
        last = max(int(np.searchsorted(sizes, (sizes[first - 1] if first else 0) + PAIR_TEXT_CHARS)), first + 1)
        results.append(_pair_jaccard(left[first:last], right[first:last], n))
        first = last
    return np.concatenate(results)


def _pair_jaccard(left: Sequence[str], right: Sequence[str], n: int) -> np.ndarray:
    pairs = len(left)
    buffer = TextBuffer.from_texts([*left, *right])
    spans = ngram_spans(word_spans(buffer), n)
    hashes = poly_hash64_spans(buffer.data, spans.start, spans.end)
    owner = np.repeat(np.arange(2 * pairs, dtype=np.int64), spans.counts())  # left i, then right i + pairs
    # The shingle hashes renumbered 0..distinct-1, then one sorted key per (pair, shingle, side): equal
    # neighbours are a shingle repeated in one text, then the same shingle on both sides of a pair.
    order = np.argsort(hashes)  # (sorting outright: NumPy's hash-based unique is slower here)
    ordered = hashes[order]
    ids = np.empty(len(hashes), np.int64)
    ids[order] = np.cumsum(np.concatenate([[False], ordered[1:] != ordered[:-1]]))
    width = int(ids.max()) + 1 if len(ids) else 1
    keys = np.sort(((owner % pairs) * width + ids) * 2 + owner // pairs)
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    sizes = np.bincount(keys // (2 * width) * 2 + (keys & 1), minlength=2 * pairs)  # per (pair, side)
    shingle = keys >> 1
    shared = shingle[1:] == shingle[:-1]
    common = np.bincount(shingle[1:][shared] // width, minlength=pairs)
    union = sizes[0::2] + sizes[1::2] - common
    return np.divide(common, union, out=np.ones(pairs), where=union > 0)


def jaccard(left: np.ndarray, right: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique arrays (1.0 for two empty sets)."""
    if len(left) == 0 and len(right) == 0:
        return 1.0
    common = len(np.intersect1d(left, right, assume_unique=True))
    return common / (len(left) + len(right) - common)
