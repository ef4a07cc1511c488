"""What the pubmed stage's driver does itself, kept small at any scale: citation quartiles from two small
aggregations (the same values as an exact quantile), a citation table on object storage read by a task, and
input files fingerprinted from the listing that found them."""

from __future__ import annotations

import random
import subprocess
import sys

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from gap_replay.build import sample_dir
from gap_replay.core import storage
from gap_replay.core.ingest import expand_sized_inputs
from gap_replay.core.runner import stage_fingerprint
from gap_replay.pubmed_ingest.job import _stream_citations, nearest_rank_quantiles, read_citation_table
from gap_replay.stages import load_config

SAMPLE = sample_dir()

PROBABILITIES = (0.0, 0.25, 0.5, 0.75, 1.0)


def value_sets():
    draw = random.Random(7)
    yield "one value", [3.5]
    yield "ties", [0.0] * 40 + [1.0] * 3 + [2.0] * 40
    yield "citations per year", [draw.randint(0, 400) / draw.randint(1, 30) for _ in range(3000)]
    yield "close values in one bucket", [10.0 + draw.random() * 1e-3 for _ in range(500)]
    yield "negative and huge", [draw.choice((-1, 1)) * draw.lognormvariate(0, 6) for _ in range(2000)] + [0.0, -0.0]


@pytest.mark.parametrize("name, values", list(value_sets()), ids=[name for name, _ in value_sets()])
def test_quantiles_are_spark_exact_quantiles_whatever_the_partitioning(spark, name, values):
    rows = [(value,) for value in values] + [(None,), (float("nan"),)]  # neither counts
    frame = spark.createDataFrame(rows, "v double")
    exact = frame.where("v is not null and not isnan(v)").approxQuantile("v", list(PROBABILITIES), 0.0)
    assert nearest_rank_quantiles(frame, "v", PROBABILITIES) == exact
    assert nearest_rank_quantiles(frame.repartition(7), "v", PROBABILITIES) == exact


def test_no_values_give_no_quantiles(spark):
    frame = spark.createDataFrame([(None,), (None,)], "v double")
    assert nearest_rank_quantiles(frame, "v", PROBABILITIES) is None


def citation_csv(tmp_path, bucket) -> tuple[str, str]:
    lines = ["id,citations,journal"] + [f"pmid:{pmid},{pmid % 17},J" for pmid in range(1, 5001)]
    local = tmp_path / "citations.csv"
    local.write_text("\n".join(lines) + "\n")
    storage.write_bytes(f"{bucket}/citations.csv", local.read_bytes())
    return str(local), f"{bucket}/citations.csv"


def test_a_citation_table_on_object_storage_is_read_by_a_task(spark, bucket, tmp_path):
    local, remote = citation_csv(tmp_path, bucket)
    frame = read_citation_table(spark, remote)
    plan = frame._jdf.queryExecution().executedPlan().toString()
    assert "MapInArrow" in plan  # parsed in a task, not by the driver into a local relation
    # The task's core, run here (this session's executors were started before the S3 stand-in).
    schema = pa.schema([("id", pa.string()), ("citations", pa.int64())])
    batches = _stream_citations(schema)(iter([pa.record_batch([pa.array([remote])], names=["path"])]))
    rows = sorted(zip(*(pa.Table.from_batches(list(batches), schema=schema).to_pydict().values())))
    assert rows == sorted(tuple(row) for row in read_citation_table(spark, local).collect())
    assert len(rows) == 5000 and rows[0] == ("pmid:1", 1)


@pytest.mark.slow
def test_the_stage_scores_with_a_citation_table_on_object_storage(spark, bucket, tmp_path):
    """In a process of its own (its executors get the S3 endpoint): the same scores as the table on disk."""
    local, remote = citation_csv(tmp_path, bucket)
    pmc = SAMPLE / "pmc"
    scores = {}
    for name, table in (("remote", remote), ("local", local)):
        done = subprocess.run([sys.executable, "-m", "gap_replay.cli", "pubmed", "--input", str(SAMPLE / "pubmed"),
                               str(pmc), "--output", str(tmp_path / name), "--master", "local[2]",
                               "--set", f"pubmed.citations={table}"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        scores[name] = {row["id"]: row["upsampling_score"] for row in pq.read_table(tmp_path / name / "data").to_pylist()}
    assert scores["remote"] == scores["local"] and any(score for score in scores["local"].values())


def test_a_citation_table_without_its_columns_is_refused(spark, bucket):
    storage.write_bytes(f"{bucket}/bad.csv", b"pmid,count\n1,2\n")
    with pytest.raises(Exception, match="lacks column"):
        read_citation_table(spark, f"{bucket}/bad.csv")


class CountingFileSystem(pafs.LocalFileSystem):
    """The local filesystem, counting metadata requests."""

    requests = 0

    def get_file_info(self, paths_or_selector):
        CountingFileSystem.requests += 1
        return super().get_file_info(paths_or_selector)


def test_input_files_are_fingerprinted_from_their_listing(tmp_path, monkeypatch):
    for number in range(50):
        (tmp_path / f"pubmed26n{number:04d}.xml.gz").write_bytes(b"x" * number)
    files = expand_sized_inputs([str(tmp_path)], (".xml.gz",))
    config = load_config()
    listed = stage_fingerprint(config, ["pubmed"], [], listed=[(uri, size) for uri, _, size in files])
    counting = CountingFileSystem()
    monkeypatch.setattr(storage, "resolve", lambda uri: (counting, uri.split("://", 1)[-1]))
    assert stage_fingerprint(config, ["pubmed"], [], listed=[(uri, size) for uri, _, size in files]) == listed
    assert CountingFileSystem.requests == 0
    # A changed size is a changed input.
    changed = [(uri, size + (uri == files[3][0])) for uri, _, size in files]
    assert stage_fingerprint(config, ["pubmed"], [], listed=changed) != listed
