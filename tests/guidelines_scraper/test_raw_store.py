from __future__ import annotations

import hashlib
import json
import os

import pytest
from warcio.archiveiterator import ArchiveIterator

from gap_replay.guidelines_scraper.fetch import FetchResult
from gap_replay.guidelines_scraper.raw_store import (
    RawStore,
    is_transient,
    read_warc_records,
    record_headers,
)


def result(url, status=200, body=b"<html>x</html>", error=None, final_url=None):
    return FetchResult(url=url, final_url=final_url or url, status=status, headers={"content-type": "text/html"},
                       body=body, error=error, fetched_at="2024-03-01T12:00:00Z")


def test_flush_writes_complete_warc_files(tmp_path):
    store = RawStore(tmp_path / "raw")
    store.add("who", "article", result("https://www.who.int/a"))
    store.add("who", "robots", result("https://www.who.int/robots.txt", body=b"User-agent: *"))
    assert store.files() == [] and len(store) == 2  # in the open file, not yet a part
    first = store.flush()
    assert first.name.startswith("part-000000-") and store.flush() is None
    assert first.name.endswith(f"-{store.token}-0.warc.gz")
    store.add("nice", "article", result("https://www.nice.org.uk/b", status=404, body=b"gone"))
    store.flush()
    assert [f.name[:11] for f in store.files()] == ["part-000000", "part-000001"]
    rows = list(RawStore(tmp_path / "raw").records())
    assert [(r["source"], r["kind"], r["status"]) for r in rows] == [("who", "article", 200), ("who", "robots", 200),
                                                                        ("nice", "article", 404)]
    assert rows[0]["body_sha256"] == hashlib.sha256(b"<html>x</html>").hexdigest()
    assert json.loads(rows[0]["headers"]) == {"content-type": "text/html"}
    assert record_headers(rows[0]) == {"content-type": "text/html"}
    assert [r["url"] for r in store.records(kinds=["robots"])] == ["https://www.who.int/robots.txt"]
    assert [r["url"] for r in store.records(sources=["nice"])] == ["https://www.nice.org.uk/b"]
    assert list(read_warc_records(first, kinds=["robots"])) == rows[1:2]


def test_warcio_reads_the_files_as_standard_warc(tmp_path):
    with RawStore(tmp_path) as store:
        store.add("who", "article", result("https://www.who.int/a", final_url="https://www.who.int/a/"))
        gzipped = FetchResult(url="https://www.who.int/z", final_url="https://www.who.int/z", status=200,
                              headers={"content-encoding": "gzip", "content-length": "99"}, body=b"decoded body",
                              fetched_at="2024-03-01T12:00:01.000Z")
        store.add("who", "article", gzipped)
        store.add("who", "article", result("https://www.who.int/b", status=503, body=b"busy", error="gave up"))
        store.add("who", "article", result("https://www.who.int/down", status=None, body=None, error="timed out"))
    (path,) = store.files()
    found = []
    with open(path, "rb") as handle:
        for record in ArchiveIterator(handle, check_digests=True):
            headers = record.rec_headers
            assert headers.protocol == "WARC/1.1"
            if record.rec_type in ("response", "metadata"):
                found.append((record.rec_type, headers.get_header("WARC-Target-URI"), headers.get_header("WARC-Date"),
                              record.http_headers.get_statuscode() if record.http_headers else None,
                              record.content_stream().read()))
    assert found == [
        ("response", "https://www.who.int/a/", "2024-03-01T12:00:00Z", "200", b"<html>x</html>"),
        ("response", "https://www.who.int/z", "2024-03-01T12:00:01.000Z", "200", b"decoded body"),
        ("response", "https://www.who.int/b", "2024-03-01T12:00:00Z", "503", b"busy"),
        ("metadata", "https://www.who.int/down", "2024-03-01T12:00:00Z", None, b"fetch-error: timed out\r\n"),
    ]
    # The project's facts read back exactly.
    rows = list(RawStore(tmp_path).records())
    assert rows[0]["url"] == "https://www.who.int/a" and rows[0]["final_url"] == "https://www.who.int/a/"
    assert json.loads(rows[1]["headers"]) == {"content-encoding": "gzip", "content-length": "99"}
    assert rows[2]["error"] == "gave up" and rows[3]["status"] is None and rows[3]["error"] == "timed out"
    assert all(r["fetched_at"] == "2024-03-01T12:00:00Z" for r in rows if r["url"] != "https://www.who.int/z")


