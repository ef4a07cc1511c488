"""What the pubmed stage does when an input fails (issue 24): a read cut short (a connection reset half-way
through, running out of memory) fails the task so that Spark tries it again, in every reader and through the
stage's task function; bad content (malformed XML, a truncated or corrupt gzip, a corrupt tar or Parquet file)
is the file's ``parse_error`` drop; the stage fails, naming the inputs, when more than
``pubmed.max_failed_share`` of them failed; an update file read from the S3 stand-in and reset half-way on the
first attempt gives the undisturbed output on local Spark with task retries. And which papers supersede their
abstracts (``pubmed.supersede_abstracts``)."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gap_replay.build import sample_dir
from gap_replay.core import storage
from gap_replay.core.errors import ConfigError, TooManyFailedInputs, TransientInputError
from gap_replay.core.ingest import FILE_RANK, parse_files
from gap_replay.core.ledger import StageLedger
from gap_replay.core.outcome import Drop
from gap_replay.core.runner import RunContext
from gap_replay.core.schema import DROP_REASON
from gap_replay.pubmed_ingest import jats, medline
from gap_replay.pubmed_ingest.inputs import iter_jats_archive, read_jats_file
from gap_replay.pubmed_ingest.job import DELETE, check_failed_share, input_parser, parse_input, run_pubmed
from gap_replay.pubmed_ingest.medline import DeleteCitation, iter_medline
from gap_replay.pubmed_ingest.pmc_cloud import PACKED_SCHEMA
from gap_replay.stages import load_config
from tests.pubmed_ingest.faults import RESET_MESSAGE, ResettingProxy, cut_storage, cut_stream

SAMPLE = sample_dir()
BASELINE = (SAMPLE / "pubmed" / "pubmed26n0001.xml").read_bytes()
UPDATE = (SAMPLE / "pubmed" / "pubmed26n0002.xml").read_bytes()
PAPER = (SAMPLE / "pmc" / "PMC9900001.nxml").read_bytes()
# An update file of many records, its deletions last as NCBI writes them: the baseline's records, then one
# DeleteCitation. Over two of the parser's 64 KiB reads, so that records come before a reset near its end.
LONG_UPDATE = BASELINE.replace(b"</PubmedArticleSet>",
                               b'<DeleteCitation><PMID Version="1">90000020</PMID></DeleteCitation>\n'
                               b"</PubmedArticleSet>")


def bad_crc(data: bytes) -> bytes:
    """`data` gzipped with its CRC spoiled: gzip raises BadGzipFile, an OSError, once it has read it all."""
    packed = bytearray(gzip.compress(data))
    packed[-8] ^= 0xFF
    return bytes(packed)


def package(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


PACKAGE = package(*((f"PMC/{path.name}", path.read_bytes()) for path in sorted((SAMPLE / "pmc").iterdir())))


def shard(rows: int = 40) -> bytes:
    """A PMC mirror shard (``pmc_cloud.PACKED_SCHEMA``) of `rows` versions of the sample's paper, in row groups
    of four: a reset half-way comes after the articles of the first groups."""
    table = pa.Table.from_pylist([
        {"key": f"metadata/PMC{n}.1.json", "etag": f"e{n}", "pmcid": f"PMC{n}", "version": 1, "pmid": None,
         "doi": None, "mid": None, "title": "", "citation": "", "license_code": "CC BY", "is_openaccess": True,
         "is_manuscript": False, "is_historical_ocr": False, "is_retracted": False,
         "xml_key": f"PMC{n}.1/PMC{n}.1.xml", "xml_md5": None, "xml": PAPER} for n in range(1000, 1000 + rows)],
        schema=PACKED_SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=4)
    return buffer.getvalue()


SHARD = shard()


# --- each reader: a reset read raises, bad content is a drop -----------------------------------------------

RESET_READS = {  # reader -> what it does with a stream reset half-way (or near the end)
    "medline": lambda data: list(iter_medline(cut_stream(data), name="pubmed26n0001.xml")),
    "medline gzip": lambda data: list(iter_medline(cut_stream(gzip.compress(data)), name="pubmed26n0001.xml.gz")),
    "jats file": lambda data: read_jats_file(cut_stream(PAPER), name="PMC9900001.nxml"),
    "jats file gzip": lambda data: read_jats_file(cut_stream(gzip.compress(PAPER)), name="PMC9900001.nxml.gz"),
    "jats package": lambda data: list(iter_jats_archive(cut_stream(PACKAGE), name="oa.tar.gz")),
}


@pytest.mark.parametrize("reader", sorted(RESET_READS))
def test_a_read_reset_half_way_raises_in_every_reader(reader):
    with pytest.raises(ConnectionResetError, match=RESET_MESSAGE):
        RESET_READS[reader](BASELINE)


CONTENT_ERRORS = {  # reader and input -> (the drop's id, the error its detail names)
    "medline, malformed XML": (lambda: list(iter_medline(io.BytesIO(BASELINE[: len(BASELINE) // 2]), name="b.xml")),
                               "file:b.xml", "XMLSyntaxError"),
    "medline, truncated gzip": (lambda: list(iter_medline(io.BytesIO(gzip.compress(BASELINE)[:-100]), name="b.xml.gz")),
                                "file:b.xml.gz", "EOFError"),
    "medline, gzip with a bad CRC": (lambda: list(iter_medline(io.BytesIO(bad_crc(BASELINE)), name="b.xml.gz")),
                                     "file:b.xml.gz", "BadGzipFile"),
    "jats file, truncated gzip": (lambda: [read_jats_file(io.BytesIO(gzip.compress(PAPER)[:-100]), name="p.nxml.gz")],
                                  "file:p.nxml.gz", "EOFError"),
    "jats file, gzip with a bad CRC": (lambda: [read_jats_file(io.BytesIO(bad_crc(PAPER)), name="p.nxml.gz")],
                                       "file:p.nxml.gz", "BadGzipFile"),
    "jats package, truncated": (lambda: list(iter_jats_archive(io.BytesIO(PACKAGE[: len(PACKAGE) // 2]), name="oa.tar.gz")),
                                "file:oa.tar.gz", "EOFError"),
    "jats package, gzip with a bad CRC": (
        lambda: list(iter_jats_archive(io.BytesIO(bad_crc(gzip.decompress(PACKAGE))), name="oa.tar.gz")),
        "file:oa.tar.gz", "BadGzipFile"),
}


@pytest.mark.parametrize("case", sorted(CONTENT_ERRORS))
def test_bad_content_is_a_parse_error_drop_of_the_file_after_what_came_before(case):
    read, drop_id, error = CONTENT_ERRORS[case]
    items = read()
    last = items[-1][1] if isinstance(items[-1], tuple) else items[-1]  # iter_jats_archive: (member, Drop)
    assert isinstance(last, Drop) and (last.id, last.reason) == (drop_id, "parse_error")
    assert last.detail.startswith(f"{error}: ")
    if case.startswith("medline, malformed") or case.startswith("medline, truncated"):
        assert any(isinstance(item, dict) for item in items)  # the records read before the damage are kept


def test_an_update_file_reset_half_way_never_ends_as_if_it_were_whole():
    """Its DeleteCitation comes last: a reader that ended quietly at the reset would keep the deleted
    citation alive. The records before the reset come out, then the reset itself, never a normal end."""
    whole = list(iter_medline(io.BytesIO(LONG_UPDATE), name="pubmed26n0003.xml"))
    assert whole[-1] == DeleteCitation(pmids=(90000020,))
    read = []
    with pytest.raises(ConnectionResetError):
        for item in parse_input(cut_stream(LONG_UPDATE, share=0.6), "pubmed26n0003.xml"):
            read.append(item)
    assert read and len(read) < len(whole) - 1
    # Neither the deletion nor a drop of the file: the reset ends it, and the caller's task fails.
    assert not [item for item in read if isinstance(item, Drop) and (item.reason == DELETE or item.id.startswith(
        "file:pubmed26n0003.xml"))]


def test_running_out_of_memory_on_a_record_or_an_article_raises(monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(medline, "_citation_outcome", out_of_memory)
    with pytest.raises(MemoryError):
        list(iter_medline(io.BytesIO(BASELINE), name="pubmed26n0001.xml"))
    monkeypatch.setattr(jats._ArticleReader, "outcome", out_of_memory)
    with pytest.raises(MemoryError):
        list(jats.iter_jats_articles(PAPER, name="PMC9900001.nxml"))


# --- the stage's task function (parse_files over input_parser) on every kind of input -------------------------

STAGE_INPUTS = {  # name -> content, as the stage reads them
    "pubmed26n0002.xml": UPDATE,
    "pubmed26n0001.xml.gz": gzip.compress(BASELINE),
    "PMC9900001.nxml": PAPER,
    "oa.tar.gz": PACKAGE,
    "pmc/shards/s1-00000.parquet": SHARD,
    "pmc/2026-11-01T01-00Z/task-00000.json": json.dumps(  # a task's share of the PMC service
        {"address": "http://127.0.0.1:9/b", "snapshot": "2026-11-01T01-00Z", "licenses": "all",
         "manuscripts": True, "concurrency": 2, "versions": [["metadata/PMC1.1.json", "0" * 32]] * 200}).encode(),
}


def run_task(uri: str, name: str) -> list[dict]:
    """The rows the stage's task yields for one input."""
    batch = pa.RecordBatch.from_pydict({FILE_RANK: pa.array([0], pa.int32()), "path": [uri], "name": [name]})
    task = parse_files(input_parser({}), with_uri=True)
    return [row for out in task(iter([batch])) for row in out.to_pylist()]


