"""A stage output written on a standalone cluster of two workers, each a host of its own to Spark, undisturbed,
with a stalled attempt that a speculative copy overtakes and that is cancelled mid-write, and with the executor
of an attempt killed mid-write: the same files, byte for byte, as the undisturbed run on one machine, the same
ledger, and folders that pyarrow, pandas, DuckDB and Spark read cleanly."""

from __future__ import annotations

import pyarrow.dataset as ds
import pytest

from tests.gap_replay.test_task_commit import files, write

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    output = tmp_path_factory.mktemp("local") / "undisturbed"
    return write(output, "none"), output


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from tests.gap_replay.standalone import standalone_cluster

    with standalone_cluster(workers=2, work_dir=tmp_path_factory.mktemp("cluster"), own_hosts=True) as master:
        yield master


def test_an_undisturbed_run_on_the_cluster_writes_what_one_machine_writes(cluster, local_reference, tmp_path):
    ledger, reference = local_reference
    assert write(tmp_path / "none", "none", cluster) == ledger
    assert files(tmp_path / "none") == files(reference)


@pytest.mark.parametrize("mode", ["slow", "executor"])
def test_a_cancelled_speculative_loser_or_a_lost_executor_changes_nothing(cluster, local_reference, tmp_path, spark,
                                                                          mode):
    import duckdb
    import pandas as pd

    ledger, reference = local_reference
    output = tmp_path / mode
    assert write(output, mode, cluster) == ledger
    assert (tmp_path / f"{mode}.disturbed").exists()  # the disturbance happened
    if mode == "slow":  # and a speculative copy of the stalled attempt ran (and won)
        assert (tmp_path / "slow.speculated").read_text().strip()
    assert files(output) == files(reference)
    data = output / "data"
    assert ds.dataset(data).to_table().num_rows == ledger["kept"] == 18_000
    assert len(pd.read_parquet(data)) == 18_000
    assert duckdb.sql(f"select count(*) from read_parquet('{data}/*.parquet')").fetchall() == [(18_000,)]
    assert spark.read.parquet(str(data)).count() == 18_000
    assert spark.read.parquet(str(output / "drops")).count() == ledger["dropped"]["too_short"] == 2_000
