"""Near-duplicates on Spark: MinHash band keys, candidate pairs, verification, connected components.

The documents' texts are read by Spark and go to Python only where they are needed; the corpus never
reaches the driver.

1. **Annotate** (one ``mapInArrow`` pass over the documents' texts, :func:`annotator`): the length,
   the exact-text hash, the benchmark overlap (decontamination) and the LSH band keys (``bands``
   int64 keys from the MinHash signature, see :mod:`dedup.minhash`). Only the text goes to Python,
   and only these narrow columns come back.
2. **Candidates** (:func:`candidate_pairs`): documents sharing a band bucket. One shuffle of (key,
   node) rows, sorted by Spark; NumPy cuts the buckets from the sorted stream. A bucket of up to
   ``PAIRWISE_BUCKET_LIMIT`` documents gives all its pairs; a larger one (boilerplate shared by many
   documents) links each member to the bucket's smallest node only, so the number of pairs stays linear.
3. **Verification** (:func:`candidate_texts`, :func:`score_pairs`, optional): the exact Jaccard
   similarity of the two documents' shingle sets (64-bit shingle hashes); pairs below the threshold are
   discarded. The pairs' ends find their texts by one join on the documents' keys (the ends broadcast
   to where the corpus lies), the two texts of a pair meet in one shuffle, and NumPy compares a few
   thousand pairs at once (:func:`dedup.minhash.pair_jaccard`).
4. **Connected components** of the remaining pairs. Up to ``DRIVER_COMPONENT_PAIRS`` candidate pairs
   (a graph of a few tens of MB), on the driver (:func:`components_of_pairs`); above, in Spark
   (:func:`connected_components`), by alternating large-star and small-star rounds (Kiveris et al.,
   "Connected Components in MapReduce and Beyond", SoCC 2014) until every component is a star
   around its smallest node.
5. **Clusters** (:func:`clusters_in_memory` after the driver's components, :func:`clusters_of` after
   Spark's): per component, the kept document is the best by source priority, then longer text, then
   smallest id; the others are ``near_duplicate`` of it.

Nodes are 64-bit ``xxhash64`` values of the document ids (seed 42, computed by the annotation pass: the
values Spark's built-in gives). Every step is a
function of the set of documents, not of their order or partitioning, so the result is the same
whatever the partitioning, and the same on either side of the size limits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gap_replay.dedup.exact import HASH_COLUMN, digest_normalised, normalise_bytes
from gap_replay.dedup.minhash import MinHasher, TextBuffer, band_keys, pair_jaccard

NODE, BANDS, OVERLAP, BANDED = "_node", "_bands", "_overlap", "_banded"  # BANDED: the document has band keys
PAIRWISE_BUCKET_LIMIT = 32
MAX_COMPONENT_ROUNDS = 200
DRIVER_COMPONENT_PAIRS = 2_000_000  # up to this many candidate pairs, scores, components and clusters on the driver

CLUSTER_SCHEMA = pa.schema(
    [
        pa.field("cluster_id", pa.string(), nullable=False,
                 metadata={"description": "Stable id of the cluster: the first 16 hex digits of sha256(kept_id)"}),
        pa.field("kept_id", pa.string(), nullable=False, metadata={"description": "The member that is kept"}),
        pa.field("size", pa.int32(), nullable=False, metadata={"description": "Number of members"}),
        pa.field("member_ids", pa.list_(pa.string()), nullable=False,
                 metadata={"description": "Ids of all members, kept one included, sorted"}),
    ],
    metadata={"gap_replay.schema_version": "1"},
)


@dataclass(frozen=True)
class Banding:
    """What the annotate pass computes per document; `hasher` None turns MinHash off."""

    hasher: MinHasher | None
    bands: int
    rows: int


ANNOTATION_INPUT = ("id", "source", "text")


def annotator(banding: Banding, benchmark=None, contamination_ngram: int = 8) -> Callable:
    """mapInArrow function: batches of key columns + ANNOTATION_INPUT in; the same minus ``text``, plus
    ``_length`` (characters), HASH_COLUMN, OVERLAP, BANDS, NODE (:func:`node_hashes`) and BANDED out.

    `benchmark` is a Spark broadcast of the sorted benchmark n-gram hashes (or None).
    """

    def annotate(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from gap_replay.dedup.decontaminate import overlap_ratios

        grams = benchmark.value if benchmark is not None else None
        for batch in batches:
            column = batch.column("text")
            normalised = [normalise_bytes(text) for text in column.to_pylist()]
            lengths = pc.utf8_length(column).cast(pa.int32())
            hashes = pa.array([digest_normalised(item) for item in normalised], pa.string())
            buffer = TextBuffer.from_normalised(normalised)
            if grams is not None:
                ratios = overlap_ratios(buffer, grams, contamination_ngram)
                overlap = pa.array(ratios, pa.float64(), mask=np.isnan(ratios))
            else:
                overlap = pa.nulls(batch.num_rows, pa.float64())
            if banding.hasher is not None:
                keys = band_keys(banding.hasher.signatures_of_buffer(buffer), banding.bands, banding.rows)
                has = np.diff(buffer.offsets) > 0  # no words, no shingles: no band keys
                offsets = np.zeros(batch.num_rows + 1, np.int32)
                np.cumsum(np.where(has, banding.bands, 0), out=offsets[1:])
                bands = pa.ListArray.from_arrays(pa.array(offsets), pa.array(keys[has].ravel(), pa.int64()),
                                                 mask=pa.array(~has))
            else:
                bands = pa.nulls(batch.num_rows, pa.list_(pa.int64()))
            kept = [name for name in batch.schema.names if name != "text"]
            nodes = pa.array(node_hashes(batch.column("id").to_pylist()), pa.int64())
            yield pa.RecordBatch.from_arrays([*(batch.column(name) for name in kept), lengths, hashes, overlap, bands,
                                              nodes, pc.is_valid(bands)],
                                             names=[*kept, "_length", HASH_COLUMN, OVERLAP, BANDS, NODE, BANDED])

    return annotate


def node_hashes(ids: list[str]) -> np.ndarray:
    """The NODE of each id: xxhash64 of its UTF-8 bytes with seed 42, as a signed 64-bit value (what Spark's
    ``xxhash64`` of the string gives)."""
    import xxhash

    return np.fromiter((xxhash.xxh64_intdigest(value.encode("utf-8"), 42) for value in ids), np.uint64,
                       len(ids)).view(np.int64)


def annotated_schema(input_schema):
    """Output schema of :func:`annotator` for an input of this (Spark) schema."""
    from pyspark.sql.types import (ArrayType, BooleanType, DoubleType, IntegerType, LongType, StringType,
                                   StructField, StructType)

    return StructType([*(field for field in input_schema.fields if field.name != "text"),
                       StructField("_length", IntegerType()), StructField(HASH_COLUMN, StringType()),
                       StructField(OVERLAP, DoubleType()), StructField(BANDS, ArrayType(LongType())),
                       StructField(NODE, LongType()), StructField(BANDED, BooleanType())])


# What the annotation pass writes for documents read from files (dedup.job.ParquetCorpus).
ANNOTATED_SCHEMA = pa.schema([("_file", pa.int64()), ("_row", pa.int64()), ("id", pa.string()), ("source", pa.string()),
                              ("_length", pa.int32()), (HASH_COLUMN, pa.string()), (OVERLAP, pa.float64()),
                              (BANDS, pa.list_(pa.int64())), (NODE, pa.int64()), (BANDED, pa.bool_())])


def _sorted_groups(batches: Iterator[pa.RecordBatch], columns: tuple[str, ...], group_by: int) -> Iterator[dict]:
    """Re-cut a stream of batches sorted by the first `group_by` of `columns` into chunks (dicts of NumPy
    arrays) that never split a group: the rows of the last group of a batch wait for the next one."""
    waiting: list[dict] = []
    for batch in batches:
        if batch.num_rows == 0:
            continue
        arrays = {name: batch.column(name).to_numpy(zero_copy_only=False) for name in columns}
        last_group = [arrays[name][-1] for name in columns[:group_by]]
        same = np.ones(batch.num_rows, bool)
        for name, value in zip(columns[:group_by], last_group):
            same &= arrays[name] == value
        cut = batch.num_rows - int(np.argmin(same[::-1])) if not same.all() else 0  # first row of the last group
        if cut == 0:
            waiting.append(arrays)
            continue
        head = {name: values[:cut] for name, values in arrays.items()}
        if waiting:
            head = {name: np.concatenate([part[name] for part in waiting] + [head[name]]) for name in columns}
        yield head
        waiting = [{name: values[cut:] for name, values in arrays.items()}]
    if waiting:
        yield {name: np.concatenate([part[name] for part in waiting]) for name in columns}


def _bucket_pairs(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow function over (key, NODE) rows sorted by key then node: the pairs of each bucket."""
    for chunk in _sorted_groups(batches, ("key", NODE), 1):
        keys, nodes = chunk["key"], chunk[NODE]
        distinct = np.ones(len(keys), bool)  # a node twice in a bucket (two documents, one id) counts once
        distinct[1:] = (keys[1:] != keys[:-1]) | (nodes[1:] != nodes[:-1])
        keys, nodes = keys[distinct], nodes[distinct]
        starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
        sizes = np.diff(np.append(starts, len(keys)))
        left, right = [], []
        for size in np.unique(sizes[sizes >= 2]).tolist():
            first = starts[sizes == size]
            if size <= PAIRWISE_BUCKET_LIMIT:  # every pair of members (nodes are sorted: a < b)
                i, j = np.triu_indices(size, 1)
                left.append(nodes[first[:, None] + i[None, :]].ravel())
                right.append(nodes[first[:, None] + j[None, :]].ravel())
            else:  # every member to the smallest one
                offsets = np.arange(1, size)
                left.append(np.repeat(nodes[first], size - 1))
                right.append(nodes[first[:, None] + offsets[None, :]].ravel())
        if left:
            yield pa.RecordBatch.from_arrays([pa.array(np.concatenate(left)), pa.array(np.concatenate(right))],
                                             names=["a", "b"])


