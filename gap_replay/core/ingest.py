"""The Spark shell of stages that turn input files into documents (PubMed XML, JATS, replay JSONL).

The driver expands the input paths into a sorted file list; each Spark task opens its files and runs
a pure parser ``parse(stream, name) -> Iterator[Outcome]`` over them. Rows carry the file's rank and
the record's rank within it, so later steps can order versions deterministically.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
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

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

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


def parse_files(parser: Parser, with_uri: bool = False) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A mapInArrow function over (file_rank, path, name) rows yielding ranked outcomes.

    The parser gets the open file and its name relative to the input root (``expand_named_inputs``),
    never where the file is stored; with `with_uri`, also the uri (``parser(stream, name, uri)``) for
    formats it must open itself (Parquet needs random access). A failure that may pass on another try
    (``errors.is_transient``: I/O, object storage, memory) fails the task, so Spark tries it again and no
    attempt cut short counts as the file's whole content; any other failure escaping the parser is the
    file's ``parse_error`` drop (id ``file:<name>``), after the outcomes it yielded before."""

    def outcomes_of(path: str, name: str) -> Iterator[Outcome]:
        try:
            with open_input(path) as stream:
                yield from (parser(stream, name, path) if with_uri else parser(stream, name))
        except Exception as error:
            if isinstance(error, OSError) and is_transient(error):
                # Never a drop: the task fails and Spark tries it again. Named, for the job's error should
                # every try fail.
                raise TransientInputError(f"reading {name}: {type(error).__name__}: {error}") from error
            if is_transient(error):
                raise
            # Bad content, or a parser bug on it: recorded, and the job goes on.
            yield Drop(f"file:{name}", "parse_error", f"{type(error).__name__}: {error}")

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            names = batch.column("name").to_pylist() if "name" in batch.schema.names else batch.column("path").to_pylist()
            for rank, path, name in zip(batch.column(FILE_RANK).to_pylist(), batch.column("path").to_pylist(), names):
                record = 0
                for outcome_batch in outcomes_to_batches(outcomes_of(path, name)):
                    count = outcome_batch.num_rows
                    ranks = pa.array(range(record, record + count), pa.int64())
                    record += count
                    yield outcome_batch.append_column(FILE_RANK, pa.array([rank] * count, pa.int32())) \
                                       .append_column(RECORD_RANK, ranks)

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


def files_dataframe(spark, files: Sequence[str] | Sequence[tuple[str, str]] | Sequence[tuple[str, str, int]],
                    partitions: int = 0):
    """One row (file_rank, path, name) per file, spread over `partitions` tasks (default: one task per
    file). `files` are uris, (uri, name) pairs from :func:`expand_named_inputs`, or (uri, name, size) triples
    from :func:`expand_sized_inputs`; a bare uri is named by its file name.

    A file's rank is its place in `files` (the version order), whichever task reads it. Files with sizes
    are grouped into the tasks by bytes (:func:`assign_tasks`), so one task does not get every large
    package; without sizes, the tasks are runs of consecutive files."""
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType

    schema = StructType([StructField(FILE_RANK, IntegerType()), StructField("path", StringType()),
                         StructField("name", StringType())])
    items = [item if isinstance(item, tuple) else (item, item.rstrip("/").rsplit("/", 1)[-1]) for item in files]
    rows = [(rank, item[0], item[1]) for rank, item in enumerate(items)]
    partitions = max(1, partitions or len(rows))
    if partitions >= len(rows) or not all(len(item) > 2 for item in items):
        return spark.createDataFrame(spark.sparkContext.parallelize(rows, numSlices=partitions), schema)
    groups = [[rows[index] for index in task] for task in assign_tasks([item[2] for item in items], partitions)]
    # One group per slice (parallelize cuts a list of n items into n slices of one), then its rows.
    tasks = spark.sparkContext.parallelize(groups, numSlices=len(groups)).flatMap(lambda group: group)
    return spark.createDataFrame(tasks, schema)