def test_odd_values_round_trip(tmp_path):
    store = RawStore(tmp_path)
    odd = FetchResult(url="https://www.who.int/é", final_url="https://www.who.int/é", status=200,
                      headers={"content-disposition": "attachment; filename=\"café.pdf\"", "x-n": " pad "},
                      body=b"", error=" odd\nerror ", fetched_at="")
    store.add("who", "article", odd)
    store.add("who", "article", result("https://www.who.int/big", status=200, body=None, error="response too large"))
    store.close()
    first, big = RawStore(tmp_path).records()
    assert first["body"] == b"" and first["fetched_at"] == "" and first["error"] == " odd\nerror "
    assert json.loads(first["headers"]) == odd.headers and first["url"] == "https://www.who.int/é"
    assert big["status"] == 200 and big["body"] is None and big["body_sha256"] is None


def test_auto_flush_and_context_manager(tmp_path):
    with RawStore(tmp_path, flush_records=2) as store:
        for i in range(5):
            store.add("who", "article", result(f"https://www.who.int/{i}"))
        assert len(store.files()) == 2
    assert len(store.files()) == 3 and len(RawStore(tmp_path)) == 5


def test_a_dead_writers_torn_first_record_leaves_no_file(tmp_path):
    (tmp_path / ".0123abcd-0.warc.gz.open").write_bytes(b"\x1f\x8b\x08\x00 half a member")
    store = RawStore(tmp_path)
    assert list(tmp_path.iterdir()) == [] and store.files() == [] and list(store.records()) == []


def test_urls_for_resume_skip_transient_failures(tmp_path):
    store = RawStore(tmp_path)
    store.add("who", "article", result("https://www.who.int/ok", final_url="https://www.who.int/ok/"))
    store.add("who", "article", result("https://www.who.int/missing", status=404))
    store.add("who", "article", result("https://www.who.int/busy", status=503, error="gave up after 4 attempts"))
    store.add("who", "article", result("https://www.who.int/down", status=None, body=None, error="timed out"))
    store.add("who", "article", result("https://www.who.int/private", status=None, body=None,
                                       error="disallowed by robots.txt"))
    store.add("who", "listing", result("https://www.who.int/list"))
    store.flush()
    assert store.urls() == {"https://www.who.int/ok", "https://www.who.int/ok/", "https://www.who.int/missing",
                            "https://www.who.int/private"}
    assert "https://www.who.int/down" in store.urls(include_transient=True)
    assert "https://www.who.int/list" in store.urls(kinds=None)
    assert is_transient(429, None) and is_transient(None, "robots.txt unreachable, site not crawled: x")
    assert not is_transient(410, None)


def test_latest_record_per_url(tmp_path):
    store = RawStore(tmp_path)
    store.add("who", "article", result("https://www.who.int/a", status=503, error="gave up"))
    store.flush()
    store.add("who", "article", result("https://www.who.int/a", status=200))
    store.add("who", "article", result("https://www.who.int/b", status=200))
    latest = list(store.records(kinds=["article"], latest=True))
    assert [(r["url"], r["status"]) for r in latest] == [("https://www.who.int/a", 200), ("https://www.who.int/b", 200)]


def test_file_uri_accepted_other_schemes_refused(tmp_path):
    store = RawStore(f"file://{tmp_path}/raw")
    assert store.path == tmp_path / "raw" and store.path.is_dir()
    with pytest.raises(ValueError, match="local directory"):
        RawStore("s3://bucket/raw")


def test_rejects_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        RawStore(tmp_path).add("who", "page", result("https://www.who.int/a"))


WRITER = """
import sys
from gap_replay.guidelines_scraper.fetch import FetchResult
from gap_replay.guidelines_scraper.raw_store import RawStore
store = RawStore(sys.argv[1])
for i in range(3):
    store.add("who", "article", FetchResult(url=f"https://www.who.int/{i}", final_url=f"https://www.who.int/{i}",
                                            status=200, body=b"page %d" % i, fetched_at="t"))
print("written", flush=True)
sys.stdin.readline()   # killed here, before any flush
"""


def test_records_survive_a_sigkill_and_are_recovered_once(tmp_path):
    import signal
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "written"
        assert RawStore(tmp_path).files() == []          # alive: its journal is left alone
        assert len(list(tmp_path.glob(".*.warc.gz.open"))) == 1
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    store = RawStore(tmp_path)                           # recovery: the dead writer's open file -> a part
    assert store.recovered == 3 and len(store.files()) == 1
    assert [r["url"] for r in store.records()] == [f"https://www.who.int/{i}" for i in range(3)]
    assert not list(tmp_path.glob(".*.open")) and not list(tmp_path.glob(".writer-*"))
    assert RawStore(tmp_path).recovered == 0 and len(RawStore(tmp_path).files()) == 1