def candidate_pairs(alive):
    """Distinct pairs (a, b), a < b, of nodes sharing a band bucket. `alive` has NODE and BANDS.

    One shuffle of (key, node) rows, sorted by Spark (so a task's memory does not grow with its share of
    the rows); the buckets are cut from the sorted stream with NumPy. Band keys are hashes of the band's
    index and values, so a key names one bucket of one band.
    """
    from pyspark.sql import functions as F

    rows = alive.select(F.explode(BANDS).alias("key"), NODE)
    return (rows.repartition("key").sortWithinPartitions("key", NODE)
            .mapInArrow(_bucket_pairs, "a long, b long").distinct())


def _similarity_function(ngram: int) -> Callable:
    """mapInArrow function over (a, b, NODE, text) rows sorted by a, b, node: each pair's similarity."""

    def similarities(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for chunk in _sorted_groups(batches, ("a", "b", NODE, "text"), 2):
            a, b, nodes, texts = chunk["a"], chunk["b"], chunk[NODE], chunk["text"]
            starts = np.flatnonzero(np.concatenate([[True], (a[1:] != a[:-1]) | (b[1:] != b[:-1])]))
            sizes = np.diff(np.append(starts, len(a)))
            second = np.minimum(starts + 1, len(a) - 1)
            regular = (sizes == 2) & (nodes[starts] == a[starts]) & (nodes[second] == b[starts])
            first_a, first_b = starts[regular], starts[regular] + 1  # rows of the a and b texts
            left, right = texts[first_a].tolist(), texts[first_b].tolist()
            pairs_a, pairs_b = [a[first_a]], [b[first_a]]
            for first, size in zip(starts[~regular].tolist(), sizes[~regular].tolist()):
                # A node shared by two documents (one id twice, or a 64-bit hash collision): the larger
                # text, as a max() over the texts chooses; a pair with a side without text is left out.
                rows = range(first, first + size)
                text_a = max((texts[row] for row in rows if nodes[row] == a[first]), default=None)
                text_b = max((texts[row] for row in rows if nodes[row] == b[first]), default=None)
                if text_a is not None and text_b is not None:
                    pairs_a.append(a[first:first + 1])
                    pairs_b.append(b[first:first + 1])
                    left.append(text_a)
                    right.append(text_b)
            yield pa.RecordBatch.from_arrays([pa.array(np.concatenate(pairs_a)), pa.array(np.concatenate(pairs_b)),
                                              pa.array(pair_jaccard(left, right, ngram))],
                                             names=["a", "b", "similarity"])

    return similarities


def candidate_texts(pairs, keys, documents, broadcast: bool):
    """Rows (a, b, NODE, text): each pair's two documents with their texts.

    `keys` maps the alive documents' NODE to their KEY columns, `documents` has the KEY columns and
    text. The pairs' ends get their documents' keys first, so the texts are found by one join on the
    keys, the corpus side read in place (the ends broadcast when `broadcast`): only the candidates'
    texts move.
    """
    from pyspark.sql import functions as F

    keyed_ends = pairs.select("a", "b", F.explode(F.array("a", "b")).alias(NODE)).join(keys, NODE)
    key_columns = [name for name in keys.columns if name != NODE]
    texts = documents.select(*key_columns, "text")
    return texts.join(F.broadcast(keyed_ends) if broadcast else keyed_ends, key_columns).select("a", "b", NODE, "text")


def pair_text_rows(documents: pa.Table, ends: pa.Table) -> pa.Table:
    """:func:`candidate_texts`'s rows (a, b, NODE, text) for the pair ends (columns a, b, NODE and the row
    key ``_row``) that lie among `documents`: contiguous rows of one input file, with ``_row`` and text."""
    if not documents.num_rows or not ends.num_rows:
        return pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.int64()),
                         NODE: pa.array([], pa.int64()), "text": pa.array([], pa.string())})
    index = ends.column("_row").to_numpy() - documents.column("_row")[0].as_py()
    inside = np.flatnonzero((index >= 0) & (index < documents.num_rows))
    return pa.table({"a": ends.column("a").take(inside), "b": ends.column("b").take(inside),
                     NODE: ends.column(NODE).take(inside),
                     "text": documents.column("text").take(pa.array(index[inside]))})


