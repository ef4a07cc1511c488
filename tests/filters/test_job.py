"""`gap-replay filter` on Spark: every drop in the ledger under its rule's name, in = kept + dropped, the
same decisions as the pure core, the quality score, and models loaded once per executor process."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gap_replay.filters.core import filter_documents
from gap_replay.filters.job import filter_pieces, run_filter
from gap_replay.filters.langid import LanguageIdentifier
from gap_replay.filters.quality import RULES
from gap_replay.filters.settings import FilterConfig
from gap_replay.stages import load_config
from gap_replay.core.ledger import StageLedger
from gap_replay.core.runner import RunContext
from gap_replay.core.schema import DOCUMENT_SCHEMA, make_document
from tests.filters.test_core import FRENCH
from tests.filters.test_quality import CRAFTED, GOOD
from tests.filters.test_quality_model import GENERAL, MEDICAL, generate, small_model_config, write_shard


def corpus() -> list[dict]:
    documents = [make_document(id=f"guideline:test:{rule}", source="guidelines", text=text)
                 for rule, (text, changes) in CRAFTED.items() if not changes]
    documents.append(make_document(id="pmid:1", source="pubmed_abstracts", text=GOOD, pmid=1))
    documents.append(make_document(id="pmid:2", source="pubmed_abstracts", text=FRENCH + " " + FRENCH))
    documents += [make_document(id=f"pmid:{100 + i}", source="pubmed_abstracts", text=text)
                  for i, text in enumerate(generate(MEDICAL, 30, 7))]
    documents += [make_document(id=f"replay:test:{i}", source="replay", text=text)
                  for i, text in enumerate(generate(GENERAL, 10, 8))]
    return documents


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("filter-input")
    documents = corpus()
    for part in range(3):  # three shards: several Spark tasks
        write_shard(root / "in" / f"s{part}", documents[part::3])
    return [str(root / "in" / f"s{part}") for part in range(3)], documents


def drops_of(output) -> dict[str, str]:
    table = pq.read_table(output / "drops")
    assert set(table.column("stage").to_pylist()) <= {"filter"}
    return dict(zip(table.column("id").to_pylist(), table.column("reason").to_pylist()))


def test_every_drop_is_in_the_ledger_under_its_rule(spark, inputs, tmp_path, lid_model):
    directories, documents = inputs
    ledger = run_filter(RunContext(load_config()), directories, str(tmp_path / "out"))
    output = tmp_path / "out"
    assert ledger.documents_in == len(documents) == ledger.kept + ledger.dropped_total
    assert StageLedger.read(str(output)).dropped == ledger.dropped
    drops = drops_of(output)
    assert Counter(drops.values()) == ledger.dropped

    expected = {outcome.id: outcome.reason for outcome in filter_documents(documents, LanguageIdentifier(lid_model))
                if not isinstance(outcome, dict)}
    assert drops == expected  # Spark decides exactly as the pure core
    assert drops["pmid:2"] == "non_english" and "pmid:1" not in drops
    crafted = {document_id.rsplit(":", 1)[1]: reason for document_id, reason in drops.items()
               if document_id.startswith("guideline:test:")}
    names = {rule.name for rule in RULES}
    assert len(set(crafted.values()) & names) >= 12  # most rules drop their crafted document by name

    kept = pq.read_table(output / "data")
    assert kept.num_rows == ledger.kept and kept.schema.equals(DOCUMENT_SCHEMA, check_metadata=False)
    assert set(kept.column("language").to_pylist()) == {"en"}
    assert min(kept.column("language_score").to_pylist()) >= 0.65
    assert set(kept.column("id").to_pylist()).isdisjoint(drops)


def test_quality_score_and_its_threshold(spark, inputs, tmp_path):
    directories, documents = inputs
    positive = write_shard(tmp_path / "positive", [make_document(id=f"g:{i}", source="guidelines", text=text)
                                                    for i, text in enumerate(generate(MEDICAL, 80, 11))])
    negative = write_shard(tmp_path / "negative", [make_document(id=f"r:{i}", source="replay", text=text)
                                                    for i, text in enumerate(generate(GENERAL, 80, 12))])
    from gap_replay.filters.quality_model import train_quality_model

    model = tmp_path / "quality.bin"
    train_quality_model([str(positive)], [str(negative)], model, small_model_config().filter)
    config = load_config(overrides=[f"filter.quality_model={str(model)!r}", "filter.min_quality_score=0.5"])
    ledger = run_filter(RunContext(config), directories, str(tmp_path / "out"))
    assert ledger.documents_in == ledger.kept + ledger.dropped_total
    drops = drops_of(tmp_path / "out")
    assert {drops[f"replay:test:{i}"] for i in range(10)} == {"low_quality_score"}
    kept = pq.read_table(tmp_path / "out" / "data").to_pylist()
    assert kept and all(row["quality_score"] >= 0.5 for row in kept)
    assert {row["id"] for row in kept} >= {f"pmid:{100 + i}" for i in range(30)}


def test_models_are_loaded_once_per_executor_process(spark, inputs, lid_model):
    directories, documents = inputs
    spark.sparkContext.addFile(str(lid_model))
    run = filter_pieces(lid_model.name, FilterConfig())
    model_name = lid_model.name

    def probe(batches):
        import os

        from pyspark import SparkFiles

        from gap_replay.filters import langid

        outcomes = sum(run(pa.Table.from_batches([batch])).num_rows for batch in batches)
        yield pa.RecordBatch.from_pylist([{"pid": os.getpid(), "rows": outcomes,
                                           "loads": langid.LOADS[SparkFiles.get(model_name)]}])

    previous = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "2")  # many batches per task
    try:
        frame = spark.read.parquet(*directories).repartition(8)
        rows = frame.mapInArrow(probe, "pid long, rows long, loads long").collect()
    finally:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", previous)
    assert sum(row["rows"] for row in rows) == len(documents)
    assert len(rows) == 8  # eight tasks, each over several batches...
    assert {row["loads"] for row in rows} == {1}  # ...and each process loaded the model once
    assert len({row["pid"] for row in rows}) < 8  # Python workers were reused across tasks
