"""`gap-replay filter`: the Spark shell around filters.core.

Each document is decided on its own, so the stage is a mapped one (``core.shards.write_mapped_outcomes``):
Python tasks read slices of the input shards with pyarrow and write their part's kept shard and drop table,
the texts never passing through Spark's JVM. Only the text column is turned into Python strings (and the
extra of a row where personal data was redacted), every other column passes through untouched; after the
write, one more job sums the redactions by part into the ledger's details. The
language-ID model (and the quality model, when configured) is shipped to executors with
``SparkContext.addFile`` and loaded once per executor Python process (:func:`filters.langid.load_model`
caches it; Spark reuses Python workers across tasks).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from gap_replay.filters.core import DocumentFilter, filter_batch
from gap_replay.filters.langid import LanguageIdentifier, resolve_model_path
from gap_replay.core.redaction import Redactor, summarise
from gap_replay.filters.settings import FilterConfig
from gap_replay.core import storage
from gap_replay.core.ledger import StageLedger
from gap_replay.core.runner import RunContext, run_stage, stage_fingerprint
from gap_replay.core.schema import OUTCOME_SCHEMA
from gap_replay.core.shards import DATA_DIR, count_rows, document_files, resolve_document_dirs, write_mapped_outcomes

STAGE = "filter"


def document_filter(lid_model: str, config: FilterConfig, quality_model: str | None = None) -> DocumentFilter:
    """The filter of one process: models come from the per-process cache, so building it is cheap."""
    identifier = LanguageIdentifier(lid_model, config.lid_windows, config.lid_window_chars)
    scorer = None
    if quality_model:
        from gap_replay.filters.quality_model import QualityScorer

        scorer = QualityScorer(quality_model, config.lid_windows, config.lid_window_chars)
    return DocumentFilter(identifier, config, scorer)


def filter_pieces(model_name: str, config: FilterConfig, quality_name: str | None = None):
    """The outcomes of a piece of documents (a table, as ``core.shards.write_mapped_outcomes`` reads them):
    models by their SparkFiles names, loaded once per Python worker."""

    def outcomes(documents: pa.Table) -> pa.Table:
        from pyspark import SparkFiles

        decider = document_filter(SparkFiles.get(model_name), config,
                                  SparkFiles.get(quality_name) if quality_name else None)
        return pa.Table.from_batches([filter_batch(batch, decider) for batch in documents.to_batches()
                                      if batch.num_rows], OUTCOME_SCHEMA)

    return outcomes


def resolve_quality_model(configured: str) -> Path | None:
    if not configured:
        return None
    path = Path(configured).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"quality model not found at filter.quality_model = {configured} "
                                "(train one with `gap-replay quality train`)")
    return path.resolve()


def run_filter(context: RunContext, inputs: Sequence[str], output: str,
               settings: FilterConfig | None = None) -> StageLedger:
    config = settings or context.config.filter
    config.validate()  # bad settings fail here, before anything runs
    resolve_document_dirs(inputs)  # missing or unfinished inputs fail here, before any output exists
    model = resolve_model_path(config.lid_model)  # fail before Spark starts when there is none
    quality = resolve_quality_model(config.quality_model)
    extra = [f"model:{model.name}:{model.stat().st_size}"]
    if quality is not None:
        from gap_replay.filters.quality_model import shippable_copy

        quality = shippable_copy(quality)  # named by its content: the name identifies the model
        extra.append(f"quality:{quality.name}")
    fingerprint = stage_fingerprint(context.config, ["filter"], inputs, *extra)

    def produce(output_dir) -> StageLedger:
        spark = context.spark
        spark.sparkContext.addFile(str(model))  # shipped once to every executor
        if quality is not None:
            spark.sparkContext.addFile(str(quality))
        ledger = write_mapped_outcomes(spark, document_files(inputs),
                                       filter_pieces(model.name, config, quality.name if quality else None),
                                       output_dir.staging, STAGE, documents_in=count_rows(inputs),
                                       part_bytes=context.config.spark.part_mib << 20)
        # What was redacted, by part, summed from the kept documents' extra.redacted (one more job, which
        # reads two columns): the counts are those of the documents written, whatever task retries happened.
        ledger.details["redaction"] = summarise(spark, storage.join(output_dir.staging, DATA_DIR),
                                                Redactor.from_config(config))
        return ledger

    return run_stage(context, STAGE, output, fingerprint, produce)
