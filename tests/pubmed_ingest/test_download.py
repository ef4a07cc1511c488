"""`pubmed_ingest.download` against a real HTTP server on 127.0.0.1 that mirrors NCBI's layout.

The server serves a temporary directory as NCBI does: Apache-style HTML indexes for directories,
files with Range support (206 + Content-Range, 416 past the end), and switches that inject faults
(503 with or without Retry-After, a connection dropped mid-body, a stall, a 404, a server that
ignores Range). Every request is logged so tests can assert what was (not) fetched.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import io
import json
import random
import tarfile
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest
import urllib3

from gap_replay.pubmed_ingest.download import (
    COLLECTIONS,
    DownloadError,
    DownloadReport,
    RemoteFile,
    download_all,
    list_remote,
    parse_listing,
    parse_md5,
)

BASELINE = ["pubmed25n0001.xml.gz", "pubmed25n0002.xml.gz"]
UPDATES = ["pubmed25n0003.xml.gz"]
PMC = {
    "oa_comm": ["oa_comm_xml.PMC000xxxxxx.baseline.2024-12-18.tar.gz", "oa_comm_xml.incr.2024-12-19.tar.gz"],
    "oa_noncomm": ["oa_noncomm_xml.PMC001xxxxxx.baseline.2024-12-18.tar.gz"],
    "oa_other": ["oa_other_xml.PMC000xxxxxx.baseline.2024-12-18.tar.gz"],
}
PMC_DIRS = {  # oa_other only where PMC moved the legacy files in April 2026
    "oa_comm": "pub/pmc/oa_bulk/oa_comm/xml",
    "oa_noncomm": "pub/pmc/oa_bulk/oa_noncomm/xml",
    "oa_other": "pub/pmc/deprecated/oa_bulk/oa_other/xml",
}
ALL = ["baseline", "updatefiles"]


# --- fake data -----------------------------------------------------------------------------------

def medline_gz(name: str, citations: int = 40) -> bytes:
    """A gzip'd PubmedArticleSet; seeded random hex text keeps it from compressing to nothing (~40 KB)."""
    noise_source = random.Random(name)
    articles = []
    for index in range(citations):
        noise = noise_source.randbytes(1000).hex()
        articles.append(f"<PubmedArticle><MedlineCitation Status=\"MEDLINE\"><PMID Version=\"1\">{index + 1}</PMID>"
                        f"<Article><ArticleTitle>Trial {index}</ArticleTitle><Abstract><AbstractText>{noise}"
                        f"</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle>")
    xml = "<?xml version=\"1.0\"?>\n<PubmedArticleSet>" + "".join(articles) + "</PubmedArticleSet>\n"
    return gzip.compress(xml.encode(), mtime=0)


def pmc_package(name: str) -> bytes:
    noise_source = random.Random(name)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for index in range(3):
            body = (f"<article><front><article-meta><article-id pub-id-type=\"pmc\">PMC{index + 1}</article-id>"
                    f"</article-meta></front><body><p>{noise_source.randbytes(6000).hex()}</p></body></article>").encode()
            info = tarfile.TarInfo(f"PMC00{index}xxxxxx/PMC{index + 1}.xml")
            info.size, info.mtime = len(body), 0
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def build_mirror(root: Path) -> dict[str, bytes]:
    """Write the NCBI-like tree under `root`; returns the data files' contents by name."""
    contents: dict[str, bytes] = {}
    baseline, updates = root / "pubmed" / "baseline", root / "pubmed" / "updatefiles"
    baseline.mkdir(parents=True)
    updates.mkdir(parents=True)
    (baseline / "README.txt").write_text("PubMed baseline\n")
    for name in BASELINE:
        contents[name] = medline_gz(name)
        (baseline / name).write_bytes(contents[name])
        (baseline / f"{name}.md5").write_text(f"MD5({name})= {md5_of(contents[name])}\n")  # NCBI's format
    for name in UPDATES:
        contents[name] = medline_gz(name)
        (updates / name).write_bytes(contents[name])
        (updates / f"{name}.md5").write_text(f"{md5_of(contents[name])}  {name}\n")  # md5sum's format
    for group, names in PMC.items():
        folder = root / PMC_DIRS[group]
        folder.mkdir(parents=True)
        for name in names:
            contents[name] = pmc_package(name)
            (folder / name).write_bytes(contents[name])
            stem = name[: -len(".tar.gz")]
            (folder / f"{stem}.filelist.csv").write_text("Article File,AccessionID\nPMC000xxxxxx/PMC1.xml,PMC1\n")
            (folder / f"{stem}.filelist.txt").write_text("Article File\tAccessionID\n")
    return contents


