"""The stand-in PMC Cloud bucket (pmc_bucket.py) has the layout of ../shared/PMC_CLOUD.md, seen as a client sees it:
plain anonymous HTTP GETs (urllib3, no signing) of ``{url}/{key}`` and ``{url}/?list-type=2&...`` on moto's server."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import urllib3

from tests.pubmed_ingest.pmc_bucket import JSON_FIELDS, StandInBucket, Version, md5_hex, shared_versions

S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"
HTTP = urllib3.PoolManager(retries=False, timeout=10)
XML = b'<?xml version="1.0"?>\n<article><front><article-meta><title-group><article-title>%s</article-title>' \
      b"</title-group></article-meta></front><body><p>Body of %s.</p></body></article>\n"


def article(name: str) -> bytes:
    return XML % (name.encode(), name.encode())


@pytest.fixture
def pmc(s3_server):
    with StandInBucket(s3_server["AWS_ENDPOINT_URL"], f"pmc-oa-opendata-{uuid.uuid4().hex[:8]}") as bucket:
        yield bucket


@pytest.fixture(scope="module")
def shared(shared_data) -> list[Version]:
    return shared_versions(shared_data / "pmc")


def get(url: str, method: str = "GET") -> urllib3.BaseHTTPResponse:
    return HTTP.request(method, url, headers={})  # no Authorization: anonymous, as --no-sign-request


def list_v2(base: str, prefix: str, delimiter: str | None = "/", slash: bool = True) -> ET.Element:
    query = f"list-type=2&prefix={prefix}" + (f"&delimiter={delimiter}" if delimiter else "")
    answer = get(f"{base}{'/' if slash else ''}?{query}")
    assert answer.status == 200, answer.data
    assert answer.headers["Content-Type"] == "application/xml"
    return ET.fromstring(answer.data)


def common_prefixes(listing: ET.Element) -> list[str]:
    return [prefix.findtext(f"{S3}Prefix") for prefix in listing.findall(f"{S3}CommonPrefixes")]


def listed_keys(listing: ET.Element) -> list[str]:
    return [item.findtext(f"{S3}Key") for item in listing.findall(f"{S3}Contents")]


# --- one version ---------------------------------------------------------------------------------

def test_version_files_are_served_anonymously_with_md5_etags(pmc, shared):
    version = shared[0]
    pmc.put_version(version)
    assert pmc.url.endswith(f"/{pmc.bucket}") and pmc.url.startswith("http://127.0.0.1:")

    xml = get(f"{pmc.url}/{version.prefix}/{version.prefix}.xml")
    assert xml.status == 200
    assert xml.data == version.xml
    assert xml.headers["ETag"] == f'"{md5_hex(version.xml)}"'  # quoted hex MD5, as S3's single-part uploads
    assert xml.headers["Content-Type"] == "application/xml"
    assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT", xml.headers["Last-Modified"])

    text = get(f"{pmc.url}/{version.txt_key}")
    assert text.status == 200 and text.headers["ETag"] == f'"{md5_hex(text.data)}"'
    assert version.title.split()[0] in text.data.decode("utf-8")

    head = get(f"{pmc.url}/{version.xml_key}", "HEAD")
    assert head.status == 200 and head.headers["ETag"] == xml.headers["ETag"]
    assert int(head.headers["Content-Length"]) == len(version.xml)

    ranged = HTTP.request("GET", f"{pmc.url}/{version.xml_key}", headers={"Range": "bytes=0-9"})
    assert ranged.status == 206 and ranged.data == version.xml[:10]


def test_metadata_json_has_the_documented_fields(pmc, shared):
    version = shared[0]
    pmc.put_version(version)
    in_folder = get(f"{pmc.url}/{version.prefix}/{version.prefix}.json")
    in_metadata = get(f"{pmc.url}/metadata/{version.prefix}.json")
    assert in_folder.status == in_metadata.status == 200
    assert in_folder.data == in_metadata.data
    assert in_folder.headers["ETag"] == in_metadata.headers["ETag"] == f'"{md5_hex(in_folder.data)}"'

    document = json.loads(in_folder.data)
    assert tuple(document) == JSON_FIELDS
    assert document["pmcid"] == version.pmcid == "PMC3166277"  # without the version
    assert document["version"] == 1 and isinstance(document["version"], int)
    assert document["pmid"] == 21810267
    assert document["doi"] == "10.1186/1471-2180-11-174"
    assert document["mid"] is None
    assert document["title"].startswith("Factors influencing lysis time stochasticity")
    assert "doi: 10.1186/1471-2180-11-174" in document["citation"]
    assert (document["is_pmc_openaccess"], document["is_manuscript"], document["is_historical_ocr"],
            document["is_retracted"]) == (True, False, False, False)
    assert document["license_code"] == "CC BY"
    assert document["pdf_url"] is None and document["media_urls"] == []

    for field, suffix in (("xml_url", ".xml"), ("text_url", ".txt")):
        match = re.fullmatch(rf"s3://{pmc.bucket}/(PMC3166277\.1/PMC3166277\.1\{suffix})\?md5=([0-9a-f]{{32}})",
                             document[field])
        assert match, document[field]
        body = get(f"{pmc.url}/{match.group(1)}").data
        assert hashlib.md5(body).hexdigest() == match.group(2)


def test_faults_missing_xml_and_wrong_md5(pmc):
    missing = Version("PMC100", 1, article("missing"), missing_xml=True)
    wrong = Version("PMC200", 1, article("wrong"), wrong_md5=True)
    pmc.put_version(missing)
    pmc.put_version(wrong)

    answer = get(f"{pmc.url}/{missing.xml_key}")
    assert answer.status == 404 and b"<Code>NoSuchKey</Code>" in answer.data
    document = json.loads(get(f"{pmc.url}/{missing.metadata_key}").data)
    assert document["xml_url"] == f"s3://{pmc.bucket}/PMC100.1/PMC100.1.xml?md5={md5_hex(missing.xml)}"
    assert listed_keys(list_v2(pmc.url, "PMC100.1/", None)) == ["PMC100.1/PMC100.1.json", "PMC100.1/PMC100.1.txt"]

    answer = get(f"{pmc.url}/{wrong.xml_key}")
    assert answer.status == 200 and answer.data == wrong.xml
    claimed = json.loads(get(f"{pmc.url}/{wrong.json_key}").data)["xml_url"].split("?md5=")[1]
    assert claimed != md5_hex(answer.data) and answer.headers["ETag"] == f'"{md5_hex(answer.data)}"'

    # a re-put that loses the XML removes the object left from before
    pmc.put_version(Version("PMC200", 1, article("wrong"), missing_xml=True))
    assert get(f"{pmc.url}/{wrong.xml_key}").status == 404


def test_listing_versions_of_one_pmcid(pmc):
    for pmcid, number in (("PMC123", 1), ("PMC123", 2), ("PMC1234", 1), ("PMC12", 1)):
        pmc.put_version(Version(pmcid, number, article(f"{pmcid}.{number}")))
    for slash in (True, False):  # {url}/?list-type=2... and {url}?list-type=2...
        listing = list_v2(pmc.url, "PMC123.", slash=slash)
        assert common_prefixes(listing) == ["PMC123.1/", "PMC123.2/"]
        assert listed_keys(listing) == []
        assert listing.findtext(f"{S3}KeyCount") == "2" and listing.findtext(f"{S3}IsTruncated") == "false"
    inside = list_v2(pmc.url, "PMC123.2/")
    assert listed_keys(inside) == ["PMC123.2/PMC123.2.json", "PMC123.2/PMC123.2.txt", "PMC123.2/PMC123.2.xml"]
    top = common_prefixes(list_v2(pmc.url, ""))
    assert top == ["PMC12.1/", "PMC123.1/", "PMC123.2/", "PMC1234.1/", "metadata/"]


def test_remove_version_deletes_every_object(pmc):
    keep, gone = Version("PMC5", 1, article("keep")), Version("PMC5", 2, article("gone"))
    pmc.put_version(keep)
    pmc.put_version(gone)
    pmc.remove_version("PMC5", 2)
    assert pmc.keys() == ["PMC5.1/PMC5.1.json", "PMC5.1/PMC5.1.txt", "PMC5.1/PMC5.1.xml", "metadata/PMC5.1.json"]
    assert get(f"{pmc.url}/metadata/PMC5.2.json").status == 404
    assert common_prefixes(list_v2(pmc.url, "PMC5.")) == ["PMC5.1/"]


def test_an_update_changes_the_json_etag(pmc):
    first = Version("PMC7", 1, article("first"))
    pmc.put_version(first)
    before = get(f"{pmc.url}/{first.metadata_key}").headers["ETag"]
    pmc.put_version(Version("PMC7", 1, article("first, corrected")))
    after = get(f"{pmc.url}/{first.metadata_key}").headers["ETag"]
    assert before != after
    pmc.put_version(Version("PMC7", 1, article("first, corrected"), is_retracted=True))
    assert get(f"{pmc.url}/{first.metadata_key}").headers["ETag"] != after


def test_bucket_is_created_once_and_reused(s3_server, pmc):
    pmc.put_version(Version("PMC1", 1, article("one")))
    again = StandInBucket(s3_server["AWS_ENDPOINT_URL"], pmc.bucket)
    assert again.keys("metadata/") == ["metadata/PMC1.1.json"]


# --- inventory -----------------------------------------------------------------------------------

def read_inventory(base: str, manifest_key: str) -> tuple[dict, list[dict], list[bytes]]:
    """What a client does: manifest, then each part (checked against size and MD5), columns from fileSchema."""
    manifest = json.loads(get(f"{base}/{manifest_key}").data)
    columns = [name.strip() for name in manifest["fileSchema"].split(",")]
    rows, raw = [], []
    for part in manifest["files"]:
        data = get(f"{base}/{part['key']}").data
        assert len(data) == part["size"] and md5_hex(data) == part["MD5checksum"]
        text = gzip.decompress(data)
        raw.append(text)
        rows += [dict(zip(columns, row)) for row in csv.reader(io.StringIO(text.decode("utf-8")))]
    return manifest, rows, raw


def test_inventory_lists_the_metadata_json(pmc, shared):
    pmc.put_versions(shared)
    manifest_key = pmc.write_inventory("2026-11-30T01-00Z", parts=3)
    assert manifest_key == f"{StandInBucket.INVENTORY}/2026-11-30T01-00Z/manifest.json"

    manifest, rows, raw = read_inventory(pmc.url, manifest_key)
    assert manifest["sourceBucket"] == pmc.bucket
    assert manifest["destinationBucket"] == f"arn:aws:s3:::{pmc.bucket}"
    assert manifest["version"] == "2016-11-30"
    assert manifest["creationTimestamp"] == "1796000400000"  # 2026-11-30T01:00Z in ms
    assert manifest["fileFormat"] == "CSV" and manifest["fileSchema"] == "Bucket, Key, LastModifiedDate, ETag"
    assert len(manifest["files"]) == 3
    for part in manifest["files"]:
        assert re.fullmatch(rf"{StandInBucket.INVENTORY}/data/[0-9a-f-]{{36}}\.csv\.gz", part["key"])
        assert set(part) == {"key", "size", "MD5checksum"}
    checksum = get(f"{pmc.url}/{StandInBucket.INVENTORY}/2026-11-30T01-00Z/manifest.checksum").data.decode()
    assert checksum == md5_hex(get(f"{pmc.url}/{manifest_key}").data)

    assert sorted(row["Key"] for row in rows) == sorted(version.metadata_key for version in shared)
    assert len(rows) == 11 and all(raw)
    for row in rows:
        assert row["Bucket"] == pmc.bucket
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", row["LastModifiedDate"])
        assert f'"{row["ETag"]}"' == get(f"{pmc.url}/{row['Key']}").headers["ETag"]  # unquoted MD5 of the JSON
    first_line = raw[0].decode().splitlines()[0]
    assert re.fullmatch(r'"[^"]+","metadata/PMC\d+\.1\.json","[^"]+","[0-9a-f]{32}"', first_line)


def test_inventory_snapshots_list_as_common_prefixes_beside_data_and_hive(pmc):
    pmc.put_version(Version("PMC1", 1, article("one")))
    pmc.put_version(Version("PMC2", 1, article("two")))
    first = pmc.write_inventory("2026-11-29T01-00Z", parts=2)
    pmc.remove_version("PMC1", 1)
    pmc.put_version(Version("PMC3", 1, article("three")))
    second = pmc.write_inventory("2026-11-30T01-00Z", parts=3)  # more parts than rows: an empty part too

    listing = list_v2(pmc.url, f"{StandInBucket.INVENTORY}/")
    assert common_prefixes(listing) == [f"{StandInBucket.INVENTORY}/{name}/" for name in
                                        ("2026-11-29T01-00Z", "2026-11-30T01-00Z", "data", "hive")]
    snapshot = list_v2(pmc.url, f"{StandInBucket.INVENTORY}/2026-11-30T01-00Z/")
    assert listed_keys(snapshot) == [f"{StandInBucket.INVENTORY}/2026-11-30T01-00Z/manifest.{suffix}"
                                     for suffix in ("checksum", "json")]
    hive = listed_keys(list_v2(pmc.url, f"{StandInBucket.INVENTORY}/hive/", None))
    assert hive and all(key.endswith("/symlink.txt") for key in hive)

    keys = lambda manifest_key: sorted(row["Key"] for row in read_inventory(pmc.url, manifest_key)[1])  # noqa: E731
    assert keys(first) == ["metadata/PMC1.1.json", "metadata/PMC2.1.json"]
    assert keys(second) == ["metadata/PMC2.1.json", "metadata/PMC3.1.json"]
    with pytest.raises(ValueError):
        pmc.write_inventory("2026-11-30")


# --- counting through the proxy ------------------------------------------------------------------

def test_proxy_counts_xml_gets(pmc):
    versions = [Version(f"PMC{n}", 1, article(str(n))) for n in (1, 2, 3)]
    pmc.put_versions(versions)
    assert pmc.get_count() == 0
    base = pmc.proxy_url
    assert base.startswith("http://127.0.0.1:") and base.endswith(f"/{pmc.bucket}") and base != pmc.url

    for version in versions[:2]:
        answer = get(f"{base}/{version.xml_key}")
        assert answer.status == 200 and answer.data == version.xml
        assert answer.headers["ETag"] == f'"{md5_hex(version.xml)}"'
    get(f"{base}/{versions[0].xml_key}")
    get(f"{base}/{versions[2].metadata_key}")
    get(f"{base}/{versions[2].xml_key}", "HEAD")
    assert common_prefixes(list_v2(base, "PMC2.")) == ["PMC2.1/"]
    get(f"{pmc.url}/{versions[2].xml_key}")  # straight to moto: not seen

    assert pmc.get_count() == 3
    assert pmc.get_count(".json") == 1
    assert pmc.get_counts() == {"PMC1.1/PMC1.1.xml": 2, "PMC2.1/PMC2.1.xml": 1, "metadata/PMC3.1.json": 1}
    assert ("HEAD", f"/{pmc.bucket}/PMC3.1/PMC3.1.xml", 200) in pmc.requests
    assert get(f"{base}/PMC9.1/PMC9.1.xml").status == 404
    assert pmc.get_count() == 4  # answered GETs, a 404 included

    pmc.reset_count()
    assert pmc.get_count() == 0 and pmc.requests == []
    get(f"{base}/{versions[2].xml_key}")
    assert pmc.get_counts() == {"PMC3.1/PMC3.1.xml": 1}


# --- the real articles ---------------------------------------------------------------------------

def test_shared_versions_read_the_article_meta(shared_data: Path, shared):
    assert len(shared) == 11
    assert [version.source for version in shared] == sorted(
        path.name for path in (shared_data / "pmc").iterdir() if path.suffix in (".xml", ".nxml"))
    assert len({version.pmcid for version in shared}) == 11
    by_source = {version.source: version for version in shared}
    pone = by_source["pone.0000217.nxml"]
    assert (pone.pmcid, pone.pmid, pone.version) == ("PMC1790863", 17299597, 1)
    assert pone.doi == "10.1371/journal.pone.0000217"
    assert pone.title == "Quantifying Organismal Complexity using a Population Genetic Approach"
    assert pone.xml == (shared_data / "pmc" / "pone.0000217.nxml").read_bytes()
    elife = by_source["elife00007.xml"]
    assert elife.pmid is None and elife.doi == "10.7554/eLife.00007"
    assert re.fullmatch(r"PMC9\d{7}", elife.pmcid)
    assert [version.pmcid for version in shared_versions(shared_data / "pmc")] == [v.pmcid for v in shared]
    licences = {version.source: version.license_code for version in shared_versions(shared_data / "pmc", True)}
    assert licences["mds526.nxml"] == "CC BY-NC" and licences["elife02935.xml"] == "CC0"
    assert licences["6605965a.nxml"] is None
