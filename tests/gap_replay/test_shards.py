"""Shard writing and counting (core.shards) without Spark."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from gap_replay.core import shards, storage


def texts(rows: int, size: int) -> pa.Table:
    return pa.table({"id": [f"d{n}" for n in range(rows)], "text": [chr(97 + n % 26) * size for n in range(rows)]})


def test_row_groups_are_bounded_by_text_bytes_whatever_the_batches(tmp_path):
    """Long texts: a row group ends once it holds the byte bound (its last row crosses it), however the rows came."""
    whole, pieces = tmp_path / "whole.parquet", tmp_path / "pieces.parquet"
    table = texts(200, 100_000)
    writer = shards.ShardWriter(str(whole), table.schema, text_column="text", group_text_bytes=1_000_000)
    writer.write(table)
    writer.close()
    writer = shards.ShardWriter(str(pieces), table.schema, text_column="text", group_text_bytes=1_000_000)
    for start in range(0, 200, 7):
        writer.write(table.slice(start, 7))
    writer.close()
    metadata = pq.ParquetFile(whole).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [10] * 20
    assert whole.read_bytes() == pieces.read_bytes()
    assert pq.read_table(whole).equals(table)


def test_a_finished_stage_output_is_counted_from_its_ledger(tmp_path):
    output = tmp_path / "stage"
    (output / shards.DATA_DIR).mkdir(parents=True)
    (output / "_ledger.json").write_text(json.dumps({"stage": "filter", "in": 9, "kept": 7, "dropped": {"x": 2}}))
    (output / storage.SUCCESS).write_text("{}")
    assert shards.count_rows([str(output)]) == 7  # no shard read: the ledger says it
    loose = tmp_path / "loose"
    loose.mkdir()
    pq.write_table(texts(5, 10), loose / "part-00000.parquet")
    assert shards.count_rows([str(loose), str(output)]) == 12
