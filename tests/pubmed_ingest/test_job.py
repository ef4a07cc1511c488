"""The pubmed stage on Spark: update semantics, papers' metadata, superseded abstracts, upsampling,
hostile files, and independence from partitioning."""

from __future__ import annotations

import gzip
import shutil

import pyarrow.parquet as pq
import pytest

from gap_replay.build import sample_dir
from gap_replay.stages import load_config
from gap_replay.core.errors import InputError
from gap_replay.core.runner import RunContext
from gap_replay.pubmed_ingest.job import run_pubmed

SAMPLE = sample_dir()


def run(tmp_path, inputs, name="out", **pubmed):
    context = RunContext(load_config(base={"pubmed": pubmed} if pubmed else None))
    ledger = run_pubmed(context, [str(path) for path in inputs], str(tmp_path / name))
    kept = {row["id"]: row for row in pq.read_table(tmp_path / name / "data").to_pylist()}
    dropped = {row["id"]: (row["reason"], row["detail"]) for row in pq.read_table(tmp_path / name / "drops").to_pylist()}
    return ledger, kept, dropped


@pytest.fixture(scope="module")
def sample_stage(spark, tmp_path_factory):
    return run(tmp_path_factory.mktemp("pubmed"), [SAMPLE / "pubmed", SAMPLE / "pmc"])


def test_update_semantics(sample_stage):
    _, kept, dropped = sample_stage
    assert dropped["pmid:90000020"] == ("deleted", "DeleteCitation in pubmed26n0002.xml")
    assert dropped["pmid:90000029"][0] == "superseded_version"  # version 1 in the baseline
    assert "pmid:90000029" in kept and '"pmid_version": 2' in kept["pmid:90000029"]["extra"]
    assert "pmid:90000031" in kept  # new in the update file


def test_papers_supersede_their_abstracts_and_take_their_metadata(sample_stage):
    _, kept, dropped = sample_stage
    assert dropped["pmid:90000003"] == ("superseded_by_fulltext", "pmcid:PMC9900001")
    assert dropped["pmid:90000015"] == ("superseded_by_fulltext", "pmcid:PMC9900003")
    paper = kept["pmcid:PMC9900003"]
    assert "Case Reports" in paper["publication_types"] and paper["mesh_terms"]
    assert paper["upsampling_score"] == 0.0  # case reports score 0
    # No PubMed record: types from the JATS subject "Practice Guideline" (1) + recency (1).
    assert kept["pmcid:PMC9900004"]["upsampling_score"] == 2.0
    assert all(row["upsampling_score"] is None for row in kept.values() if row["source"] == "pubmed_abstracts")


def test_ledger_adds_up(sample_stage):
    ledger, kept, dropped = sample_stage
    assert ledger.documents_in == len(kept) + len(dropped) and ledger.kept == len(kept)


def test_result_does_not_depend_on_partitioning(spark, tmp_path, sample_stage):
    _, kept, dropped = run(tmp_path, [SAMPLE / "pubmed", SAMPLE / "pmc"], partitions=1)
    assert kept == sample_stage[1] and dropped == sample_stage[2]


def test_journal_list_citations_and_animal_exclusion(spark, tmp_path):
    inputs = tmp_path / "in"
    shutil.copytree(SAMPLE / "pmc", inputs / "pmc")
    shutil.copytree(SAMPLE / "pubmed", inputs / "pubmed")
    # Make PMC9900002 the full text of the animal study 90000013.
    paper = (inputs / "pmc" / "PMC9900002.nxml").read_text()
    (inputs / "pmc" / "PMC9900002.nxml").write_text(paper.replace(">90000008<", ">90000013<"))
    journals = tmp_path / "journals.txt"
    journals.write_text("# clinically reviewed\nprimary care diagnostics\n")
    citations = tmp_path / "citations.csv"
    citations.write_text("id,citations\npmcid:PMC9900004,40\npmid:90000003,1\npmcid:PMC9900003,5\n")
    _, kept, dropped = run(tmp_path, [inputs], clinical_journals=str(journals), citations=str(citations))
    assert dropped["pmcid:PMC9900002"] == ("upsampling_excluded", "MeSH Animals")
    # Practice Guideline (1) + journal on the list (1) + recency (1) + top quartile of citations/year (1).
    assert kept["pmcid:PMC9900004"]["upsampling_score"] == 4.0
    # Citations per year 40, 1.67 and 0.5: the quartiles are 0.5 and 40 (exact, nearest rank).
    # Observational Study (0.5) + recency (1) + middle half (0.5: at the 25th percentile is not below it).
    assert kept["pmcid:PMC9900001"]["upsampling_score"] == 2.0
    assert kept["pmcid:PMC9900003"]["upsampling_score"] == 0.0  # case report: conditional rows not added


def test_hostile_files_are_recorded_and_the_job_goes_on(spark, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    baseline = (SAMPLE / "pubmed" / "pubmed26n0001.xml").read_bytes()
    (inputs / "a_truncated.xml.gz").write_bytes(gzip.compress(baseline)[:5000])
    (inputs / "b_empty.xml").write_bytes(b"")
    (inputs / "c_html.xml").write_bytes(b"<html><body>not pubmed</body></html>")
    (inputs / "d_malformed.nxml").write_bytes(b"<article><front><article-meta>")
    shutil.copy(SAMPLE / "pmc" / "PMC9900001.nxml", inputs / "e_good.nxml")
    ledger, kept, dropped = run(tmp_path, [inputs])
    assert list(kept) == ["pmcid:PMC9900001"]
    file_drops = {key: value for key, value in dropped.items() if key.startswith("file:")}
    assert set(file_drops) == {"file:a_truncated.xml.gz", "file:b_empty.xml", "file:c_html.xml",
                               "file:d_malformed.nxml"}
    assert all(reason in ("parse_error", "unsupported_input") for reason, _ in file_drops.values())
    assert ledger.check().documents_in == len(kept) + len(dropped)
    # Four of the five inputs failed: the ledger says which and why, and the stage still publishes.
    assert ledger.inputs == 5 and ledger.failed_inputs_total == 4
    assert set(ledger.failed_inputs) <= {"parse_error", "unsupported_input"}
    assert ledger.input_failures().startswith("pubmed: 4 of 5 inputs failed (")


def test_a_stage_whose_every_input_failed_is_an_error(spark, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "notes.xml").write_bytes(b"these are notes, not XML")
    (inputs / "page.xml").write_bytes(b"<html><body>not pubmed</body></html>")
    with pytest.raises(InputError, match=r"^pubmed: every input failed \(2 inputs; unsupported_input 2\): nothing was kept$"):
        run_pubmed(RunContext(load_config()), [str(inputs)], str(tmp_path / "out"))
    assert not (tmp_path / "out" / "_SUCCESS").exists()
