"""One stage-output write (``shards.write_outcomes``) on a Spark session that retries failed tasks, undisturbed
or with the first attempt of one writing task disturbed half-way through:

    python task_commit_run.py OUTPUT {none,fail,kill,slow,executor} [MASTER]
    python task_commit_run.py OUTPUT {mapped-none,mapped-fail,mapped-kill} [MASTER]

The ``mapped-`` modes write a mapped stage instead (``shards.write_mapped_outcomes``: Python tasks read input
shards, written first beside OUTPUT, and write their parts without a shuffle), the first attempt of one task
disturbed at its fifth row group.

MASTER defaults to ``local[2,4]`` (two cores, four attempts a task). The disturbance is in the writing
stage itself (after the split into parts, between the shuffle and the writer):

- ``fail``: the attempt's input raises (the writer, in its own Python worker, sees its input end);
- ``kill``: the Python worker writing is SIGKILLed;
- ``slow``: the attempt stalls half-way (until a speculative copy has finished, or a minute), for a session
  with ``spark.speculation`` on, on a cluster whose workers are different hosts: the copy wins, and the
  stalled attempt is cancelled mid-write;
- ``executor``: the executor running the attempt (its JVM) is SIGKILLed: Spark loses the executor and the
  shuffle files it held, and runs their tasks again.

The disturbed attempt leaves OUTPUT.disturbed, and a speculative copy OUTPUT.speculated. Prints the ledger as
JSON."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from gap_replay.core.config import SparkConfig
from gap_replay.core.outcome import Drop, outcomes_to_batches
from gap_replay.core.schema import OUTCOME_SCHEMA, make_document
from gap_replay.core.shards import by_part, write_parted_outcomes
from gap_replay.core.spark import spark_schema, spark_session

ROWS, PARTITIONS, PARTS = 20_000, 4, 4
SPECULATION = {"spark.speculation": "true", "spark.speculation.interval": "200ms",
               "spark.speculation.quantile": "0.5", "spark.speculation.multiplier": "1.5",
               "spark.speculation.minTaskRuntime": "1s", "spark.speculation.efficiency.enabled": "false"}


def outcomes(batches):
    for batch in batches:
        numbers = batch.column("id").to_pylist()
        yield from outcomes_to_batches(
            Drop(f"pmid:{n}", "too_short", f"{n % 7} words", "pubmed_abstracts") if n % 10 == 0 else
            make_document(id=f"pmid:{n}", source="pubmed_abstracts", text=f"Abstract {n}: " + "word " * (n % 50))
            for n in numbers)


def executor_pid() -> int:
    """The pid of the executor JVM this Python worker runs under (an ancestor process)."""
    pid = os.getppid()
    while pid > 1:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            if b"CoarseGrainedExecutorBackend" in handle.read():
                return pid
        with open(f"/proc/{pid}/stat") as handle:
            pid = int(handle.read().rsplit(")", 1)[1].split()[1])
    raise RuntimeError("no executor JVM among this worker's ancestors")


def disturbed(mode: str, output: str):
    """The writer's input in slices of 500 rows; the first writing attempt with rows (the one that creates
    OUTPUT.disturbed) is disturbed half-way through them. Its retry, or its speculative copy, finds the
    marker and goes on."""
    marker, speculated = output + ".disturbed", output + ".speculated"

    def run(batches):
        from pyspark import TaskContext

        first = None
        for batch in batches:
            half = batch.num_rows // 2
            for start in range(0, batch.num_rows, 500):
                if mode != "none" and start >= half and first is None:
                    try:
                        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                        first = True
                    except FileExistsError:
                        first = False
                        if mode == "slow" and TaskContext.get().attemptNumber() > 0:
                            with open(speculated, "a") as handle:  # only a copy of the stalled attempt gets here
                                handle.write(f"{TaskContext.get().partitionId()}\n")
                if first:
                    if mode == "kill":
                        os.kill(os.getpid(), signal.SIGKILL)
                    if mode == "executor":
                        os.kill(executor_pid(), signal.SIGKILL)
                        time.sleep(60)  # the executor's death ends this worker
                    if mode == "slow":
                        deadline = time.monotonic() + 60
                        while not os.path.exists(speculated) and time.monotonic() < deadline:
                            time.sleep(0.1)
                        time.sleep(5)  # stalled still when the copy finishes: cancelled mid-write
                        first = False
                    else:
                        raise RuntimeError("the first attempt fails half-way through its partition")
                yield batch.slice(start, 500)

    return run


def mapped(spark, output: str, mode: str):
    """The mapped stage: 4 input files of 5,000 documents in row groups of 500, a drop for every tenth."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gap_replay.core.schema import DROP_DETAIL, DROP_REASON, documents_to_batch
    from gap_replay.core.shards import write_mapped_outcomes

    inputs = output.rstrip("/") + ".input"
    os.makedirs(inputs, exist_ok=True)
    files = []
    for index in range(4):
        documents = [make_document(id=f"pmid:{n}", source="pubmed_abstracts",
                                   text=f"Abstract {n}: " + "word " * (n % 50))
                     for n in range(index * ROWS // 4, (index + 1) * ROWS // 4)]
        files.append(f"{inputs}/part-{index:05d}.parquet")
        pq.write_table(pa.Table.from_batches([documents_to_batch(documents)]), files[-1], row_group_size=500)
    marker, calls = output.rstrip("/") + ".disturbed", {}

    def outcomes_of(table):
        from pyspark import TaskContext

        attempt = TaskContext.get().taskAttemptId()
        calls[attempt] = calls.get(attempt, 0) + 1
        if mode != "none" and calls[attempt] == 5:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                if mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError("the first attempt fails half-way through its part")
            except FileExistsError:
                pass
        numbers = [int(identifier.split(":")[1]) for identifier in table.column("id").to_pylist()]
        return table.append_column(DROP_REASON, pa.array(["too_short" if n % 10 == 0 else None for n in numbers],
                                                         pa.string())) \
                    .append_column(DROP_DETAIL, pa.array([f"{n % 7} words" if n % 10 == 0 else None for n in numbers],
                                                         pa.string()))

    sizes = [os.path.getsize(file) for file in files]
    return write_mapped_outcomes(spark, files, outcomes_of, output, "test", documents_in=ROWS,
                                 part_bytes=sum(sizes) // 3)  # a part per file or two


def main() -> None:
    output, mode = sys.argv[1], sys.argv[2]
    master = sys.argv[3] if len(sys.argv) > 3 else "local[2,4]"
    spark = spark_session(SparkConfig(master=master, conf=SPECULATION if mode == "slow" else {}))
    if mode.startswith("mapped-"):
        print(json.dumps(mapped(spark, output, mode.split("-", 1)[1]).to_dict()))
        spark.stop()
        return
    frame = spark.range(0, ROWS, numPartitions=PARTITIONS).mapInArrow(outcomes, spark_schema(OUTCOME_SCHEMA))
    parted = by_part(frame, PARTS)
    parted = parted.mapInArrow(disturbed(mode, output.rstrip("/")), parted.schema)
    ledger = write_parted_outcomes(parted, output, "test", parts=PARTS)
    print(json.dumps(ledger.to_dict()))
    spark.stop()


if __name__ == "__main__":
    main()
