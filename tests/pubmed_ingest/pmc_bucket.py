"""A stand-in of the PMC Cloud Service bucket (`s3://pmc-oa-opendata`) on moto's S3 server on 127.0.0.1.

The layout follows ../shared/PMC_CLOUD.md:

- one prefix per article version, ``PMC<n>.<v>/``, holding ``PMC<n>.<v>.xml`` (JATS), ``PMC<n>.<v>.txt`` (plain
  text) and ``PMC<n>.<v>.json`` (the version's metadata); the same JSON again at ``metadata/PMC<n>.<v>.json``;
- the daily inventory: ``inventory-reports/pmc-oa-opendata/metadata/<snapshot>/manifest.json`` (standard S3
  Inventory manifest) naming headerless gzipped CSV parts at ``.../metadata/data/<uuid>.csv.gz`` that list the
  ``metadata/*.json`` keys, plus a ``hive/`` folder that readers must skip.

Everything is world-readable as on AWS (a public-read bucket policy and public-read object ACLs: moto answers an
anonymous object GET with 403 unless one of them allows it), so a client reaches ``f"{bucket.url}/{key}"`` with plain
unsigned HTTP, and lists with ``f"{bucket.url}/?list-type=2&prefix=...&delimiter=/"``.

moto keeps no count of requests, so :class:`StandInBucket` can also put a small counting HTTP proxy in front of the
server (``proxy_url``): GETs made through it are counted per key (:meth:`StandInBucket.get_count`). Requests made to
``url`` directly are not counted.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import http.client
import io
import json
import re
import threading
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import boto3
from botocore.exceptions import ClientError
from lxml import etree

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
SNAPSHOT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})Z$")
INVENTORY_SCHEMA = "Bucket, Key, LastModifiedDate, ETag"
JSON_FIELDS = (
    "pmcid", "version", "pmid", "doi", "mid", "title", "citation", "is_pmc_openaccess", "is_manuscript",
    "is_historical_ocr", "is_retracted", "license_code", "xml_url", "text_url", "pdf_url", "media_urls",
)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def plain_text(xml: bytes) -> str:
    """Some plain text for ``PMC<n>.<v>.txt``: the XML's text, whitespace collapsed (the raw bytes if not XML)."""
    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True, recover=False))
        text = " ".join(" ".join(root.itertext()).split())
    except etree.XMLSyntaxError:
        text = " ".join(xml.decode("utf-8", "replace").split())
    return text + "\n"


@dataclass
class Version:
    """One article version as the bucket holds it."""

    pmcid: str                 # "PMC1234567"
    version: int               # 1, 2, ...
    xml: bytes                 # the JATS article
    pmid: int | None = None
    doi: str | None = None
    mid: str | None = None
    title: str = ""
    citation: str = ""
    license_code: str | None = "CC BY"
    is_manuscript: bool = False
    is_retracted: bool = False
    is_openaccess: bool = True
    missing_xml: bool = False  # JSON and inventory list the version, but its .xml object is absent from the bucket
    wrong_md5: bool = False    # the JSON's xml_url carries an md5 that is not the object's
    source: str | None = None  # the file it was read from (shared_versions), for the tests' own bookkeeping

    def __post_init__(self) -> None:
        if not re.fullmatch(r"PMC\d+", self.pmcid):
            raise ValueError(f"pmcid must look like PMC1234567, not {self.pmcid!r}")
        if self.version < 1:
            raise ValueError(f"version must be 1 or more, not {self.version}")

    @property
    def prefix(self) -> str:
        """``PMC1234567.2``: the version's folder (without the slash) and the stem of its files."""
        return f"{self.pmcid}.{self.version}"

    @property
    def xml_key(self) -> str:
        return f"{self.prefix}/{self.prefix}.xml"

    @property
    def txt_key(self) -> str:
        return f"{self.prefix}/{self.prefix}.txt"

    @property
    def json_key(self) -> str:
        return f"{self.prefix}/{self.prefix}.json"

    @property
    def metadata_key(self) -> str:
        return f"metadata/{self.prefix}.json"

    @property
    def text(self) -> bytes:
        return plain_text(self.xml).encode("utf-8")

    @property
    def xml_md5(self) -> str:
        """The md5 the JSON's ``xml_url`` carries (deliberately not the object's when ``wrong_md5``)."""
        real = md5_hex(self.xml)
        return md5_hex(self.xml + b"\0wrong") if self.wrong_md5 else real

    def metadata(self, bucket: str) -> dict:
        """The version's JSON document, fields in PMC_CLOUD.md's order."""
        return {
            "pmcid": self.pmcid,
            "version": self.version,
            "pmid": self.pmid,
            "doi": self.doi,
            "mid": self.mid,
            "title": self.title,
            "citation": self.citation,
            "is_pmc_openaccess": self.is_openaccess,
            "is_manuscript": self.is_manuscript,
            "is_historical_ocr": False,
            "is_retracted": self.is_retracted,
            "license_code": self.license_code,
            "xml_url": f"s3://{bucket}/{self.xml_key}?md5={self.xml_md5}",
            "text_url": f"s3://{bucket}/{self.txt_key}?md5={md5_hex(self.text)}",
            "pdf_url": None,
            "media_urls": [],
        }

    def metadata_bytes(self, bucket: str) -> bytes:
        return json.dumps(self.metadata(bucket), indent=2, ensure_ascii=False).encode("utf-8")


