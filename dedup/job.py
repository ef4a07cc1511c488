"""`gap-replay dedup`: ID, exact-text and near-duplicate removal, and decontamination, on Spark.

Rules, applied in this order, each with its own drop reason (detail in brackets):
1. ``duplicate_id`` [the id]: more than one document with the same id; the best copy is kept.
   (An abstract whose paper is present in full text is the pubmed stage's decision,
   ``superseded_by_fulltext``: it sees abstracts and papers together.)
2. ``exact_duplicate`` [the kept id]: same normalised text as a better document.
3. ``contaminated`` [the overlap]: at least ``contamination_ratio`` of the document's word n-grams occur
   in the benchmark questions (only with ``decontaminate`` files).
4. ``near_duplicate`` [the kept id]: in a cluster of near-duplicates (MinHash LSH, candidate pairs
   verified by exact Jaccard similarity, connected components) whose best document is another one.
   All parts are pooled, so medical documents are deduplicated against replay text too.

"Best", everywhere: source priority papers > abstracts > guidelines > replay (``SOURCE_PRIORITY``), then
the longer text, then the smallest id (then the smallest text hash). The ordering is total and every
step is a function of the set of documents, so the result does not depend on how Spark partitions
the data.

Output, beside the usual ``data/``, ``drops/`` and ``_ledger.json``: ``clusters/part-*.parquet`` with one
row per near-duplicate cluster (``cluster_id``, ``kept_id``, ``size``, ``member_ids``). Intermediate
tables are checkpointed as Parquet under ``.incomplete/_work/``, deleted before the output is published.

How the stage runs (:func:`run_dedup`): Python tasks read the input shards with pyarrow
(:class:`ParquetCorpus`), so the texts never pass through Spark's JVM. The annotation pass writes the narrow
table (keys, id, hashes, band keys); up to ``dedup.local.DRIVER_ROWS`` documents the rules, candidate pairs,
components and clusters are then computed on the driver (:mod:`dedup.local`), above in Spark; the
verification reads the candidates' texts in Python tasks and scores them after one shuffle; the outcomes are
written by Python tasks from the inputs as they lie (:func:`core.shards.write_mapped_outcomes`). Both paths
give the same files (``tests/dedup/test_local.py``). :func:`deduplicate` also takes a DataFrame (library use),
which runs every step in Spark.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gap_replay.core import storage
from gap_replay.dedup.settings import DedupConfig
from gap_replay.core.ledger import StageLedger
from gap_replay.core.runner import RunContext, run_stage, stage_fingerprint
from gap_replay.core.schema import COLUMN_NAMES, DROP_DETAIL, DROP_REASON, OUTCOME_SCHEMA
from gap_replay.core.shards import (FILE_KEY, ROW_KEY, STAGED_DDL, KeyedRows, bounded_batches, commit_files,
                                    count_rows, document_files, ensure_nonempty, keyed_pieces, map_slices, new_run,
                                    plan_parts, read_parquet, reading_parts, release_memory, resolve_document_dirs,
                                    slices_of, spark_reads, weighted_parts, write_mapped, write_mapped_outcomes,
                                    write_parquet)
from gap_replay.core.spark import default_parallelism, spark_schema
from gap_replay.dedup.exact import HASH_COLUMN, SOURCE_PRIORITY
from gap_replay.dedup.lsh import optimal_bands
from gap_replay.dedup.minhash import MinHasher
from gap_replay.dedup.local import (DRIVER_ROWS, DRIVER_TEXT_CHARS, PAIR_BATCH_BYTES, PAIR_TASK_CHARS,
                                    candidate_pairs_local, is_none, pair_ends, priorities,
                                    rule_decisions)
from gap_replay.dedup.near import (ANNOTATED_SCHEMA, ANNOTATION_INPUT, BANDED, BANDS, CLUSTER_SCHEMA,
                                   DRIVER_COMPONENT_PAIRS, NODE, OVERLAP, Banding, annotated_schema, annotator,
                                   candidate_pairs, candidate_texts, cluster_writer, clusters_in_memory, clusters_of,
                                   components_of_pairs, connected_components, pair_text_rows, score_pairs)

STAGE = "dedup"
CLUSTERS_DIR = "clusters"
WORK_DIR = "_work"
CLUSTERS_PER_FILE = 1_000_000  # about: the file count is chosen from the verified pairs, an upper bound
# A table of up to this many rows (keys of dropped documents, ends of candidate pairs) is broadcast to
# the tasks that read the corpus, instead of shuffling the corpus to meet it.
BROADCAST_ROWS = 2_000_000


def lsh_bands(settings: DedupConfig) -> tuple[int, int]:
    if settings.bands > 0:
        return settings.bands, settings.rows
    return optimal_bands(settings.threshold, settings.num_perm, settings.false_positive_weight,
                         settings.false_negative_weight)


def hasher_of(settings: DedupConfig) -> MinHasher:
    return MinHasher(num_perm=settings.num_perm, seed=settings.seed, scheme=settings.permutation,
                     hash=settings.shingle_hash, ngram=settings.ngram)


class Checkpoints:
    """Materialises intermediate DataFrames and cuts their lineage: Parquet under `directory`, or Spark's
    local checkpoints when there is none (tests, interactive use)."""

    def __init__(self, spark, directory: str | None = None):
        self.spark, self.directory = spark, directory

    def __call__(self, frame, name: str):
        if self.directory is None:
            return frame.localCheckpoint(eager=True)
        path = storage.join(self.directory, name)
        write_parquet(frame, path)
        return read_parquet(self.spark, storage.list_files(path) if not spark_reads(path) else [path], frame.schema)

    def rows(self, frame, name: str) -> int:
        """Rows of `frame`, returned by this object for `name`: read from the Parquet footers of the files
        written (no Spark job), or counted by Spark for a local checkpoint."""
        if self.directory is None:
            return frame.count()
        import pyarrow.parquet as pq

        total = 0
        for file in storage.list_files(storage.join(self.directory, name)):
            fs, path = storage.resolve(file)
            total += pq.ParquetFile(path, filesystem=fs).metadata.num_rows
        return total

    def remove(self) -> None:
        if self.directory is not None and storage.exists(self.directory):
            storage.delete(self.directory)


class Deferred:
    """A DataFrame made only when asked for: creating one costs Spark's analysis of its plan (on a fresh
    session, seconds), which a stage that writes its files without Spark SQL does not need."""

    def __init__(self, make: Callable):
        self.make = make


class DedupResult:
    """`outcomes`: DataFrame of the document columns + drop_reason/drop_detail; `clusters`: DataFrame of
    CLUSTER_SCHEMA columns, None when near-duplicates are off (either may be given as a :class:`Deferred`);
    `stats`; `mark`: for documents read from files (ParquetCorpus), the function marking a row group's drops,
    for core.shards.write_mapped_outcomes (the outcomes written without a shuffle of the texts)."""

    def __init__(self, outcomes, clusters, stats: dict | None = None, mark: Callable | None = None):
        self._outcomes, self._clusters = outcomes, clusters
        self.stats, self.mark = stats if stats is not None else {}, mark

    @property
    def outcomes(self):
        if isinstance(self._outcomes, Deferred):
            self._outcomes = self._outcomes.make()
        return self._outcomes

    @property
    def clusters(self):
        if isinstance(self._clusters, Deferred):
            self._clusters = self._clusters.make()
        return self._clusters


KEY = [FILE_KEY, ROW_KEY]


def _describe(spark, text: str | None) -> None:
    """Name the Spark jobs that follow (Spark UI, event log)."""
    spark.sparkContext.setJobDescription(text)


def keyed(documents, save: Callable):
    """`documents` with KEY columns, a deterministic identity of each row: for files, a hash of the
    file's path and the row's index in it (Spark's ``_metadata``); otherwise (a DataFrame built in
    memory) a generated id, fixed by a checkpoint."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    try:
        if not documents.inputFiles():  # read through pyarrow (object storage) or built in memory
            raise AnalysisException("no files")
        frame = documents.select("*", F.xxhash64("_metadata.file_path").alias("_file"),
                                 F.col("_metadata.row_index").alias("_row"))
        frame.schema  # noqa: B018 - resolves the columns now
        return frame
    except AnalysisException:
        frame = documents.select("*", F.lit(0).cast("long").alias("_file"),
                                 F.monotonically_increasing_id().alias("_row"))
        return save(frame, "documents")


