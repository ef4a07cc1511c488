"""Reading and writing shards: Parquet (zstd) files of the document schema.

Writing happens inside Spark tasks with pyarrow, into files named by what they hold, never by the
task that wrote them: a stage output's rows are split into a number of parts fixed by its input size
(``spark.part_mib``) by a hash of their id and sorted, so that the same data gives the same file names
and bytes whatever the run and however many executors it had (Spark's own writer names files with a
random job id and writes one per task).

Task commit: a task attempt never writes under a final name. Each attempt writes its own files under
``<folder>/_attempts/<run>/`` (hidden from every reader: a leading ``_``), named by the run and the attempt,
and reports them in its result rows; after the job, the driver (:func:`commit_files`) moves the files of the
attempts Spark counted (the results ``collect`` returns: never those of a failed, killed or cancelled
attempt, nor of a speculative copy that lost) to their final names, and deletes everything else under
``_attempts``. A failed attempt that saw a normal end of input, a speculative loser finishing late, a
worker killed mid-write: none of their files is ever published. The run id is new for every job, so an
attempt left over from an earlier run never writes among this run's files.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import uuid

from gap_replay.core import storage
from gap_replay.core.ledger import StageLedger
from gap_replay.core.spark import task_identity
from gap_replay.core.schema import (
    COLUMN_NAMES,
    DOCUMENT_SCHEMA,
    DROP_DETAIL,
    DROP_REASON,
    DROPS_SCHEMA,
    conform,
)

DATA_DIR = "data"
DROPS_DIR = "drops"
ROW_GROUP_ROWS = 16_384  # stage outputs; the mix writes smaller groups (mixer.job)
ROW_GROUP_TEXT_BYTES = 32 << 20
COMPRESSION = "zstd"


from gap_replay.core.errors import InputError  # noqa: F401,E402 - re-exported


class ShardWriter:
    """One Parquet file (zstd) whose row groups depend only on the rows written, in order.

    A row group is cut every `group_rows` rows, or sooner once its `text_column` reaches
    `group_text_bytes`: never by how Spark batched the rows, and each group is written from
    contiguous arrays, so the same rows in the same order give the same bytes. A task's writer writes
    its attempt's own file (`staged`, see the module docstring) for the driver to commit; the driver's
    own writes go to a hidden temporary file renamed into place. Either way no half file ever stands
    under a final name.
    """

    def __init__(self, uri: str, schema: pa.Schema, *, group_rows: int = ROW_GROUP_ROWS,
                 text_column: str | None = None, group_text_bytes: int = ROW_GROUP_TEXT_BYTES,
                 staged: str | None = None):
        self.uri, self.schema, self.staged = uri, schema, staged
        self.group_rows, self.text_column, self.group_text_bytes = group_rows, text_column, group_text_bytes
        self.rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_text = 0  # bytes of `text_column` in the pending rows
        self._writer: pq.ParquetWriter | None = None

    def _open(self) -> None:
        self._fs, path = storage.resolve(self.uri)
        self._path = path
        folder, name = path.rsplit("/", 1)
        self._temporary = storage.resolve(self.staged)[1] if self.staged else f"{folder}/.{name}.tmp"
        self._fs.create_dir(self._temporary.rsplit("/", 1)[0], recursive=True)
        self._writer = pq.ParquetWriter(self._temporary, self.schema, filesystem=self._fs, compression=COMPRESSION,
                                        use_dictionary=True, write_statistics=True)

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self._pending_text += self._text_bytes(table)
        self.rows += table.num_rows
        while self._emit_group(final=False):
            pass

    def _text_bytes(self, table: pa.Table) -> int:
        if self.text_column is None:
            return 0
        return int(pc.sum(pc.binary_length(table.column(self.text_column))).as_py() or 0)

    def _cut(self, pending: pa.Table) -> int | None:
        """Rows of the next full row group; None when the pending rows do not fill one yet."""
        cut = self.group_rows
        if self.text_column is not None:
            lengths = pc.fill_null(pc.binary_length(pending.column(self.text_column).combine_chunks()), 0)
            below = int((pc.cumulative_sum(lengths).to_numpy() < self.group_text_bytes).sum())
            cut = min(cut, below + 1)
        return cut if cut <= pending.num_rows else None

    def _emit_group(self, final: bool) -> bool:
        """Write the next row group of the pending rows (what is left, when `final`)."""
        if not self._pending_rows or (not final and self._pending_rows < self.group_rows
                                      and (self.text_column is None or self._pending_text < self.group_text_bytes)):
            return False  # not a full group yet: nothing to cut (and no copy of the pending rows made)
        pending = pa.concat_tables(self._pending)
        cut = pending.num_rows if final else self._cut(pending)
        if cut is None:
            return False
        group = pending.slice(0, cut).combine_chunks()
        if self._writer is None:
            self._open()
        self._writer.write_table(group, row_group_size=group.num_rows)
        rest = pending.slice(cut)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows
        self._pending_text -= self._text_bytes(group)
        return True

    def close(self, write_empty: bool = False) -> bool:
        """Finish the file and move it to its name; returns whether one was written (a file with no
        rows only when `write_empty`)."""
        while self._emit_group(final=False):
            pass
        self._emit_group(final=True)
        if self._writer is None:
            if not write_empty:
                return False
            self._open()
        self._writer.close()
        if not self.staged:
            self._fs.move(self._temporary, self._path)
        return True


ATTEMPTS_DIR = "_attempts"


def new_run() -> str:
    """The id of one job's writes (made on the driver, carried to its tasks in their closures)."""
    return uuid.uuid4().hex[:12]


