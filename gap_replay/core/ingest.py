"""The Spark shell of stages that turn input files into documents (PubMed XML, JATS, replay JSONL).

The driver expands the input paths into a sorted file list; each Spark task opens its files and runs
a pure parser ``parse(stream, name) -> Iterator[Outcome]`` over them. Rows carry the file's rank and
the record's rank within it, so later steps can order versions deterministically.

A file too large for one task (an archive many times its share of the stage's bytes) can be read in slices
(:func:`plan_slices`): its parser yields a :class:`Unit` per independently parsed part (a package member, a
row of a shard) in place of that part's outcomes; every slice reads the whole stream, and slice j of k parses
only the units whose position in the file is j modulo k. A record's rank is its unit's position and its
place within the unit (:data:`RECORD_STRIDE`), whichever slice reads it, so the slices together give exactly
the rows of a whole read.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO

import pyarrow as pa
import pyarrow.fs as pafs

from gap_replay.core import storage
from gap_replay.core.outcome import Drop, Outcome, outcomes_to_batches
from gap_replay.core.schema import OUTCOME_SCHEMA
from gap_replay.core.errors import InputError, TransientInputError, is_transient

FILE_RANK, RECORD_RANK = "file_rank", "record_rank"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
RANKED_OUTCOME_SCHEMA = OUTCOME_SCHEMA.append(pa.field(FILE_RANK, pa.int32())).append(pa.field(RECORD_RANK, pa.int64()))

Parser = Callable[[BinaryIO, str], Iterator[Outcome]]
SLICE, SLICES = "slice", "slices"  # a task's slice of a file read in several (files_dataframe)
# A record's rank: the position of the parser's item it came from (an outcome, or a Unit) times this, plus its
# place among the unit's outcomes. Ordered as a count of the outcomes would be, but known without parsing the
# units before it, so a slice ranks its records as a whole read does.
RECORD_STRIDE = 1 << 24
# Most slices of one file: each slice decompresses and unpacks the stream up to its end (the whole stream when
# slices are cut by position; skipping only the parsing), so past a dozen or so slices the unpacking, not the
# parsing, sets a slice's time.
MAX_SLICES = 16


class Unit:
    """A part of an input that is parsed on its own (a package member, a mirror shard's row): a parser yields it
    in place of the part's outcomes, ``parse()`` giving them, so that a task reading a slice of the file
    (:func:`parse_files`) parses only its own units and skips the rest. `failure_id`: the id of the
    ``parse_error`` drop that stands for the unit when its parsing raises an error that is not transient (the
    file goes on with its next unit, in a whole read as in a slice), of `source`."""

    __slots__ = ("parse", "failure_id", "source")

    def __init__(self, parse: Callable[[], Iterable[Outcome]], failure_id: str, source: str | None = None):
        self.parse, self.failure_id, self.source = parse, failure_id, source

    def outcomes(self) -> Iterator[Outcome]:
        try:
            yield from self.parse()
        except Exception as error:
            if is_transient(error):
                raise
            yield Drop(self.failure_id, "parse_error", f"{type(error).__name__}: {error}", self.source)


def expand_units(items: Iterable) -> Iterator[Outcome]:
    """The outcomes of a parser that yields :class:`Unit`s, every unit parsed in place (a whole read)."""
    for item in items:
        if isinstance(item, Unit):
            yield from item.outcomes()
        else:
            yield item


def expand_inputs(patterns: Iterable[str], suffixes: Sequence[str]) -> list[str]:
    """Files named by paths, directories (searched recursively for `suffixes`) or globs, sorted by
    file name, then path (see :func:`expand_named_inputs`)."""
    return [uri for uri, _ in expand_named_inputs(patterns, suffixes)]


def expand_named_inputs(patterns: Iterable[str], suffixes: Sequence[str]) -> list[tuple[str, str]]:
    """(uri, name) of the files named by paths, directories (searched recursively for `suffixes`) or
    globs, sorted by file name, then name, then uri.

    The name is what ids and drop ids carry: a file's path relative to the input root it was found
    under (the directory given, or the directory a glob matched), or its file name when given
    itself. It never holds where the inputs are stored, so the same inputs at different paths, or on
    another machine or bucket, give the same ids. Sorting by file name makes the file rank (and so
    'the last version wins') follow NCBI's numbering, which runs on from the baseline into the update
    files whatever directories hold them.
    """
    return [(uri, name) for uri, name, _ in expand_sized_inputs(patterns, suffixes)]


def expand_sized_inputs(patterns: Iterable[str], suffixes: Sequence[str]) -> list[tuple[str, str, int]]:
    """(uri, name, size in bytes) of :func:`expand_named_inputs`' files, in its order. The sizes come with the
    listing that finds the files (an object store's list carries them; a local walk stats each file it
    keeps), never from a metadata request per file afterwards."""
    files: dict[str, tuple[str, int]] = {}
    for pattern in patterns:
        if "://" in pattern:
            fs, path = storage.resolve(pattern)
            info = fs.get_file_info(path)
            if info.type == pafs.FileType.NotFound:
                raise InputError(f"input not found: {pattern}")
            if info.type == pafs.FileType.File:
                files.setdefault(pattern, (path.rsplit("/", 1)[-1], info.size or 0))
                continue
            scheme = pattern.split("://", 1)[0]
            root = path.rstrip("/")
            for entry in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
                relative = entry.path[len(root):].lstrip("/")
                if (entry.type == pafs.FileType.File and entry.path.endswith(tuple(suffixes))
                        and not any(part.startswith((".", "_")) for part in relative.split("/"))):
                    files.setdefault(f"{scheme}://{entry.path}", (relative, entry.size or 0))
            continue
        matches = glob.glob(os.path.expanduser(pattern)) if glob.has_magic(pattern) else [os.path.expanduser(pattern)]
        matches = [match for match in matches if os.path.exists(match)]
        if not matches:
            raise InputError(f"input not found: {pattern}")
        for match in matches:
            if os.path.isdir(match):
                for root, _, names in os.walk(match):
                    for name in names:
                        if name.endswith(tuple(suffixes)) and not name.startswith((".", "_")):
                            full = os.path.join(root, name)
                            files.setdefault(os.path.abspath(full), (os.path.relpath(full, match).replace(os.sep, "/"),
                                                                     _local_size(full)))
            else:
                files.setdefault(os.path.abspath(match), (os.path.basename(match), _local_size(match)))
    return sorted(((uri, name, size) for uri, (name, size) in files.items()),
                  key=lambda item: (item[1].rsplit("/", 1)[-1], item[1], item[0]))


def _local_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:  # gone since the walk saw it (or a dangling link): the read will say so
        return 0


def listed_sizes(uris: Sequence[str]) -> list[int]:
    """Sizes of files that lie in few folders (a mirror's shards), from one listing per folder; a file the
    listing does not show (written since) is asked for by itself."""
    by_folder: dict[str, list[int]] = {}
    for index, uri in enumerate(uris):
        by_folder.setdefault(uri.rstrip("/").rsplit("/", 1)[0], []).append(index)
    sizes = [0] * len(uris)
    for folder, indices in by_folder.items():
        fs, path = storage.resolve(folder)
        listed = {info.path.rstrip("/").rsplit("/", 1)[-1]: info.size or 0
                  for info in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
                  if info.type == pafs.FileType.File}
        for index in indices:
            name = uris[index].rstrip("/").rsplit("/", 1)[-1]
            sizes[index] = listed[name] if name in listed else storage.total_size([uris[index]])
    return sizes


class RawStream(io.RawIOBase):
    """Lets io.BufferedReader (and so gzip, peek) read any object with read(n), such as a pyarrow
    input stream; like a network stream, it cannot seek."""

    def __init__(self, stream):
        self._stream = stream
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        """The bytes read so far (how far a slice's reading has come: :func:`ranked_outcomes`)."""
        return self._position

    def close(self) -> None:
        self._stream.close()
        super().close()


def open_input(uri: str) -> BinaryIO:
    if "://" not in uri:
        return open(uri, "rb")
    fs, path = storage.resolve(uri)
    return io.BufferedReader(RawStream(fs.open_input_stream(path)))


def read_json_objects(uri: str, what: str) -> Iterator[dict]:
    """The JSON objects of a JSON-lines file (plain, gzip or zstd), blank lines skipped. A line that is
    not a JSON object, or a file that cannot be read, is an InputError naming `what` (e.g. "benchmark
    file"), the file and the line: for inputs that must be whole, unlike replay text, whose bad lines
    are dropped one by one."""
    try:
        with open_input(uri) as stream:
            for number, line in enumerate(open_text_lines(stream), start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise InputError(f"{what} {uri}, line {number}: not JSON ({error.msg})") from None
                if not isinstance(record, dict):
                    raise InputError(f"{what} {uri}, line {number}: not a JSON object")
                yield record
    except (OSError, EOFError) as error:
        raise InputError(f"{what} {uri} is not readable: {error}") from None


def open_text_lines(stream: BinaryIO) -> io.TextIOBase:
    """The stream as UTF-8 text lines, decompressed (gzip, zstd) by content, not by file name."""
    buffered = io.BufferedReader(stream) if not hasattr(stream, "peek") else stream
    head = buffered.peek(4)[:4]
    if head[:2] == GZIP_MAGIC:
        buffered = gzip.GzipFile(fileobj=buffered)
    elif head == ZSTD_MAGIC:
        import zstandard

        buffered = zstandard.ZstdDecompressor().stream_reader(buffered)
    return io.TextIOWrapper(buffered, encoding="utf-8", errors="replace")


def ranked_outcomes(parser: Parser, with_uri: bool = False, streamed: Callable[[str], bool] | None = None
                    ) -> Callable[[Iterable[tuple]], Iterator[pa.RecordBatch]]:
    """A function from (file_rank, path, name, slice, slices) tuples to the files' ranked outcomes, in batches.

    The parser gets the open file and its name relative to the input root (``expand_named_inputs``),
    never where the file is stored; with `with_uri`, also the uri (``parser(stream, name, uri)``) for
    formats it must open itself (Parquet needs random access). A failure that may pass on another try
    (``errors.is_transient``: I/O, object storage, memory) fails the task, so Spark tries it again and no
    attempt cut short counts as the file's whole content; any other failure escaping the parser is the
    file's ``parse_error`` drop (id ``file:<name>``), after the outcomes it yielded before.

    A row with `slices` k > 1 reads slice `slice` of its file (module docstring): of the parser's items (an
    outcome or a :class:`Unit`), those whose position is `slice` modulo k; the file's failure drop, at the
    position where the failure stopped the parser, is yielded by that position's slice only, so a file fails
    once however many slices read it.

    A file whose name `streamed` accepts (a compressed stream the parser reads in order, such as a .tar.gz) is
    cut by how far its bytes have been read instead: slice i of k takes the items that came while the reading
    was in the i-th k-th of the file's bytes, and stops reading past it (the last slice reads to the end, where
    the stream's own checks run). A slice then unpacks only the stream up to its end, not all of it: k slices
    unpack (k + 1) / 2 times the file instead of k times; the records and their ranks are the same."""

    def outcomes_of(path: str, name: str, part: int, parts: int) -> Iterator[tuple[int, Outcome]]:
        position = 0
        by_bytes = parts > 1 and streamed is not None and streamed(name)
        if by_bytes:  # the last slice's share runs to the end of the stream, whatever was listed
            size = listed_sizes([path])[0]
            low, high = part * size // parts, ((part + 1) * size // parts if part < parts - 1 else math.inf)

        def own(at: int, read: int) -> bool:
            return low <= read < high if by_bytes else at % parts == part

        read = 0  # with by_bytes: the file's bytes read when the last item came, or the failure
        try:
            with open_input(path) as stream:
                try:
                    for item in (parser(stream, name, path) if with_uri else parser(stream, name)):
                        read = stream.tell() if by_bytes else 0
                        if by_bytes and read >= high:
                            break  # the rest of the file is later slices'
                        if own(position, read):
                            if isinstance(item, Unit):
                                for place, outcome in enumerate(item.outcomes()):
                                    if place >= RECORD_STRIDE:
                                        raise ValueError(f"a part of {name} gave over {RECORD_STRIDE:,} records")
                                    yield position * RECORD_STRIDE + place, outcome
                            else:
                                yield position * RECORD_STRIDE, item
                        position += 1
                except Exception:
                    read = stream.tell() if by_bytes and not stream.closed else read
                    raise
        except Exception as error:
            if isinstance(error, OSError) and is_transient(error):
                # Never a drop: the task fails and Spark tries it again. Named, for the job's error should
                # every try fail.
                raise TransientInputError(f"reading {name}: {type(error).__name__}: {error}") from error
            if is_transient(error):
                raise
            # Bad content, or a parser bug on it: recorded (by one slice), and the job goes on.
            if own(position, read):
                yield position * RECORD_STRIDE, Drop(f"file:{name}", "parse_error", f"{type(error).__name__}: {error}")

    def noting_ranks(ranked: Iterator[tuple[int, Outcome]], ranks: list[int]) -> Iterator[Outcome]:
        for record, outcome in ranked:
            ranks.append(record)
            yield outcome

    def ranked(rows: Iterable[tuple]) -> Iterator[pa.RecordBatch]:
        for rank, path, name, part, total in rows:
            ranks: list[int] = []
            outcomes = outcomes_of(path, name, part or 0, max(1, total or 1))
            for outcome_batch in outcomes_to_batches(noting_ranks(outcomes, ranks)):
                count = outcome_batch.num_rows
                taken = pa.array(ranks[:count], pa.int64())
                del ranks[:count]
                yield outcome_batch.append_column(FILE_RANK, pa.array([rank] * count, pa.int32())) \
                                   .append_column(RECORD_RANK, taken)

    return ranked


def parse_files(parser: Parser, with_uri: bool = False, streamed: Callable[[str], bool] | None = None
                ) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A mapInArrow function over (file_rank, path, name[, slice, slices]) rows yielding ranked outcomes
    (:func:`ranked_outcomes`)."""
    ranked = ranked_outcomes(parser, with_uri, streamed)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            columns = batch.schema.names
            count = batch.num_rows
            names = batch.column("name").to_pylist() if "name" in columns else batch.column("path").to_pylist()
            parts = batch.column(SLICE).to_pylist() if SLICE in columns else [0] * count
            totals = batch.column(SLICES).to_pylist() if SLICES in columns else [1] * count
            yield from ranked(zip(batch.column(FILE_RANK).to_pylist(), batch.column("path").to_pylist(),
                                  names, parts, totals))

    return run


def assign_tasks(sizes: Sequence[int], tasks: int) -> list[list[int]]:
    """The files (indices into `sizes`) each of `tasks` tasks reads, balanced by bytes: largest first, each
    to the task with the fewest bytes so far (the lowest-numbered on a tie), so a file many times the others
    gets a task of its own and the rest spread over the others. Deterministic from the sizes; each task's
    files in index order; no task empty when there are at least as many files as tasks."""
    import heapq

    tasks = max(1, min(tasks, len(sizes)))
    loads = [(0, task) for task in range(tasks)]
    assigned: list[list[int]] = [[] for _ in range(tasks)]
    for index in sorted(range(len(sizes)), key=lambda index: (-sizes[index], index)):
        load, task = heapq.heappop(loads)
        assigned[task].append(index)
        heapq.heappush(loads, (load + max(1, sizes[index]), task))  # an empty file still costs a file
    return [sorted(files) for files in assigned]


def plan_slices(sizes: Sequence[int], tasks: int, splittable: Sequence[bool],
                max_slices: int = MAX_SLICES) -> list[tuple[int, int, int]]:
    """(file index, slice, slices) of what the tasks read, in file order: a splittable file bigger than its share of
    the bytes (their total over `tasks`) in k = ceil(size / share) slices (at most `max_slices`), every other file
    whole (slice 0 of 1). Deterministic from the sizes."""
    total = sum(max(1, size) for size in sizes)
    share = total / max(1, tasks)
    plan = []
    for index, size in enumerate(sizes):
        slices = min(max_slices, math.ceil(size / share)) if splittable[index] and size > share else 1
        plan += [(index, part, slices) for part in range(max(1, slices))]
    return plan


def files_dataframe(spark, files: Sequence[str] | Sequence[tuple[str, str]] | Sequence[tuple[str, str, int]],
                    partitions: int = 0, splittable: Callable[[str], bool] | None = None):
    """One row (file_rank, path, name, slice, slices) per file, or per slice of a file read in several, spread over
    `partitions` tasks (default: one task per file, or slice). `files` are uris, (uri, name) pairs from
    :func:`expand_named_inputs`, or (uri, name, size) triples from :func:`expand_sized_inputs`; a bare uri is
    named by its file name.

    A file's rank is its place in `files` (the version order), whichever task reads it. Files with sizes
    are grouped into the tasks by bytes (:func:`assign_tasks`), so one task does not get every large
    package; without sizes, the tasks are runs of consecutive files. With sizes and `splittable` (a test of a
    file's name: its parser yields :class:`Unit`s), a file bigger than its share of the bytes (the total over
    the tasks: `partitions`, or one per file) is read in slices (:func:`plan_slices`), each slice counting as
    its share of the file's bytes, so that no task parses much more than its share."""
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType

    schema = StructType([StructField(FILE_RANK, IntegerType()), StructField("path", StringType()),
                         StructField("name", StringType()), StructField(SLICE, IntegerType()),
                         StructField(SLICES, IntegerType())])
    groups = file_tasks(files, partitions, splittable)
    # One group per slice (parallelize cuts a list of n items into n slices of one), then its rows.
    tasks = spark.sparkContext.parallelize(groups, numSlices=len(groups)).flatMap(lambda group: group)
    return spark.createDataFrame(tasks, schema)


def file_tasks(files: Sequence[str] | Sequence[tuple[str, str]] | Sequence[tuple[str, str, int]],
               partitions: int = 0, splittable: Callable[[str], bool] | None = None) -> list[list[tuple]]:
    """What each task of :func:`files_dataframe` reads: its (file_rank, path, name, slice, slices) rows, one list
    per task (at least one list, empty when there are no files)."""
    items = [item if isinstance(item, tuple) else (item, item.rstrip("/").rsplit("/", 1)[-1]) for item in files]
    sized = bool(items) and all(len(item) > 2 for item in items)
    if sized and splittable is not None:
        sizes = [item[2] for item in items]
        plan = plan_slices(sizes, partitions or len(items), [splittable(item[1]) for item in items])
    else:
        plan = [(index, 0, 1) for index in range(len(items))]
    rows = [(index, items[index][0], items[index][1], part, slices) for index, part, slices in plan]
    partitions = max(1, partitions or len(rows))
    if partitions >= len(rows) or not sized:  # runs of consecutive rows, as parallelize cuts a list
        return [rows[task * len(rows) // partitions:(task + 1) * len(rows) // partitions] for task in range(partitions)]
    loads = [max(1, items[index][2]) / slices for index, _, slices in plan]
    return [[rows[index] for index in task] for task in assign_tasks(loads, partitions)]