class StandInBucket:
    """The bucket on a moto server at ``endpoint_url`` (created, world-readable, if absent)."""

    INVENTORY = "inventory-reports/pmc-oa-opendata/metadata"

    def __init__(self, endpoint_url: str, bucket: str, latency: float = 0.0):
        self.endpoint_url = endpoint_url.rstrip("/")
        self.bucket = bucket
        self.latency = latency  # seconds the proxy waits before answering each request (a far-away service)
        self.client = boto3.client("s3", endpoint_url=self.endpoint_url, **CREDENTIALS)
        self._proxy: _CountingProxy | None = None
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError:
            self.client.create_bucket(Bucket=bucket)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }],
        }
        self.client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

    # --- addresses ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Path-style base: objects are at ``f"{url}/{key}"``, listings at ``f"{url}/?list-type=2&..."``."""
        return f"{self.endpoint_url}/{self.bucket}"

    @property
    def proxy_url(self) -> str:
        """Same as ``url`` but through the counting proxy (started on first use, stopped by :meth:`close`)."""
        if self._proxy is None:
            self._proxy = _CountingProxy(self.endpoint_url, self.bucket, self.latency)
        return f"{self._proxy.base}/{self.bucket}"

    # --- objects -----------------------------------------------------------------------------------

    def put_object(self, key: str, body: bytes, content_type: str = "binary/octet-stream") -> str:
        """Write one world-readable object; returns its ETag without quotes (its MD5)."""
        answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type,
                                        ACL="public-read")
        return answer["ETag"].strip('"')

    def delete_object(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def get_object(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def keys(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix``, sorted."""
        return sorted(item["Key"] for item in self._list(prefix))

    def _list(self, prefix: str) -> list[dict]:
        found: list[dict] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(page.get("Contents", []))
        return found

    # --- article versions --------------------------------------------------------------------------

    def put_version(self, version: Version) -> None:
        """Write (or rewrite) the version's .xml (unless ``missing_xml``), .txt and .json, and metadata/ JSON."""
        if version.missing_xml:
            self.delete_object(version.xml_key)
        else:
            self.put_object(version.xml_key, version.xml, "application/xml")
        self.put_object(version.txt_key, version.text, "text/plain; charset=utf-8")
        document = version.metadata_bytes(self.bucket)
        self.put_object(version.json_key, document, "application/json")
        self.put_object(version.metadata_key, document, "application/json")

    def put_versions(self, versions: list[Version]) -> None:
        for version in versions:
            self.put_version(version)

    def remove_version(self, pmcid: str, version: int) -> None:
        """Delete every object of ``PMC<n>.<v>/`` and ``metadata/PMC<n>.<v>.json``."""
        prefix = f"{pmcid}.{version}"
        for key in [*self.keys(f"{prefix}/"), f"metadata/{prefix}.json"]:
            self.delete_object(key)

    # --- inventory ---------------------------------------------------------------------------------

    def inventory_rows(self) -> list[list[str]]:
        """The rows an inventory taken now holds: Bucket, Key, LastModifiedDate, ETag of each metadata/*.json."""
        rows = []
        for item in sorted(self._list("metadata/"), key=lambda item: item["Key"]):
            if not item["Key"].endswith(".json"):
                continue
            modified = item["LastModified"].astimezone(timezone.utc)
            stamp = modified.strftime("%Y-%m-%dT%H:%M:%S.") + f"{modified.microsecond // 1000:03d}Z"
            rows.append([self.bucket, item["Key"], stamp, item["ETag"].strip('"')])
        return rows

    def write_inventory(self, snapshot: str, parts: int = 3) -> str:
        """Write today's inventory of the metadata/ JSON as it stands; returns the manifest's key.

        ``parts`` gzipped CSV parts (some may be empty when there are fewer rows), the manifest and its
        ``manifest.checksum``, and a ``hive/dt=.../symlink.txt`` decoy.
        """
        match = SNAPSHOT.match(snapshot)
        if not match:
            raise ValueError(f"snapshot must look like 2026-11-30T01-00Z, not {snapshot!r}")
        if parts < 1:
            raise ValueError("parts must be 1 or more")
        rows = self.inventory_rows()
        size, extra = divmod(len(rows), parts)
        files, start = [], 0
        for index in range(parts):
            end = start + size + (1 if index < extra else 0)
            buffer = io.StringIO()
            csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows[start:end])
            start = end
            data = gzip.compress(buffer.getvalue().encode("utf-8"))
            key = f"{self.INVENTORY}/data/{uuid.uuid4()}.csv.gz"
            self.put_object(key, data, "application/x-gzip")
            files.append({"key": key, "size": len(data), "MD5checksum": md5_hex(data)})
        year, month, day, hour, minute = (int(part) for part in match.groups())
        created = datetime(year, month, day, hour, minute, tzinfo=timezone.utc)
        manifest = {
            "sourceBucket": self.bucket,
            "destinationBucket": f"arn:aws:s3:::{self.bucket}",
            "version": "2016-11-30",
            "creationTimestamp": str(int(created.timestamp() * 1000)),
            "fileFormat": "CSV",
            "fileSchema": INVENTORY_SCHEMA,
            "files": files,
        }
        body = json.dumps(manifest, indent=2).encode("utf-8")
        manifest_key = f"{self.INVENTORY}/{snapshot}/manifest.json"
        self.put_object(manifest_key, body, "application/json")
        self.put_object(f"{self.INVENTORY}/{snapshot}/manifest.checksum", md5_hex(body).encode(), "text/plain")
        hive = f"{self.INVENTORY}/hive/dt={created:%Y-%m-%d-%H-%M}/symlink.txt"
        self.put_object(hive, "".join(f"s3://{self.bucket}/{item['key']}\n" for item in files).encode(), "text/plain")
        return manifest_key

    # --- counting ----------------------------------------------------------------------------------

    def get_count(self, suffix: str = ".xml") -> int:
        """GETs of keys ending in ``suffix`` answered through ``proxy_url`` since the last :meth:`reset_count`."""
        return 0 if self._proxy is None else self._proxy.count(suffix)

    def get_counts(self) -> Counter:
        """GETs per key through ``proxy_url`` since the last reset (listings and the bucket root not included)."""
        return Counter() if self._proxy is None else self._proxy.counts()

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """Every request through the proxy since the last reset: (method, path with query, status)."""
        return [] if self._proxy is None else self._proxy.log_copy()

    def reset_count(self) -> None:
        if self._proxy is not None:
            self._proxy.reset()

    def close(self) -> None:
        """Stop the proxy, if started (the bucket and its objects stay on the server)."""
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None

    def __enter__(self) -> StandInBucket:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host"}


class _CountingProxy:
    """A forwarding HTTP server on 127.0.0.1 that counts GETs per key of one bucket."""

    def __init__(self, upstream: str, bucket: str, latency: float = 0.0):
        parts = urlsplit(upstream)
        self.latency = latency
        self.upstream_host, self.upstream_port = parts.hostname, parts.port or 80
        self.bucket = bucket
        self._lock = threading.Lock()
        self._gets: Counter = Counter()
        self._log: list[tuple[str, str, int]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                proxy.forward(self, "GET")

            def do_HEAD(self) -> None:  # noqa: N802
                proxy.forward(self, "HEAD")

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="pmc-bucket-proxy", daemon=True)
        self.thread.start()

    def forward(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        if self.latency:
            time.sleep(self.latency)
        headers = {name: value for name, value in handler.headers.items() if name.lower() not in HOP_BY_HOP}
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            connection.request(method, handler.path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            answer_headers = response.getheaders()
            status, reason = response.status, response.reason
        finally:
            connection.close()
        path = urlsplit(handler.path).path
        with self._lock:
            self._log.append((method, handler.path, status))
            if method == "GET" and path.startswith(f"/{self.bucket}/") and len(path) > len(self.bucket) + 2:
                self._gets[unquote(path[len(self.bucket) + 2:])] += 1
        handler.send_response(status, reason)
        for name, value in answer_headers:
            if name.lower() in HOP_BY_HOP or (name.lower() == "content-length" and method == "GET"):
                continue
            handler.send_header(name, value)
        if method == "GET":
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if method == "GET":
            handler.wfile.write(body)

    def count(self, suffix: str) -> int:
        with self._lock:
            return sum(number for key, number in self._gets.items() if key.endswith(suffix))

    def counts(self) -> Counter:
        with self._lock:
            return Counter(self._gets)

    def log_copy(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        with self._lock:
            self._gets.clear()
            self._log.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# --- the real articles in ../shared/data/pmc ---------------------------------------------------------

def _text(element: etree._Element | None) -> str:
    return "" if element is None else " ".join(" ".join(element.itertext()).split())


def _article_meta(root: etree._Element) -> etree._Element | None:
    return root.find("front/article-meta")


def _citation(root: etree._Element, doi: str | None) -> str:
    """A PMC-like citation, e.g. "BMC Microbiol. 2011 Aug 2;11:174. doi: 10.1186/1471-2180-11-174"."""
    meta = _article_meta(root)
    journal = _text(root.find("front/journal-meta/journal-id[@journal-id-type='iso-abbrev']")) or _text(
        root.find(".//journal-meta//journal-title"))
    date = ""
    if meta is not None:
        dates = meta.findall("pub-date")
        chosen = next((d for d in dates if d.get("pub-type") in ("epub", "ppub") or d.get("date-type") == "pub"),
                      dates[0] if dates else None)
        if chosen is not None:
            months = ["", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            month = _text(chosen.find("month"))
            month = months[int(month)] if month.isdigit() and 0 < int(month) <= 12 else month
            date = " ".join(part for part in (_text(chosen.find("year")), month, _text(chosen.find("day"))) if part)
    volume = _text(meta.find("volume")) if meta is not None else ""
    issue = _text(meta.find("issue")) if meta is not None else ""
    page = ""
    if meta is not None:
        page = _text(meta.find("elocation-id")) or _text(meta.find("fpage"))
    where = volume + (f"({issue})" if issue else "") + (f":{page}" if page else "")
    citation = ". ".join(part for part in (journal, ";".join(p for p in (date, where) if p)) if part)
    if doi:
        citation += f". doi: {doi}"
    return citation


def licence_code(root: etree._Element) -> str | None:
    """The CC code PMC would give from the article's <license> link (None when there is no CC link)."""
    href = "{http://www.w3.org/1999/xlink}href"
    links = []
    for element in root.iter("license"):  # its own link, then links and text inside it
        links += [inner.get(href) for inner in element.iter() if inner.get(href)] + [_text(element)]
    links += [_text(element) for element in root.iter("{*}license_ref")]
    for link in links:
        found = re.search(r"creativecommons\.org/licenses/([a-z-]+)/", link)
        if found:
            return "CC " + found.group(1).upper()
        if re.search(r"creativecommons\.org/publicdomain/zero/", link):
            return "CC0"
    return None


def shared_versions(pmc_dir: Path, read_licence: bool = False) -> list[Version]:
    """Version 1 of each real JATS article in ``pmc_dir`` (../shared/data/pmc), sorted by file name.

    pmcid, pmid, doi and title come from the article-meta; an article without a PMC id (the eLife ones) gets a
    made-up stable one, ``PMC9`` followed by 7 digits from the file name's CRC-32 (beyond any real PMCID).
    ``license_code`` stays "CC BY" unless ``read_licence``: then it comes from the article's <license> link.
    """
    versions: list[Version] = []
    taken: set[str] = set()
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    for path in sorted(pmc_dir.iterdir()):
        if not path.is_file() or path.suffix not in (".xml", ".nxml"):
            continue
        xml = path.read_bytes()
        root = etree.fromstring(xml, parser)
        meta = _article_meta(root)
        ids = {}
        if meta is not None:
            for element in meta.findall("article-id"):
                ids.setdefault(element.get("pub-id-type"), (element.text or "").strip())
        pmc = ids.get("pmc") or ids.get("pmcid") or ""
        pmc = pmc.upper().removeprefix("PMC")
        if pmc.isdigit():
            pmcid = f"PMC{int(pmc)}"
        else:
            number = zlib.crc32(path.name.encode("utf-8")) % 10**7
            while f"PMC9{number:07d}" in taken:
                number = (number + 1) % 10**7
            pmcid = f"PMC9{number:07d}"
        if pmcid in taken:
            raise ValueError(f"{path.name}: {pmcid} already used by another file in {pmc_dir}")
        taken.add(pmcid)
        pmid = ids.get("pmid")
        doi = ids.get("doi") or None
        versions.append(Version(
            pmcid=pmcid, version=1, xml=xml,
            pmid=int(pmid) if pmid and pmid.isdigit() else None,
            doi=doi,
            title=_text(meta.find("title-group/article-title")) if meta is not None else "",
            citation=_citation(root, doi),
            license_code=licence_code(root) if read_licence else "CC BY",
            source=path.name,
        ))
    return versions