def attempt_file(final: str, run: str) -> str:
    """Where the running task attempt writes the file that is to become `final`: its own name under the
    folder's ``_attempts/<run>/``, unique to the attempt (Spark's task attempt id)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    attempt = f"{context.stageId()}-{context.taskAttemptId()}" if context is not None else "driver"
    folder, name = final.rsplit("/", 1)
    return storage.join(folder, ATTEMPTS_DIR, run, f"{name}.{attempt}")


def commit_files(staged_files: Iterable[tuple[str, str]], folders: Iterable[str]) -> None:
    """Publish what the counted attempts wrote: move each (staged, final) pair into place, then delete the
    ``_attempts`` folder of each of `folders` (the files of every other attempt, and any partial file)."""
    for staged, final in staged_files:
        storage.delete(final)
        fs, path = storage.resolve(final)
        fs.move(storage.resolve(staged)[1], path)
    for folder in folders:
        storage.delete(storage.join(folder, ATTEMPTS_DIR))


def _drops_table(table: pa.Table, stage: str) -> pa.Table:
    return pa.Table.from_arrays(
        [table.column("id"), pa.array([stage] * table.num_rows, pa.string()),
         table.column(DROP_REASON), table.column(DROP_DETAIL)],
        schema=DROPS_SCHEMA,
    )


COUNTS_DDL = "reason string, count long, staged string, final string"
COUNTS_SCHEMA = pa.schema([("reason", pa.string()), ("count", pa.int64()), ("staged", pa.string()),
                           ("final", pa.string())])
KEPT = "__kept__"


PART_COLUMN = "_part"


def part_count(input_bytes: int, part_mib: int) -> int:
    """How many part files a stage output gets: one per `part_mib` MiB of input, at least one. Fixed by
    the inputs and the configuration, never by how many executors ran."""
    return max(1, -(-int(input_bytes) // (int(part_mib) << 20)))


def part_name(part: int) -> str:
    return f"part-{part:05d}.parquet"


class PartFiles:
    """The two files of one part of a stage output, its kept shard and its drop table, written by one task
    attempt (its own files, for :func:`commit_files`); counts what it writes."""

    def __init__(self, staging: str, stage: str, run: str, part: int):
        data = storage.join(staging, DATA_DIR, part_name(part))
        drops = storage.join(staging, DROPS_DIR, part_name(part))
        self.stage = stage
        # Row groups bounded by text bytes too: a group of long papers stays tens of MB, not a GB.
        self.writers = [ShardWriter(data, DOCUMENT_SCHEMA, staged=attempt_file(data, run), text_column="text"),
                        ShardWriter(drops, DROPS_SCHEMA, staged=attempt_file(drops, run))]

    def write(self, rows: pa.Table, counts: Counter) -> None:
        """Outcome rows (OUTCOME_SCHEMA columns, more allowed): the kept ones to the shard, the others to the
        drop table, each counted in `counts` (KEPT, or its reason)."""
        kept_mask = pc.is_null(rows.column(DROP_REASON))
        kept = rows.filter(kept_mask)
        dropped = rows.filter(pc.invert(kept_mask))
        counts[KEPT] += kept.num_rows
        if kept.num_rows:
            self.writers[0].write(conform(kept.select(list(COLUMN_NAMES))))
        if dropped.num_rows:
            self.writers[1].write(_drops_table(dropped, self.stage))
            counts.update(dropped.column(DROP_REASON).to_pylist())

    def close(self) -> list[dict]:
        """Finish both files (empty ones too: every part has its two files); their (staged, final) rows."""
        for writer in self.writers:
            writer.close(write_empty=True)
        return [{"staged": writer.staged, "final": writer.uri} for writer in self.writers]


def _counts_rows(counts: Counter, files: list[dict]) -> list[dict]:
    """An outcome writer's result rows (COUNTS_SCHEMA): its counts by reason, then the files it wrote."""
    empty = dict.fromkeys(COUNTS_SCHEMA.names)
    return ([{**empty, "reason": reason, "count": count} for reason, count in sorted(counts.items())]
            + [{**empty, **written} for written in files])


