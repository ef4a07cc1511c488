"""Task commit (core.shards): only the attempts Spark counts publish files. A stage output written on local
Spark with task retries (local[2,4]) is byte-identical, file for file, to an undisturbed run's when the first
attempt of a partition fails half-way or its Python worker is killed, and its folders hold nothing else."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

RUN = Path(__file__).with_name("task_commit_run.py")


def write(output: Path, mode: str, master: str | None = None) -> dict:
    done = subprocess.run([sys.executable, str(RUN), str(output), mode, *([master] if master else [])],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def files(output: Path) -> dict[str, str]:
    return {str(path.relative_to(output)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(output.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory):
    output = tmp_path_factory.mktemp("commit") / "undisturbed"
    return write(output, "none"), output


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fail", "kill"])
def test_a_disturbed_attempt_publishes_nothing(undisturbed, tmp_path, mode):
    ledger, reference = undisturbed
    output = tmp_path / mode
    assert write(output, mode) == ledger
    assert (tmp_path / f"{mode}.disturbed").exists()  # an attempt was disturbed, and retried
    assert files(output) == files(reference)  # the same files, byte for byte: no partial file, no leftover
    assert sorted(files(output)) == [f"{folder}/part-{n:05d}.parquet" for folder in ("data", "drops") for n in range(4)]
    assert ds.dataset(output / "data").to_table().num_rows == ledger["kept"] == 18_000


@pytest.fixture(scope="module")
def undisturbed_mapped(tmp_path_factory):
    output = tmp_path_factory.mktemp("commit") / "undisturbed"
    return write(output, "mapped-none"), output


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fail", "kill"])
def test_a_disturbed_attempt_of_a_mapped_stage_publishes_nothing(undisturbed_mapped, tmp_path, mode):
    """The same for a stage written by the Python tasks that read its inputs (no shuffle): its parts are its
    input files in order, and a retried task's part is byte-identical."""
    ledger, reference = undisturbed_mapped
    output = tmp_path / mode
    assert write(output, f"mapped-{mode}") == ledger
    assert (tmp_path / f"{mode}.disturbed").exists()
    assert files(output) == files(reference)
    parts = len(files(output)) // 2
    assert parts >= 2
    assert sorted(files(output)) == [f"{folder}/part-{n:05d}.parquet" for folder in ("data", "drops") for n in range(parts)]
    kept = ds.dataset(output / "data").to_table()
    assert kept.num_rows == ledger["kept"] == 18_000
    assert kept.column("id").to_pylist() == [f"pmid:{n}" for n in range(20_000) if n % 10]  # input order


def test_only_the_counted_attempt_is_published_whatever_the_order_of_the_attempts(tmp_path, monkeypatch):
    """Two attempts of one partition (a speculative pair): the loser is cancelled half-way and, seeing a normal
    end of input, closes its files after the winner finished. Only the winner's files, the ones the driver
    collected, reach the final names; the loser's partial files go with the ``_attempts`` folders."""
    import pyarrow as pa

    from gap_replay.core import shards
    from gap_replay.core.outcome import outcomes_to_batches
    from gap_replay.core.schema import make_document

    documents = [make_document(id=f"pmid:{n}", source="pubmed_abstracts", text=f"Abstract {n}") for n in range(3000)]
    run, staging = shards.new_run(), str(tmp_path / "out")

    def attempt(number: int, documents) -> list[dict]:
        monkeypatch.setattr(shards, "attempt_file", lambda final, run: shards.storage.join(
            final.rsplit("/", 1)[0], shards.ATTEMPTS_DIR, run, f"{final.rsplit('/', 1)[1]}.{number}"))
        write = shards.outcome_writer(staging, "test", run)
        batches = [batch.append_column(shards.PART_COLUMN, pa.array([0] * batch.num_rows, pa.int32()))
                   for batch in outcomes_to_batches(documents)]
        return pa.Table.from_batches(list(write(iter(batches)))).to_pylist()

    winner = attempt(1, documents)
    loser = attempt(0, documents[:1000])  # cancelled after a third of its input, finishing last
    assert (tmp_path / "out" / "data" / "_attempts").is_dir() and loser
    shards.commit_files([(row["staged"], row["final"]) for row in winner if row["staged"]],
                        [f"{staging}/data", f"{staging}/drops"])
    assert [path.name for path in (tmp_path / "out" / "data").iterdir()] == ["part-00000.parquet"]
    assert ds.dataset(tmp_path / "out" / "data").to_table().num_rows == 3000