def score_pairs(texts, ngram: int):
    """The pairs of `texts` (:func:`candidate_texts`) with their exact shingle-set Jaccard similarity
    (column ``similarity``): one shuffle by pair, the two texts of a pair side by side in a sorted
    stream."""
    return (texts.repartition("a", "b").sortWithinPartitions("a", "b", NODE)
            .mapInArrow(_similarity_function(ngram), "a long, b long, similarity double"))


# --------------------------------------------------------------------------------------------------
# Connected components.

def components_of_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, roots): every node of the pairs (a[i], b[i]) and the smallest node of its connected
    component, the same membership :func:`connected_components` gives, computed in memory (NumPy):
    roots hooked under the smaller root of each pair, then paths halved, until no pair spans two
    roots. For pair graphs that fit the driver's memory (``DRIVER_COMPONENT_PAIRS``)."""
    nodes, index = np.unique(np.concatenate([np.asarray(a, np.int64), np.asarray(b, np.int64)]), return_inverse=True)
    left, right = index[: len(a)], index[len(a):]
    parent = np.arange(len(nodes))
    while True:
        while True:  # point every node at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        root_left, root_right = parent[left], parent[right]
        apart = root_left != root_right
        if not apart.any():
            return nodes, nodes[parent]
        low = np.minimum(root_left[apart], root_right[apart])
        high = np.maximum(root_left[apart], root_right[apart])
        np.minimum.at(parent, high, low)  # a root goes under the smallest root it meets: no cycles