def apache_index(folder: Path, url_path: str) -> bytes:
    """A directory index in the shape NCBI's Apache serves (sort links, parent link, <pre> table)."""
    rows = []
    for entry in sorted(folder.iterdir()):
        name = entry.name + ("/" if entry.is_dir() else "")
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(entry.stat().st_mtime))
        size = "-" if entry.is_dir() else f"{entry.stat().st_size // 1024}K"
        rows.append(f'<a href="{quote(name)}">{html.escape(name)}</a>{" " * max(1, 50 - len(name))}{stamp}  {size:>5}  ')
    parent = url_path.rstrip("/").rsplit("/", 1)[0] + "/"
    page = (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n'
        f"  <title>Index of {html.escape(url_path)}</title>\n </head>\n <body>\n<h1>Index of {html.escape(url_path)}</h1>\n"
        '<pre>      <a href="?C=N;O=D">Name</a>                    <a href="?C=M;O=A">Last modified</a>      '
        '<a href="?C=S;O=A">Size</a>  <a href="?C=D;O=A">Description</a><hr>'
        f'      <a href="{parent}">Parent Directory</a>                             -   \n'
        + "\n".join(rows) + "\n<hr></pre>\n</body></html>\n"
    )
    return page.encode()


# --- the server ----------------------------------------------------------------------------------

class FakeNCBI:
    """State shared by the handler threads: the tree, the request log and the fault switches."""

    def __init__(self, root: Path):
        self.root = root
        self.lock = threading.Lock()
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.unavailable: dict[str, int] = {}  # path -> how many more 503s
        self.retry_after: dict[str, str] = {}  # path -> Retry-After value sent with those 503s
        self.drop_after: dict[str, int] = {}  # path -> bytes of body to send before hanging up (once)
        self.stall: dict[str, float] = {}  # path -> seconds to wait before answering (once)
        self.ignore_range: set[str] = set()
        self.missing: set[str] = set()  # listed, but 404
        self.base = ""

    def gets(self, name: str) -> list[str | None]:
        """The Range headers of the GETs of the file called `name` (None: no Range)."""
        with self.lock:
            return [rng for method, path, rng in self.log if method == "GET" and path.rsplit("/", 1)[-1] == name]

    def data_gets(self) -> list[str]:
        with self.lock:
            return [path for method, path, _ in self.log
                    if method == "GET" and path.endswith((".xml.gz", ".tar.gz"))]

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as NCBI's server: exercises urllib3's connection reuse
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stalls
    state: FakeNCBI

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.answer(send_body=False)

    def do_GET(self):
        self.answer(send_body=True)

    def send_plain(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, send_body=True):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def answer(self, send_body: bool):
        state = self.state
        path = unquote(urlsplit(self.path).path)
        with state.lock:
            state.log.append((self.command, path, self.headers.get("Range")))
            stall = state.stall.pop(path, 0.0)
            fail = state.unavailable.get(path, 0)
            if fail:
                state.unavailable[path] = fail - 1
            drop = state.drop_after.pop(path, None) if send_body else None
        if stall:
            time.sleep(stall)
        if fail:
            extra = {"Retry-After": state.retry_after[path]} if path in state.retry_after else {}
            return self.send_plain(503, b"", extra, send_body)
        local = (state.root / path.lstrip("/")).resolve()
        if state.root.resolve() not in (local, *local.parents) or path in state.missing or not local.exists():
            return self.send_plain(404, b"<html>Not Found</html>", {"Content-Type": "text/html"}, send_body)
        if local.is_dir():
            if not path.endswith("/"):
                return self.send_plain(301, b"", {"Location": path + "/"}, send_body)
            page = apache_index(local, path)
            return self.send_plain(200, page, {"Content-Type": "text/html;charset=UTF-8"}, send_body)
        data = local.read_bytes()
        size = len(data)
        status, start = 200, 0
        headers = {"Content-Type": "application/x-gzip", "Accept-Ranges": "bytes",
                   "Last-Modified": formatdate(local.stat().st_mtime, usegmt=True)}
        requested = self.headers.get("Range")
        if requested and path not in state.ignore_range:
            first = int(requested.split("=", 1)[1].split("-", 1)[0])
            if first >= size:
                return self.send_plain(416, b"", {"Content-Range": f"bytes */{size}"}, send_body)
            status, start = 206, first
            headers["Content-Range"] = f"bytes {first}-{size - 1}/{size}"
        body = data[start:]
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not send_body:
            return
        if drop is not None:  # announce the whole body, send part of it, hang up
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that timed out and left: not the test's business


