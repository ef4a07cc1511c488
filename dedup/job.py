"""`gap-replay dedup`: ID and exact-text duplicate removal on Spark.

Rules, applied in this order, each with its own drop reason:
1. ``superseded_by_fulltext``: an abstract whose PMID (or PMCID) belongs to a paper in the input.
2. ``duplicate_id``: more than one document with the same id; the best copy by SOURCE_PRIORITY,
   then longer text, then smallest text hash, is kept.
3. ``exact_duplicate``: same normalised text as a better document (same ordering), detail = its id.
The ordering is total, so the result does not depend on how Spark partitions the data.
"""

from __future__ import annotations

from collections.abc import Sequence

from gap_replay.ledger import StageLedger
from gap_replay.runner import RunContext, run_stage, stage_fingerprint
from gap_replay.schema import COLUMN_NAMES, DOCUMENT_SCHEMA, DROP_DETAIL, DROP_REASON
from gap_replay.shards import count_rows, read_documents, resolve_document_dirs, write_outcomes
from gap_replay.spark import spark_schema
from dedup.exact import HASH_COLUMN, SOURCE_PRIORITY, add_text_hashes
from dedup.ids import supersede_abstracts

STAGE = "dedup"


def dedup_outcomes(documents, *, by_id: bool = True, exact: bool = True):
    """Outcome DataFrame (document columns + drop_reason/drop_detail) for a DataFrame of documents."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    hashed_schema = StructType([*spark_schema(DOCUMENT_SCHEMA).fields, StructField(HASH_COLUMN, StringType())])
    df = documents.mapInArrow(add_text_hashes, hashed_schema)
    priority = F.create_map(*[item for key, value in SOURCE_PRIORITY.items() for item in (F.lit(key), F.lit(value))])
    df = df.withColumn("_priority", priority[F.col("source")]).withColumn("_length", F.length("text"))
    order = [F.col("_priority").asc(), F.col("_length").desc(), F.col("id").asc(), F.col(HASH_COLUMN).asc()]
    df = df.withColumn(DROP_REASON, F.lit(None).cast("string")).withColumn(DROP_DETAIL, F.lit(None).cast("string"))

    if by_id:
        df = supersede_abstracts(df)
        id_rank = F.row_number().over(Window.partitionBy("id").orderBy(*order))
        duplicate = F.col(DROP_REASON).isNull() & (id_rank > 1)
        df = (df.withColumn("_duplicate_id", duplicate)
                .withColumn(DROP_DETAIL, F.when(F.col("_duplicate_id"), F.col("id")).otherwise(F.col(DROP_DETAIL)))
                .withColumn(DROP_REASON, F.when(F.col("_duplicate_id"), F.lit("duplicate_id"))
                            .otherwise(F.col(DROP_REASON))))
    reason, detail = F.col(DROP_REASON), F.col(DROP_DETAIL)

    if exact:
        # Rank among the documents still alive, so a dropped copy never "keeps" another one.
        alive = reason.isNull()
        window = Window.partitionBy(HASH_COLUMN, alive).orderBy(*order)
        df = df.withColumn("_alive", alive).withColumn("_text_rank", F.row_number().over(window)) \
               .withColumn("_text_first", F.first("id").over(window))
        duplicate = F.col("_alive") & (F.col("_text_rank") > 1)
        reason = F.coalesce(reason, F.when(duplicate, F.lit("exact_duplicate")))
        detail = F.coalesce(detail, F.when(duplicate, F.col("_text_first")))

    return df.select(*COLUMN_NAMES, reason.alias(DROP_REASON), detail.alias(DROP_DETAIL))


def run_dedup(context: RunContext, inputs: Sequence[str], output: str) -> StageLedger:
    settings = context.config.dedup
    resolve_document_dirs(inputs)  # missing or unfinished inputs fail here, before any output exists
    fingerprint = stage_fingerprint(context.config, ["dedup"], inputs)

    def produce(output_dir) -> StageLedger:
        documents = read_documents(context.spark, inputs)
        outcomes = dedup_outcomes(documents, by_id=settings.by_id, exact=settings.exact)
        return write_outcomes(outcomes, output_dir.staging, STAGE, documents_in=count_rows(inputs))

    return run_stage(context, STAGE, output, fingerprint, produce)
