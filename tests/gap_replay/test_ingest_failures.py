"""The one rule by which the readers of input files tell a failure worth another try from bad content
(``errors.is_transient``), on errors raised by real reads and decoders; the task function every ingesting
stage shares (``ingest.parse_files``) under it; and the replay reader (JSONL plain, gzip or zstd, Parquet) with
a read reset half-way against the same file truncated."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from lxml import etree

from gap_replay.core.errors import TransientInputError, is_transient
from gap_replay.core.ingest import FILE_RANK, parse_files
from gap_replay.core.outcome import Drop
from gap_replay.core.schema import DROP_DETAIL, DROP_REASON, make_document
from gap_replay.replay.reader import iter_replay
from tests.pubmed_ingest.faults import RESET_MESSAGE, cut_storage, cut_stream


def raised(action) -> BaseException:
    try:
        action()
    except BaseException as error:  # noqa: BLE001 - the error is what the test looks at
        return error
    raise AssertionError("nothing was raised")


def corrupt_parquet() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": ["word " * 50] * 200}), buffer)
    return buffer.getvalue()[:-100]


TRANSIENT = {
    "connection reset": ConnectionResetError(104, "Connection reset by peer"),
    "timeout": TimeoutError("timed out"),
    "pyarrow's S3 read": OSError("AWS Error NETWORK_CONNECTION during GetObject operation: curlCode: 56, "
                                 "Failure when receiving data from the peer"),
    "input gone since it was listed": raised(lambda: open("/no/such/input.xml", "rb")),
    "out of memory": MemoryError(),
    "a service still failing": TransientInputError("3 request(s) still failing after the retries"),
}
CONTENT = {
    "malformed XML": raised(lambda: etree.fromstring(b"<PubmedArticleSet><PubmedArticle>")),
    "truncated gzip": raised(lambda: gzip.decompress(gzip.compress(b"x" * 1000)[:-20])),
    "gzip with a bad CRC": raised(lambda: gzip.decompress(gzip.compress(b"x" * 1000)[:-8] + b"\0" * 8)),
    "corrupt deflate data": raised(lambda: zlib.decompress(b"not deflate data")),
    "corrupt zstd": raised(lambda: zstandard.ZstdDecompressor().decompress(b"\x28\xb5\x2f\xfd" + b"\0" * 20)),
    "not a tar": raised(lambda: tarfile.open(fileobj=io.BytesIO(b"\0" * 100 + b"junk"), mode="r|*")),
    "undecodable text": raised(lambda: b"\xff\xfe\xfa".decode("utf-8")),
    "not JSON": raised(lambda: json.loads("{truncated")),
    "corrupt Parquet": raised(lambda: pq.read_table(io.BytesIO(corrupt_parquet()))),
    "a parser's bug": KeyError("PMID"),
}


@pytest.mark.parametrize("case", sorted(TRANSIENT))
def test_failures_to_read_are_transient(case):
    assert is_transient(TRANSIENT[case])


@pytest.mark.parametrize("case", sorted(CONTENT))
def test_bad_content_is_not(case):
    error = CONTENT[case]
    assert not is_transient(error), type(error)


def test_gzips_bad_file_error_is_an_oserror_of_content():
    error = CONTENT["gzip with a bad CRC"]
    assert isinstance(error, gzip.BadGzipFile) and isinstance(error, OSError) and not is_transient(error)


# --- parse_files: the task function of the pubmed and replay stages --------------------------------------------

def task(parser, tmp_path, name="in.xml") -> list[dict]:
    (tmp_path / name).write_bytes(b"content")
    batch = pa.RecordBatch.from_pydict({FILE_RANK: pa.array([0], pa.int32()), "path": [str(tmp_path / name)],
                                        "name": [name]})
    return [row for out in parse_files(parser)(iter([batch])) for row in out.to_pylist()]


def failing_after_one_document(error: BaseException):
    def parse(stream, name):
        yield make_document(id="pmid:1", source="pubmed_abstracts", text="The one document before the failure.")
        raise error

    return parse


def test_a_failed_read_fails_the_task_naming_the_input(tmp_path):
    with pytest.raises(TransientInputError, match=f"^reading in.xml: ConnectionResetError: .*{RESET_MESSAGE}$") as caught:
        task(failing_after_one_document(TRANSIENT["connection reset"]), tmp_path)
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    with pytest.raises(MemoryError):
        task(failing_after_one_document(MemoryError()), tmp_path)


@pytest.mark.parametrize("case", ["malformed XML", "truncated gzip", "gzip with a bad CRC", "a parser's bug"])
def test_bad_content_is_the_inputs_parse_error_after_what_came_before(case, tmp_path):
    rows = task(failing_after_one_document(CONTENT[case]), tmp_path)
    assert [(row["id"], row[DROP_REASON]) for row in rows] == [("pmid:1", None), ("file:in.xml", "parse_error")]
    assert rows[1][DROP_DETAIL].startswith(f"{type(CONTENT[case]).__name__}: ")


# --- the replay reader -------------------------------------------------------------------------------------------

# Lines that compress poorly (a digest in each), so that every form spans many reads.
LINES = b"".join(json.dumps({"text": f"Replay document {n}: {hashlib.sha256(str(n).encode()).hexdigest()}.",
                             "meta": {"redpajama_set_name": "RedPajamaWikipedia"}}).encode() + b"\n"
                 for n in range(10_000))
JSONL = {"plain": LINES, "gzip": gzip.compress(LINES), "zstd": zstandard.ZstdCompressor().compress(LINES)}


@pytest.mark.parametrize("compression", sorted(JSONL))
def test_replay_jsonl_reset_half_way_raises(compression):
    read = []
    with pytest.raises(ConnectionResetError, match=RESET_MESSAGE):
        for outcome in iter_replay(cut_stream(JSONL[compression]), name="rp.jsonl"):
            read.append(outcome)
    # The lines before the reset came out, and no drop: the reset ends the file, not a quiet end of input.
    assert read and not [item for item in read if isinstance(item, Drop)]


def test_replay_jsonl_truncated_keeps_what_was_read_then_drops_the_file():
    data = JSONL["gzip"]  # (a zstd stream cut short ends quietly: zstandard's reader does not say so)
    outcomes = list(iter_replay(io.BytesIO(data[: len(data) // 2]), name="rp.jsonl"))
    documents, last = outcomes[:-1], outcomes[-1]
    assert documents and all(isinstance(item, dict) for item in documents)
    assert isinstance(last, Drop) and (last.id, last.reason) == ("file:rp.jsonl", "parse_error")


def test_replay_parquet_reset_half_way_raises_and_truncated_is_dropped(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": [f"Replay document {n}." for n in range(5000)]}), buffer, row_group_size=500)
    (tmp_path / "rp.parquet").write_bytes(buffer.getvalue())
    (tmp_path / "cut.parquet").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    prefix = cut_storage(monkeypatch, share=0.5)
    with pytest.raises(ConnectionResetError, match=RESET_MESSAGE):
        list(iter_replay(io.BytesIO(), name="rp.parquet", uri=prefix + str(tmp_path / "rp.parquet")))
    [drop] = iter_replay(io.BytesIO(), name="cut.parquet", uri=str(tmp_path / "cut.parquet"))
    assert (drop.id, drop.reason) == ("file:cut.parquet", "parse_error") and drop.detail.startswith("ArrowInvalid")