@pytest.fixture
def ncbi(tmp_path):
    root = tmp_path / "mirror"
    contents = build_mirror(root)
    state = FakeNCBI(root)
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    state.contents = contents
    yield state
    server.shutdown()
    server.server_close()


class Recorder:
    """Stands in for time.sleep and say: records instead of waiting or printing."""

    def __init__(self):
        self.sleeps: list[float] = []
        self.messages: list[str] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def say(self, message: str) -> None:
        self.messages.append(message)


def run(files, destination, recorder=None, **kwargs) -> DownloadReport:
    recorder = recorder or Recorder()
    return download_all(files, destination, sleep=recorder.sleep, say=recorder.say, **kwargs)


def remote(ncbi, collection: str, name: str) -> RemoteFile:
    if collection in PMC_DIRS:  # no longer a collection to list: the file, as a mirror without checksums serves it
        return RemoteFile(url=f"{ncbi.base}/{PMC_DIRS[collection]}/{name}", name=name, collection=collection, md5_url=None)
    return next(f for f in list_remote(ncbi.base, [collection]) if f.name == name)


# --- listing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("collection", ALL)
def test_list_each_collection(ncbi, collection):
    files = list_remote(ncbi.base, [collection])
    assert [f.name for f in files] == {"baseline": BASELINE, "updatefiles": UPDATES}[collection]  # no README, .md5
    for f in files:
        assert f.collection == collection
        assert f.url == f"{ncbi.base}/pubmed/{collection}/{f.name}"
        assert f.md5_url == f.url + ".md5"


def test_list_several_collections_in_order_and_errors(ncbi):
    files = list_remote(ncbi.base + "/", ["updatefiles", "baseline", "updatefiles"])
    assert [f.name for f in files] == UPDATES + BASELINE
    # The PMC FTP packages are gone (August 2026): naming one says where the papers are now.
    with pytest.raises(ValueError, match=r"removed the PMC FTP packages \(oa_comm, oa_other\).*--collections pmc"):
        list_remote(ncbi.base, ["baseline", "oa_comm", "oa_other"])
    with pytest.raises(ValueError, match="unknown collection"):
        list_remote(ncbi.base, ["baseline", "medline"])
    ncbi.missing.update({"/pubmed/baseline/", "/pubmed/baseline"})
    with pytest.raises(DownloadError, match="HTTP 404"):
        list_remote(ncbi.base, ["baseline"])


def test_listing_retries_a_503(ncbi):
    ncbi.unavailable["/pubmed/updatefiles/"] = 1
    ncbi.retry_after["/pubmed/updatefiles/"] = "0"  # honoured: no real wait
    assert [f.name for f in list_remote(ncbi.base, ["updatefiles"])] == UPDATES


