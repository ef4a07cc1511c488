"""`gap-replay pubmed`: PubMed/MEDLINE XML and PMC JATS files (or OA .tar.gz packages) into documents.

Update semantics: input files are ranked by file name (NCBI numbers baseline and update files in
order). When a PMID (or PMCID) occurs more than once, the record from the last file, and within a
file the last record, wins; earlier ones are dropped as ``superseded_version``. A ``DeleteCitation``
drops every earlier version of its PMIDs as ``deleted``; a record re-added after the deletion stays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import BinaryIO

from gap_replay.ingest import FILE_RANK, RANKED_OUTCOME_SCHEMA, RECORD_RANK, expand_inputs, files_dataframe, parse_files
from gap_replay.ledger import StageLedger
from gap_replay.outcome import Drop, Outcome
from gap_replay.runner import RunContext, run_stage, stage_fingerprint
from gap_replay.schema import DROP_DETAIL, DROP_REASON, OUTCOME_SCHEMA
from gap_replay.shards import InputError, write_outcomes
from gap_replay.spark import spark_schema

STAGE = "pubmed"
SUFFIXES = (".xml", ".xml.gz", ".nxml", ".tar.gz", ".tgz")
DELETE = "__delete_citation__"  # internal marker row, never written


def parse_input(stream: BinaryIO, path: str) -> Iterator[Outcome]:
    """Parse one input file of any supported kind; deletions become DELETE marker rows.

    Records and drops name the input by its file name (NCBI file names are unique), so that the
    output does not depend on where the inputs were stored.
    """
    from pubmed_ingest.inputs import classify_stream, iter_jats_archive
    from pubmed_ingest.jats import parse_jats
    from pubmed_ingest.medline import DeleteCitation, iter_medline

    name = path.rstrip("/").rsplit("/", 1)[-1]
    kind = classify_stream(stream)
    if kind == "medline":
        for item in iter_medline(stream, name=name):
            if isinstance(item, DeleteCitation):
                for pmid in item.pmids:
                    yield Drop(f"pmid:{pmid}", DELETE, name, "pubmed_abstracts")
            else:
                yield item
    elif kind == "jats":
        yield parse_jats(stream.read(), name=name)
    elif kind == "jats_archive":
        for member, data in iter_jats_archive(stream, name=name):
            yield data if isinstance(data, Drop) else parse_jats(data, name=f"{name}:{member}")
    else:
        yield Drop(f"file:{name}", "unsupported_input", f"not PubMed XML, JATS or a tar.gz of JATS ({kind})")


def resolve_versions(ranked):
    """Apply update semantics (module docstring) to ranked outcomes; returns OUTCOME_SCHEMA columns."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    position = F.struct(F.col(FILE_RANK), F.col(RECORD_RANK))
    deletions = (ranked.where(F.col(DROP_REASON) == DELETE)
                 .groupBy("id").agg(F.max(position).alias("_deleted_at"), F.max(DROP_DETAIL).alias("_deleted_in")))
    records = ranked.where(F.col(DROP_REASON).isNull() | (F.col(DROP_REASON) != DELETE))
    latest_first = Window.partitionBy("id").orderBy(F.col(FILE_RANK).desc(), F.col(RECORD_RANK).desc())
    records = (records.withColumn("_version_rank", F.row_number().over(latest_first))
                      .join(deletions, "id", "left"))
    deleted = F.col("_deleted_at").isNotNull() & (position < F.col("_deleted_at"))
    superseded = F.col("_version_rank") > 1
    reason = F.coalesce(F.col(DROP_REASON),
                        F.when(deleted, F.lit("deleted")).when(superseded, F.lit("superseded_version")))
    detail = F.coalesce(F.col(DROP_DETAIL),
                        F.when(deleted, F.concat(F.lit("DeleteCitation in "), F.col("_deleted_in")))
                        .when(superseded, F.lit("a later record of the same id exists")))
    columns = [name for name in OUTCOME_SCHEMA.names if name not in (DROP_REASON, DROP_DETAIL)]
    return records.select(*columns, reason.alias(DROP_REASON), detail.alias(DROP_DETAIL))


def run_pubmed(context: RunContext, inputs: Sequence[str], output: str) -> StageLedger:
    if not inputs:
        raise InputError("no PubMed/PMC inputs given (--input PATHS or pubmed.inputs in the config)")
    files = expand_inputs(inputs, SUFFIXES)
    if not files:
        raise InputError(f"no PubMed or PMC files ({', '.join(SUFFIXES)}) under {', '.join(inputs)}")
    fingerprint = stage_fingerprint(context.config, ["pubmed"], files)

    def produce(output_dir) -> StageLedger:
        frame = files_dataframe(context.spark, files, context.config.pubmed.partitions)
        ranked = frame.mapInArrow(parse_files(parse_input), spark_schema(RANKED_OUTCOME_SCHEMA))
        return write_outcomes(resolve_versions(ranked), output_dir.staging, STAGE)

    return run_stage(context, STAGE, output, fingerprint, produce)
