import pyarrow as pa
import pytest

from dedup.exact import normalise_text, text_hash
from dedup.job import dedup_outcomes
from gap_replay.schema import DOCUMENT_SCHEMA, documents_to_batch, make_document
from gap_replay.spark import spark_schema

TEXT = "Beta blockers after myocardial infarction reduce mortality in adults with reduced ejection fraction."


def documents():
    return [
        make_document(id="pmid:1", source="pubmed_abstracts", pmid=1, text="Abstract of paper one. " + TEXT),
        make_document(id="pmcid:PMC10", source="pubmed_papers", pmid=1, pmcid="PMC10", text="Full paper one. " + TEXT * 3),
        make_document(id="pmid:2", source="pubmed_abstracts", pmid=2, pmcid="PMC20", text="Abstract two. " + TEXT),
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


def test_rules_and_kept_copies(spark):
    result = outcomes(spark, 3)
    assert result == [
        ("guideline:nice:b", "  BETA BLOCK", None, None),  # same priority: the longer text wins
        ("guideline:who:a", TEXT[:12], "exact_duplicate", "guideline:nice:b"),
        ("pmcid:PMC10", "Full paper o", None, None),
        ("pmcid:PMC20", "Full paper t", None, None),
        ("pmid:1", "Abstract of ", "superseded_by_fulltext", "pmcid:PMC10"),
        ("pmid:2", "Abstract two", "superseded_by_fulltext", "pmcid:PMC20"),
        ("pmid:3", "First copy o", "duplicate_id", "pmid:3"),
        ("pmid:3", "Second, long", None, None),
        ("replay:wiki:c", TEXT[:12], "exact_duplicate", "guideline:nice:b"),
        ("replay:wiki:d", "Unrelated te", None, None),
    ]


@pytest.mark.parametrize("partitions", [1, 4])
def test_result_does_not_depend_on_partitioning(spark, partitions):
    assert outcomes(spark, partitions) == outcomes(spark, 2)