def test_parse_listing_keeps_only_entries_of_the_directory():
    page = b"""<html><body><pre><a href="?C=N;O=D">Name</a> <a href="/pubmed/">Parent Directory</a>
    <a href="sub/">sub/</a> <a href="https://elsewhere.example/x.xml.gz">x</a>
    <a href="a%20b.xml.gz">a b.xml.gz</a> <a href="pubmed25n0001.xml.gz">pubmed25n0001.xml.gz</a>
    <a href="/pubmed/baseline/pubmed25n0002.xml.gz">abs</a> <a href="pubmed25n0001.xml.gz">again</a>
    <a>no href</a></pre></body></html>"""
    names = parse_listing(page, "https://ftp.ncbi.nlm.nih.gov/pubmed/baseline/")
    assert names == ["a b.xml.gz", "pubmed25n0001.xml.gz", "pubmed25n0002.xml.gz"]
    assert parse_listing(b"", "https://ftp.ncbi.nlm.nih.gov/pubmed/baseline/") == []


def test_collection_patterns():
    assert set(COLLECTIONS) == {"baseline", "updatefiles"}
    assert COLLECTIONS["updatefiles"].pattern.fullmatch("pubmed26n1335.xml.gz")
    assert not COLLECTIONS["baseline"].pattern.fullmatch("pubmed25n0001.xml.gz.md5")


def test_parse_md5_formats():
    digest = "0123456789abcdef0123456789ABCDEF"
    assert parse_md5(f"MD5(pubmed25n0001.xml.gz)= {digest}\n", "pubmed25n0001.xml.gz") == digest.lower()
    assert parse_md5(f"{digest}  pubmed25n0001.xml.gz\n", "pubmed25n0001.xml.gz") == digest.lower()
    assert parse_md5(f"{digest} *dir/pubmed25n0001.xml.gz", "pubmed25n0001.xml.gz") == digest.lower()
    assert parse_md5(f"{digest}\n", "pubmed25n0001.xml.gz") == digest.lower()
    listing = f"{'f' * 32}  other.xml.gz\n{digest}  pubmed25n0001.xml.gz\n"
    assert parse_md5(listing, "pubmed25n0001.xml.gz") == digest.lower()
    with pytest.raises(ValueError, match="not pubmed25n0001"):
        parse_md5(f"MD5(pubmed25n0009.xml.gz)= {digest}", "pubmed25n0001.xml.gz")
    with pytest.raises(ValueError, match="no MD5"):
        parse_md5("<html>Not Found</html>", "pubmed25n0001.xml.gz")


# --- downloading ---------------------------------------------------------------------------------

def test_full_download_verifies_then_rerun_skips_without_requests(ncbi, tmp_path):
    files = list_remote(ncbi.base, ALL)
    destination = tmp_path / "data"
    progress: dict[str, tuple[int, int]] = {}
    report = run(files, destination, progress=lambda name, done, total: progress.__setitem__(name, (done, total)))
    names = [f.name for f in files]
    assert report.downloaded == names and report.skipped == [] and report.failed == [] and report.ok
    for f in files:
        target = destination / f.collection / f.name
        assert target.read_bytes() == ncbi.contents[f.name]
        assert progress[f.name] == (len(ncbi.contents[f.name]),) * 2
        record = json.loads((destination / f.collection / f"{f.name}.verified").read_text())
        assert record["md5"] == md5_of(ncbi.contents[f.name]) and record["size"] == len(ncbi.contents[f.name])
        assert record["verified_by"] == ("md5" if f.md5_url else "size")
    assert not list(destination.rglob("*.part")) and not list(destination.rglob("*.tmp"))
    assert all(ncbi.gets(name) == [None] for name in names)  # one plain GET each, no retries

    ncbi.clear_log()
    report = run(files, destination)
    assert report.skipped == names and report.downloaded == [] and report.failed == []
    assert ncbi.log == []  # no data files, not even checksums: the markers are trusted