def _large_star(edges):
    """Edges (u, v) with u > v. Each node links its larger neighbours to its smallest neighbour (or itself)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    both = edges.select(F.col("u").alias("x"), F.col("v").alias("y")).unionByName(
        edges.select(F.col("v").alias("x"), F.col("u").alias("y")))
    smallest = F.least(F.min("y").over(Window.partitionBy("x")), F.col("x"))
    return (both.withColumn("m", smallest).where(F.col("y") > F.col("x"))
            .select(F.col("y").alias("u"), F.col("m").alias("v")))


def _small_star(edges):
    """Edges (u, v) with u > v. Each node and its smaller neighbours are linked to the smallest of those."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    with_min = edges.withColumn("m", F.min("v").over(Window.partitionBy("u")))
    return (with_min.select(F.col("u"), F.col("m").alias("v"))
            .unionByName(with_min.where(F.col("v") != F.col("m")).select(F.col("v").alias("u"), F.col("m").alias("v")))
            .distinct())


def _is_star_forest(edges) -> bool:
    """Every node has at most one smaller neighbour, and no node with one has a larger neighbour."""
    from pyspark.sql import functions as F

    roles = (edges.select(F.col("u").alias("n"), F.lit(1).alias("child"), F.lit(0).alias("parent"))
             .unionByName(edges.select(F.col("v").alias("n"), F.lit(0).alias("child"), F.lit(1).alias("parent"))))
    bad = (roles.groupBy("n").agg(F.sum("child").alias("c"), F.max("parent").alias("p"))
           .where((F.col("c") > 1) | ((F.col("c") >= 1) & (F.col("p") == 1))))
    return bad.limit(1).count() == 0


def connected_components(pairs, save: Callable) -> tuple[object, int]:
    """(node, root) for every node of a pair, root = the smallest node of its component; and the rounds.

    `pairs` has columns a, b (longs, a != b); `save(df, name)` materialises a DataFrame and cuts its
    lineage (a checkpoint).
    """
    from pyspark.sql import functions as F

    edges = (pairs.select(F.greatest("a", "b").alias("u"), F.least("a", "b").alias("v"))
             .where(F.col("u") != F.col("v")).distinct())
    rounds = 0
    while not _is_star_forest(edges):
        rounds += 1
        if rounds > MAX_COMPONENT_ROUNDS:
            raise RuntimeError(f"connected components did not converge in {MAX_COMPONENT_ROUNDS} rounds")
        edges = save(_small_star(_large_star(edges)), f"cc-{rounds}")
    roots = edges.select(F.col("v").alias("node")).distinct().select("node", F.col("node").alias("root"))
    return edges.select(F.col("u").alias("node"), F.col("v").alias("root")).unionByName(roots), rounds


