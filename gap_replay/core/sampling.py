"""Seeded hashes in Python, bit for bit as Spark's ``xxhash64`` expression computes them, so that a rule a
stage applies in a Python worker (before its rows ever reach Spark) and the rule the mix applies in Spark agree.

Spark's ``xxhash64(a, b, ...)`` hashes each value with the previous hash as the seed, starting from 42: a
string as its UTF-8 bytes, an int literal as 4 little-endian bytes (8 when it needs a long). The hashing itself
is the maintained ``xxhash`` package's XXH64.
"""

from __future__ import annotations

import struct

from xxhash import xxh64_intdigest

SPARK_SEED = 42
U_BITS = 63  # the mix's uniform number u is in [0, 2^63)
U_RANGE = 1 << U_BITS
_UNSIGNED = (1 << 64) - 1


def _value_bytes(value: int | str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    return struct.pack("<i", value) if -(1 << 31) <= value < (1 << 31) else struct.pack("<q", value)


def spark_xxhash64(*values: int | str) -> int:
    """``xxhash64(values...)`` as Spark computes it over literals (ints) and strings, as an unsigned number."""
    digest = SPARK_SEED
    for value in values:
        digest = xxh64_intdigest(_value_bytes(value), seed=digest & _UNSIGNED)
    return digest


_HEADS: dict[int, int] = {}  # the hash of each seed: the start of every document's chain


def mix_u(seed: int, doc_id: str) -> int:
    """The mix's ``u`` of a document, ``xxhash64(seed, id, "sample") & (2^63 - 1)``: the seeded order in which
    the mix takes a part's documents (mixer/job.py) and replay's read-time sample keeps them (replay/sample.py)."""
    head = _HEADS.get(seed)
    if head is None:
        head = _HEADS[seed] = spark_xxhash64(seed)
    return xxh64_intdigest(b"sample", seed=xxh64_intdigest(doc_id.encode("utf-8"), seed=head)) & (U_RANGE - 1)
