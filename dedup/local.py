"""The dedup rules and the near-duplicate candidates on the driver, in NumPy and pyarrow.

For a corpus whose narrow table (keys, id, hashes, band keys: a few hundred bytes a document) fits the driver,
up to ``DRIVER_ROWS`` documents, these take the place of the Spark jobs of :mod:`dedup.job` between the
annotation pass and the verification: each Spark job costs its planning, code generation and task scheduling
whatever its size, and at these sizes that is most of the stage. The decisions are the same, step for step
(``tests/dedup/test_local.py`` compares the two paths file for file):

- "best" is source priority (an unknown source first, as Spark's null of the priority map), then the longer
  text, then the smaller id (UTF-8 bytes), then the smaller text hash; the row's key settles what is left;
- ``duplicate_id``: every copy of an id but its best; ``exact_duplicate``: among the documents still alive,
  every copy of a text hash but its best, detail the best one's id; ``contaminated``: a document still alive
  whose benchmark overlap reaches the ratio, detail formatted as Java's ``%.3f`` (half up);
- candidate pairs: the band buckets of the documents alive with band keys, cut as
  :func:`dedup.near.candidate_pairs` cuts them (:func:`dedup.near._bucket_pairs` on the sorted keys);
- a pair's ends: every alive document of each of its two nodes, as the join on the node does.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gap_replay.dedup.exact import HASH_COLUMN, SOURCE_PRIORITY
from gap_replay.dedup.near import NODE, OVERLAP, _bucket_pairs

DRIVER_ROWS = 500_000  # up to this many documents, the rules and candidates are computed on the driver
# The candidates' texts are scored after a Python shuffle (no Spark SQL) while their ends hold up to this many
# characters, in tasks of about PAIR_TASK_CHARS characters each; above, after Spark's (which spills).
DRIVER_TEXT_CHARS = 256 << 20
PAIR_TASK_CHARS = 16 << 20
PAIR_BATCH_BYTES = 8 << 20  # and scored a batch of up to this many bytes at a time
FILE_KEY, ROW_KEY = "_file", "_row"


def priorities(sources: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """SOURCE_PRIORITY of each source; -1 for a source it does not name (Spark's null, first when ascending)."""
    names = sorted(SOURCE_PRIORITY)
    index = pc.fill_null(pc.index_in(sources, value_set=pa.array(names, pa.string())), len(names))
    return np.array([SOURCE_PRIORITY[name] for name in names] + [-1], np.int64)[index.to_numpy()]


def contamination_detail(ratio: float, ngram: int) -> str:
    """The detail of a ``contaminated`` drop, as Spark's format_string gives it (Java rounds half up)."""
    rounded = Decimal(ratio).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    return f"{rounded} of word {ngram}-grams in benchmark questions"


def _run_starts(values: pa.Array) -> np.ndarray:
    """Whether each element of a sorted array starts a run of equal values."""
    starts = np.ones(len(values), bool)
    if len(values) > 1:
        starts[1:] = pc.not_equal(values.slice(1), values.slice(0, len(values) - 1)).to_numpy(zero_copy_only=False)
    return starts


def rule_decisions(annotated: pa.Table, *, by_id: bool, exact: bool, contamination_ratio: float | None,
                   contamination_ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """(reasons, details): object arrays, None for a document kept by the id, exact-text and contamination
    rules. `annotated` has the KEY columns, id, source, ``_length``, HASH_COLUMN and OVERLAP;
    `contamination_ratio` None: no decontamination."""
    rows = annotated.num_rows
    reasons = np.full(rows, None, object)
    details = np.full(rows, None, object)
    order = pa.table({"id": annotated.column("id"), "priority": priorities(annotated.column("source")),
                      "length": annotated.column("_length"), "hash": annotated.column(HASH_COLUMN),
                      "file": annotated.column(FILE_KEY), "row": annotated.column(ROW_KEY)})
    best = [("priority", "ascending"), ("length", "descending"), ("id", "ascending"), ("hash", "ascending"),
            ("file", "ascending"), ("row", "ascending")]
    if by_id:
        ranked = pc.sort_indices(order, sort_keys=[("id", "ascending"), *best]).to_numpy()
        ids = order.column("id").take(ranked).combine_chunks()
        copies = ranked[~_run_starts(ids)]
        reasons[copies] = "duplicate_id"
        details[copies] = np.asarray(order.column("id").take(copies).to_pylist(), object)
    if exact:
        alive = np.flatnonzero(is_none(reasons))
        ranked = alive[pc.sort_indices(order.take(alive), sort_keys=[("hash", "ascending"), *best]).to_numpy()]
        starts = _run_starts(order.column("hash").take(ranked).combine_chunks())
        first = ranked[np.maximum.accumulate(np.where(starts, np.arange(len(ranked)), 0))]  # each run's best
        copies = ~starts
        reasons[ranked[copies]] = "exact_duplicate"
        details[ranked[copies]] = np.asarray(order.column("id").take(first[copies]).to_pylist(), object)
    if contamination_ratio is not None:
        overlap = annotated.column(OVERLAP).to_numpy(zero_copy_only=False).astype(float)
        contaminated = np.flatnonzero(is_none(reasons) & ~np.isnan(overlap) & (overlap >= contamination_ratio))
        reasons[contaminated] = "contaminated"
        details[contaminated] = [contamination_detail(overlap[i], contamination_ngram) for i in contaminated]
    return reasons, details


def is_none(values: np.ndarray) -> np.ndarray:
    """Which elements of an object array are None."""
    return np.fromiter((value is None for value in values), bool, len(values))


def candidate_pairs_local(nodes: np.ndarray, bands: pa.ChunkedArray | pa.Array, eligible: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """(a, b): the distinct pairs, a < b, of nodes sharing a band bucket among the `eligible` documents with band
    keys, as :func:`dedup.near.candidate_pairs` finds them."""
    bands = bands.combine_chunks() if isinstance(bands, pa.ChunkedArray) else bands
    chosen = np.flatnonzero(eligible & ~bands.is_null().to_numpy(zero_copy_only=False))
    if not len(chosen):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lists = bands.take(pa.array(chosen))
    keys = pc.list_flatten(lists).to_numpy()
    members = np.repeat(nodes[chosen], pc.list_value_length(lists).to_numpy())
    order = np.lexsort((members, keys))
    batch = pa.RecordBatch.from_arrays([pa.array(keys[order]), pa.array(members[order])], names=["key", NODE])
    found = list(_bucket_pairs(iter([batch])))
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = np.unique(np.stack([np.concatenate([part.column("a").to_numpy() for part in found]),
                                np.concatenate([part.column("b").to_numpy() for part in found])], axis=1), axis=0)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def pair_ends(a: np.ndarray, b: np.ndarray, nodes: np.ndarray, files: np.ndarray, rows: np.ndarray,
              lengths: np.ndarray | None = None) -> pa.Table:
    """(a, b, NODE, _file, _row) for each end of each pair and each document of that node (`nodes`, `files`,
    `rows`: the alive documents; with their `lengths`, a ``_length`` column too), sorted by the documents'
    keys: what the join of the pairs' ends on the node gives, in the order the tasks that read the texts look
    them up."""
    ends = np.concatenate([a, b])
    pair = np.concatenate([np.arange(len(a)), np.arange(len(a))])
    order = np.argsort(nodes, kind="stable")
    sorted_nodes = nodes[order]
    low, high = np.searchsorted(sorted_nodes, ends, "left"), np.searchsorted(sorted_nodes, ends, "right")
    counts = high - low
    which = np.repeat(np.arange(len(ends)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    documents = order[low[which] + np.arange(len(which)) - starts]
    table = pa.table({"a": pa.array(a[pair[which]], pa.int64()), "b": pa.array(b[pair[which]], pa.int64()),
                      NODE: pa.array(ends[which], pa.int64()), FILE_KEY: pa.array(files[documents], pa.int64()),
                      ROW_KEY: pa.array(rows[documents], pa.int64())})
    if lengths is not None:
        table = table.append_column("_length", pa.array(lengths[documents], pa.int64()))
    return table.sort_by([(FILE_KEY, "ascending"), (ROW_KEY, "ascending"), ("a", "ascending"), ("b", "ascending")])