def clusters_of(membership, alive):
    """Clusters (CLUSTER_SCHEMA columns) from (node, root) membership and the alive documents.

    `alive` has NODE, id, _priority and _length. A node shared by two ids (a 64-bit hash collision,
    or the same id twice when id deduplication is off) counts once, as its best document.
    """
    from pyspark.sql import functions as F

    best = F.struct(F.col("_priority"), (-F.col("_length")).alias("_neg_length"), F.col("id"))
    attributes = alive.select(F.col(NODE).alias("node"), "id", "_priority", "_length").hint("merge")
    documents = (membership.join(attributes, "node")
                 .groupBy("node", "root").agg(F.min(best).alias("best")))
    return (documents.groupBy("root").agg(F.min("best").alias("kept"),
                                           F.sort_array(F.collect_list(F.col("best.id"))).alias("member_ids"),
                                           F.count(F.lit(1)).cast("int").alias("size"))
            .where(F.col("size") >= 2)
            .select(F.substring(F.sha2(F.col("kept.id"), 256), 1, 16).alias("cluster_id"),
                    F.col("kept.id").alias("kept_id"), "size", "member_ids"))


def clusters_in_memory(nodes: np.ndarray, roots: np.ndarray, members: pa.Table) -> tuple[pa.Table, pa.Table]:
    """:func:`clusters_of` on the driver, for a small graph: (clusters as CLUSTER_SCHEMA, (kept_id, id) of
    every member that is not kept). `nodes` and `roots` are :func:`components_of_pairs`'s; `members` has
    NODE, id, _priority and _length of the alive documents of those nodes. Same choices as
    :func:`clusters_of`: a node's best document stands for it, the best of a component is kept, member
    ids sorted by their UTF-8 bytes (Python's order of code points is the same)."""
    best: dict[int, tuple] = {}
    for node, document, priority, length in zip(members.column(NODE).to_pylist(), members.column("id").to_pylist(),
                                                 members.column("_priority").to_pylist(),
                                                 members.column("_length").to_pylist()):
        candidate = (priority, -length, document)
        if node not in best or candidate < best[node]:
            best[node] = candidate
    components: dict[int, list[tuple]] = {}
    for node, root in zip(nodes.tolist(), roots.tolist()):
        if node in best:
            components.setdefault(root, []).append(best[node])
    cluster_ids, kept_ids, sizes, member_ids, removed_kept, removed_ids = [], [], [], [], [], []
    for documents in components.values():
        if len(documents) < 2:
            continue
        kept = min(documents)[2]
        ids = sorted(document[2] for document in documents)
        cluster_ids.append(hashlib.sha256(kept.encode("utf-8")).hexdigest()[:16])
        kept_ids.append(kept)
        sizes.append(len(ids))
        member_ids.append(ids)
        others = [member for member in ids if member != kept]
        removed_kept += [kept] * len(others)
        removed_ids += others
    clusters = pa.Table.from_arrays([pa.array(cluster_ids, pa.string()), pa.array(kept_ids, pa.string()),
                                     pa.array(sizes, pa.int32()), pa.array(member_ids, pa.list_(pa.string()))],
                                    schema=CLUSTER_SCHEMA)
    removed = pa.table({"kept_id": pa.array(removed_kept, pa.string()), "id": pa.array(removed_ids, pa.string())})
    return clusters, removed


# --------------------------------------------------------------------------------------------------
# Writing the clusters.

def cluster_writer(directory: str, run: str) -> Callable:
    """mapInArrow function writing cluster rows as ``part-<partition>.parquet`` (each attempt its own file,
    for ``shards.commit_files``); yields the rows and the file written."""
    from gap_replay.core import storage
    from gap_replay.core.schema import conform
    from gap_replay.core.shards import STAGED_SCHEMA, ShardWriter, attempt_file
    from gap_replay.core.spark import task_identity

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        partition, _ = task_identity()
        final = storage.join(directory, f"part-{partition:05d}.parquet")
        writer = ShardWriter(final, CLUSTER_SCHEMA, staged=attempt_file(final, run))
        for batch in batches:
            writer.write(conform(batch, CLUSTER_SCHEMA))
        wrote = writer.close()
        yield pa.RecordBatch.from_pylist([{"rows": writer.rows, "staged": writer.staged if wrote else None,
                                           "final": final}], schema=STAGED_SCHEMA)

    return write
