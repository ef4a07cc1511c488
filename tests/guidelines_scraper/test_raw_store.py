from __future__ import annotations

import hashlib
import json
import os

import pyarrow.parquet as pq
import pytest

from guidelines_scraper.fetch import FetchResult
from guidelines_scraper.raw_store import (
    RAW_SCHEMA,
    RawStore,
    is_transient,
    record_headers,
)


def result(url, status=200, body=b"<html>x</html>", error=None, final_url=None):
    return FetchResult(url=url, final_url=final_url or url, status=status, headers={"content-type": "text/html"},
                       body=body, error=error, fetched_at="2024-03-01T12:00:00Z")


def test_flush_writes_complete_files_readable_with_the_schema(tmp_path):
    store = RawStore(tmp_path / "raw")
    store.add("who", "article", result("https://www.who.int/a"))
    store.add("who", "robots", result("https://www.who.int/robots.txt", body=b"User-agent: *"))
    assert store.files() == [] and len(store) == 2  # buffered, not yet on disk
    first = store.flush()
    assert first.name.startswith("part-000000-") and store.flush() is None
    assert first.name.endswith(f"-{store.token}-0.parquet")
    store.add("nice", "article", result("https://www.nice.org.uk/b", status=404, body=b"gone"))
    store.flush()
    assert [f.name[:11] for f in store.files()] == ["part-000000", "part-000001"]
    table = pq.read_table(store.path)
    assert table.schema.equals(RAW_SCHEMA, check_metadata=False) and table.num_rows == 3
    rows = list(RawStore(tmp_path / "raw").records())
    assert [(r["source"], r["kind"], r["status"]) for r in rows] == [("who", "article", 200), ("who", "robots", 200),
                                                                        ("nice", "article", 404)]
    assert rows[0]["body_sha256"] == hashlib.sha256(b"<html>x</html>").hexdigest()
    assert json.loads(rows[0]["headers"]) == {"content-type": "text/html"}
    assert record_headers(rows[0]) == {"content-type": "text/html"}
    assert [r["url"] for r in store.records(kinds=["robots"])] == ["https://www.who.int/robots.txt"]
    assert [r["url"] for r in store.records(sources=["nice"])] == ["https://www.nice.org.uk/b"]


def test_auto_flush_and_context_manager(tmp_path):
    with RawStore(tmp_path, flush_records=2) as store:
        for i in range(5):
            store.add("who", "article", result(f"https://www.who.int/{i}"))
        assert len(store.files()) == 2
    assert len(store.files()) == 3 and len(RawStore(tmp_path)) == 5


def test_flush_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    store = RawStore(tmp_path)
    store.add("who", "article", result("https://www.who.int/a"))

    def broken_write(table, handle, **kwargs):
        handle.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        store.flush()
    assert store.files() == [] and not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    assert len(list(tmp_path.glob(".journal-*.wal"))) == 1  # the record is still safe in the journal
    monkeypatch.undo()
    assert store.flush() is not None and len(RawStore(tmp_path)) == 1  # the buffer survived


def test_stale_temp_files_are_ignored_and_removed(tmp_path):
    (tmp_path / ".part-000000-dead.parquet.tmp").write_bytes(b"PAR1 truncated")
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
from guidelines_scraper.fetch import FetchResult
from guidelines_scraper.raw_store import RawStore
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
        assert len(list(tmp_path.glob(".journal-*.wal"))) == 1
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    store = RawStore(tmp_path)                           # recovery: the dead writer's journal -> a part
    assert store.recovered == 3 and len(store.files()) == 1
    assert [r["url"] for r in store.records()] == [f"https://www.who.int/{i}" for i in range(3)]
    assert not list(tmp_path.glob(".journal-*")) and not list(tmp_path.glob(".writer-*"))
    assert RawStore(tmp_path).recovered == 0 and len(RawStore(tmp_path).files()) == 1


def test_torn_journal_tail_is_ignored(tmp_path):
    writer = RawStore(tmp_path)
    writer.add("who", "article", result("https://www.who.int/a"))
    writer.add("who", "article", result("https://www.who.int/b"))
    journal = next(tmp_path.glob(".journal-*.wal"))
    journal.write_bytes(journal.read_bytes()[:-10])       # a write cut short by the kill
    writer._journal.close()
    os.close(writer._lock_fd)                             # the writer "dies"
    store = RawStore(tmp_path)
    assert store.recovered == 1 and [r["url"] for r in store.records()] == ["https://www.who.int/a"]


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
    store.add("who", "article", dict(vars(ok), status=304, headers={"etag": '"v1"'}, fetched_at="2024-04-01"))
    pages = store.stored_pages(["who"])
    assert list(pages) == [("who", "https://www.who.int/a")]
    page = pages[("who", "https://www.who.int/a")]
    assert page.fetched_at == "2024-04-01" and page.conditional_headers() == {"If-None-Match": '"v1"'}
    assert store.stored_body(page) == b"old"
    store.close()
    page = RawStore(tmp_path).stored_pages()[("who", "https://www.who.int/a")]
    assert RawStore(tmp_path).stored_body(page) == b"old"