@pytest.mark.parametrize("name", sorted(STAGE_INPUTS))
def test_the_task_fails_naming_the_input_when_its_read_is_reset(name, tmp_path, monkeypatch):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(STAGE_INPUTS[name])
    prefix = cut_storage(monkeypatch, share=0.5)
    with pytest.raises(TransientInputError, match=f"^reading {name}: ConnectionResetError: .*{RESET_MESSAGE}") as raised:
        run_task(prefix + str(path), name)
    assert isinstance(raised.value.__cause__, ConnectionResetError)


@pytest.mark.parametrize("name", sorted(set(STAGE_INPUTS) - {"pmc/2026-11-01T01-00Z/task-00000.json"}))
def test_the_task_drops_an_input_cut_short_on_disk(name, tmp_path):
    """The same inputs truncated (the bytes are missing, nothing failed to read them): one parse_error drop,
    under the input's own id, after what was read before."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(STAGE_INPUTS[name][: len(STAGE_INPUTS[name]) * 3 // 4])
    rows = run_task(str(path), name)
    failures = [row for row in rows if row["id"].startswith("file:") and row[DROP_REASON] == "parse_error"]
    assert [row["id"] for row in failures] in ([f"file:{name}"], [f"file:{name.rsplit('/', 1)[-1]}"])
    assert rows[-1] == failures[0]


# --- pubmed.max_failed_share -------------------------------------------------------------------------------

def citation_file(pmid: int) -> bytes:
    return (f'<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID Version="1">{pmid}</PMID><Article>'
            f"<ArticleTitle>Study {pmid}</ArticleTitle><Abstract><AbstractText>Outcomes of patients in cohort "
            f"{pmid} were measured.</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle>"
            f"</PubmedArticleSet>").encode()


@pytest.fixture(scope="module")
def hundred_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hundred")
    for n in range(100):
        (folder / f"pubmed26n{n + 1:04d}.xml").write_bytes(citation_file(91000000 + n))
    return folder


def stage(tmp_path, inputs, name="out", **pubmed):
    context = RunContext(load_config(base={"pubmed": {"partitions": 2, **pubmed}}))
    return run_pubmed(context, [str(path) for path in inputs], str(tmp_path / name))


def test_one_corrupt_file_in_a_hundred_is_within_the_default_share(spark, tmp_path, hundred_files):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pubmed26n0101.xml.gz").write_bytes(gzip.compress(citation_file(92000000))[:-30])
    ledger = stage(tmp_path, [hundred_files, bad])
    assert ledger.inputs == 101 and ledger.failed_inputs == {"parse_error": 1} and ledger.kept == 100
    assert (tmp_path / "out" / "_SUCCESS").exists()


def test_a_share_over_the_setting_fails_the_stage_naming_the_inputs(spark, tmp_path, hundred_files):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pubmed26n0101.xml.gz").write_bytes(gzip.compress(citation_file(92000000))[:-30])
    (bad / "pubmed26n0102.xml").write_bytes(b"<html><body>a login page</body></html>")
    with pytest.raises(TooManyFailedInputs) as raised:
        stage(tmp_path, [hundred_files, bad])
    assert str(raised.value) == (
        "pubmed: 2 of 102 inputs failed (2.0%, more than pubmed.max_failed_share = 0.01): "
        "pubmed26n0101.xml.gz (parse_error), pubmed26n0102.xml (unsupported_input); nothing was published")
    assert not (tmp_path / "out" / "_SUCCESS").exists() and not (tmp_path / "out" / "data").exists()
    # The same inputs under a share that allows them: published, the failures in the ledger.
    ledger = stage(tmp_path, [hundred_files, bad], name="lenient", max_failed_share=0.02)
    assert ledger.failed_inputs == {"parse_error": 1, "unsupported_input": 1}


def test_the_failed_share_check_names_the_first_inputs_and_counts_the_rest():
    ledger = StageLedger("pubmed", documents_in=5, kept=3, inputs=1000)
    failed = [(f"pubmed26n{n:04d}.xml", "parse_error") for n in range(1, 12)]
    check_failed_share(ledger, failed[:10], 0.01)  # 10 of 1,000: at the share, not over it
    check_failed_share(ledger, failed, 1.0)
    with pytest.raises(TooManyFailedInputs, match=r"^pubmed: 11 of 1,000 inputs failed \(1\.1%, more than "
                       r"pubmed\.max_failed_share = 0\.01\): pubmed26n0001\.xml \(parse_error\), .*"
                       r"pubmed26n0005\.xml \(parse_error\) and 6 more; nothing was published$"):
        check_failed_share(ledger, failed, 0.01)
    with pytest.raises(TooManyFailedInputs, match="1 of 1,000 inputs"):
        check_failed_share(ledger, failed[:1], 0.0)
    # Every input failed and nothing was kept: the runner's own error says so (not this one).
    check_failed_share(StageLedger("pubmed", inputs=2, failed_inputs=Counter(parse_error=2)), failed[:2], 0.0)


@pytest.mark.parametrize("key, value", [("max_failed_share", 1.5), ("max_failed_share", -0.1),
                                        ("supersede_abstracts", "never")])
def test_the_settings_are_checked(key, value):
    with pytest.raises(ConfigError, match=f"pubmed.{key}"):
        load_config(base={"pubmed": {key: value}})


# --- which papers supersede their abstracts -----------------------------------------------------------------

@pytest.fixture(scope="module")
def animal_paper_inputs(tmp_path_factory) -> Path:
    """The sample, with the paper PMC9900002 made the full text of the animal study 90000013 (MeSH Animals:
    the paper, taking its citation's MeSH terms, is excluded by MEDITRON's upsampling table)."""
    inputs = tmp_path_factory.mktemp("animal")
    for folder in ("pubmed", "pmc"):
        for source in (SAMPLE / folder).iterdir():
            data = source.read_bytes()
            if source.name == "PMC9900002.nxml":
                data = data.replace(b">90000008<", b">90000013<")
            (inputs / source.name).write_bytes(data)
    return inputs


def outputs(folder: Path) -> tuple[dict, dict]:
    kept = {row["id"]: row for row in pq.read_table(folder / "data").to_pylist()}
    dropped = {row["id"]: (row["reason"], row["detail"]) for row in pq.read_table(folder / "drops").to_pylist()}
    return kept, dropped


def test_by_default_a_paper_supersedes_its_abstract_whatever_becomes_of_it(spark, tmp_path, animal_paper_inputs):
    stage(tmp_path, [animal_paper_inputs])
    _, dropped = outputs(tmp_path / "out")
    assert dropped["pmcid:PMC9900002"] == ("upsampling_excluded", "MeSH Animals")
    assert dropped["pmid:90000013"] == ("superseded_by_fulltext", "pmcid:PMC9900002")  # names the paper
    assert dropped["pmid:90000003"] == ("superseded_by_fulltext", "pmcid:PMC9900001")


def test_if_paper_kept_an_abstract_stays_when_this_stage_drops_its_paper(spark, tmp_path, animal_paper_inputs):
    stage(tmp_path, [animal_paper_inputs], supersede_abstracts="if_paper_kept")
    kept, dropped = outputs(tmp_path / "out")
    assert dropped["pmcid:PMC9900002"] == ("upsampling_excluded", "MeSH Animals")
    assert "pmid:90000013" in kept  # its paper was excluded: the abstract stays
    assert dropped["pmid:90000003"] == ("superseded_by_fulltext", "pmcid:PMC9900001")  # a kept paper still does
    assert dropped["pmid:90000015"] == ("superseded_by_fulltext", "pmcid:PMC9900003")


# --- end to end: an update file on the S3 stand-in, reset half-way on the first attempt ------------------------

RUN = Path(__file__).with_name("flaky_read_run.py")


@pytest.mark.slow
def test_a_read_reset_half_way_on_s3_is_retried_to_the_undisturbed_output(s3_server, bucket, tmp_path):
    """The sample's PubMed files on the S3 stand-in, twice: under undisturbed/ and under disturbed/, where a proxy
    resets the connection half-way through the update file (whose DeleteCitation comes last) until its reader
    starts the file again. On local Spark with task retries (local[2,4]), the disturbed run's task fails once
    pyarrow's client gives up, is tried again, and gives the undisturbed output and ledger, no parse_error."""
    name = bucket.removeprefix("s3://")
    for prefix in ("undisturbed", "disturbed"):
        for source in (SAMPLE / "pubmed").iterdir():
            storage.write_bytes(f"{bucket}/{prefix}/pubmed/{source.name}", source.read_bytes())
    proxy = ResettingProxy(s3_server["AWS_ENDPOINT_URL"], f"/{name}/disturbed/pubmed/pubmed26n0002.xml")
    try:
        env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url}
        pairs = [str(tmp_path / "undisturbed"), f"{bucket}/undisturbed/pubmed",
                 str(tmp_path / "disturbed"), f"{bucket}/disturbed/pubmed"]
        done = subprocess.run([sys.executable, str(RUN), *pairs], capture_output=True, text=True, timeout=400,
                              env=env, cwd=Path(__file__).resolve().parents[2])
    finally:
        proxy.close()
    assert done.returncode == 0, done.stderr[-3000:]
    undisturbed, disturbed = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert proxy.resets >= 1 and proxy.starts >= 2  # reset half-way, and read again from its start
    undisturbed.pop("seconds"), disturbed.pop("seconds")
    assert disturbed == undisturbed and "parse_error" not in disturbed["dropped"]
    for folder in ("data", "drops"):
        assert files(tmp_path / "disturbed" / folder) == files(tmp_path / "undisturbed" / folder)
    kept, dropped = outputs(tmp_path / "disturbed")
    assert dropped["pmid:90000020"] == ("deleted", "DeleteCitation in pubmed26n0002.xml")
    assert "pmid:90000031" in kept  # a record of the update file


def files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}