def test_resume_after_a_dropped_connection_fetches_only_the_rest(ncbi, tmp_path):
    name = BASELINE[0]
    ncbi.drop_after[f"/pubmed/baseline/{name}"] = 20_000
    recorder = Recorder()
    report = run([remote(ncbi, "baseline", name)], tmp_path, recorder)
    assert report.downloaded == [name]
    assert ncbi.gets(name) == [None, "bytes=20000-"]
    assert (tmp_path / "baseline" / name).read_bytes() == ncbi.contents[name]
    assert any("connection lost after 20000 bytes" in m for m in recorder.messages)
    # The attempt made progress: not counted, so no backoff before resuming.
    assert recorder.sleeps == [] and any("resuming at byte 20000" in m for m in recorder.messages)


def test_resume_a_part_left_by_an_earlier_run(ncbi, tmp_path):
    name = PMC["oa_comm"][1]
    folder = tmp_path / "oa_comm"
    folder.mkdir()
    (folder / f"{name}.part").write_bytes(ncbi.contents[name][:5000])
    report = run([remote(ncbi, "oa_comm", name)], tmp_path)
    assert report.downloaded == [name]
    assert ncbi.gets(name) == ["bytes=5000-"]
    assert (folder / name).read_bytes() == ncbi.contents[name]
    assert json.loads((folder / f"{name}.verified").read_text())["md5"] == md5_of(ncbi.contents[name])


def test_a_file_without_md5_resumes_and_is_verified_by_size(ncbi, tmp_path):
    # A mirror that lists no checksum beside a file (here a PMC package of the kind NCBI served until 2026).
    name = PMC["oa_noncomm"][0]
    ncbi.drop_after[f"/{PMC_DIRS['oa_noncomm']}/{name}"] = 1000
    report = run([remote(ncbi, "oa_noncomm", name)], tmp_path)
    assert report.downloaded == [name] and ncbi.gets(name) == [None, "bytes=1000-"]
    assert not any(path.endswith(".md5") for _, path, _ in ncbi.log)
    with tarfile.open(tmp_path / "oa_noncomm" / name) as tar:
        assert len(tar.getnames()) == 3
    assert json.loads((tmp_path / "oa_noncomm" / f"{name}.verified").read_text())["verified_by"] == "size"


def test_retry_on_503_honours_retry_after(ncbi, tmp_path):
    name = UPDATES[0]
    ncbi.unavailable[f"/pubmed/updatefiles/{name}"] = 2
    ncbi.retry_after[f"/pubmed/updatefiles/{name}"] = "7"
    recorder = Recorder()
    report = run([remote(ncbi, "updatefiles", name)], tmp_path, recorder)
    assert report.downloaded == [name] and recorder.sleeps == [7.0, 7.0]
    assert ncbi.gets(name) == [None, None, None]


def test_retry_after_as_http_date_and_beyond_the_limit(ncbi, tmp_path):
    name, other = BASELINE
    ncbi.unavailable[f"/pubmed/baseline/{name}"] = 1
    ncbi.retry_after[f"/pubmed/baseline/{name}"] = formatdate(time.time() + 30, usegmt=True)
    ncbi.unavailable[f"/pubmed/baseline/{other}"] = 1
    ncbi.retry_after[f"/pubmed/baseline/{other}"] = "86400"  # come back tomorrow: not a retry
    recorder = Recorder()
    report = run([remote(ncbi, "baseline", name), remote(ncbi, "baseline", other)], tmp_path, recorder)
    assert report.downloaded == [name] and len(recorder.sleeps) == 1 and 25 <= recorder.sleeps[0] <= 30
    assert report.failed == [(other, "HTTP 503: Retry-After '86400' exceeds max_retry_after (600s)")]
    assert ncbi.gets(name) == [None, None] and ncbi.gets(other) == [None]