class FrameCorpus:
    """Documents given as a DataFrame (built in memory, or read by Spark): the texts go to Python through
    Spark where they are needed."""

    def __init__(self, documents, save: Callable):
        self.spark = documents.sparkSession
        self.documents = keyed(documents, save)

    def annotate(self, function: Callable):
        narrow = self.documents.select(*KEY, *ANNOTATION_INPUT)
        return narrow.mapInArrow(function, annotated_schema(narrow.schema))

    def pair_texts(self, pairs, keys, found: int, save: Callable):
        return candidate_texts(pairs, keys, self.documents, broadcast=2 * found <= BROADCAST_ROWS)

    def outcomes(self, dropped, dropped_rows: int | None, save: Callable) -> tuple[object, None]:
        """(outcome DataFrame, None): the few drops joined to the documents where they lie (broadcast) when
        they fit, so the documents' rows are shuffled once, by the writer."""
        from pyspark.sql import functions as F

        dropped = dropped.select(*KEY, F.col(DROP_REASON).alias("_reason"), F.col(DROP_DETAIL).alias("_detail"))
        if dropped_rows is None:  # not known yet: counted once saved
            dropped = save(dropped, "dropped")
            dropped_rows = _rows(save, dropped, "dropped")
        if dropped_rows <= BROADCAST_ROWS:
            dropped = F.broadcast(dropped)
        outcomes = self.documents.join(dropped, KEY, "left").select(
            *COLUMN_NAMES, F.col("_reason").alias(DROP_REASON), F.col("_detail").alias(DROP_DETAIL))
        return outcomes, None


