import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gap_replay.core.schema import (
    COLUMN_NAMES,
    DOCUMENT_SCHEMA,
    SchemaError,
    conform,
    documents_to_batch,
    make_document,
)
from gap_replay.core.shards import ShardWriter, read_documents


def full_document(**changes):
    fields = dict(
        id="pmid:123", source="pubmed_abstracts", subset="medline", title="A trial", text="A trial\n\nBACKGROUND: x",
        url="https://pubmed.ncbi.nlm.nih.gov/123/", language="en", language_score=0.875, quality_score=0.5, pmid=123,
        pmcid="PMC9", doi="10.1/x", journal="J Test", year=2020, publication_types=["Randomized Controlled Trial"],
        mesh_terms=[{"descriptor": "Humans", "major_topic": False}, {"descriptor": "Asthma", "major_topic": True}],
        keywords=["asthma"], license="open", retracted=False, extra={"languages": ["eng"], "pmid_version": 1},
    )
    fields.update(changes)
    return make_document(**fields)


def test_make_document_fills_nulls_and_serialises_extra():
    document = make_document(id="replay:wiki:1", source="replay", text="hello")
    assert list(document) == list(COLUMN_NAMES)
    assert document["pmid"] is None and document["extra"] is None
    assert full_document()["extra"] == '{"languages": ["eng"], "pmid_version": 1}'


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(id="x", source="replay", text="t", colour="red"), "unknown document field"),
        (dict(id="x", source="replay"), "missing required field(s): text"),
        (dict(id="x", source="web", text="t"), "source must be one of"),
    ],
)
def test_make_document_rejects_bad_fields(fields, message):
    with pytest.raises(SchemaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_document(**fields)


def test_every_column_is_documented():
    for field in DOCUMENT_SCHEMA:
        assert field.metadata[b"description"], field.name
    assert DOCUMENT_SCHEMA.metadata[b"gap_replay.schema_version"] == b"1"


def test_conform_rejects_nulls_in_required_columns():
    table = pa.Table.from_batches([documents_to_batch([full_document()])])
    broken = table.set_column(table.schema.get_field_index("text"), "text", pa.array([None], pa.string()))
    with pytest.raises(SchemaError, match="'text' holds 1 null"):
        conform(broken)


def test_round_trip_through_parquet_pyarrow_pandas_duckdb(tmp_path):
    documents = [full_document(), full_document(id="pmid:124", pmid=124, mesh_terms=None, extra=None)]
    writer = ShardWriter(str(tmp_path / "part-00000.parquet"), DOCUMENT_SCHEMA)
    writer.write(pa.Table.from_batches([documents_to_batch(documents)]))
    assert writer.close()

    table = pq.read_table(tmp_path / "part-00000.parquet")
    assert table.schema.equals(DOCUMENT_SCHEMA, check_metadata=False)
    assert table.to_pylist() == documents

    frame = pd.read_parquet(tmp_path)
    assert frame["id"].tolist() == ["pmid:123", "pmid:124"]
    assert frame.loc[0, "mesh_terms"][1] == {"descriptor": "Asthma", "major_topic": True}

    rows = duckdb.sql(f"select id, year, mesh_terms[2].descriptor as d from '{tmp_path}/*.parquet' order by id").fetchall()
    assert rows == [("pmid:123", 2020, "Asthma"), ("pmid:124", 2020, None)]


def test_round_trip_through_spark(spark, tmp_path):
    documents = [full_document(), full_document(id="pmid:124", pmid=124, keywords=[])]
    writer = ShardWriter(str(tmp_path / "in" / "part-00000.parquet"), DOCUMENT_SCHEMA)
    writer.write(pa.Table.from_batches([documents_to_batch(documents)]))
    writer.close()

    frame = read_documents(spark, [str(tmp_path / "in")])
    batches = frame.orderBy("id")._collect_as_arrow()
    assert conform(pa.Table.from_batches(batches)).to_pylist() == documents
