"""`gap-replay replay` and `gap-replay mix`: replay text as documents, and the final train/validation shards.

Mixing rules (all deterministic functions of the document id and the seed, so reruns are
byte-identical and the result does not depend on partitioning):
- split: a document goes to validation when ``pmod(xxhash64(seed, id), 10^6) < fraction * 10^6``,
  with the fraction of its source (``mix.validation_fraction``);
- shards: ``ceil(rows / mix.shard_rows)`` per split, a document's shard from another hash of its id;
- order within a shard: by ``xxhash64(seed, id, "order")``, a pseudo-random shuffle, then id.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from gap_replay import storage
from gap_replay.ingest import RANKED_OUTCOME_SCHEMA, expand_inputs, files_dataframe, parse_files
from gap_replay.ledger import StageLedger
from gap_replay.runner import RunContext, run_stage, stage_fingerprint
from gap_replay.schema import COLUMN_NAMES, DOCUMENT_SCHEMA, OUTCOME_SCHEMA, SCHEMA_VERSION
from gap_replay.shards import (
    SHARD_COLUMN,
    SHARD_RESULT_DDL,
    ShardWriter,
    count_rows,
    file_digest,
    read_documents,
    resolve_document_dirs,
    shard_name,
    shard_writer_by_key,
    write_outcomes,
)
from gap_replay.spark import default_parallelism, spark_schema
from mixer.replay import iter_replay

REPLAY_STAGE, MIX_STAGE = "replay", "mix"
SPLITS = ("train", "validation")
MANIFEST = "manifest.json"
REPLAY_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json")


def run_replay(context: RunContext, inputs: Sequence[str], output: str) -> StageLedger:
    files = expand_inputs(inputs, REPLAY_SUFFIXES)
    fingerprint = stage_fingerprint(context.config, [], files)

    def produce(output_dir) -> StageLedger:
        ranked = files_dataframe(context.spark, files).mapInArrow(
            parse_files(lambda stream, name: iter_replay(stream, name=name)), spark_schema(RANKED_OUTCOME_SCHEMA))
        return write_outcomes(ranked.select(*OUTCOME_SCHEMA.names), output_dir.staging, REPLAY_STAGE)

    return run_stage(context, REPLAY_STAGE, output, fingerprint, produce)


def _split_column(seed: int, fractions: dict[str, float]):
    from pyspark.sql import functions as F

    bucket = F.pmod(F.xxhash64(F.lit(seed), F.col("id")), F.lit(1_000_000))
    threshold = F.lit(0)
    for source, fraction in sorted(fractions.items()):
        threshold = F.when(F.col("source") == source, F.lit(int(round(fraction * 1_000_000)))).otherwise(threshold)
    return F.when(bucket < threshold, F.lit("validation")).otherwise(F.lit("train"))


def write_mixture(spark, documents, staging: str, seed: int, fractions: dict[str, float], shard_rows: int) -> dict:
    """Write train/ and validation/ shards under `staging`; return the manifest's shard section."""
    from pyspark.sql import functions as F

    documents = documents.withColumn("_split", _split_column(seed, fractions)).cache()
    counts = {(row["_split"], row["source"]): row["count"]
              for row in documents.groupBy("_split", "source").count().collect()}
    splits = {}
    for split in SPLITS:
        rows = sum(count for (name, _), count in counts.items() if name == split)
        num_shards = max(1, math.ceil(rows / shard_rows))
        directory = storage.join(staging, split)
        shard = F.pmod(F.xxhash64(F.lit(seed), F.col("id"), F.lit("shard")), F.lit(num_shards)).cast("int")
        written = (
            documents.where(F.col("_split") == split)
            .withColumn(SHARD_COLUMN, shard)
            .repartition(min(num_shards, default_parallelism(spark) * 4), SHARD_COLUMN)
            .sortWithinPartitions(SHARD_COLUMN, F.xxhash64(F.lit(seed), F.col("id"), F.lit("order")), "id")
            .select(*COLUMN_NAMES, SHARD_COLUMN)
            .mapInArrow(shard_writer_by_key(directory, DOCUMENT_SCHEMA, num_shards), SHARD_RESULT_DDL)
            .collect()
        )
        by_name = {row["file"]: row.asDict() for row in written}
        files = []
        for index in range(num_shards):
            name = shard_name(index, num_shards)
            if name not in by_name:  # no document hashed to this shard: still write it, so the set is whole
                uri = storage.join(directory, name)
                ShardWriter(uri, DOCUMENT_SCHEMA).close(write_empty=True)
                size, digest = file_digest(uri)
                by_name[name] = {"file": name, "rows": 0, "bytes": size, "sha256": digest}
            files.append({**by_name[name], "file": f"{split}/{name}"})
        splits[split] = {
            "documents": rows,
            "documents_by_source": {source: count for (name, source), count in sorted(counts.items()) if name == split},
            "shards": files,
        }
    documents.unpersist()
    return splits


def run_mix(context: RunContext, inputs: Sequence[str], output: str,
            upstream: Sequence[StageLedger] = ()) -> StageLedger:
    """Mix document inputs into ``<output>/{train,validation}`` with a ``manifest.json``.

    `upstream` ledgers (from a build) are recorded in the manifest beside the mix stage's own.
    """
    settings = context.config.mix
    resolve_document_dirs(inputs)  # missing or unfinished inputs fail here, before any output exists
    fingerprint = stage_fingerprint(context.config, ["mix"], inputs)

    def produce(output_dir) -> StageLedger:
        documents = read_documents(context.spark, inputs)
        documents_in = count_rows(inputs)
        splits = write_mixture(context.spark, documents, output_dir.staging, settings.seed,
                               settings.validation_fraction, settings.shard_rows)
        kept = sum(split["documents"] for split in splits.values())
        ledger = StageLedger(MIX_STAGE, documents_in=documents_in, kept=kept).check()
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "schema": [{"name": field.name, "type": str(field.type), "nullable": field.nullable}
                       for field in DOCUMENT_SCHEMA],
            "settings": context.config.to_dict()["mix"],
            "splits": splits,
            "stages": [ledger.to_dict() for ledger in (*upstream, ledger)],
        }
        for stage in manifest["stages"]:
            stage.pop("seconds", None)  # timings vary; the manifest describes the data
        storage.write_text(storage.join(output_dir.staging, MANIFEST), json.dumps(manifest, indent=2) + "\n")
        return ledger

    return run_stage(context, MIX_STAGE, output, fingerprint, produce)