def drop_marker(dropped: KeyedRows) -> Callable[[pa.Table], pa.Table]:
    """The outcomes of a row group of documents (with KEY columns): the documents with DROP_REASON and
    DROP_DETAIL from the `dropped` rows (KEY, DROP_REASON, DROP_DETAIL), null where a document is kept."""

    def mark(documents: pa.Table) -> pa.Table:
        drops = dropped.of(documents)
        position = np.full(documents.num_rows, -1, np.int64)
        position[drops.column(ROW_KEY).to_numpy() - documents.column(ROW_KEY)[0].as_py()] = np.arange(drops.num_rows)
        taken = pa.array(position, mask=position < 0)
        return documents.append_column(DROP_REASON, drops.column(DROP_REASON).take(taken)) \
                        .append_column(DROP_DETAIL, drops.column(DROP_DETAIL).take(taken))

    return mark


class ParquetCorpus:
    """Documents in Parquet files (a stage's inputs), read by Python tasks with pyarrow
    (:func:`core.shards.map_slices`): the texts never pass through the JVM, which moves only the narrow
    tables. A row's KEY is its file's place in `files` and its row in the file. Needs checkpoints written to
    a directory (:class:`Checkpoints`): the tasks read the drops and the pairs' ends from there."""

    def __init__(self, spark, files: Sequence[str], part_mib: int, read_bytes: int | None = None):
        self.spark, self.files, self.part_mib = spark, list(files), part_mib
        # Passes that write no file are cut for the cores (a core's share of the input a task, unless
        # `read_bytes` says otherwise); the outputs' parts only by part_mib (write_mapped_outcomes).
        self.reading = (reading_parts(spark, self.files, part_mib) if read_bytes is None
                        else plan_parts(self.files, read_bytes))

    def annotate(self, function: Callable, directory: str) -> tuple[list[str], int]:
        """Run the annotation pass (`function`, :func:`dedup.near.annotator`) over every document and write its
        rows (ANNOTATED_SCHEMA) from the tasks as ``part-<n>.parquet`` under `directory`: (files, rows)."""
        return write_mapped(self.spark, self.reading, lambda table: pa.Table.from_batches(
            list(function(iter(table.to_batches())))), directory, ANNOTATED_SCHEMA, ANNOTATION_INPUT)

    def pair_texts(self, pairs, keys, found: int, save: Callable):
        from pyspark.sql import functions as F

        ends = pairs.select("a", "b", F.explode(F.array("a", "b")).alias(NODE)).join(keys, NODE)
        save(ends.orderBy(*KEY), "ends")
        return self.saved_pair_texts(storage.join(save.directory, "ends"))

    def ends_reading(self, ends: pa.Table, rows_per_file: Sequence[int]) -> list[list[tuple]]:
        """The parts that read the texts of the pairs' `ends` (KEY and ``_length`` columns): only the slices
        of the files that hold ends, balanced by the ends' characters (a cluster of near-duplicates in one
        file is read by several tasks; :func:`core.shards.weighted_parts`)."""
        return weighted_parts(self.files, rows_per_file, ends.column(FILE_KEY).to_numpy(),
                              ends.column(ROW_KEY).to_numpy(), ends.column("_length").to_numpy(),
                              default_parallelism(self.spark))

    def saved_pair_texts(self, directory: str, reading: list[list[tuple]] | None = None):
        """:func:`dedup.near.candidate_texts`'s rows for the pairs' ends saved under `directory` (a, b, NODE
        and KEY columns, sorted by KEY), read from the documents by Python tasks (the parts of `reading`,
        by default every document)."""
        lookup = KeyedRows(directory)
        return map_slices(self.spark, reading if reading is not None else self.reading,
                          lambda documents: pair_text_rows(documents, lookup.of(documents)),
                          f"a long, b long, {NODE} long, text string", ("text",))

    def outcomes(self, dropped, dropped_rows: int | None, save: Callable) -> tuple[object, Callable]:
        """(outcome DataFrame, the function that marks a row group's drops, for
        :func:`core.shards.write_mapped_outcomes`)."""
        save(dropped.select(*KEY, DROP_REASON, DROP_DETAIL).orderBy(*KEY), "dropped")
        return self.marked(storage.join(save.directory, "dropped"))

    def marked(self, directory: str) -> tuple[object, Callable]:
        """(outcome DataFrame, marking function) for the drops saved under `directory` (KEY, DROP_REASON,
        DROP_DETAIL, sorted by KEY)."""
        mark = drop_marker(KeyedRows(directory))
        parts = plan_parts(self.files, self.part_mib << 20)
        outcomes = Deferred(lambda: map_slices(self.spark, parts, lambda documents: mark(documents).select(
            OUTCOME_SCHEMA.names), spark_schema(OUTCOME_SCHEMA)))
        return outcomes, mark

    def score_saved_pairs(self, directory: str, ngram: int, characters: int,
                          reading: list[list[tuple]] | None = None) -> pa.Table:
        """(a, b, similarity) of the pairs whose ends are saved under `directory` (:meth:`saved_pair_texts`),
        without Spark SQL: Python tasks read the ends' texts and send each to its pair's task by a hash of the
        pair (a Python shuffle), which scores its pairs as :func:`dedup.near.score_pairs` does (the same rows,
        sorted the same way, through the same function). A scoring task holds its share of the ends' texts
        (`characters` in all) at once: there are enough of them for a share to stay near PAIR_TASK_CHARS."""
        from gap_replay.dedup.near import _similarity_function

        lookup = KeyedRows(directory)

        def texts(slices_):
            for _, file, path, piece, slices in slices_:
                for documents in keyed_pieces(file, path, piece, slices, ("text",)):
                    rows = pair_text_rows(documents, lookup.of(documents))
                    columns = (rows.column(name).to_pylist() for name in ("a", "b", NODE, "text"))
                    for a, b, node, text in zip(*columns):
                        yield (a, b), (node, text)

        def score(items):
            rows = sorted((a, b, node, text) for (a, b), (node, text) in items)
            kinds = (pa.int64(), pa.int64(), pa.int64(), pa.string())
            table = pa.table([pa.array([row[i] for row in rows], kind) for i, kind in enumerate(kinds)],
                             names=["a", "b", NODE, "text"])
            del rows
            # Scored in batches as Spark would send them: at most BATCH_ROWS rows and PAIR_BATCH_BYTES.
            pieces = (batch for _, piece in bounded_batches(table, 0, max_bytes=PAIR_BATCH_BYTES)
                      for batch in piece.to_batches())
            for scored in _similarity_function(ngram)(pieces):
                yield from zip(*(scored.column(name).to_pylist() for name in ("a", "b", "similarity")))
            del table
            release_memory()

        partitions = max(default_parallelism(self.spark), -(-characters // PAIR_TASK_CHARS), 1)
        reading = reading if reading is not None else self.reading
        pairs = self.spark.sparkContext.parallelize(range(len(reading)), max(1, len(reading))) \
            .mapPartitions(lambda numbers: texts(slices_of(numbers, reading)))
        rows = pairs.partitionBy(partitions).mapPartitions(score).collect()
        return pa.table({"a": pa.array([row[0] for row in rows], pa.int64()),
                         "b": pa.array([row[1] for row in rows], pa.int64()),
                         "similarity": pa.array([row[2] for row in rows], pa.float64())})


def deduplicate(documents, settings: DedupConfig | None = None, *, benchmark_grams=None,
                checkpoint: Callable | None = None, clusters_dir: str | None = None) -> DedupResult:
    """All the rules of the module docstring on a DataFrame of documents.

    `documents`: a DataFrame, or a :class:`ParquetCorpus` (files read by Python tasks; needs `checkpoint`
    to be a :class:`Checkpoints` with a directory). `benchmark_grams`: sorted unique uint64 hashes of the
    benchmarks' word n-grams (:func:`dedup.decontaminate.benchmark_ngrams`), or None. `checkpoint(df, name)`: see
    :class:`Checkpoints` (default: local checkpoints). `clusters_dir`: where to write the clusters
    (:func:`write_clusters`); the result's clusters are then read back from there.

    The texts are read three times and never shuffled whole: once by the one pass in Python that
    computes every document's length, hashes and band keys (the rules then run on that narrow table),
    once to bring the candidate pairs' texts together (only theirs move), and once to write the
    outcomes, with the small table of drops joined to the documents where they lie. For a ParquetCorpus of
    up to DRIVER_ROWS documents, the narrow table's steps run on the driver (:func:`_deduplicate_on_driver`).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    settings = settings or DedupConfig()
    settings.validate()
    spark = documents.spark if isinstance(documents, ParquetCorpus) else documents.sparkSession
    save = checkpoint or Checkpoints(spark)
    stats: dict = {}

    bands, rows = lsh_bands(settings) if settings.near else (0, 0)
    banding = Banding(hasher_of(settings) if settings.near else None, bands, rows)
    broadcast = spark.sparkContext.broadcast(benchmark_grams) if benchmark_grams is not None else None
    if isinstance(documents, ParquetCorpus) and getattr(save, "directory", None) is None:
        raise ValueError("documents read from files need checkpoints written to a directory (Checkpoints)")
    corpus = documents if isinstance(documents, ParquetCorpus) else FrameCorpus(documents, save)
    _describe(spark, "dedup: hashes, benchmark overlap and MinHash band keys of every document")
    annotate = annotator(banding, broadcast, settings.contamination_ngram)
    if isinstance(corpus, ParquetCorpus):
        files, count = corpus.annotate(annotate, storage.join(save.directory, "annotated"))
        if count <= DRIVER_ROWS:
            return _deduplicate_on_driver(corpus, files, settings, benchmark_grams is not None, save, clusters_dir)
        annotated = read_parquet(spark, files, spark_schema(ANNOTATED_SCHEMA))
    else:
        annotated = save(corpus.annotate(annotate), "annotated")
    _describe(spark, "dedup: id, exact-text and contamination rules")
    # The rules as column expressions over a few selects (each DataFrame call is analysed by Spark).
    priority = F.create_map(*[item for key, value in SOURCE_PRIORITY.items() for item in (F.lit(key), F.lit(value))])
    df = annotated.select(*KEY, "id", NODE, BANDED, priority[F.col("source")].alias("_priority"), "_length",
                          HASH_COLUMN, OVERLAP)
    order = [F.col("_priority").asc(), F.col("_length").desc(), F.col("id").asc(), F.col(HASH_COLUMN).asc(),
             *(F.col(name).asc() for name in KEY)]  # the key last: ties between identical copies settled too
    reason, detail = F.lit(None).cast("string"), F.lit(None).cast("string")

    if settings.by_id:
        df = df.select("*", (F.row_number().over(Window.partitionBy("id").orderBy(*order)) > 1).alias("_duplicate_id"))
        reason = F.when(F.col("_duplicate_id"), F.lit("duplicate_id"))
        detail = F.when(F.col("_duplicate_id"), F.col("id"))

    if settings.exact:
        # Rank among the documents still alive, so a dropped copy never "keeps" another one.
        df = df.select("*", reason.isNull().alias("_alive"))
        window = Window.partitionBy(HASH_COLUMN, "_alive").orderBy(*order)  # the column: one shuffle for both
        df = df.select("*", F.row_number().over(window).alias("_text_rank"), F.first("id").over(window).alias("_text_first"))
        duplicate = F.col("_alive") & (F.col("_text_rank") > 1)
        detail = F.coalesce(detail, F.when(duplicate, F.col("_text_first")))
        reason = F.coalesce(reason, F.when(duplicate, F.lit("exact_duplicate")))

    if benchmark_grams is not None:
        contaminated = reason.isNull() & (F.col(OVERLAP) >= F.lit(settings.contamination_ratio))
        detail = F.when(contaminated, F.format_string(
            f"%.3f of word {settings.contamination_ngram}-grams in benchmark questions", F.col(OVERLAP))).otherwise(detail)
        reason = F.when(contaminated, F.lit("contaminated")).otherwise(reason)

    decisions = df.select(*KEY, "id", NODE, BANDED, "_priority", "_length", reason.alias(DROP_REASON),
                          detail.alias(DROP_DETAIL))
    clusters, dropped_rows = None, None
    if settings.near:
        decisions = save(decisions, "keys")
        decisions, clusters, dropped_rows = _near_duplicates(corpus, annotated, decisions, settings, save,
                                                             clusters_dir, stats)
    _describe(spark, "dedup: outcomes")
    outcomes, mark = corpus.outcomes(decisions.where(F.col(DROP_REASON).isNotNull()), dropped_rows, save)
    return DedupResult(outcomes, clusters, stats, mark)


def _write_table(table: pa.Table, directory: str) -> None:
    """A table made on the driver, as the one file of a checkpoint folder the tasks read (KeyedRows)."""
    from gap_replay.core.shards import ShardWriter

    if storage.exists(directory):
        storage.delete(directory)
    writer = ShardWriter(storage.join(directory, "part-00000.parquet"), table.schema)
    writer.write(table)
    writer.close(write_empty=True)


def _deduplicate_on_driver(corpus: ParquetCorpus, files: list[str], settings: DedupConfig, decontaminate: bool,
                           save: Checkpoints, clusters_dir: str | None) -> DedupResult:
    """The rules, candidate pairs, components and clusters of the annotated table (`files`) on the driver
    (:mod:`dedup.local`), for corpora of up to DRIVER_ROWS documents; Spark runs only the passes over the texts
    (verification, outcomes). The same decisions as the Spark path."""
    import pyarrow.parquet as pq

    spark, stats = corpus.spark, {}
    _describe(spark, "dedup: rules and candidate pairs (on the driver)")
    tables = [pq.read_table(storage.resolve(file)[1], filesystem=storage.resolve(file)[0]) for file in files]
    table = pa.concat_tables(tables).cast(ANNOTATED_SCHEMA) if tables else ANNOTATED_SCHEMA.empty_table()
    reasons, details = rule_decisions(table, by_id=settings.by_id, exact=settings.exact,
                                      contamination_ratio=settings.contamination_ratio if decontaminate else None,
                                      contamination_ngram=settings.contamination_ngram)
    clusters = None
    if settings.near:
        nodes = table.column(NODE).to_numpy()
        keys = table.column(FILE_KEY).to_numpy(), table.column(ROW_KEY).to_numpy()
        undecided = is_none(reasons)
        alive = undecided & table.column(BANDED).to_numpy(zero_copy_only=False)
        a, b = candidate_pairs_local(nodes, table.column(BANDS), undecided)
        stats["candidate_pairs"] = len(a)
        if settings.verify and len(a):
            _describe(spark, "dedup: exact similarity of the candidate pairs")
            ends = pair_ends(a, b, nodes[alive], keys[0][alive], keys[1][alive],
                             table.column("_length").to_numpy()[alive])
            _write_table(ends, storage.join(save.directory, "ends"))
            characters = int(pc.sum(ends.column("_length")).as_py() or 0)
            reading = corpus.ends_reading(ends, np.bincount(keys[0], minlength=len(corpus.files)))
            if characters <= DRIVER_TEXT_CHARS:  # a Python shuffle, its tasks holding their texts at once
                scored = corpus.score_saved_pairs(storage.join(save.directory, "ends"), settings.ngram, characters,
                                                  reading)
            else:  # Spark's shuffle, which sorts and streams what does not fit
                scored = score_pairs(corpus.saved_pair_texts(storage.join(save.directory, "ends"), reading),
                                     settings.ngram).toArrow()
            verified = scored.column("similarity").to_numpy() >= settings.threshold
            a, b = scored.column("a").to_numpy()[verified], scored.column("b").to_numpy()[verified]
            stats["candidate_pairs"], stats["verified_pairs"] = scored.num_rows, int(verified.sum())
        elif settings.verify:
            stats["verified_pairs"] = 0
        cluster_table = CLUSTER_SCHEMA.empty_table()
        if len(a):
            graph_nodes, roots = components_of_pairs(a, b)
            members = np.flatnonzero(alive & np.isin(nodes, graph_nodes))
            cluster_table, removed = clusters_in_memory(graph_nodes, roots, pa.table({
                NODE: nodes[members], "id": table.column("id").take(members),
                "_priority": priorities(table.column("source"))[members],
                "_length": table.column("_length").take(members)}))
            kept_of = dict(zip(removed.column("id").to_pylist(), removed.column("kept_id").to_pylist()))
            ids = table.column("id").to_pylist()
            for row in np.flatnonzero(undecided):
                kept = kept_of.get(ids[row])
                if kept is not None:
                    reasons[row], details[row] = "near_duplicate", kept
        if clusters_dir is not None:
            stats["clusters"] = write_cluster_table(cluster_table, clusters_dir)
            clusters = Deferred(lambda: read_parquet(spark, storage.list_files(clusters_dir),
                                                     spark_schema(CLUSTER_SCHEMA)))
        else:
            clusters = Deferred(lambda: spark.createDataFrame(cluster_table, spark_schema(CLUSTER_SCHEMA)))
    _describe(spark, "dedup: outcomes")
    dropped = np.flatnonzero(~is_none(reasons))
    _write_table(pa.table({FILE_KEY: table.column(FILE_KEY).take(dropped), ROW_KEY: table.column(ROW_KEY).take(dropped),
                           DROP_REASON: pa.array(reasons[dropped].tolist(), pa.string()),
                           DROP_DETAIL: pa.array(details[dropped].tolist(), pa.string())}).sort_by(
                               [(FILE_KEY, "ascending"), (ROW_KEY, "ascending")]),
                 storage.join(save.directory, "dropped"))
    outcomes, mark = corpus.marked(storage.join(save.directory, "dropped"))
    return DedupResult(outcomes, clusters, stats, mark)


def _rows(save: Callable, frame, name: str) -> int:
    """Rows of `frame`, just checkpointed by `save` under `name` (footers, when `save` can tell)."""
    rows = getattr(save, "rows", None)
    return rows(frame, name) if rows is not None else frame.count()


def _near_duplicates(corpus, annotated, decisions, settings: DedupConfig, save: Callable, clusters_dir: str | None,
                     stats: dict):
    """(decisions with ``near_duplicate`` added, clusters, rows dropped or None when not counted) for the
    checkpointed `decisions` table and the `annotated` one (band keys).

    Up to DRIVER_COMPONENT_PAIRS candidate pairs, the scored pairs, their components and the clusters
    are made on the driver (a few small collects); above, every step stays in Spark.
    """
    from pyspark.sql import functions as F

    spark = corpus.spark
    _describe(spark, "dedup: candidate pairs")
    alive = decisions.where(F.col(DROP_REASON).isNull() & F.col(BANDED))
    ruled_out = decisions.where(F.col(DROP_REASON).isNotNull()).select(*KEY)
    banded = annotated.where(F.col(BANDED)).select(*KEY, NODE, BANDS)
    ruled_out_count = ruled_out.count()
    if ruled_out_count:
        banded = banded.join(F.broadcast(ruled_out) if ruled_out_count <= BROADCAST_ROWS else ruled_out, KEY,
                             "left_anti")
    pairs = save(candidate_pairs(banded), "candidates")
    stats["candidate_pairs"] = found = _rows(save, pairs, "candidates")
    on_driver = found <= DRIVER_COMPONENT_PAIRS
    edges = None  # (a, b) arrays of the pairs to cluster, when on the driver
    if settings.verify and found:
        _describe(spark, "dedup: exact similarity of the candidate pairs")
        scored = score_pairs(corpus.pair_texts(pairs, alive.select(*KEY, NODE), found, save), settings.ngram)
        if on_driver:
            table = scored.toArrow()
            verified = table.column("similarity").to_numpy() >= settings.threshold
            edges = table.column("a").to_numpy()[verified], table.column("b").to_numpy()[verified]
            stats["candidate_pairs"], stats["verified_pairs"] = table.num_rows, int(verified.sum())
        else:
            scored = save(scored, "pairs")
            counts = scored.agg(F.count(F.lit(1)).alias("candidates"),
                                F.count(F.when(F.col("similarity") >= settings.threshold, 1)).alias("verified")).first()
            stats["candidate_pairs"], stats["verified_pairs"] = counts["candidates"], counts["verified"]
            pairs = scored.where(F.col("similarity") >= settings.threshold)
        found = stats["verified_pairs"]
    elif settings.verify:
        stats["verified_pairs"] = 0
    elif on_driver and found:
        table = pairs.toArrow()
        edges = table.column("a").to_numpy(), table.column("b").to_numpy()
    if not found:  # nothing to cluster: skip the component rounds
        clusters = spark.createDataFrame([], spark_schema(CLUSTER_SCHEMA))
        if clusters_dir is not None:
            stats["clusters"] = write_cluster_table(CLUSTER_SCHEMA.empty_table(), clusters_dir)
        return decisions, clusters, ruled_out_count
    _describe(spark, "dedup: connected components of the near-duplicate pairs")
    removed = None
    if edges is not None:  # a small graph: its components and clusters are found in memory
        nodes, roots = components_of_pairs(*edges)
        wanted = spark.createDataFrame(pa.table({NODE: nodes}), f"{NODE} long")
        members = (alive.join(F.broadcast(wanted), NODE).select(NODE, "id", "_priority", "_length")
                   .toArrow())
        cluster_table, removed_table = clusters_in_memory(nodes, roots, members)
        clusters = spark.createDataFrame(cluster_table, spark_schema(CLUSTER_SCHEMA))
        removed = F.broadcast(spark.createDataFrame(removed_table, "kept_id string, id string"))
    else:
        membership, rounds = connected_components(pairs.select("a", "b"), save)
        stats["component_rounds"] = rounds
        _describe(spark, "dedup: clusters")
        clusters = clusters_of(membership, alive)
    if clusters_dir is not None:  # the written files are the checkpoint
        files = max(1, math.ceil(found / CLUSTERS_PER_FILE))
        if edges is not None and files == 1:  # in memory already: written from here, the same file
            stats["clusters"] = write_cluster_table(cluster_table, clusters_dir)
        else:
            stats["clusters"] = write_clusters(clusters, clusters_dir, files)
        clusters = read_parquet(spark, storage.list_files(clusters_dir), spark_schema(CLUSTER_SCHEMA))
    elif removed is None:
        clusters = save(clusters, "clusters")
    if removed is None:
        removed = (clusters.select("kept_id", F.explode("member_ids").alias("id"))
                   .where(F.col("id") != F.col("kept_id")))
    near = F.col(DROP_REASON).isNull() & F.col("kept_id").isNotNull()
    decisions = decisions.join(removed, "id", "left").select(
        *KEY, "id", F.when(near, F.lit("near_duplicate")).otherwise(F.col(DROP_REASON)).alias(DROP_REASON),
        F.when(near, F.col("kept_id")).otherwise(F.col(DROP_DETAIL)).alias(DROP_DETAIL))
    return decisions, clusters, ruled_out_count + removed_table.num_rows if edges is not None else None


def dedup_outcomes(documents, settings: DedupConfig | None = None, *, by_id: bool | None = None,
                   exact: bool | None = None, benchmark_grams=None, checkpoint: Callable | None = None):
    """Outcome DataFrame (document columns + drop_reason/drop_detail) for a DataFrame of documents."""
    settings = DedupConfig(**vars(settings)) if settings is not None else DedupConfig()
    if by_id is not None:
        settings.by_id = by_id
    if exact is not None:
        settings.exact = exact
    return deduplicate(documents, settings, benchmark_grams=benchmark_grams, checkpoint=checkpoint).outcomes


def write_clusters(clusters, directory: str, files: int) -> int:
    """Write clusters as ``part-<n>.parquet`` files under `directory`, a cluster's file chosen by the hash of
    its id and rows sorted by id (same files whatever the partitioning); returns the number of clusters."""
    rows = (clusters.repartition(files, "cluster_id").sortWithinPartitions("cluster_id")
            .mapInArrow(cluster_writer(directory, new_run()), STAGED_DDL).collect())
    commit_files([(row["staged"], row["final"]) for row in rows if row["staged"]], [directory])
    ensure_nonempty(directory, CLUSTER_SCHEMA)
    return sum(row["rows"] for row in rows)


def write_cluster_table(table: pa.Table, directory: str) -> int:
    """:func:`write_clusters` with one file, for clusters already in memory: the rows sorted by id in
    ``part-00000.parquet``, the bytes Spark's write gives (row groups depend only on the rows)."""
    from gap_replay.core.shards import ShardWriter

    table = table.sort_by("cluster_id")
    writer = ShardWriter(storage.join(directory, "part-00000.parquet"), CLUSTER_SCHEMA)
    writer.write(table)
    writer.close()
    ensure_nonempty(directory, CLUSTER_SCHEMA)
    return table.num_rows


def run_dedup(context: RunContext, inputs: Sequence[str], output: str,
              settings: DedupConfig | None = None) -> StageLedger:
    settings = settings or context.config.dedup
    settings.validate()
    resolve_document_dirs(inputs)  # missing or unfinished inputs fail here, before any output exists
    from gap_replay.dedup.decontaminate import benchmark_files, benchmark_ngrams, benchmark_texts, files_digest

    bench_files = benchmark_files(settings.decontaminate)
    extra = [f"benchmarks:{files_digest(bench_files)}"] if bench_files else []
    fingerprint = stage_fingerprint(context.config, ["dedup"], inputs, *extra)

    def produce(output_dir) -> StageLedger:
        grams = None
        if bench_files:
            grams = benchmark_ngrams(benchmark_texts(bench_files), settings.contamination_ngram)
            context.say(f"dedup: {len(bench_files)} benchmark file(s), {len(grams):,} distinct "
                        f"{settings.contamination_ngram}-grams")
        if settings.near:
            bands, rows = lsh_bands(settings)
            context.say(f"dedup: MinHash {settings.num_perm} permutations, {bands} bands x {rows} rows, "
                        f"threshold {settings.threshold}, verification {'on' if settings.verify else 'off'}")
        checkpoints = Checkpoints(context.spark, storage.join(output_dir.staging, WORK_DIR))
        part_mib = context.config.spark.part_mib
        try:
            files = document_files(inputs)
            result = deduplicate(ParquetCorpus(context.spark, files, part_mib), settings, benchmark_grams=grams,
                                 checkpoint=checkpoints, clusters_dir=output_dir.path(CLUSTERS_DIR))
            if result.stats:
                context.say("dedup: " + ", ".join(f"{key.replace('_', ' ')} {value:,}"
                                                  for key, value in result.stats.items()))
            # Each part of the output is one task's input files (or share of a file) in input order: the
            # texts are read and written by Python, never shuffled.
            return write_mapped_outcomes(context.spark, files, result.mark, output_dir.staging, STAGE,
                                         documents_in=count_rows(inputs), part_bytes=part_mib << 20)
        finally:
            _describe(context.spark, None)
            checkpoints.remove()

    return run_stage(context, STAGE, output, fingerprint, produce)
