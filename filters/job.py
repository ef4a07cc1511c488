"""`gap-replay filter`: the Spark shell around filters.core."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa

from gap_replay.ledger import StageLedger
from gap_replay.outcome import outcomes_to_batches
from gap_replay.runner import RunContext, stage_fingerprint, run_stage
from gap_replay.schema import OUTCOME_SCHEMA
from gap_replay.shards import count_rows, read_documents, resolve_document_dirs, write_outcomes
from gap_replay.spark import spark_schema
from filters.core import FilterSettings, filter_documents
from filters.langid import LanguageIdentifier, resolve_model_path

STAGE = "filter"


def filter_partition(model_name: str, settings: FilterSettings):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import SparkFiles

        identifier = LanguageIdentifier(SparkFiles.get(model_name))
        for batch in batches:
            yield from outcomes_to_batches(filter_documents(batch.to_pylist(), identifier, settings))

    return run


def run_filter(context: RunContext, inputs: Sequence[str], output: str) -> StageLedger:
    settings = context.config.filter
    resolve_document_dirs(inputs)  # missing or unfinished inputs fail here, before any output exists
    model = resolve_model_path(settings.lid_model)  # fail before Spark starts when there is none
    core_settings = FilterSettings(tuple(settings.languages), settings.min_language_score, settings.min_words)
    fingerprint = stage_fingerprint(context.config, ["filter"], inputs, f"model:{model.name}:{model.stat().st_size}")

    def produce(output_dir) -> StageLedger:
        spark = context.spark
        spark.sparkContext.addFile(str(model))  # shipped once to every executor
        documents = read_documents(spark, inputs)
        outcomes = documents.mapInArrow(filter_partition(model.name, core_settings), spark_schema(OUTCOME_SCHEMA))
        return write_outcomes(outcomes, output_dir.staging, STAGE, documents_in=count_rows(inputs))

    return run_stage(context, STAGE, output, fingerprint, produce)
