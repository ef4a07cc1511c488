"""Near-duplicates on Spark: MinHash band keys, candidate pairs, verification, connected components.

Every step is a DataFrame operation; nothing but counts reaches the driver.

1. **Annotate** (one ``mapInArrow`` pass over the documents' texts, :func:`annotator`): the length,
   the exact-text hash, the benchmark overlap (decontamination) and the LSH band keys (``bands``
   int64 keys from the MinHash signature, see :mod:`dedup.minhash`). Only the text goes to Python,
   and only these narrow columns come back.
2. **Candidates** (:func:`candidate_pairs`): documents sharing a (band, key) bucket. A bucket of up to
   ``PAIRWISE_BUCKET_LIMIT`` documents gives all its pairs; a larger one (boilerplate shared by many
   documents) links each member to the bucket's smallest node only, so the number of pairs stays linear.
3. **Verification** (:func:`score_pairs`, optional): the exact Jaccard similarity of the two
   documents' shingle sets (64-bit shingle hashes); pairs below the threshold are discarded.
4. **Connected components** (:func:`connected_components`) of the remaining pairs, by alternating
   large-star and small-star rounds (Kiveris et al., "Connected Components in MapReduce and Beyond",
   SoCC 2014) until every component is a star around its smallest node.
5. **Clusters** (:func:`clusters_of`): per component, the kept document is the best by source
   priority, then longer text, then smallest id; the others are ``near_duplicate`` of it.

Nodes are 64-bit ``xxhash64`` values of the document ids (Spark's built-in, seed 42). Every step is a
function of the set of documents, not of their order or partitioning, so the result is the same
whatever the partitioning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from gap_replay.dedup.exact import HASH_COLUMN, digest_normalised, normalise_bytes
from gap_replay.dedup.minhash import MinHasher, TextBuffer, band_keys, jaccard, shingle_sets

NODE, BANDS, OVERLAP = "_node", "_bands", "_overlap"
PAIRWISE_BUCKET_LIMIT = 32
MAX_COMPONENT_ROUNDS = 200

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


ANNOTATION_INPUT = ("id", "source", "pmid", "pmcid", "text")


def annotator(banding: Banding, benchmark=None, contamination_ngram: int = 8) -> Callable:
    """mapInArrow function: batches of key columns + ANNOTATION_INPUT in; the same minus ``text``, plus
    ``_length`` (characters), HASH_COLUMN, OVERLAP and BANDS out. Only the text travels to Python.

    `benchmark` is a Spark broadcast of the sorted benchmark n-gram hashes (or None).
    """

    def annotate(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from gap_replay.dedup.decontaminate import overlap_ratios

        grams = benchmark.value if benchmark is not None else None
        for batch in batches:
            texts = batch.column("text").to_pylist()
            normalised = [normalise_bytes(text) for text in texts]
            lengths = pa.array([len(text) for text in texts], pa.int32())
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
            yield pa.RecordBatch.from_arrays([*(batch.column(name) for name in kept), lengths, hashes, overlap, bands],
                                             names=[*kept, "_length", HASH_COLUMN, OVERLAP, BANDS])

    return annotate


def annotated_schema(input_schema):
    """Output schema of :func:`annotator` for an input of this (Spark) schema."""
    from pyspark.sql.types import (ArrayType, DoubleType, IntegerType, LongType, StringType, StructField,
                                   StructType)

    return StructType([*(field for field in input_schema.fields if field.name != "text"),
                       StructField("_length", IntegerType()), StructField(HASH_COLUMN, StringType()),
                       StructField(OVERLAP, DoubleType()), StructField(BANDS, ArrayType(LongType()))])


def candidate_pairs(alive):
    """Distinct pairs (a, b), a < b, of nodes sharing a band bucket. `alive` has NODE and BANDS."""
    from pyspark.sql import functions as F

    rows = alive.select(NODE, F.posexplode(BANDS).alias("band", "key"))
    buckets = (rows.groupBy("band", "key").agg(F.collect_list(NODE).alias("m"))
               .where(F.size("m") >= 2)
               .select(F.array_sort(F.array_distinct("m")).alias("m"))
               .where(F.size("m") >= 2))
    small = (buckets.where(F.size("m") <= PAIRWISE_BUCKET_LIMIT)
             .select(F.explode("m").alias("a"), "m")
             .select("a", F.explode(F.filter("m", lambda other: other > F.col("a"))).alias("b")))
    large = (buckets.where(F.size("m") > PAIRWISE_BUCKET_LIMIT)
             .select(F.col("m")[0].alias("a"), F.explode(F.slice("m", F.lit(2), F.size("m") - 1)).alias("b")))
    return small.unionByName(large).distinct()


def _similarity_function(ngram: int) -> Callable:
    def similarities(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            left = shingle_sets(batch.column("ta").to_pylist(), ngram)
            right = shingle_sets(batch.column("tb").to_pylist(), ngram)
            values = pa.array([jaccard(x, y) for x, y in zip(left, right)], pa.float64())
            yield pa.RecordBatch.from_arrays([batch.column("a"), batch.column("b"), values],
                                             names=["a", "b", "similarity"])

    return similarities


def score_pairs(pairs, texts, ngram: int):
    """The pairs with their exact shingle-set Jaccard similarity (column ``similarity``).

    `texts` has NODE and text (the candidates' texts); each pair's two texts are brought together by one
    join on the node and one grouping by pair.
    """
    from pyspark.sql import functions as F

    ends = (pairs.select("a", "b", F.col("a").alias(NODE))
            .unionByName(pairs.select("a", "b", F.col("b").alias(NODE))))
    joined = ends.join(texts.hint("merge"), NODE)  # never broadcast the texts
    together = joined.groupBy("a", "b").agg(
        F.max(F.when(F.col(NODE) == F.col("a"), F.col("text"))).alias("ta"),
        F.max(F.when(F.col(NODE) == F.col("b"), F.col("text"))).alias("tb"),
    ).where(F.col("ta").isNotNull() & F.col("tb").isNotNull())
    return together.mapInArrow(_similarity_function(ngram), "a long, b long, similarity double")


# --------------------------------------------------------------------------------------------------
# Connected components.

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
