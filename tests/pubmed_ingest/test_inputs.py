"""classify_input, iter_jats_inputs and read_jats_file on the real files and on tar packages built from them."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from gap_replay.core.ingest import RawStream
from gap_replay.core.outcome import Drop
from gap_replay.pubmed_ingest.inputs import (
    UnrecognizedInput,
    classify_input,
    classify_stream,
    iter_jats_archive,
    iter_jats_inputs,
    read_jats_file,
)
from gap_replay.pubmed_ingest.jats import parse_jats
from gap_replay.pubmed_ingest.medline import iter_medline

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
PUBMED, PMC = SHARED_DATA / "pubmed", SHARED_DATA / "pmc"
ARTICLES = ["ehp-116-1694.nxml", "mds526.nxml", "elife05031.xml"]


def build_package(path: Path, *, compression: str = "gz") -> Path:
    """A PMC OA-style package: articles in a folder, plus files that are not articles."""
    with tarfile.open(path, f"w:{compression}") as archive:
        directory = tarfile.TarInfo("PMC001")
        directory.type = tarfile.DIRTYPE
        archive.addfile(directory)
        for name in ARTICLES:
            archive.add(PMC / name, arcname=f"PMC001/{name}")
        for name, payload in (("PMC001/figure.jpg", b"\xff\xd8 jpeg"), ("PMC001/._mds526.nxml", b"mac")):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


@pytest.mark.parametrize("path", sorted(PUBMED.glob("*.xml*")), ids=lambda path: path.name)
def test_pubmed_files_are_medline(path):
    assert classify_input(path) == "medline"


@pytest.mark.parametrize("path", sorted(p for p in PMC.iterdir() if p.suffix in (".nxml", ".xml")),
                         ids=lambda path: path.name)
def test_pmc_files_are_jats(path):
    assert classify_input(path) == "jats"


def test_classification_sniffs_content_not_suffix(tmp_path):
    medline_named_nxml = tmp_path / "misnamed.nxml"
    medline_named_nxml.write_bytes((PUBMED / "biopython_pubmed2.xml").read_bytes())
    assert classify_input(medline_named_nxml) == "medline"
    jats_gzipped = tmp_path / "article.bin"
    jats_gzipped.write_bytes(gzip.compress((PMC / "mds526.nxml").read_bytes()))
    assert classify_input(jats_gzipped) == "jats"
    assert classify_input(build_package(tmp_path / "package.dat")) == "jats_archive"
    assert classify_input(build_package(tmp_path / "plain.tar", compression="")) == "jats_archive"


def test_unrecognised_input_raises(tmp_path):
    for content in (b"<html><body>hi</body></html>", b"", b"\x00\x01\x02 binary"):
        path = tmp_path / "other.xml"
        path.write_bytes(content)
        with pytest.raises(UnrecognizedInput):
            classify_input(path)


def test_single_file_yields_one_article(tmp_path):
    path = PMC / "mds526.nxml"
    assert list(iter_jats_inputs(path)) == [(str(path), path.read_bytes())]
    compressed = tmp_path / "mds526.nxml.gz"
    compressed.write_bytes(gzip.compress(path.read_bytes()))
    assert list(iter_jats_inputs(compressed)) == [(str(compressed), path.read_bytes())]


def test_package_members_streamed_and_parsed(tmp_path):
    package = build_package(tmp_path / "oa_package.tar.gz")
    items = list(iter_jats_inputs(package))
    assert [name for name, _ in items] == [f"{package}:PMC001/{name}" for name in ARTICLES]
    for (name, data), article in zip(items, ARTICLES, strict=True):
        assert data == (PMC / article).read_bytes()
        assert isinstance(parse_jats(data, name=name), dict)


def test_oversized_members_are_reported_and_skipped(tmp_path):
    package = build_package(tmp_path / "oa_package.tar.gz")
    cap = 100_000  # ehp-116-1694 (86 KB) is under it; mds526 (108 KB) and elife05031 (132 KB) over
    items = list(iter_jats_inputs(package, max_member_bytes=cap))
    assert [type(item) for item in items] == [tuple, Drop, Drop]
    assert items[0][0] == f"{package}:PMC001/ehp-116-1694.nxml"
    too_large = items[1]
    assert too_large.id == f"file:{package}:PMC001/mds526.nxml"
    assert too_large.reason == "too_large" and too_large.source == "pubmed_papers"
    assert "108358 bytes" in too_large.detail
    assert items[2].id == f"file:{package}:PMC001/elife05031.xml"

    [single] = iter_jats_inputs(PMC / "mds526.nxml", max_member_bytes=cap)
    assert isinstance(single, Drop) and single.reason == "too_large"


def test_corrupt_package_yields_what_it_could_then_one_error(tmp_path):
    data = build_package(tmp_path / "whole.tar.gz").read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[: int(len(data) * 0.6)])
    items = list(iter_jats_inputs(truncated))
    articles, errors = items[:-1], items[-1:]
    assert articles and all(isinstance(item, tuple) for item in articles)
    assert articles[0] == (f"{truncated}:PMC001/ehp-116-1694.nxml", (PMC / "ehp-116-1694.nxml").read_bytes())
    [error] = errors
    assert isinstance(error, Drop) and error.id == f"file:{truncated}" and error.reason == "parse_error"
    assert f"(after {len(articles)} members)" in error.detail

    plain = build_package(tmp_path / "plain.tar", compression="").read_bytes()
    cut_plain = tmp_path / "cut.tar"
    cut_plain.write_bytes(plain[:150_000])
    items = list(iter_jats_inputs(cut_plain))
    assert isinstance(items[-1], Drop) and items[-1].reason == "parse_error"
    assert [name for name, _ in items[:-1]] == [f"{cut_plain}:PMC001/ehp-116-1694.nxml"]


def _tar_blocks(plain: bytes) -> list[int]:
    """Offsets of the member headers of the uncompressed tar `plain`, in order."""
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as archive:
        return [member.offset for member in archive.getmembers()]


@pytest.mark.parametrize("compression, damage", [
    *[(compression, damage) for compression in ("gz", "") for damage in ("junk header", "no end marker",
                                                                         "cut at a member")],
    ("gz", "bad crc"), ("gz", "junk after gzip"),
])
def test_a_package_damaged_where_tarfile_stops_quietly_is_a_drop(tmp_path, compression, damage):
    """tarfile ends a stream's iteration without an error at a header that is not one, or at a stream
    that stops at a member's boundary: neither is the end of the package, and the members after it
    would be lost without a word."""
    plain = build_package(tmp_path / "plain.tar", compression="").read_bytes()
    headers = _tar_blocks(plain)  # the folder, three articles, a figure, a macOS file
    third = headers[3]  # the header of the third article (elife05031.xml)
    if damage == "junk header":
        plain = plain[:third] + b"\x17junk!" * (512 // 6) + b"\x17\x17" + plain[third + 512:]
    elif damage == "no end marker":
        end = len(plain.rstrip(b"\0"))  # the last member's data, then its padding to a block
        plain = plain[:end + -end % 512]
    elif damage == "cut at a member":
        plain = plain[:third]
    packed = gzip.compress(plain, mtime=0) if compression == "gz" else plain
    if damage == "bad crc":
        packed = packed[:-8] + bytes(byte ^ 0xFF for byte in packed[-8:-4]) + packed[-4:]
    elif damage == "junk after gzip":
        packed += b"this is not gzip"
    package = tmp_path / ("damaged.tar.gz" if compression else "damaged.tar")
    package.write_bytes(packed)
    items = list(iter_jats_inputs(package))
    *articles, last = items
    assert isinstance(last, Drop) and last.reason == "parse_error" and last.id == f"file:{package}", items
    expected = ARTICLES[:2] if damage in ("junk header", "cut at a member") else ARTICLES
    assert [name for name, _ in articles] == [f"{package}:PMC001/{name}" for name in expected]
    assert f"(after {len(articles)} members)" in last.detail


@pytest.mark.parametrize("compression", ["gz", ""])
def test_an_undamaged_package_ends_without_a_drop(tmp_path, compression):
    """Zero padding after tar's end marker (tar pads to whole records) and a second gzip member are fine."""
    suffix = f".{compression}" if compression else ""
    package = build_package(tmp_path / f"whole.tar{suffix}", compression=compression)
    if compression == "gz":
        package.write_bytes(package.read_bytes() + gzip.compress(b"\0" * 10240, mtime=0))
    items = list(iter_jats_inputs(package))
    assert [name for name, _ in items] == [f"{package}:PMC001/{name}" for name in ARTICLES]


