"""One stage-output write (``shards.write_outcomes``) on a local Spark session that retries failed tasks
(``local[2,4]``), undisturbed or with the first attempt of one partition disturbed half-way through:

    python task_commit_run.py OUTPUT {none,fail,kill}

``fail``: the attempt's input raises (the writer, in its own Python worker, sees its input end);
``kill``: the Python worker producing the attempt's input is SIGKILLed. Prints the ledger as JSON."""

from __future__ import annotations

import json
import os
import signal
import sys

from gap_replay.core.config import SparkConfig
from gap_replay.core.outcome import Drop, outcomes_to_batches
from gap_replay.core.schema import OUTCOME_SCHEMA, make_document
from gap_replay.core.shards import write_outcomes
from gap_replay.core.spark import spark_schema, spark_session, task_identity

ROWS, PARTITIONS, DISTURBED = 20_000, 4, 1


def outcomes(mode: str):
    def run(batches):
        partition, attempt = task_identity()
        for batch in batches:
            numbers = batch.column("id").to_pylist()
            half = len(numbers) // 2
            for start in range(0, len(numbers), 500):
                if mode != "none" and partition == DISTURBED and attempt == 0 and start >= half:
                    if mode == "kill":
                        os.kill(os.getpid(), signal.SIGKILL)
                    raise RuntimeError("the first attempt fails half-way through its partition")
                chunk = numbers[start:start + 500]
                yield from outcomes_to_batches(
                    Drop(f"pmid:{n}", "too_short", f"{n % 7} words", "pubmed_abstracts") if n % 10 == 0 else
                    make_document(id=f"pmid:{n}", source="pubmed_abstracts", text=f"Abstract {n}: " + "word " * (n % 50))
                    for n in chunk)

    return run


def main() -> None:
    output, mode = sys.argv[1], sys.argv[2]
    spark = spark_session(SparkConfig(master="local[2,4]"))
    frame = spark.range(0, ROWS, numPartitions=PARTITIONS).mapInArrow(outcomes(mode), spark_schema(OUTCOME_SCHEMA))
    ledger = write_outcomes(frame, output, "test")
    print(json.dumps(ledger.to_dict()))
    spark.stop()


if __name__ == "__main__":
    main()
