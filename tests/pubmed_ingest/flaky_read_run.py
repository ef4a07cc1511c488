"""The pubmed stage on a local Spark session that retries failed tasks (``local[2,4]``), run on several
(output, input) pairs one after the other in the same session:

    python flaky_read_run.py OUTPUT INPUT [OUTPUT INPUT ...]

The environment names the object store (AWS_ENDPOINT_URL: test_failures.py's resetting proxy in front of
moto). Prints each run's ledger as one line of JSON."""

from __future__ import annotations

import json
import sys

from gap_replay.core.runner import RunContext
from gap_replay.pubmed_ingest.job import run_pubmed
from gap_replay.stages import load_config


def main() -> None:
    pairs = sys.argv[1:]
    context = RunContext(load_config(base={"spark": {"master": "local[2,4]"}}))
    for output, source in zip(pairs[::2], pairs[1::2]):
        print(json.dumps(run_pubmed(context, [source], output).to_dict()), flush=True)
    context.spark.stop()


if __name__ == "__main__":
    main()
