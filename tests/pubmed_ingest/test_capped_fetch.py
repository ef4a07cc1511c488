"""A size-capped fetch is final (issue 24): the NCBI downloader's small files (a listing, a checksum) and the
PMC Cloud Service's objects (metadata JSON, article XML) over their caps, trickled by a local server that then
goes silent, on a loaded machine. Each is asked for once and ends as its module's too-large outcome: a reader
that waited for a fixed-size block, or let urllib3 inflate a block at a time, would meet the silence first, a
read timeout that the client retries (fetching the bomb again).

The server is the crawler tests' scripted one (tests/guidelines_scraper/conftest.py), which can trickle a body
and stall; for the PMC service it stands in for the whole bucket (listing, inventory, objects) at ``/pmc``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections import Counter
from urllib.parse import urlencode

import pyarrow.parquet as pq
import pytest
import urllib3

from gap_replay.core.http import HttpClient
from gap_replay.pubmed_ingest import download, pmc_cloud
from gap_replay.pubmed_ingest.download import DownloadError, RemoteFile, download_all, list_remote
from tests.guidelines_scraper.conftest import Reply

# A bomb: 5 MB of zeros, gzipped (~5 KB), sent 256 bytes at a time; after 4 KB (which inflate to some 4 MB, past
# every cap below) the server goes silent until the client hangs up.
BOMB = gzip.compress(b"\0" * 5_000_000)
THROTTLED = dict(piece=256, pause=0.002, stall_after=4096)
GZIP = {"Content-Type": "application/octet-stream", "Content-Encoding": "gzip"}


def plain(size: int, stall_after: int) -> Reply:
    """`size` bytes of text without a Content-Length, 1 KB at a time, silent after `stall_after` (past the cap)."""
    return Reply(200, b"0123456789abcdef" * (size // 16), {"Content-Type": "text/plain"}, content_length=False,
                 piece=1024, pause=0.001, stall_after=stall_after)


def pool(maxsize: int = 1) -> urllib3.PoolManager:
    """Short timeouts: a read left to stall would time out (and be retried) within the test."""
    return urllib3.PoolManager(maxsize=maxsize, block=True, timeout=urllib3.Timeout(connect=2.0, read=2.0))


# --- the NCBI downloader ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["gzip-bomb", "plain"])
def test_an_over_size_checksum_fails_its_file_once(server, cpu_load, tmp_path, kind):
    name = "pubmed25n0001.xml.gz"
    md5_path = f"/pubmed/baseline/{name}.md5"
    server.route(md5_path, Reply(200, BOMB, GZIP, **THROTTLED) if kind == "gzip-bomb"
                 else plain(200_000, stall_after=70_000))  # the cap: MAX_CHECKSUM_BYTES, 64 KiB
    remote = RemoteFile(url=f"{server.base}/pubmed/baseline/{name}", name=name, collection="baseline",
                        md5_url=f"{server.base}{md5_path}")
    messages, sleeps = [], []
    report = download_all([remote], tmp_path, http=pool(), retries=3, sleep=sleeps.append, say=messages.append)
    assert report.downloaded == [] and [failure.name for failure in report.failed] == [name]
    reason = report.failed[0].reason
    assert reason.startswith(f"{remote.md5_url} is larger than 65536 bytes ("), reason
    assert ("decompressed body exceeds" in reason) == (kind == "gzip-bomb")
    assert server.paths() == [md5_path]  # asked once, and the file itself never
    assert sleeps == [] and not any("retrying" in message for message in messages)
    assert not (tmp_path / "baseline" / name).exists()


@pytest.mark.parametrize("kind", ["gzip-bomb", "plain"])
def test_an_over_size_listing_is_one_request_and_an_error(server, cpu_load, monkeypatch, kind):
    monkeypatch.setattr(download, "MAX_LISTING_BYTES", 100_000)
    server.route("/pubmed/baseline/", Reply(200, BOMB, {**GZIP, "Content-Type": "text/html"}, **THROTTLED)
                 if kind == "gzip-bomb" else plain(300_000, stall_after=120_000))
    url = f"{server.base}/pubmed/baseline/"
    with pytest.raises(DownloadError) as raised:
        list_remote(server.base, ["baseline"], http=pool())
    assert str(raised.value).startswith(f"cannot list {url}: {url} is larger than 100000 bytes ("), raised.value
    assert server.paths() == ["/pubmed/baseline/"]


# --- the PMC Cloud Service -------------------------------------------------------------------------

SNAPSHOT = "2026-11-30T01-00Z"


def article(pmcid: str) -> bytes:
    return (f'<article><front><article-meta><article-id pub-id-type="pmc">{pmcid}</article-id>'
            f"<title-group><article-title>On {pmcid}</article-title></title-group></article-meta></front>"
            f"<body><p>Text of {pmcid}.</p></body></article>").encode()


def metadata(pmcid: str, xml: bytes) -> bytes:
    md5 = hashlib.md5(xml).hexdigest()
    return json.dumps({"pmcid": pmcid, "version": 1, "is_pmc_openaccess": True, "license_code": "CC BY",
                       "xml_url": f"s3://pmc-oa-opendata/{pmcid}.1/{pmcid}.1.xml?md5={md5}"}).encode()


def serve_bucket(server, objects: dict[str, Reply]) -> tuple[str, list[str]]:
    """The bucket at ``<server>/pmc``: its inventory listing `objects`' metadata keys, and `objects`; its
    address, and the paths a sync reads the inventory from (the listing, the manifest, the part)."""
    listing = (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
               f'2006-03-01/"><Name>pmc</Name><CommonPrefixes><Prefix>{pmc_cloud.INVENTORY_PREFIX}{SNAPSHOT}/'
               f"</Prefix></CommonPrefixes><IsTruncated>false</IsTruncated></ListBucketResult>").encode()
    query = urlencode({"list-type": "2", "prefix": pmc_cloud.INVENTORY_PREFIX, "delimiter": "/"})
    inventory = [f"/pmc/?{query}", f"/pmc/{pmc_cloud.INVENTORY_PREFIX}{SNAPSHOT}/manifest.json",
                 f"/pmc/{pmc_cloud.INVENTORY_PREFIX}data/part-0.csv.gz"]
    server.route(inventory[0], Reply(200, listing, {"Content-Type": "application/xml"}))
    rows = io.StringIO()
    csv.writer(rows).writerows(["pmc", key, "2026-11-29T00:00:00.000Z", hashlib.md5(key.encode()).hexdigest()]
                               for key in sorted(objects) if key.startswith("metadata/"))
    part = gzip.compress(rows.getvalue().encode())
    part_key = inventory[2][len("/pmc/"):]
    manifest = {"fileFormat": "CSV", "fileSchema": "Bucket, Key, LastModifiedDate, ETag",
                "files": [{"key": part_key, "MD5checksum": hashlib.md5(part).hexdigest()}]}
    server.route(inventory[1], Reply(200, json.dumps(manifest)))
    server.route(inventory[2], Reply(200, part))
    for key, reply in objects.items():
        server.route(f"/pmc/{key}", reply)
    return f"{server.base}/pmc", inventory


def test_over_size_metadata_and_articles_are_too_large_once(server, cpu_load, monkeypatch, tmp_path):
    monkeypatch.setattr(pmc_cloud, "MAX_JSON_BYTES", 20_000)
    monkeypatch.setattr(pmc_cloud, "MAX_ARTICLE_BYTES", 20_000)
    good, xml_bomb, xml_plain = article("PMC1"), b"\0" * 5_000_000, b"0123456789abcdef" * 12_500
    objects = {
        "metadata/PMC1.1.json": Reply(200, metadata("PMC1", good)), "PMC1.1/PMC1.1.xml": Reply(200, good),
        "metadata/PMC2.1.json": Reply(200, BOMB, GZIP, **THROTTLED),
        "metadata/PMC3.1.json": plain(200_000, stall_after=30_000),
        "metadata/PMC4.1.json": Reply(200, metadata("PMC4", xml_bomb)),
        "PMC4.1/PMC4.1.xml": Reply(200, BOMB, {**GZIP, "Content-Type": "application/xml"}, **THROTTLED),
        "metadata/PMC5.1.json": Reply(200, metadata("PMC5", xml_plain)),
        "PMC5.1/PMC5.1.xml": plain(len(xml_plain), stall_after=30_000),
    }
    pmc_url, inventory = serve_bucket(server, objects)
    client = HttpClient(user_agent="test", retries=3, backoff=0.0, pool=pool(maxsize=4), sleep=lambda _: None)
    report = pmc_cloud.sync_pmc(str(tmp_path), pmc_url=pmc_url, concurrency=4, client=client, say=lambda _: None)

    assert (report.listed, report.packed, report.metadata_fetched) == (5, 1, 3)
    assert report.not_packed == Counter({pmc_cloud.TOO_LARGE: 4})  # each counted once
    assert report.to_dict()["not_packed"] == {"too_large": 4}
    current = json.loads((tmp_path / "pmc" / "state" / "CURRENT.json").read_text())
    rows = {row["key"]: row for row in pq.read_table(tmp_path / "pmc" / current["catalog"]).to_pylist()}
    for number, what in ((2, "metadata/PMC2.1.json"), (3, "metadata/PMC3.1.json"), (4, "PMC4.1/PMC4.1.xml"),
                         (5, "PMC5.1/PMC5.1.xml")):
        row = rows[f"metadata/PMC{number}.1.json"]
        assert row["status"] == pmc_cloud.TOO_LARGE and row["detail"].startswith(
            f"{what} is larger than 20,000 bytes ("), row
        assert ("decompressed body exceeds" in row["detail"]) == (number in (2, 4))
    assert rows["metadata/PMC1.1.json"]["status"] == pmc_cloud.PACKED
    # Every object asked for once: the capped ones were not fetched again, not even the XML whose fetch_article
    # fetches once more on an MD5 mismatch.
    counts = Counter(server.paths())
    assert counts == Counter([*inventory, *(f"/pmc/{key}" for key in objects)]), counts
    assert report.requests == client.requests_made == len(server.paths()) == len(objects) + 3


def test_an_over_size_manifest_stops_the_sync_once(server, cpu_load, monkeypatch, tmp_path):
    monkeypatch.setattr(pmc_cloud, "MAX_LISTING_BYTES", 20_000)
    pmc_url, inventory = serve_bucket(server, {})
    manifest = inventory[1]
    server.route(manifest, Reply(200, BOMB, {**GZIP, "Content-Type": "application/json"}, **THROTTLED))
    client = HttpClient(user_agent="test", retries=3, backoff=0.0, pool=pool(), sleep=lambda _: None)
    with pytest.raises(pmc_cloud.SyncError, match="manifest.json is larger than 20,000 bytes"):
        pmc_cloud.sync_pmc(str(tmp_path), pmc_url=pmc_url, concurrency=1, client=client, say=lambda _: None)
    assert server.paths().count(manifest) == 1 and not (tmp_path / "pmc" / "state" / "CURRENT.json").exists()