def outcome_writer(staging: str, stage: str, run: str) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A mapInArrow function over outcome rows sorted by PART_COLUMN: writes each part's kept shard and drop
    table (:class:`PartFiles`), yields counts and the files written.

    The part a row lands in is its PART_COLUMN, never the task that holds it, so the files and their rows
    are the same whatever the partitioning (a task may hold several parts, or none)."""

    def write_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        counts: Counter = Counter()
        files: list[dict] = []
        part, writer = None, None
        for batch in batches:
            table = pa.Table.from_batches([batch])
            parts = table.column(PART_COLUMN).to_numpy()
            start = 0
            while start < len(parts):
                different = np.flatnonzero(parts[start:] != parts[start])  # rows arrive sorted by part
                end = start + int(different[0]) if len(different) else len(parts)
                if parts[start] != part:
                    if writer is not None:
                        files += writer.close()
                    part = int(parts[start])
                    writer = PartFiles(staging, stage, run, part)
                writer.write(table.slice(start, end - start), counts)
                start = end
        if writer is not None:
            files += writer.close()
        yield pa.RecordBatch.from_pylist(_counts_rows(counts, files), schema=COUNTS_SCHEMA)

    return write_partition


def by_part(outcomes_df, parts: int):
    """The outcome rows with their part (a seeded hash of the id) and in the order they are written: by
    part, then id, then what tells apart rows of one id (drops of an input can share it). The order and
    the split depend only on the rows, so any run, on any cluster, writes the same bytes."""
    from pyspark.sql import functions as F

    part = F.pmod(F.xxhash64(F.lit("gap-replay-part"), F.col("id")), F.lit(parts)).cast("int")
    return (outcomes_df.withColumn(PART_COLUMN, part)
            .repartition(parts, PART_COLUMN)
            .sortWithinPartitions(PART_COLUMN, "id", F.col(DROP_REASON).asc_nulls_first(),
                                  F.col(DROP_DETAIL).asc_nulls_first(), "source", F.col("subset").asc_nulls_first(),
                                  F.xxhash64("text", "title", "url", "extra")))


def write_outcomes(outcomes_df, staging: str, stage: str, documents_in: int | None = None, *,
                   parts: int) -> StageLedger:
    """Write a stage's outcome DataFrame (OUTCOME_SCHEMA) as `parts` kept shards and as many drop tables
    (``part-<n>.parquet``, see :func:`by_part`; a part no row fell in is an empty file); return its ledger.

    `documents_in` is the stage's own count of inputs when it has one independent of the outcomes
    (e.g. the rows of the input shards); the ledger check then proves nothing was lost or invented.
    """
    return write_parted_outcomes(by_part(outcomes_df, parts), staging, stage, documents_in, parts=parts)


def write_parted_outcomes(parted_df, staging: str, stage: str, documents_in: int | None = None, *,
                          parts: int) -> StageLedger:
    """:func:`write_outcomes` of rows already split and ordered by :func:`by_part`."""
    rows = parted_df.mapInArrow(outcome_writer(staging, stage, new_run()), COUNTS_DDL).collect()
    return _commit_outcomes(rows, staging, stage, documents_in, parts)


def _commit_outcomes(rows, staging: str, stage: str, documents_in: int | None, parts: int) -> StageLedger:
    """Publish the part files the counted attempts of an outcome-writing job wrote (its collected COUNTS rows),
    give every part no task wrote its two empty files, and return the stage's ledger from the counts."""
    data_dir, drops_dir = storage.join(staging, DATA_DIR), storage.join(staging, DROPS_DIR)
    commit_files([(row["staged"], row["final"]) for row in rows if row["staged"]], [data_dir, drops_dir])
    written = {row["final"] for row in rows if row["final"]}
    for directory, schema in ((data_dir, DOCUMENT_SCHEMA), (drops_dir, DROPS_SCHEMA)):
        for part in range(parts):
            if storage.join(directory, part_name(part)) not in written:
                ShardWriter(storage.join(directory, part_name(part)), schema).close(write_empty=True)
    totals: Counter = Counter()
    for row in rows:
        if row["reason"] is not None:
            totals[row["reason"]] += row["count"]
    kept = totals.pop(KEPT, 0)
    ledger = StageLedger(stage, documents_in=kept + sum(totals.values()) if documents_in is None else documents_in,
                         kept=kept, dropped=totals)
    return ledger.check()


# --------------------------------------------------------------------------------------------------
# Stages that map each document on its own (no shuffle of the texts): Python tasks read slices of the
# input shards with pyarrow, so the texts never pass through the JVM. Passes that write their own files
# (write_mapped, write_mapped_outcomes) run as plain Python jobs (run_part_tasks), without Spark SQL; a pass
# whose rows go on to Spark (map_slices) is a DataFrame.

BATCH_ROWS = 10_000  # as Spark's batches to Python (spark.sql.execution.arrow.maxRecordsPerBatch)
FILE_KEY, ROW_KEY = "_file", "_row"  # a row of the inputs: its file's place in the input list, its row in the file


