"""`gap-replay replay`: general-domain replay text (RedPajama-style JSONL or Parquet) into document shards.

One Spark task per input file runs the pure reader (:mod:`replay.reader`); unreadable files and
records become drops with their reason. With ``replay.sample_rate < 1`` the task keeps only the
documents of the read-time sample (:mod:`replay.sample`): the others never leave it, and are counted
(one row per file carries its count) into the ledger's ``not_sampled`` drops, with the rule in its
``details.sample``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from gap_replay.core import storage
from gap_replay.core.ingest import RANKED_OUTCOME_SCHEMA, expand_sized_inputs, files_dataframe, parse_files
from gap_replay.core.ledger import StageLedger
from gap_replay.core.redaction import Redactor, redact_documents, summarise
from gap_replay.core.runner import RunContext, run_stage, stage_fingerprint
from gap_replay.core.schema import DROP_DETAIL, DROP_REASON, OUTCOME_SCHEMA
from gap_replay.core.shards import DATA_DIR, part_count, write_outcomes
from gap_replay.core.spark import spark_schema
from gap_replay.replay.reader import iter_replay
from gap_replay.replay.sample import COUNT_REASON, NOT_SAMPLED, ReplaySample
from gap_replay.replay.settings import ReplayConfig

STAGE = "replay"
SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json", ".parquet")


def run_replay(context: RunContext, inputs: Sequence[str], output: str,
               settings: ReplayConfig | None = None) -> StageLedger:
    """Read `inputs` (files, directories, globs), keeping the sample `settings.sample_rate` asks for."""
    settings = settings or context.config.replay
    settings.validate()
    sample = ReplaySample(seed=context.config.mix.seed, rate=settings.sample_rate)
    files = expand_sized_inputs(inputs, SUFFIXES)
    # Personal data is redacted as in the filter stage, with its settings (filter.redact_*), which count in
    # the fingerprint; reading everything (rate 1) adds no sample to it.
    redactor = Redactor.from_config(context.config.filter)
    extra = ([] if sample.keeps_all else [sample.fingerprint()]) + [f"redact:{','.join(redactor.kinds)}"]
    fingerprint = stage_fingerprint(context.config, [], [], *extra, listed=[(uri, size) for uri, _, size in files])

    def produce(output_dir) -> StageLedger:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        def parse(stream, name, uri):
            outcomes = iter_replay(stream, name=name, uri=uri)
            return redact_documents(outcomes if sample.keeps_all else sample.apply(outcomes, name), redactor)

        ranked = files_dataframe(context.spark, files).mapInArrow(
            parse_files(parse, with_uri=True), spark_schema(RANKED_OUTCOME_SCHEMA))
        parts = part_count(sum(size for *_, size in files), context.config.spark.part_mib)

        def redaction() -> dict:  # by part, from the kept documents' extra.redacted
            return summarise(context.spark, storage.join(output_dir.staging, DATA_DIR), redactor)

        if sample.keeps_all:
            ledger = write_outcomes(ranked.select(*OUTCOME_SCHEMA.names), output_dir.staging, STAGE, parts=parts)
            ledger.details["redaction"] = redaction()
            return ledger
        # Two jobs read the sampled outcomes: the count of what each file left out, then the write. The
        # sample (not the input) is kept between them, so the inputs are read once.
        ranked = ranked.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            counted = F.col(DROP_REASON) == COUNT_REASON
            (row,) = ranked.where(counted).agg(F.sum(F.col(DROP_DETAIL).cast("long")).alias("left_out")).collect()
            left_out = int(row["left_out"] or 0)
            written = write_outcomes(ranked.where(~F.coalesce(counted, F.lit(False))).select(*OUTCOME_SCHEMA.names),
                                     output_dir.staging, STAGE, parts=parts)
        finally:
            ranked.unpersist()
        dropped = written.dropped + Counter({NOT_SAMPLED: left_out} if left_out else {})
        return StageLedger(STAGE, documents_in=written.documents_in + left_out, kept=written.kept, dropped=dropped,
                           details={"sample": sample.record(read=written.kept + left_out, kept=written.kept),
                                    "redaction": redaction()}).check()

    return run_stage(context, STAGE, output, fingerprint, produce)