def test_backoff_is_exponential_with_jitter_and_gives_up(ncbi, tmp_path):
    name, other = BASELINE
    ncbi.unavailable[f"/pubmed/baseline/{name}"] = 100
    recorder = Recorder()
    files = [remote(ncbi, "baseline", name), remote(ncbi, "baseline", other)]
    report = run(files, tmp_path, recorder, retries=3, backoff=2.0)
    assert [f.name for f in report.failed] == [name] and report.downloaded == [other]
    assert report.failed[0].reason == "gave up after 4 attempts: HTTP 503" and len(ncbi.gets(name)) == 4
    # urllib3's backoff: the first retry at once, then backoff * 2**(n-1) plus up to 0.5 s of jitter
    assert len(recorder.sleeps) == 2
    assert 4.0 <= recorder.sleeps[0] <= 4.5 and 8.0 <= recorder.sleeps[1] <= 8.5
    assert not (tmp_path / "baseline" / name).exists()


def test_wrong_md5_and_404_fail_while_the_others_download(ncbi, tmp_path):
    bad_md5, missing = BASELINE
    (ncbi.root / "pubmed" / "baseline" / f"{bad_md5}.md5").write_text(f"MD5({bad_md5})= {'0' * 32}\n")
    ncbi.missing.add(f"/pubmed/baseline/{missing}")
    recorder = Recorder()
    files = list_remote(ncbi.base, ["baseline", "updatefiles"])
    report = run(files, tmp_path, recorder)
    failed = dict(report.failed)
    assert set(failed) == {bad_md5, missing}
    assert "MD5 mismatch" in failed[bad_md5] and "0" * 32 in failed[bad_md5] and md5_of(ncbi.contents[bad_md5]) in failed[bad_md5]
    assert "HTTP 404" in failed[missing]
    assert report.downloaded == [f.name for f in files if f.name not in failed]
    assert ncbi.gets(bad_md5) == [None, None]  # fetched once more from zero, then given up
    assert ncbi.gets(missing) == [None]  # a 404 is not retried
    assert recorder.sleeps == []
    leftovers = {p.name for p in (tmp_path / "baseline").iterdir()}
    assert not any(name.startswith((bad_md5, missing)) for name in leftovers)
    assert any(f"{bad_md5}: FAILED" in m for m in recorder.messages)


def test_server_ignoring_range_restarts_from_zero(ncbi, tmp_path):
    name = BASELINE[1]
    path = f"/pubmed/baseline/{name}"
    ncbi.ignore_range.add(path)
    folder = tmp_path / "baseline"
    folder.mkdir()
    (folder / f"{name}.part").write_bytes(b"garbage that must not survive")
    recorder = Recorder()
    report = run([remote(ncbi, "baseline", name)], tmp_path, recorder)
    assert report.downloaded == [name] and ncbi.gets(name) == [f"bytes={len(b'garbage that must not survive')}-"]
    assert (folder / name).read_bytes() == ncbi.contents[name]
    assert any("ignored the range" in m for m in recorder.messages)


def test_complete_part_and_unmarked_file_are_verified_without_downloading(ncbi, tmp_path):
    done_part, in_place = BASELINE
    folder = tmp_path / "baseline"
    folder.mkdir()
    (folder / f"{done_part}.part").write_bytes(ncbi.contents[done_part])  # killed before the rename
    (folder / in_place).write_bytes(ncbi.contents[in_place])  # copied in by hand: no marker
    report = run(list_remote(ncbi.base, ["baseline"]), tmp_path)
    assert report.downloaded == [done_part] and report.skipped == [in_place]
    size = len(ncbi.contents[done_part])
    assert ncbi.gets(done_part) == [f"bytes={size}-"]  # answered 416: nothing more to fetch
    assert (folder / done_part).read_bytes() == ncbi.contents[done_part]
    assert (folder / f"{in_place}.verified").is_file()


def test_corrupt_file_in_place_is_replaced(ncbi, tmp_path):
    name = UPDATES[0]
    folder = tmp_path / "updatefiles"
    folder.mkdir()
    (folder / name).write_bytes(b"x" * len(ncbi.contents[name]))  # right size, wrong bytes
    (folder / f"{name}.verified").write_text("{not json")
    recorder = Recorder()
    report = run([remote(ncbi, "updatefiles", name)], tmp_path, recorder)
    assert report.downloaded == [name] and (folder / name).read_bytes() == ncbi.contents[name]
    assert ncbi.gets(name) == [f"bytes={len(ncbi.contents[name])}-", None]
    assert any("MD5 mismatch" in m for m in recorder.messages)


