"""Training data from GAP-Replay shards: tokenise, start each document with a beginning-of-sequence
token (when the run uses one) and end it with an end-of-document token, pack into fixed-length sequences. No Spark: pyarrow reads the shards directly.

For training, rank r of n takes the contiguous range of documents [N r / n, N (r + 1) / n) of the N
documents of the sorted shard list (their count read from the Parquet footers, no data), and reads only
the row groups that overlap its range, only their `text` column: the shards are read once per epoch over
all ranks, not once per rank. :class:`PackedSequences` exposes its position (`state_dict`: the index of
the next document, tokens of it already emitted) so that a resumed run continues exactly where it
stopped; resuming opens the row group holding that document and nothing before it (the footers say
where it is). :class:`BatchStream` turns it into endless micro-batches (epoch after epoch, a background
thread tokenising ahead) whose position is that of the last batch handed out. Validation and the
tokenizer's training texts read documents in order from the start (`iter_texts`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gap_replay.core import storage

Tokenize = Callable[[list[str]], list[list[int]]]


def shard_files(directory: str | Path) -> list[str]:
    """The Parquet shards of a split directory (e.g. ``OUT/train``, or ``s3://bucket/build/train``), in
    name order."""
    files = sorted(storage.list_files(str(directory))) if storage.exists(str(directory)) else []
    if not files:
        raise FileNotFoundError(f"no Parquet shards in {directory}")
    return files


def _parquet(uri: str | Path) -> pq.ParquetFile:
    fs, path = storage.resolve(str(uri))
    return pq.ParquetFile(fs.open_input_file(path))


def parts(files: Sequence[str | Path]) -> list[str]:
    """The parts (values of the `source` column) present in the shards, sorted."""
    found: set[str] = set()
    for path in files:
        column = _parquet(path).read(columns=["source"]).column("source")
        found.update(value for value in pc.unique(column).to_pylist() if value is not None)
    return sorted(found)


def iter_texts(files: Sequence[str | Path], rank: int = 0, world_size: int = 1, start: int = 0,
               batch_rows: int = 256, sources: Sequence[str] | None = None) -> Iterator[tuple[int, str]]:
    """(document index, text) for this rank's documents with index >= `start`, reading only `text`
    (and `source` when `sources` selects parts: indexes then count the selected documents only)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world of {world_size}")
    index = 0
    columns = ["text"] if sources is None else ["text", "source"]
    wanted = None if sources is None else pa.array(list(sources), pa.string())
    for path in files:
        parquet = _parquet(path)
        rows = parquet.metadata.num_rows
        if sources is None and index + rows <= start:  # whole shard already consumed: skip without reading it
            index += rows
            continue
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
            texts = batch.column(0)
            if wanted is not None:
                texts = texts.filter(pc.is_in(batch.column(1), value_set=wanted))
            for text in texts.to_pylist():
                if index >= start and index % world_size == rank:
                    yield index, text
                index += 1


@dataclass(frozen=True)
class RowGroup:
    file: str
    group: int  # index of the row group in its file
    first: int  # global index of its first document (over the sorted shard list)
    rows: int


def row_groups(files: Sequence[str | Path]) -> list[RowGroup]:
    """Every row group of the shards, in order, from the files' footers (no data read)."""
    groups, first = [], 0
    for path in files:
        metadata = _parquet(path).metadata
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            groups.append(RowGroup(str(path), group, first, rows))
            first += rows
    return groups


def rank_range(total: int, rank: int, world_size: int) -> tuple[int, int]:
    """The documents [start, stop) of rank `rank` of `world_size`: contiguous, sizes differing by at most one."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world of {world_size}")
    return total * rank // world_size, total * (rank + 1) // world_size


# Row groups read by rank_texts (file, group): a test hook counting what is read.
READ_LOG: list[tuple[str, int]] | None = None


def rank_texts(groups: Sequence[RowGroup], start: int, stop: int, begin: int = 0) -> Iterator[tuple[int, str]]:
    """(document index, text) for the documents [max(start, begin), stop), reading only the row groups that
    hold them (only `text`), each once, in order."""
    begin = max(start, begin)
    handle: tuple[str, pq.ParquetFile] | None = None
    for group in groups:
        if group.first + group.rows <= begin or group.rows == 0:
            continue
        if group.first >= stop:
            return
        if handle is None or handle[0] != group.file:
            handle = (group.file, _parquet(group.file))
        if READ_LOG is not None:
            READ_LOG.append((group.file, group.group))
        lo, hi = max(begin, group.first) - group.first, min(stop, group.first + group.rows) - group.first
        texts = handle[1].read_row_group(group.group, columns=["text"]).column(0).slice(lo, hi - lo)
        for offset, text in enumerate(texts.to_pylist()):
            yield group.first + lo + offset, text


@dataclass
class PackedSequences:
    """Iterator of token sequences of `seq_len` tokens packed from the documents of one rank.

    Each document is ``[bos_id] + tokens + [eod_id]`` (no BOS when `bos_id` is None). Position = (next
    document index, tokens of the current document already emitted, BOS included); tokens of a
    document split across two sequences continue in the next one. Documents are tokenised
    `tokenize_batch` at a time. Without `sources` the rank's documents are its contiguous range
    (`rank_range`), read row group by row group (`rank_texts`; `groups`: the shards' row groups, read
    from the footers when not given); `sources` restricts reading to some parts, in order, every
    `world_size`-th document (`iter_texts`: validation reads them with a world of one). With
    `keep_partial` the trailing partial sequence is yielded too (validation), otherwise it is dropped.
    """

    files: Sequence[str | Path]
    tokenize: Tokenize
    seq_len: int
    eod_id: int
    rank: int = 0
    world_size: int = 1
    document: int = 0
    offset: int = 0
    tokenize_batch: int = 1
    sources: Sequence[str] | None = None
    keep_partial: bool = False
    bos_id: int | None = None
    groups: Sequence[RowGroup] | None = None
    _buffer: list[int] = field(default_factory=list, repr=False)

    def state_dict(self) -> dict[str, int]:
        return {"document": self.document, "offset": self.offset}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.document, self.offset = int(state["document"]), int(state["offset"])

    def _tokenized(self) -> Iterator[tuple[int, list[int]]]:
        chunk: list[tuple[int, str]] = []
        if self.sources is None:
            groups = self.groups if self.groups is not None else row_groups(self.files)
            total = groups[-1].first + groups[-1].rows if groups else 0
            texts = rank_texts(groups, *rank_range(total, self.rank, self.world_size), begin=self.document)
        else:
            texts = iter_texts(self.files, self.rank, self.world_size, self.document, sources=self.sources)
        while True:
            chunk.clear()
            for item in texts:
                chunk.append(item)
                if len(chunk) == self.tokenize_batch:
                    break
            if not chunk:
                return
            start = [] if self.bos_id is None else [self.bos_id]
            for (index, _), tokens in zip(chunk, self.tokenize([text for _, text in chunk]), strict=True):
                yield index, start + list(tokens) + [self.eod_id]

    def __iter__(self) -> Iterator[list[int]]:
        buffer: list[int] = []
        first, offset = self.document, self.offset
        for index, tokens in self._tokenized():
            position = offset if index == first else 0
            while position < len(tokens):
                take = min(self.seq_len - len(buffer), len(tokens) - position)
                buffer.extend(tokens[position:position + take])
                position += take
                if len(buffer) == self.seq_len:
                    # The position saved is where the next sequence starts.
                    if position < len(tokens):
                        self.document, self.offset = index, position
                    else:
                        self.document, self.offset = index + 1, 0
                    yield buffer
                    buffer = []
        if buffer and self.keep_partial:
            yield buffer
        # Otherwise a trailing partial sequence is dropped: every training step sees full sequences.


class DataExhausted(RuntimeError):
    """A rank's slice of the data does not hold one full sequence."""


class BatchStream:
    """Endless micro-batches (``int64`` arrays of shape ``[micro_batch_size, seq_len]``) for one rank.

    When the rank's slice is exhausted the next epoch reads it again from the start (same order: the
    mixer has already mixed the shards). The position ``{"epoch", "document", "offset"}`` is that of
    the first sequence not yet handed out, so a stream restored from ``state_dict()`` yields exactly
    the batches the original would have yielded next. With ``prefetch > 0`` a background thread
    tokenises and packs up to that many batches ahead; the position stays exact.
    """

    def __init__(self, files: Sequence[str | Path], tokenize: Tokenize, seq_len: int, eod_id: int,
                 micro_batch_size: int, rank: int = 0, world_size: int = 1, tokenize_batch: int = 64,
                 prefetch: int = 0, bos_id: int | None = None):
        self.files, self.tokenize, self.seq_len, self.eod_id = list(files), tokenize, seq_len, eod_id
        self.bos_id = bos_id
        self.micro_batch_size, self.rank, self.world_size = micro_batch_size, rank, world_size
        self.tokenize_batch, self.prefetch = tokenize_batch, prefetch
        self._state = {"epoch": 0, "document": 0, "offset": 0}
        self._groups: list[RowGroup] | None = None  # the shards' row groups, from their footers, read once
        self._source: Iterator[tuple[np.ndarray, dict[str, int]]] | None = None
        self._queue: queue.Queue | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    LAYOUT = "ranges"  # rank r reads the contiguous range rank_range(N, r, n); before: every n-th document

    def state_dict(self) -> dict[str, int | str]:
        return {**self._state, "layout": self.LAYOUT}

    def load_state_dict(self, state: dict[str, int | str]) -> None:
        if state.get("layout") != self.LAYOUT:
            raise ValueError("this data position counts every n-th document per rank (a checkpoint from before "
                             "ranks read contiguous ranges of row groups): the position cannot be carried over")
        self.close()
        self._state = {key: int(state[key]) for key in ("epoch", "document", "offset")}

    def _produce(self, state: dict[str, int]) -> Iterator[tuple[np.ndarray, dict[str, int]]]:
        """(batch, position after it), forever."""
        epoch, position = state["epoch"], {"document": state["document"], "offset": state["offset"]}
        rows: list[list[int]] = []
        if self._groups is None:
            self._groups = row_groups(self.files)
        while True:
            packed = PackedSequences(self.files, self.tokenize, self.seq_len, self.eod_id, self.rank,
                                     self.world_size, tokenize_batch=self.tokenize_batch, bos_id=self.bos_id,
                                     groups=self._groups)
            packed.load_state_dict(position)
            produced = False
            for sequence in packed:
                produced = True
                rows.append(sequence)
                if len(rows) == self.micro_batch_size:
                    batch = np.asarray(rows, dtype=np.int64)
                    rows = []
                    yield batch, {"epoch": epoch, **packed.state_dict()}
            if not produced and position == {"document": 0, "offset": 0}:
                raise DataExhausted(f"rank {self.rank} of {self.world_size}: its slice of the data holds less "
                                    f"than one sequence of {self.seq_len} tokens")
            # Rows left over fill the first batch of the next epoch; the position reported is always
            # that of the next sequence to read.
            epoch, position = epoch + 1, {"document": 0, "offset": 0}

    def _worker(self, state: dict[str, int], out: queue.Queue, stop: threading.Event) -> None:
        try:
            for item in self._produce(state):
                while not stop.is_set():
                    try:
                        out.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            out.put(error)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> np.ndarray:
        if self.prefetch <= 0:
            if self._source is None:
                self._source = self._produce(dict(self._state))
            batch, self._state = next(self._source)
            return batch
        if self._thread is None:
            self._stop = threading.Event()
            self._queue = queue.Queue(maxsize=self.prefetch)
            self._thread = threading.Thread(target=self._worker, args=(dict(self._state), self._queue, self._stop),
                                            name=f"batch-stream-{self.rank}", daemon=True)
            self._thread.start()
        item = self._queue.get()
        if isinstance(item, BaseException):
            self.close()
            raise item
        batch, self._state = item
        return batch

    def close(self) -> None:
        """Stop the background thread (a later `next` starts afresh from the current position)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = self._queue = None
        self._source = None


def validation_sequences(files: Sequence[str | Path], part: str, tokenize: Tokenize, seq_len: int, eod_id: int,
                         limit: int = 0, tokenize_batch: int = 64, bos_id: int | None = None) -> list[list[int]]:
    """The validation sequences of one part: its documents, in order, packed like the training data, the
    last partial sequence kept; the first `limit` (0 = all). The same list whatever the number of
    processes: each process reads the part's documents up to the limit and evaluates its share."""
    packed = PackedSequences(files, tokenize, seq_len, eod_id, tokenize_batch=tokenize_batch, sources=[part],
                             keep_partial=True, bos_id=bos_id)
    sequences: list[list[int]] = []
    for sequence in packed:
        sequences.append(sequence)
        if limit and len(sequences) == limit:
            break
    return sequences