def test_torn_last_record_is_cut_off_and_the_store_appends_after_it(tmp_path):
    writer = RawStore(tmp_path)
    writer.add("who", "article", result("https://www.who.int/a"))
    writer.add("who", "article", result("https://www.who.int/b", body=b"<html>" + os.urandom(4000) + b"</html>"))
    (open_file,) = tmp_path.glob(".*.warc.gz.open")
    whole = open_file.read_bytes()
    last = whole.rindex(b"\x1f\x8b\x08")                # where the last gzip member (record b) starts
    open_file.write_bytes(whole[:last + (len(whole) - last) // 2])  # a write cut short by the kill
    writer._file.close()
    os.close(writer._lock_fd)                             # the writer "dies"
    store = RawStore(tmp_path)
    assert store.recovered == 1 and [r["url"] for r in store.records()] == ["https://www.who.int/a"]
    (part,) = store.files()
    assert part.stat().st_size == last                    # cut exactly at the end of the last whole record
    store.add("who", "article", result("https://www.who.int/b"))
    store.close()
    assert [r["url"] for r in RawStore(tmp_path).records()] == ["https://www.who.int/a", "https://www.who.int/b"]
    with open(part, "rb") as handle:                      # the cut file is valid WARC again
        assert [r.rec_type for r in ArchiveIterator(handle, check_digests=True)] == ["warcinfo", "response"]


def test_concurrent_writers_use_distinct_files(tmp_path):
    first, second = RawStore(tmp_path), RawStore(tmp_path)
    first.add("who", "article", result("https://www.who.int/a"))
    second.add("nice", "article", result("https://www.nice.org.uk/b"))
    assert RawStore(tmp_path).recovered == 0            # both alive: nothing touched
    first.close()
    second.close()
    names = [f.name for f in RawStore(tmp_path).files()]
    assert len(names) == 2 and len(set(names)) == 2 and first.token in names[0] + names[1]
    assert sorted(r["url"] for r in RawStore(tmp_path).records()) == ["https://www.nice.org.uk/b",
                                                                       "https://www.who.int/a"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_stored_pages_give_validators_and_bodies(tmp_path):
    store = RawStore(tmp_path)
    ok = FetchResult(url="https://www.who.int/a", final_url="https://www.who.int/a", status=200,
                     headers={"etag": '"v1"', "last-modified": "Fri, 01 Mar 2024 10:00:00 GMT"}, body=b"old",
                     fetched_at="2024-03-01T12:00:00.000Z")
    store.add("who", "article", ok)
    store.add("who", "article", result("https://www.who.int/gone", status=404))
    store.flush()
    page = store.stored_pages(["who"])[("who", "https://www.who.int/a")]
    not_modified = FetchResult(url=ok.url, final_url=ok.url, status=304, headers={"etag": '"v1"', "date": "x"},
                               fetched_at="2024-04-01T00:00:00.000Z")
    kept = store.add_not_modified("who", "article", not_modified, page)
    assert kept.body == b"old" and kept.headers == {**page.headers, "date": "x"}
    pages = store.stored_pages(["who"])
    assert list(pages) == [("who", "https://www.who.int/a")]
    page = pages[("who", "https://www.who.int/a")]
    assert page.fetched_at == "2024-04-01T00:00:00.000Z" and page.conditional_headers() == {
        "If-None-Match": '"v1"', "If-Modified-Since": "Fri, 01 Mar 2024 10:00:00 GMT"}
    assert store.stored_body(page) == b"old"
    store.close()
    page = RawStore(tmp_path).stored_pages()[("who", "https://www.who.int/a")]
    assert RawStore(tmp_path).stored_body(page) == b"old"
    # The revisit, in its own file, reads back with the response's body (also file by file, as Spark does).
    first, second = RawStore(tmp_path).files()
    (revisit,) = read_warc_records(second)
    assert revisit["status"] == 304 and revisit["body"] == b"old" and revisit["headers"] == _headers_json(kept.headers)
    with open(second, "rb") as handle:
        (record,) = [r for r in ArchiveIterator(handle) if r.rec_type == "revisit"]
        with open(first, "rb") as original:
            response = next(r for r in ArchiveIterator(original) if r.rec_type == "response")
            assert record.rec_headers.get_header("WARC-Refers-To") == response.rec_headers.get_header("WARC-Record-ID")
        assert record.rec_headers.get_header("WARC-Profile").endswith("/revisit/server-not-modified")
        assert record.http_headers.get_statuscode() == "304"


def _headers_json(headers):
    return json.dumps(headers, sort_keys=True)
