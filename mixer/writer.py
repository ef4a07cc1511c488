"""Writing the mixture's shards inside Spark tasks, byte-identical whatever the partitioning.

Rows reach a task sorted by shard key; each shard's rows go to one file. Row groups are cut by a rule
on the row sequence alone (every :data:`ROW_GROUP_ROWS` rows, or sooner once the group's ``text``
reaches :data:`ROW_GROUP_TEXT_BYTES`), never by how Spark batched the rows, and each row group is
written from contiguous arrays, so the same rows in the same order give the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gap_replay import storage
from gap_replay.schema import conform
from gap_replay.shards import COMPRESSION, file_digest

ROW_GROUP_ROWS = 1024
ROW_GROUP_TEXT_BYTES = 32 << 20
KEY_COLUMN = "_shard"
RESULT_SCHEMA = pa.schema([("file", pa.string()), ("rows", pa.int64()), ("bytes", pa.int64()), ("sha256", pa.string())])
RESULT_DDL = "file string, rows long, bytes long, sha256 string"


def _task_attempt() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    return 0 if context is None else context.attemptNumber()


class RowGroupWriter:
    """One Parquet file whose row groups depend only on the rows written, in order."""

    def __init__(self, uri: str, schema: pa.Schema, attempt: int = 0, text_column: str | None = "text"):
        self.uri, self.schema, self.attempt, self.text_column = uri, schema, attempt, text_column
        self.rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None

    def _open(self) -> None:
        self._fs, path = storage.resolve(self.uri)
        self._path, self._temporary = path, f"{path}.attempt{self.attempt}"
        self._fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        self._writer = pq.ParquetWriter(self._temporary, self.schema, filesystem=self._fs, compression=COMPRESSION,
                                        use_dictionary=True, write_statistics=True)

    def _text_bytes(self, table: pa.Table) -> pa.Array | None:
        if self.text_column is None:
            return None
        lengths = pc.binary_length(table.column(self.text_column).combine_chunks())
        return pc.fill_null(lengths, 0)

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        while self._emit_group(final=False):
            pass

    def _cut(self, pending: pa.Table) -> int | None:
        """Rows of the next full row group: ROW_GROUP_ROWS, or up to the row whose text makes the
        group reach ROW_GROUP_TEXT_BYTES; None when the pending rows do not fill one yet."""
        cut = ROW_GROUP_ROWS
        lengths = self._text_bytes(pending)
        if lengths is not None:
            below = int((pc.cumulative_sum(lengths).to_numpy() < ROW_GROUP_TEXT_BYTES).sum())
            cut = min(cut, below + 1)
        return cut if cut <= pending.num_rows else None

    def _emit_group(self, final: bool) -> bool:
        """Write the next row group of the pending rows (what is left, when `final`)."""
        if not self._pending_rows:
            return False
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
        return True

    def close(self) -> None:
        """Finish the file (an empty one when no row was written) and move it to its name."""
        while self._emit_group(final=False):
            pass
        self._emit_group(final=True)
        if self._writer is None:
            self._open()
        self._writer.close()
        self._fs.move(self._temporary, self._path)


def keyed_writer(root: str, names: Sequence[str], schema: pa.Schema,
                 columns: Sequence[str], text_column: str | None = "text") -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A mapInArrow function writing rows sorted by KEY_COLUMN into ``root/names[key]``.

    The file a row lands in depends only on its key, so the output is the same whatever the
    partitioning; one result row (file, rows, bytes, sha256) per file written."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        attempt = _task_attempt()
        current, writer, results = None, None, []

        def finish() -> None:
            writer.close()
            size, digest = file_digest(writer.uri)
            results.append({"file": names[current], "rows": writer.rows, "bytes": size, "sha256": digest})

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
                    writer = RowGroupWriter(storage.join(root, names[key]), schema, attempt, text_column)
                writer.write(conform(table.slice(start, end - start).select(list(columns)), schema))
                start = end
        if writer is not None:
            finish()
        yield pa.RecordBatch.from_pylist(results, schema=RESULT_SCHEMA)

    return run


def write_empty(root: str, name: str, schema: pa.Schema) -> dict:
    """An empty shard (a key no row hashed to), so a split's set of files is whole."""
    writer = RowGroupWriter(storage.join(root, name), schema, text_column=None)
    writer.close()
    size, digest = file_digest(writer.uri)
    return {"file": name, "rows": 0, "bytes": size, "sha256": digest}
