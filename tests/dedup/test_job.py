import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gap_replay.dedup.exact import normalise_text, text_hash
from gap_replay.dedup.job import dedup_outcomes, run_dedup
from gap_replay.build import sample_dir
from gap_replay.core.config import ConfigError
from gap_replay.stages import load_config
from gap_replay.core.runner import RunContext
from gap_replay.core.schema import DOCUMENT_SCHEMA, documents_to_batch, make_document
from gap_replay.core.spark import spark_schema
from gap_replay.pubmed_ingest.medline import iter_medline

TEXT = "Beta blockers after myocardial infarction reduce mortality in adults with reduced ejection fraction."


def documents():
    # Abstracts superseded by their papers never reach dedup: the pubmed stage drops them.
    return [
        make_document(id="pmcid:PMC10", source="pubmed_papers", pmid=1, pmcid="PMC10", text="Full paper one. " + TEXT * 3),
        make_document(id="pmcid:PMC20", source="pubmed_papers", pmcid="PMC20", text="Full paper two. " + TEXT * 4),
        make_document(id="guideline:who:a", source="guidelines", subset="who", text=TEXT),
        make_document(id="guideline:nice:b", source="guidelines", subset="nice", text="  " + TEXT.upper() + " "),
        make_document(id="replay:wiki:c", source="replay", subset="wiki", text=TEXT + "!"),
        make_document(id="pmid:3", source="pubmed_abstracts", pmid=3, text="First copy of three."),
        make_document(id="pmid:3", source="pubmed_abstracts", pmid=3, text="Second, longer copy of three."),
        make_document(id="replay:wiki:d", source="replay", subset="wiki", text="Unrelated text about rivers."),
    ]


def outcomes(spark, partitions):
    frame = spark.createDataFrame(pa.Table.from_batches([documents_to_batch(documents())]).to_pandas(),
                                  spark_schema(DOCUMENT_SCHEMA)).repartition(partitions)
    rows = dedup_outcomes(frame).collect()
    return sorted((row["id"], row["text"][:12], row["drop_reason"], row["drop_detail"]) for row in rows)


def test_normalisation_ignores_case_punctuation_and_spacing():
    assert normalise_text("  Héllo,  WORLD!\n") == "héllo world"
    assert text_hash("Hello, world") == text_hash("hello world!!")
    assert text_hash("hello world") != text_hash("hello there world")


@pytest.fixture(scope="module")
def two_partitions(spark):
    return outcomes(spark, 2)


def test_rules_and_kept_copies(two_partitions):
    result = two_partitions
    assert result == [
        ("guideline:nice:b", "  BETA BLOCK", None, None),  # same priority: the longer text wins
        ("guideline:who:a", TEXT[:12], "exact_duplicate", "guideline:nice:b"),
        ("pmcid:PMC10", "Full paper o", None, None),
        ("pmcid:PMC20", "Full paper t", None, None),
        ("pmid:3", "First copy o", "duplicate_id", "pmid:3"),
        ("pmid:3", "Second, long", None, None),
        ("replay:wiki:c", TEXT[:12], "exact_duplicate", "guideline:nice:b"),
        ("replay:wiki:d", "Unrelated te", None, None),
    ]


@pytest.mark.parametrize("partitions", [4])
def test_result_does_not_depend_on_partitioning(spark, two_partitions, partitions):
    assert outcomes(spark, partitions) == two_partitions


def sample_abstracts(tmp_path):
    """The embedded sample's PubMed records as a shard directory (both files, versions and all)."""
    documents = [outcome for path in sorted((sample_dir() / "pubmed").iterdir())
                 for outcome in iter_medline(path, name=path.name) if isinstance(outcome, dict)]
    (tmp_path / "input").mkdir()
    pq.write_table(pa.Table.from_batches([documents_to_batch(documents)]), tmp_path / "input" / "part-00000.parquet")
    return str(tmp_path / "input")


def test_decontamination_drops_the_abstract_quoted_in_a_benchmark_question(spark, tmp_path):
    inputs = sample_abstracts(tmp_path)
    benchmarks = tmp_path / "bench.jsonl"
    lines = (sample_dir() / "benchmarks" / "medqa_sample.jsonl").read_text().splitlines()
    benchmarks.write_text("\n".join([lines[0], json.dumps({"question": "A question with no options at all."}),
                                     *lines[1:]]) + "\n")
    config = load_config(base={"dedup": {"decontaminate": [str(benchmarks)], "near": False}})
    ledger = run_dedup(RunContext(config), [inputs], str(tmp_path / "out"))
    drops = {row["id"]: (row["reason"], row["detail"]) for row in pq.read_table(tmp_path / "out" / "drops").to_pylist()}
    assert drops["pmid:90000027"] == ("contaminated", "0.921 of word 8-grams in benchmark questions")
    assert ledger.dropped["contaminated"] == 1  # questions 2-5 are close in topic, but paraphrased
    assert drops["pmid:90000022"] == ("exact_duplicate", "pmid:90000021")
    # A stricter ratio keeps it; the changed settings are a new fingerprint, not a reuse.
    stricter = load_config(base={"dedup": {"decontaminate": [str(benchmarks)], "near": False,
                                           "contamination_ratio": 0.95}})
    ledger = run_dedup(RunContext(stricter, overwrite=True), [inputs], str(tmp_path / "out"))
    assert "contaminated" not in ledger.dropped


@pytest.mark.parametrize("setting, message", [
    ("dedup.permutation='affine64'", "dedup.permutation"),
    ("dedup.bands=40", "set both"),
    ("dedup.threshold=1.5", "dedup.threshold"),
    ("dedup.decontaminate=['/nonexistent/bench.jsonl']", "benchmark file not found"),
])
def test_bad_settings_fail_before_any_work(tmp_path, setting, message):
    from gap_replay.core.shards import InputError

    (tmp_path / "input").mkdir()
    pq.write_table(pa.Table.from_batches([documents_to_batch(documents())]), tmp_path / "input" / "part-00000.parquet")
    with pytest.raises((ConfigError, InputError), match=message):
        run_dedup(RunContext(load_config(overrides=[setting])), [str(tmp_path / "input")], str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_checkpoints_count_saved_rows_from_their_files(spark, tmp_path):
    """The stage counts what it checkpointed (candidate pairs, drops) from the Parquet footers of the
    files written, without a Spark job; a local checkpoint is counted by Spark."""
    from gap_replay.dedup.job import Checkpoints, _rows

    frame = spark.range(0, 1234, numPartitions=3).selectExpr("id AS a", "id * 2 AS b")
    on_disk = Checkpoints(spark, str(tmp_path / "work"))
    saved = on_disk(frame, "pairs")
    assert on_disk.rows(saved, "pairs") == saved.count() == 1234
    assert _rows(on_disk, saved, "pairs") == 1234
    assert on_disk(frame.where("a < 0"), "none").count() == on_disk.rows(None, "none") == 0
    local = Checkpoints(spark)
    assert local.rows(local(frame, "pairs"), "pairs") == 1234
    assert _rows(lambda df, name: df, frame, "pairs") == 1234  # any other checkpoint function: Spark counts
    on_disk.remove()
    assert not (tmp_path / "work").exists()
