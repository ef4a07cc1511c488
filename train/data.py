"""Training data from GAP-Replay shards: tokenise, join documents with an end-of-document token,
pack into fixed-length sequences. No Spark: pyarrow reads the shards directly.

Each of `world_size` ranks takes every `world_size`-th document (by position in the sorted shard
list), so ranks see disjoint, deterministic slices. :class:`PackedSequences` exposes its position
(`state_dict`) so that a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

Tokenize = Callable[[list[str]], list[list[int]]]


def shard_files(directory: str | Path) -> list[Path]:
    """The Parquet shards of a split directory (e.g. ``OUT/train``), in name order."""
    files = sorted(Path(directory).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no Parquet shards in {directory}")
    return files


def iter_texts(files: Sequence[Path], rank: int = 0, world_size: int = 1, start: int = 0,
               batch_rows: int = 256) -> Iterator[tuple[int, str]]:
    """(document index, text) for this rank's documents with index >= `start`, reading only `text`."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world of {world_size}")
    index = 0
    for path in files:
        parquet = pq.ParquetFile(path)
        rows = parquet.metadata.num_rows
        if index + rows <= start:  # whole shard already consumed: skip without reading it
            index += rows
            continue
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=["text"]):
            for text in batch.column(0).to_pylist():
                if index >= start and index % world_size == rank:
                    yield index, text
                index += 1


@dataclass
class PackedSequences:
    """Iterator of token sequences of `seq_len` tokens packed from the documents of one rank.

    Position = (next document index, tokens of the current document already emitted); tokens of a
    document split across two sequences continue in the next one.
    """

    files: Sequence[Path]
    tokenize: Tokenize
    seq_len: int
    eod_id: int
    rank: int = 0
    world_size: int = 1
    document: int = 0
    offset: int = 0
    _buffer: list[int] = field(default_factory=list, repr=False)

    def state_dict(self) -> dict[str, int]:
        return {"document": self.document, "offset": self.offset}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.document, self.offset = int(state["document"]), int(state["offset"])

    def __iter__(self) -> Iterator[list[int]]:
        buffer: list[int] = []
        # Where the sequence being filled started: saved as the position once it is emitted.
        for index, text in iter_texts(self.files, self.rank, self.world_size, self.document):
            tokens = self.tokenize([text])[0] + [self.eod_id]
            skip = self.offset if index == self.document else 0
            position = skip
            while position < len(tokens):
                take = min(self.seq_len - len(buffer), len(tokens) - position)
                buffer.extend(tokens[position:position + take])
                position += take
                if len(buffer) == self.seq_len:
                    if position < len(tokens):
                        self.document, self.offset = index, position
                    else:
                        self.document, self.offset = index + 1, 0
                    yield buffer
                    buffer = []
        # A trailing partial sequence is dropped: every training step sees full sequences.