def test_corrupt_gzip_single_file_is_a_drop(tmp_path):
    broken = tmp_path / "broken.nxml.gz"
    broken.write_bytes(gzip.compress((PMC / "mds526.nxml").read_bytes())[:2000])
    [drop] = iter_jats_inputs(broken)
    assert isinstance(drop, Drop) and drop.reason == "parse_error" and drop.id == f"file:{broken}"


def test_classify_stream_leaves_the_stream_where_it_was(tmp_path):
    package = build_package(tmp_path / "oa_package.tar.gz").read_bytes()
    cases = [
        ((PUBMED / "medline16n0902.xml.gz").read_bytes(), "medline"),
        ((PUBMED / "biopython_pubmed1.xml").read_bytes(), "medline"),
        ((PMC / "elife00007.xml").read_bytes(), "jats"),
        (package, "jats_archive"),
        (b"<html/>", "unknown"),
        (b"", "unknown"),
    ]
    for payload, kind in cases:
        seekable = io.BytesIO(payload)
        assert classify_stream(seekable) == kind and seekable.tell() == 0
        buffered = io.BufferedReader(RawStream(io.BytesIO(payload)))
        assert classify_stream(buffered) == kind
        assert buffered.read() == payload  # nothing consumed


def test_classify_then_parse_the_same_unseekable_stream(tmp_path):
    stream = io.BufferedReader(RawStream(io.BytesIO((PUBMED / "ncbiutils_pubmed22n1313.xml.gz").read_bytes())))
    assert classify_stream(stream) == "medline"
    assert sum(isinstance(item, dict) for item in iter_medline(stream, name="update")) == 3

    stream = io.BufferedReader(RawStream(io.BytesIO(build_package(tmp_path / "oa_package.tar.gz").read_bytes())))
    assert classify_stream(stream) == "jats_archive"
    items = list(iter_jats_archive(stream, name="s3://bucket/oa_package.tar.gz", max_member_bytes=100_000))
    assert [member for member, _ in items] == [f"PMC001/{name}" for name in ARTICLES]
    assert items[0][1] == (PMC / "ehp-116-1694.nxml").read_bytes()
    assert [data.id for _, data in items[1:]] == [
        f"file:s3://bucket/oa_package.tar.gz:PMC001/{name}" for name in ARTICLES[1:]]


