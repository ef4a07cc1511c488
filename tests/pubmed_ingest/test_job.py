"""The pubmed stage on Spark: update semantics, papers' metadata, superseded abstracts, upsampling,
hostile files, and independence from partitioning; parse_input on several articles in one file and on
the size cap."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile

import pyarrow.parquet as pq
import pytest

from gap_replay.build import sample_dir
from gap_replay.stages import load_config
from gap_replay.core.errors import InputError
from gap_replay.core.runner import RunContext
from gap_replay.core.ingest import RawStream
from gap_replay.core.outcome import Drop
from gap_replay.pubmed_ingest.job import parse_input, run_pubmed
from tests.pubmed_ingest.test_jats import SET_ARTICLES, article, articleset

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
    ledger, kept, dropped = run(tmp_path, [inputs], max_failed_share=1.0)  # any share of failed inputs is allowed
    assert list(kept) == ["pmcid:PMC9900001"]
    file_drops = {key: value for key, value in dropped.items() if key.startswith("file:")}
    assert set(file_drops) == {"file:a_truncated.xml.gz", "file:b_empty.xml", "file:c_html.xml",
                               "file:d_malformed.nxml"}
    assert all(reason in ("parse_error", "unsupported_input") for reason, _ in file_drops.values())
    assert ledger.check().documents_in == len(kept) + len(dropped)
    # Four of the five inputs failed: the ledger says which and why, and the stage still publishes
    # (under the default pubmed.max_failed_share it would fail: test_failures.py).
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


# --- parse_input: several articles in one file, the size cap ----------------------------------


@pytest.fixture(scope="module")
def real_articles(shared_data) -> list[bytes]:
    return [(shared_data / "pmc" / file_name).read_bytes() for file_name in SET_ARTICLES]


@pytest.fixture(scope="module")
def three_articles(real_articles) -> bytes:
    return articleset(*real_articles)


def unseekable(data: bytes) -> io.BufferedReader:
    """What ``open_input`` gives for object storage: buffered, peekable, not seekable."""
    return io.BufferedReader(RawStream(io.BytesIO(data)))


def test_parse_input_yields_every_article_of_a_set(three_articles):
    for stream in (io.BytesIO(three_articles), unseekable(three_articles), unseekable(gzip.compress(three_articles))):
        docs = list(parse_input(stream, "s3://bucket/pmc/efetch.xml"))
        assert [doc["pmcid"] for doc in docs] == list(SET_ARTICLES.values())
        assert [json.loads(doc["extra"])["input"] for doc in docs] == [f"efetch.xml#article{k}" for k in (1, 2, 3)]


def test_parse_input_drops_a_single_file_over_the_cap_without_reading_it(three_articles):
    cap = len(three_articles) - 1
    [drop] = parse_input(io.BytesIO(three_articles), "in/efetch.xml", max_member_bytes=cap)
    assert isinstance(drop, Drop) and (drop.id, drop.reason) == ("file:efetch.xml", "too_large")
    assert f"cap of {cap} bytes" in drop.detail
    [drop] = parse_input(unseekable(gzip.compress(three_articles)), "efetch.xml.gz", max_member_bytes=cap)
    assert (drop.id, drop.reason) == ("file:efetch.xml.gz", "too_large")
    assert len(list(parse_input(io.BytesIO(three_articles), "efetch.xml", max_member_bytes=cap + 1))) == 3

    class Counted(io.BytesIO):
        def read(self, size=-1):
            data = super().read(size)
            self.taken = getattr(self, "taken", 0) + len(data)
            return data

    huge = Counted(b"<article>" + b" " * 4_000_000 + b"</article>")
    [drop] = parse_input(io.BufferedReader(RawStream(huge)), "huge.nxml", max_member_bytes=1000)
    assert drop.reason == "too_large" and huge.taken < 100_000  # the cap + 1 bytes, and what the buffer peeked


def test_parse_input_reads_every_article_of_an_archive_member(three_articles, real_articles):
    bad_set = articleset(article(ids='<article-id pub-id-type="publisher-id">x1</article-id>'), *real_articles)
    package = io.BytesIO()
    with tarfile.open(fileobj=package, mode="w:gz") as archive:
        for member, payload in (("PMC/efetch.xml", three_articles), ("PMC/mixed.xml", bad_set),
                                ("PMC/big.xml", b"<article>" + b" " * len(bad_set) + b"</article>")):
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    found = list(parse_input(unseekable(package.getvalue()), "s3://b/oa.tar.gz", max_member_bytes=len(bad_set)))
    pmcids = list(SET_ARTICLES.values())
    assert [getattr(item, "id", None) or item["id"] for item in found] == [
        *(f"pmcid:{pmcid}" for pmcid in pmcids),
        "file:oa.tar.gz:PMC/mixed.xml#article1", *(f"pmcid:{pmcid}" for pmcid in pmcids),
        "file:oa.tar.gz:PMC/big.xml"]
    assert found[3].reason == "no_identifier" and found[-1].reason == "too_large"
    assert '"input": "oa.tar.gz:PMC/mixed.xml#article2"' in found[4]["extra"]


def test_stage_keeps_every_article_of_a_set_and_no_input_failed(spark, tmp_path, real_articles):
    inputs = tmp_path / "in"
    inputs.mkdir()
    no_id = article(ids='<article-id pub-id-type="publisher-id">x1</article-id>')
    (inputs / "efetch.xml").write_bytes(articleset(*real_articles, no_id))
    ledger, kept, dropped = run(tmp_path, [inputs])
    assert set(kept) | set(dropped) == {*(f"pmcid:{pmcid}" for pmcid in SET_ARTICLES.values()),
                                        "file:efetch.xml#article4"}
    assert dropped["file:efetch.xml#article4"][0] == "no_identifier"
    # One article of four failed, not the input: failed_inputs counts whole-file failures only.
    assert ledger.inputs == 1 and ledger.failed_inputs_total == 0


# --- retracted publications ----------------------------------------------------------------------

def test_retracted_abstracts_are_dropped_and_their_notices_kept(sample_stage):
    _, kept, dropped = sample_stage
    assert dropped["pmid:90000017"] == ("retracted", "PubMed marks it retracted (Retracted Publication, or a "
                                                     "RetractionIn notice)")
    assert "pmid:90000018" in kept and not kept["pmid:90000018"]["retracted"]  # the retraction notice


def test_a_paper_takes_its_citations_retraction_and_keep_retracted_keeps_both(spark, tmp_path):
    # The sample, with the citation of the paper PMC9900001 (PMID 90000003) marked retracted.
    (tmp_path / "in").mkdir()
    for folder in ("pubmed", "pmc"):
        for source in (SAMPLE / folder).iterdir():
            text = source.read_bytes()
            if source.name == "pubmed26n0001.xml":
                records = text.split(b"<PubmedArticle>")
                records = [record.replace(b'<PublicationType UI="D016428">Journal Article</PublicationType>',
                                          b'<PublicationType UI="D016441">Retracted Publication</PublicationType>')
                           if b'<PMID Version="1">90000003</PMID>' in record else record for record in records]
                text = b"<PubmedArticle>".join(records)
            (tmp_path / "in" / source.name).write_bytes(text)
    _, kept, dropped = run(tmp_path, [tmp_path / "in"])
    assert dropped["pmid:90000003"][0] == "retracted"
    assert dropped["pmcid:PMC9900001"] == ("retracted", "its PubMed citation or its PMC metadata marks it retracted")
    _, kept, dropped = run(tmp_path, [tmp_path / "in"], name="keep", keep_retracted=True)
    assert kept["pmid:90000017"]["retracted"] and "retracted" not in {reason for reason, _ in dropped.values()}
    # The paper keeps its citation's flag; MEDITRON's upsampling table still excludes retracted publications.
    assert dropped["pmcid:PMC9900001"][0] == "upsampling_excluded" and "pmid:90000003" not in kept
