"""Shard files depend on the rows and their order only, never on how they arrive in batches."""

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq

from gap_replay.core.schema import DOCUMENT_SCHEMA
from gap_replay.mixer.synthetic import synthetic_table
from gap_replay.core.shards import KEY_COLUMN, ShardWriter, commit_keyed, keyed_writer, new_run


def write(path, table, chunk_sizes):
    out = ShardWriter(str(path), DOCUMENT_SCHEMA, group_rows=100, text_column="text", group_text_bytes=60_000)
    start = 0
    for size in chunk_sizes:
        out.write(table.slice(start, size))
        start += size
    out.write(table.slice(start))
    out.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_row_groups_do_not_depend_on_batches(tmp_path):
    table = synthetic_table(450, seed=5, scale=0.2)
    digests = {write(tmp_path / "a.parquet", table, [450]),
               write(tmp_path / "b.parquet", table, [1, 99, 100, 3, 7, 200]),
               write(tmp_path / "c.parquet", table, [37] * 12)}
    assert len(digests) == 1
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(tmp_path / "a.parquet").metadata
    assert metadata.num_rows == 450 and metadata.num_row_groups > 450 // 100  # text bytes cut some groups short


def test_keyed_writer_names_files_by_key(tmp_path):
    table = synthetic_table(30, seed=6, scale=0.1)
    keys = pa.array(sorted([0] * 10 + [2] * 20), pa.int32())
    batch = table.append_column(KEY_COLUMN, keys).to_batches()[0]
    names = ["train/train-00000-of-00003.parquet", "train/train-00001-of-00003.parquet",
             "train/train-00002-of-00003.parquet"]
    write = keyed_writer(str(tmp_path), names, DOCUMENT_SCHEMA, DOCUMENT_SCHEMA.names, new_run())
    (result,) = list(write(iter([batch.slice(0, 7), batch.slice(7)])))
    assert result.to_pydict()["file"] == [names[0], names[2]]
    assert result.to_pydict()["rows"] == [10, 20]
    # The attempt's files are its own, hidden, until the driver commits them.
    assert not list((tmp_path / "train").glob("*.parquet"))
    committed = commit_keyed(str(tmp_path), result.to_pylist())
    assert [row["file"] for row in committed] == [names[0], names[2]] and "staged" not in committed[0]
    assert sorted(path.name for path in (tmp_path / "train").iterdir()) == [names[0][6:], names[2][6:]]
    assert pq.read_table(tmp_path / names[2]).num_rows == 20