def test_read_timeout_is_retried(ncbi, tmp_path):
    name = UPDATES[0]
    ncbi.stall[f"/pubmed/updatefiles/{name}"] = 1.0
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=2.0, read=0.2))
    recorder = Recorder()
    report = run([remote(ncbi, "updatefiles", name)], tmp_path, recorder, http=http)
    assert report.downloaded == [name] and ncbi.gets(name) == [None, None]
    assert any("timed out" in m.lower() and "retrying in 0.0 s" in m for m in recorder.messages)


def test_unreachable_server_and_unsafe_names_are_reported(tmp_path):
    unreachable = RemoteFile("http://127.0.0.1:9/pubmed/baseline/pubmed25n0001.xml.gz", "pubmed25n0001.xml.gz",
                             "baseline", None)
    unsafe = RemoteFile("http://127.0.0.1:9/x", "../escape.xml.gz", "baseline", None)
    recorder = Recorder()
    report = run([unreachable, unsafe], tmp_path, recorder, retries=2)
    failed = dict(report.failed)
    assert failed["pubmed25n0001.xml.gz"].startswith("gave up after 3 attempts: NewConnectionError")
    assert "Connection refused" in failed["pubmed25n0001.xml.gz"]
    assert "unsafe file name" in failed["../escape.xml.gz"]
    assert len(recorder.sleeps) == 1  # the first retry is at once
    assert not (tmp_path.parent / "escape.xml.gz").exists()


def test_cli_downloads_then_the_stage_reads_the_files(ncbi, tmp_path, capsys, spark):
    from gap_replay.cli import main

    out = tmp_path / "ncbi"
    argv = ["pubmed", "download", "--output", str(out), "--base-url", ncbi.base, "--collections", "baseline",
            "--limit", "1"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == "1 downloaded, 0 already complete, 0 failed"
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == "0 downloaded, 1 already complete, 0 failed"
    assert main(["pubmed", "--input", str(out), "--output", str(tmp_path / "stage")]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:3] == ["pubmed", "40", "40"]


def test_cli_reports_failures_with_exit_1(ncbi, tmp_path, capsys):
    from gap_replay.cli import main

    ncbi.missing.add(f"/pubmed/baseline/{BASELINE[0]}")
    code = main(["pubmed", "download", "--output", str(tmp_path / "o"), "--base-url", ncbi.base,
                 "--collections", "baseline", "--retries", "1"])
    assert code == 1 and "file(s) failed" in capsys.readouterr().err


def test_download_to_object_storage_stages_locally_then_copies_up(ncbi, bucket, tmp_path, capsys, monkeypatch):
    """An s3:// destination (moto's server on 127.0.0.1): files are downloaded and verified in a local
    staging tree, copied up with their marker last, and a rerun finds them complete on the bucket."""
    from gap_replay.cli import main
    from gap_replay.core import storage

    monkeypatch.setenv("GAP_REPLAY_CACHE", str(tmp_path / "cache"))
    out = f"{bucket}/ncbi"
    argv = ["pubmed", "download", "--output", out, "--base-url", ncbi.base, "--collections", "baseline", "--limit", "1"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == "1 downloaded, 0 already complete, 0 failed"
    name = BASELINE[0]
    uploaded = storage.join(out, "baseline", name)
    assert storage.size(uploaded) == len(ncbi.contents[name])
    assert json.loads(storage.read_text(uploaded + ".verified"))["verified_by"] == "md5"
    assert not [path for path in (tmp_path / "cache").rglob("*") if path.is_file()]  # the staging copy is freed
    ncbi.clear_log()
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == "0 downloaded, 1 already complete, 0 failed"
    assert ncbi.gets(name) == []  # nothing fetched again
