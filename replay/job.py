"""`gap-replay replay`: general-domain replay text (RedPajama-style JSONL or Parquet) into document shards.

One Spark task per input file runs the pure reader (:mod:`replay.reader`); unreadable files and
records become drops with their reason.
"""

from __future__ import annotations

from collections.abc import Sequence

from gap_replay.core.ingest import RANKED_OUTCOME_SCHEMA, expand_named_inputs, files_dataframe, parse_files
from gap_replay.core.ledger import StageLedger
from gap_replay.core.runner import RunContext, run_stage, stage_fingerprint
from gap_replay.core.schema import OUTCOME_SCHEMA
from gap_replay.core import storage
from gap_replay.core.shards import part_count, write_outcomes
from gap_replay.core.spark import spark_schema
from gap_replay.replay.reader import iter_replay
from gap_replay.replay.settings import ReplayConfig

STAGE = "replay"
SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json", ".parquet")


def run_replay(context: RunContext, inputs: Sequence[str], output: str,
               settings: ReplayConfig | None = None) -> StageLedger:
    """Read `inputs` (files, directories, globs); `settings` has no field the run needs beyond them."""
    files = expand_named_inputs(inputs, SUFFIXES)
    fingerprint = stage_fingerprint(context.config, [], [uri for uri, _ in files])

    def produce(output_dir) -> StageLedger:
        ranked = files_dataframe(context.spark, files).mapInArrow(
            parse_files(lambda stream, name, uri: iter_replay(stream, name=name, uri=uri), with_uri=True), spark_schema(RANKED_OUTCOME_SCHEMA))
        parts = part_count(storage.total_size(uri for uri, _ in files), context.config.spark.part_mib)
        return write_outcomes(ranked.select(*OUTCOME_SCHEMA.names), output_dir.staging, STAGE, parts=parts)

    return run_stage(context, STAGE, output, fingerprint, produce)