def test_read_jats_file_from_seekable_and_unseekable_streams(shared_data):
    data = (shared_data / "pmc" / "mds526.nxml").read_bytes()
    for payload in (data, gzip.compress(data)):
        assert read_jats_file(io.BytesIO(payload), name="a.nxml") == data
        assert read_jats_file(io.BufferedReader(RawStream(io.BytesIO(payload))), name="a.nxml") == data
    seekable = io.BytesIO(b"junk" + data)  # read from where the stream is
    seekable.seek(4)
    assert read_jats_file(seekable, name="a.nxml") == data


def test_read_jats_file_caps_what_it_holds(shared_data):
    data = (shared_data / "pmc" / "mds526.nxml").read_bytes()
    for payload in (data, gzip.compress(data)):  # the cap is on the gunzipped content
        assert read_jats_file(io.BytesIO(payload), name="a.nxml", max_member_bytes=len(data)) == data
        stream = io.BufferedReader(RawStream(io.BytesIO(payload)))
        drop = read_jats_file(stream, name="a.nxml", max_member_bytes=len(data) - 1)
        assert isinstance(drop, Drop)
        assert (drop.id, drop.reason, drop.source) == ("file:a.nxml", "too_large", "pubmed_papers")
        assert f"cap of {len(data) - 1} bytes" in drop.detail
    stream = io.BufferedReader(RawStream(io.BytesIO(gzip.compress(data)[:2000])))
    drop = read_jats_file(stream, name="cut.nxml.gz")
    assert isinstance(drop, Drop) and (drop.id, drop.reason) == ("file:cut.nxml.gz", "parse_error")