def plan_parts(files: Sequence[str], part_bytes: int, sizes: Sequence[int] | None = None) -> list[list[tuple]]:
    """The parts of a mapped stage: lists of (file, path, slice, slices), `file` the file's place in `files`.

    A file is cut into size / part_bytes slices (rounded to the nearest) of equal row ranges (a file under 1.5
    times `part_bytes` stays whole); slices and files are then packed, in input order, into parts of up to
    `part_bytes` (a slice or file larger than that alone). Deterministic from the files' sizes (one listing, no
    footer read on the driver) and `part_bytes`, never from the cluster."""
    from gap_replay.core.ingest import listed_sizes

    sizes = list(sizes) if sizes is not None else listed_sizes(list(files))
    parts: list[list[tuple]] = []
    load = 0
    for index, (path, size) in enumerate(zip(files, sizes)):
        slices = max(1, int(int(size) / max(1, part_bytes) + 0.5))
        for piece in range(slices):
            share = max(1, size // slices)
            if not parts or (load + share > part_bytes and parts[-1]):
                parts.append([])
                load = 0
            parts[-1].append((index, path, piece, slices))
            load += share
    return parts or [[]]  # no input: one empty part, so the output still has its files


def reading_parts(spark, files: Sequence[str], part_mib: int, sizes: Sequence[int] | None = None,
                  tasks_per_core: int = 1) -> list[list[tuple]]:
    """:func:`plan_parts` for a pass that writes no file (its rows do not depend on how it is cut): parts of a
    `tasks_per_core`-th of a core's share of the input (``defaultParallelism``), at least 1 MiB and at most
    `part_mib` MiB, so that every core has work however small the input. More tasks a core evens out a pass
    whose documents vary much in cost (each task costs a little, which a light pass feels)."""
    from gap_replay.core.ingest import listed_sizes
    from gap_replay.core.spark import default_parallelism

    sizes = list(sizes) if sizes is not None else listed_sizes(list(files))
    share = -(-sum(sizes) // (max(1, tasks_per_core) * default_parallelism(spark)))
    return plan_parts(files, max(1 << 20, min(part_mib << 20, share)), sizes)


MAX_SLICES_PER_FILE = 4096


def weighted_parts(files: Sequence[str], rows_per_file: Sequence[int], file_keys: np.ndarray, row_keys: np.ndarray,
                   weights: np.ndarray, tasks: int) -> list[list[tuple]]:
    """:func:`plan_parts`-style parts of a pass that needs only some rows of `files` (a row may come more than
    once, its `weights` adding up): each file that holds such rows is cut into equal row ranges fine enough
    that its weighted rows spread over about weight / (total / `tasks`) of them, and the ranges holding weight
    are packed, in order, into parts of about total / `tasks` of it. The other rows are never read."""
    total = float(np.sum(weights))
    target = total / max(1, tasks)
    parts: list[list[tuple]] = []
    load = 0.0
    order = np.argsort(file_keys, kind="stable")  # the rows grouped by file, one sort for all files
    holding, starts = np.unique(file_keys[order], return_index=True)
    for file, chosen in zip(holding, np.split(order, starts[1:])):
        rows, weight = row_keys[chosen], weights[chosen]
        count = int(rows_per_file[file])
        span = int(rows.max()) - int(rows.min()) + 1
        slices = int(min(count, MAX_SLICES_PER_FILE, max(1, math.ceil(weight.sum() / max(target, 1e-9)))
                         * math.ceil(count / span)))
        lows = np.arange(slices, dtype=np.int64) * count // slices
        loads = np.bincount(np.searchsorted(lows, rows, side="right") - 1, weights=weight, minlength=slices)
        for piece in np.flatnonzero(loads):
            if not parts or (load + loads[piece] > target and parts[-1]):
                parts.append([])
                load = 0.0
            parts[-1].append((int(file), files[int(file)], int(piece), slices))
            load += float(loads[piece])
    return parts


def read_slice(uri: str, piece: int, slices: int, target: pa.Schema,
               columns: Sequence[str] | None = None) -> Iterator[tuple[int, pa.Table]]:
    """(first row, table) pieces, in order, of the rows [piece * n / slices, (piece + 1) * n / slices) of the
    Parquet file `uri` (n its rows): the `columns` of `target` (all by default), cast to it; a column the
    file lacks reads as nulls, as Spark's reader does. Read in batches of up to BATCH_ROWS rows, never a
    whole row group at once."""
    names = list(columns) if columns is not None else target.names
    schema = pa.schema([target.field(name) for name in names])
    fs, path = storage.resolve(uri)
    with fs.open_input_file(path) as handle:
        parquet = pq.ParquetFile(handle)
        total = parquet.metadata.num_rows
        low, high = piece * total // slices, (piece + 1) * total // slices
        present = [name for name in names if name in parquet.schema_arrow.names]
        start = 0
        for group in range(parquet.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            if start < high and start + rows > low:
                for batch in parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=[group], columns=present):
                    first, last = max(low, start) - start, min(high, start + batch.num_rows) - start
                    if last > first:
                        table = pa.Table.from_batches([batch.slice(first, last - first)])
                        for name in names:
                            if name not in present:
                                table = table.append_column(name, pa.nulls(table.num_rows, schema.field(name).type))
                        yield start + first, table.select(names).cast(schema)
                    start += batch.num_rows
            else:
                start += rows


def bounded_batches(table: pa.Table, first_row: int, rows: int = BATCH_ROWS,
                    max_bytes: int | None = None) -> Iterator[tuple[int, pa.Table]]:
    """(first row, rows) pieces of `table` (whose first row is `first_row`) of at most `rows` rows and, unless
    one row is larger, `max_bytes` (default: what Spark sends Python at once), so a function over a row group of
    long papers holds a bounded share of it."""
    from gap_replay.core.spark import ARROW_MAX_BYTES_PER_BATCH

    max_bytes = ARROW_MAX_BYTES_PER_BATCH if max_bytes is None else max_bytes
    start = 0
    while start < table.num_rows:
        piece = table.slice(start, rows)
        while piece.num_rows > 1 and piece.nbytes > max_bytes:
            piece = piece.slice(0, piece.num_rows // 2)
        yield first_row + start, piece
        start += piece.num_rows


def keyed_pieces(file: int, path: str, piece: int, slices: int, columns: Sequence[str],
                 schema: pa.Schema = DOCUMENT_SCHEMA) -> Iterator[pa.Table]:
    """The `columns` (of `schema`) of one slice of input `file` (at `path`), in bounded pieces
    (:func:`read_slice`, :func:`bounded_batches`), each with its row keys (:func:`with_row_keys`)."""
    for first_in_group, group in read_slice(path, piece, slices, schema, columns):
        for first, table in bounded_batches(group, first_in_group):
            yield with_row_keys(table, file, first)


def with_row_keys(table: pa.Table, file: int, first_row: int) -> pa.Table:
    """`table` (rows first_row... of input `file`) with FILE_KEY and ROW_KEY columns in front."""
    rows = table.num_rows
    return pa.Table.from_arrays(
        [pa.array(np.full(rows, file, np.int64)), pa.array(np.arange(first_row, first_row + rows, dtype=np.int64)),
         *table.columns], names=[FILE_KEY, ROW_KEY, *table.column_names])


class KeyedRows:
    """Rows keyed by FILE_KEY and ROW_KEY (a table the driver or Spark wrote under a directory, sorted by the
    keys), read back in Python tasks an input file at a time (the Parquet row groups' statistics let the read
    skip the other files' rows); the last file read is kept."""

    def __init__(self, directory: str):
        self.directory = directory
        self._file, self._rows = None, None

    def of(self, documents: pa.Table) -> pa.Table:
        """The rows for `documents`: contiguous rows of one input file, with FILE_KEY and ROW_KEY columns."""
        file = documents.column(FILE_KEY)[0].as_py()
        if file != self._file:
            fs, path = storage.resolve(self.directory)
            self._rows = pq.read_table(path, filesystem=fs, filters=[(FILE_KEY, "=", file)]).sort_by(ROW_KEY)
            self._file = file
        first = documents.column(ROW_KEY)[0].as_py()
        rows = self._rows.column(ROW_KEY).to_numpy()
        low, high = np.searchsorted(rows, [first, first + documents.num_rows])
        return self._rows.slice(low, high - low)


def slice_tasks(spark, parts: list[list[tuple]]):
    """A DataFrame with one row, the part's number (column ``id``), in each of len(parts) partitions: one task
    per part of `parts` (:func:`plan_parts`). Made by the JVM (no Python task to ship the plan): the tasks find
    their slices in `parts` (:func:`slices_of`)."""
    return spark.range(0, max(1, len(parts)), 1, max(1, len(parts)))


def slices_of(numbers: Iterable[int], parts: list[list[tuple]]) -> Iterator[tuple[int, int, str, int, int]]:
    """(part, file, path, slice, slices) of every slice of the parts numbered `numbers` (a task's)."""
    for part in numbers:
        for file, path, piece, slices in (parts[part] if part < len(parts) else []):
            yield part, file, path, piece, slices


def run_tasks(spark, count: int, task: Callable[[Iterator[int]], Iterator[dict]]) -> list[dict]:
    """Run `task` over the numbers 0...count-1, one Spark task each, and collect the dicts it yields (what it
    wrote). A plain Python job (an RDD): tasks that read and write files themselves need none of Spark SQL's
    planning. Only the counted attempts' results come back (see the module docstring)."""
    count = max(1, count)

    def run(numbers: Iterator[int]) -> Iterator[dict]:
        try:
            yield from task(numbers)
        finally:
            release_memory()

    return spark.sparkContext.parallelize(range(count), count).mapPartitions(run).collect()


def run_part_tasks(spark, parts: list[list[tuple]], task: Callable[[Iterator[tuple]], Iterator[dict]]) -> list[dict]:
    """:func:`run_tasks` over the parts of `parts`: `task` gets the slices (:func:`slices_of`) of its part."""
    return run_tasks(spark, len(parts), lambda numbers: task(slices_of(numbers, parts)))


def write_task_files(spark, tasks: Sequence, produce: Callable[[int, object], Iterable[pa.Table]], directory: str,
                     schema: pa.Schema, **writer_options) -> tuple[list[str], int]:
    """One Spark task per item of `tasks`, writing the tables ``produce(number, item)`` yields (rows of
    `schema`) as ``part-<number>.parquet`` under `directory` (:class:`ShardWriter` with `writer_options`; the
    attempt's own file, committed after the job: see the module docstring). Every task writes its file, empty
    or not. Returns (the files in task order, their rows); replaces what `directory` held."""
    run = new_run()

    def write(numbers: Iterator[int]) -> Iterator[dict]:
        for number in numbers:
            final = storage.join(directory, part_name(number))
            writer = ShardWriter(final, schema, staged=attempt_file(final, run), **writer_options)
            for table in (produce(number, tasks[number]) if number < len(tasks) else ()):
                writer.write(conform(table, schema))
            writer.close(write_empty=True)
            yield {"rows": writer.rows, "staged": writer.staged, "final": writer.uri}

    if storage.exists(directory):
        storage.delete(directory)
    rows = run_tasks(spark, len(tasks), write)
    commit_files([(row["staged"], row["final"]) for row in rows], [directory])
    return sorted(row["final"] for row in rows), sum(row["rows"] for row in rows)


def release_memory() -> None:
    """Hand the memory a finished task freed back to the system: Spark keeps the Python worker for later
    tasks (of any job), and both pyarrow's allocator and C's keep freed memory for reuse by default."""
    import ctypes
    import gc

    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def map_slices(spark, parts: list[list[tuple]], function: Callable[[pa.Table], pa.Table | pa.RecordBatch], schema,
               columns: Sequence[str] = COLUMN_NAMES):
    """A DataFrame of `function` over the slices of `parts` (:func:`plan_parts`): one Python task per part
    reads its slices' `columns` with pyarrow, a row group at a time, and passes them with their row keys
    (:func:`with_row_keys`) to `function`, which returns rows of the Spark `schema`."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        numbers = (number for batch in batches for number in batch.column("id").to_pylist())
        for _, file, path, piece, slices in slices_of(numbers, parts):
            for documents in keyed_pieces(file, path, piece, slices, columns):
                result = function(documents)
                yield from (result.to_batches() if isinstance(result, pa.Table) else [result])
        release_memory()

    return slice_tasks(spark, parts).mapInArrow(run, schema)


def write_mapped(spark, parts: list[list[tuple]], function: Callable[[pa.Table], pa.Table], directory: str,
                 schema: pa.Schema, columns: Sequence[str] = COLUMN_NAMES) -> tuple[list[str], int]:
    """:func:`map_slices`, with each task writing what `function` returns (rows of `schema`) as its part's
    ``part-<n>.parquet`` under `directory` (:func:`write_task_files`) instead of handing it to the JVM.
    Returns (the files, their rows); replaces what `directory` held."""

    def produce(_: int, part: list[tuple]) -> Iterator[pa.Table]:
        for file, path, piece, slices in part:
            for documents in keyed_pieces(file, path, piece, slices, columns):
                yield function(documents)

    return write_task_files(spark, parts, produce, directory, schema)


# A mapped stage's output has at least MIN_PARTS parts when its input allows parts of MIN_PART_BYTES: each part
# is a task, and a small input in one part would leave all but one core idle (more, smaller parts cost each a
# task's overhead).
MIN_PARTS = 8
MIN_PART_BYTES = 16 << 20


def output_part_bytes(input_bytes: int, part_bytes: int) -> int:
    """The input bytes of one part of a mapped stage's output: `part_bytes` (``spark.part_mib``), less for an
    input under MIN_PARTS of them (its MIN_PARTS-th share, never under MIN_PART_BYTES). A function of the
    input's size and the setting only, never of the cluster."""
    return min(part_bytes, max(MIN_PART_BYTES, -(-int(input_bytes) // MIN_PARTS)))


def write_mapped_outcomes(spark, files: Sequence[str], outcomes_of: Callable[[pa.Table], pa.Table], staging: str,
                          stage: str, documents_in: int | None = None, *, part_bytes: int,
                          columns: Sequence[str] = COLUMN_NAMES, schema: pa.Schema = DOCUMENT_SCHEMA) -> StageLedger:
    """Write a stage that decides each document on its own, without a shuffle: every part (:func:`plan_parts`
    of `files`, :func:`output_part_bytes` of input each: `part_bytes` is ``spark.part_mib``) is one Python
    task that reads its slices with pyarrow, adds the row keys (:func:`with_row_keys`), calls `outcomes_of` on
    each piece's `columns` (of `schema`) and writes the outcome rows it returns (OUTCOME_SCHEMA columns, more
    allowed) as the part's kept shard and drop table, in input order. The same inputs and `part_bytes` give the
    same files and bytes whatever the cluster; returns the ledger."""
    from gap_replay.core.ingest import listed_sizes

    sizes = listed_sizes(list(files))
    parts = plan_parts(files, output_part_bytes(sum(sizes), part_bytes), sizes)
    run = new_run()

    def write_part(slices_: Iterator[tuple]) -> Iterator[dict]:
        counts: Counter = Counter()
        files_written: list[dict] = []
        writer, current = None, None
        for part, file, path, piece, slices in slices_:
            if part != current:
                if writer is not None:
                    files_written += writer.close()
                current, writer = part, PartFiles(staging, stage, run, part)
            for documents in keyed_pieces(file, path, piece, slices, columns, schema):
                writer.write(outcomes_of(documents), counts)
        if writer is not None:
            files_written += writer.close()
        yield from _counts_rows(counts, files_written)

    rows = run_part_tasks(spark, parts, write_part)
    return _commit_outcomes(rows, staging, stage, documents_in, len(parts))


def ensure_nonempty(directory: str, schema: pa.Schema) -> None:
    """Give a directory with no shard one empty shard, so every reader finds the schema."""
    if not storage.list_files(directory):
        writer = ShardWriter(storage.join(directory, "part-00000.parquet"), schema)
        writer.close(write_empty=True)


def file_digest(uri: str) -> tuple[int, str]:
    """(size in bytes, sha256 hex) of a file."""
    fs, path = storage.resolve(uri)
    digest, size = hashlib.sha256(), 0
    with fs.open_input_stream(path) as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


KEY_COLUMN = "_shard"
RESULT_SCHEMA = pa.schema([("file", pa.string()), ("rows", pa.int64()), ("bytes", pa.int64()), ("sha256", pa.string()),
                           ("staged", pa.string())])
RESULT_DDL = "file string, rows long, bytes long, sha256 string, staged string"


def keyed_writer(root: str, names: Sequence[str], schema: pa.Schema, columns: Sequence[str], run: str,
                 **writer_options) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A mapInArrow function writing rows sorted by KEY_COLUMN into ``root/names[key]``.

    The file a row lands in depends only on its key, never on which task holds it, so the output is
    the same whatever the partitioning; one result row (file, rows, bytes, sha256, and the attempt's own
    file for :func:`commit_keyed`) per file written. `writer_options` go to each :class:`ShardWriter`."""

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        current, writer, results = None, None, []

        def finish() -> None:
            writer.close(write_empty=True)
            size, digest = file_digest(writer.staged)
            results.append({"file": names[current], "rows": writer.rows, "bytes": size, "sha256": digest,
                            "staged": writer.staged})

        for batch in batches:
            table = pa.Table.from_batches([batch])
            keys = table.column(KEY_COLUMN).to_numpy()
            start = 0
            while start < len(keys):
                key = int(keys[start])
                different = np.flatnonzero(keys[start:] != key)  # rows arrive sorted by key
                end = start + int(different[0]) if len(different) else len(keys)
                if key != current:
                    if writer is not None:
                        finish()
                    current = key
                    final = storage.join(root, names[key])
                    writer = ShardWriter(final, schema, staged=attempt_file(final, run), **writer_options)
                writer.write(conform(table.slice(start, end - start).select(list(columns)), schema))
                start = end
        if writer is not None:
            finish()
        yield pa.RecordBatch.from_pylist(results, schema=RESULT_SCHEMA)

    return write


def commit_keyed(root: str, results) -> list[dict]:
    """Publish the files a :func:`keyed_writer` job's counted attempts wrote (its collected `results`) under
    `root`; their result rows, without the attempt's file."""
    rows = [row.asDict() if hasattr(row, "asDict") else dict(row) for row in results]
    folders = {storage.join(root, row["file"]).rsplit("/", 1)[0] for row in rows}
    commit_files([(row["staged"], storage.join(root, row["file"])) for row in rows], folders)
    return [{name: row[name] for name in RESULT_SCHEMA.names if name != "staged"} for row in rows]


def write_empty(root: str, name: str, schema: pa.Schema) -> dict:
    """An empty shard (a key no row hashed to), so a split's set of files is whole."""
    writer = ShardWriter(storage.join(root, name), schema)
    writer.close(write_empty=True)
    size, digest = file_digest(writer.uri)
    return {"file": name, "rows": 0, "bytes": size, "sha256": digest}


def resolve_document_dirs(inputs: Iterable[str]) -> list[str]:
    """Shard directories of the given inputs: stage outputs (their ``data``), mix outputs (``train`` and
    ``validation``), or plain directories/files of Parquet shards."""
    directories = []
    for uri in inputs:
        uri = storage.absolute_uri(uri)
        if not storage.exists(uri):
            raise InputError(f"input not found: {uri}")
        if storage.exists(storage.join(uri, storage.INCOMPLETE)) and not storage.exists(storage.join(uri, storage.SUCCESS)):
            raise InputError(f"input {uri} is an unfinished output (no _SUCCESS); rerun the command that makes it")
        if storage.exists(storage.join(uri, DATA_DIR)):
            directories.append(storage.join(uri, DATA_DIR))
        elif storage.exists(storage.join(uri, "train")):
            directories += [storage.join(uri, split) for split in ("train", "validation")
                            if storage.exists(storage.join(uri, split))]
        else:
            directories.append(uri)
    return directories


def document_files(inputs: Iterable[str]) -> list[str]:
    """The Parquet shards of input directories (see resolve_document_dirs), in input order."""
    files: list[str] = []
    for directory in resolve_document_dirs(inputs):
        found = [directory] if directory.endswith(".parquet") else storage.list_files(directory)
        if not found and not storage.exists(storage.join(directory, storage.SUCCESS)):
            raise InputError(f"no Parquet shards in {directory}")
        files += found
    return files


def read_documents(spark, inputs: Iterable[str]):
    """A DataFrame of documents from input directories (see resolve_document_dirs)."""
    from gap_replay.core.spark import spark_schema

    return read_parquet(spark, document_files(inputs), spark_schema(DOCUMENT_SCHEMA))


def spark_reads(uri: str) -> bool:
    """Whether Spark's own reader can open `uri` on every executor without extra jars: local paths.

    Anything else (``s3://``, ``gs://``, ``hdfs://`` through pyarrow) is read by pyarrow inside
    Python tasks, which needs nothing on the JVM side (no hadoop-aws) and takes its endpoint and
    credentials from the same environment as the driver.
    """
    return "://" not in uri or uri.startswith("file:")


def read_parquet(spark, files: Sequence[str], schema):
    """A DataFrame of the Parquet `files` with the Spark `schema` (a StructType): Spark's reader for
    local files, otherwise one Python task per file reading its row groups through pyarrow."""
    if not files:
        return spark.createDataFrame([], schema)
    if all(spark_reads(uri) for uri in files):
        return spark.read.schema(schema).parquet(*files)
    from pyspark.sql.pandas.types import to_arrow_schema

    from gap_replay.core.ingest import files_dataframe

    target = to_arrow_schema(schema)

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for uri in batch.column("path").to_pylist():
                for _, table in read_slice(uri, 0, 1, target):
                    yield from table.to_batches()

    return files_dataframe(spark, list(files)).mapInArrow(read, schema)


def frame_writer(directory: str, schema: pa.Schema) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A mapInArrow function writing each partition as ``part-<n>.parquet`` under `directory` with pyarrow."""

    run = new_run()

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        partition, _ = task_identity()
        final = storage.join(directory, f"part-{partition:05d}.parquet")
        writer = ShardWriter(final, schema, staged=attempt_file(final, run))
        for batch in batches:
            writer.write(pa.Table.from_batches([batch]).cast(schema))
        writer.close(write_empty=True)
        yield pa.RecordBatch.from_pylist([{"rows": writer.rows, "staged": writer.staged, "final": final}],
                                         schema=STAGED_SCHEMA)

    return write


STAGED_SCHEMA = pa.schema([("rows", pa.int64()), ("staged", pa.string()), ("final", pa.string())])
STAGED_DDL = "rows long, staged string, final string"


def write_parquet(frame, directory: str) -> None:
    """Write a DataFrame as Parquet under `directory`: Spark's writer for local directories, pyarrow in
    Python tasks elsewhere (see :func:`spark_reads`). Replaces what `directory` held."""
    if spark_reads(directory):
        frame.write.mode("overwrite").parquet(directory)
        return
    from pyspark.sql.pandas.types import to_arrow_schema

    if storage.exists(directory):
        storage.delete(directory)
    rows = frame.mapInArrow(frame_writer(directory, to_arrow_schema(frame.schema)), STAGED_DDL).collect()
    commit_files([(row["staged"], row["final"]) for row in rows], [directory])


def count_rows(inputs: Iterable[str]) -> int:
    """Rows in the shards of `inputs`: a finished stage output's from its ledger (its kept documents, one file
    read), anything else from the Parquet footers of its files."""
    from gap_replay.core.ledger import LEDGER_FILE

    total = 0
    for uri in inputs:
        uri = storage.absolute_uri(uri)
        if storage.exists(storage.join(uri, storage.SUCCESS)) and storage.exists(storage.join(uri, LEDGER_FILE)) \
                and storage.exists(storage.join(uri, DATA_DIR)):
            total += StageLedger.read(uri).kept
            continue
        for directory in resolve_document_dirs([uri]):
            for file in ([directory] if directory.endswith(".parquet") else storage.list_files(directory)):
                fs, path = storage.resolve(file)
                total += pq.ParquetFile(path, filesystem=fs).metadata.num_rows
    return total
