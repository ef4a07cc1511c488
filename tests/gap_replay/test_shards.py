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


def test_mapped_stage_parts_pack_files_in_order_and_cut_large_ones():
    plan = shards.plan_parts(["a", "b", "c", "d", "e"], 100, sizes=[10, 300, 90, 5, 5])
    assert plan == [[(0, "a", 0, 1)], [(1, "b", 0, 3)], [(1, "b", 1, 3)], [(1, "b", 2, 3)],
                    [(2, "c", 0, 1), (3, "d", 0, 1), (4, "e", 0, 1)]]
    assert shards.plan_parts(["a"], 100, sizes=[140]) == [[(0, "a", 0, 1)]]  # up to 1.5 parts: whole
    assert shards.plan_parts([], 100, sizes=[]) == [[]]  # one (empty) part: an output always has one


def test_a_small_mapped_input_is_cut_into_enough_parts_for_the_cores():
    mib, part = 1 << 20, 256 << 20
    assert shards.output_part_bytes(100 * 1024 * mib, part) == part  # a large input: spark.part_mib parts
    assert shards.output_part_bytes(320 * mib, part) == 40 * mib  # a small one: 8 parts...
    assert shards.output_part_bytes(40 * mib, part) == 16 * mib  # ...of at least 16 MiB each
    assert shards.output_part_bytes(40 * mib, 2 * mib) == 2 * mib  # never over spark.part_mib
    sizes = [40 * mib, 280 * mib]  # the large file cut in slices, whatever the cluster
    plan = shards.plan_parts(["a", "b"], shards.output_part_bytes(sum(sizes), part), sizes)
    assert len(plan) == 8 and plan[1] == [(1, "b", 0, 7)]


def test_a_pass_over_some_rows_reads_only_their_slices_balanced_by_weight():
    import numpy as np

    # File 0: 1,000 rows, a cluster of heavy rows in 400..599; file 1: nothing wanted; file 2: two light rows.
    file_keys = np.array([0] * 200 + [2, 2])
    row_keys = np.array(list(range(400, 600)) + [5, 7])
    weights = np.array([10.0] * 200 + [1.0, 1.0])
    plan = shards.weighted_parts(["a", "b", "c"], [1000, 50, 10], file_keys, row_keys, weights, tasks=4)
    slices = [entry for part in plan for entry in part]
    assert {entry[0] for entry in slices} == {0, 2}  # file 1 is never read
    assert len(plan) >= 4  # the cluster spread over several tasks...
    loads = []
    for part in plan:
        load = 0.0
        for file, _, piece, count in part:
            total = 1000 if file == 0 else 10
            low, high = piece * total // count, (piece + 1) * total // count
            inside = (file_keys == file) & (row_keys >= low) & (row_keys < high)
            load += weights[inside].sum()
        loads.append(load)
    assert sum(loads) == weights.sum() and max(loads) <= 2 * weights.sum() / 4  # ...each about a quarter of it
    assert shards.weighted_parts(["a"], [10], np.array([], int), np.array([], int), np.array([]), 4) == []


def test_slices_of_a_file_read_its_rows_once_in_order_with_their_row_numbers(tmp_path):
    from gap_replay.core.schema import documents_to_batch, make_document

    table = pa.Table.from_batches([documents_to_batch(
        [make_document(id=f"d{n}", source="replay", text=f"text {n}") for n in range(50)])]).drop_columns(["title"])
    pq.write_table(table, tmp_path / "f.parquet", row_group_size=7)
    for slices in (1, 3, 8, 60):
        read = [(first, part) for piece in range(slices)
                for first, part in shards.read_slice(str(tmp_path / "f.parquet"), piece, slices, shards.DOCUMENT_SCHEMA,
                                                     ["id", "title", "text"])]
        assert pa.concat_tables([part for _, part in read]).column("id").to_pylist() == [f"d{n}" for n in range(50)]
        assert [first for first, _ in read] == list(__import__("itertools").accumulate(
            [0] + [part.num_rows for _, part in read][:-1]))
        assert all(part.column("title").null_count == part.num_rows for _, part in read)  # lacking: nulls
        assert all(part.num_rows <= 7 for _, part in read)  # never across row groups
    keyed = shards.with_row_keys(read[1][1], 4, read[1][0])
    assert keyed.column(shards.FILE_KEY).to_pylist() == [4] * keyed.num_rows
    assert keyed.column(shards.ROW_KEY).to_pylist() == list(range(read[1][0], read[1][0] + keyed.num_rows))


def test_a_row_group_reaches_a_function_in_bounded_pieces():
    table = texts(25, 1000)
    pieces = list(shards.bounded_batches(table, 100, rows=10, max_bytes=4000))
    assert [first for first, _ in pieces] == list(__import__("itertools").accumulate(
        [100] + [piece.num_rows for _, piece in pieces][:-1]))
    assert pa.concat_tables([piece for _, piece in pieces]).equals(table)
    assert all(piece.num_rows <= 10 and piece.nbytes <= 4000 for _, piece in pieces)
    assert [piece.num_rows for _, piece in shards.bounded_batches(texts(2, 9000), 0, max_bytes=4000)] == [1, 1]
