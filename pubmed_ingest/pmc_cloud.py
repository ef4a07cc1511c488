"""PubMed Central from the PMC Cloud Service: a packed, resumable, incremental mirror of the Open Access
articles (``gap-replay pubmed download --collections pmc``).

Since August 2026 PMC's full text is published only as one object per article version in the public
bucket ``pmc-oa-opendata`` (``../shared/PMC_CLOUD.md`` has the facts): ``PMC<n>.<v>/PMC<n>.<v>.xml`` beside
a metadata JSON (also at ``metadata/PMC<n>.<v>.json``), and a daily S3 inventory of the ``metadata/`` keys.
Everything is read anonymously over plain HTTP(S) through the project's one client
(:class:`gap_replay.core.http.HttpClient`): objects at ``<pmc_url>/<key>``, listings at
``<pmc_url>/?list-type=2&prefix=...&delimiter=/`` (ListObjectsV2), so a local stand-in works as
``http://127.0.0.1:PORT/<bucket>``.

A sync, step by step:

1. **Inventory**: the newest snapshot folder under ``inventory-reports/pmc-oa-opendata/metadata/`` (``hive/``
   and ``data/`` are not snapshots), its ``manifest.json``, then each gzipped CSV part (checked against the
   manifest's MD5), columns read from ``fileSchema``. One row per version: its metadata key and ETag.
2. **Metadata**: the JSON of each version whose key is new or whose ETag changed since the last sync (the
   others are taken from the mirror's catalog: a monthly re-sync reads only what changed).
3. **Selection**: one version per PMCID, the highest version number; it is taken when open access (or an
   author manuscript, if ``manuscripts``), its licence is selected (``licenses``: ``all``, or ``commercial``:
   CC0, CC BY, CC BY-SA, CC BY-ND) and it is not retracted. Every other version gets its reason.
4. **Fetch**: the XML of each selected version not yet packed, many requests in flight (``concurrency``),
   in key order; each is checked against the MD5 its JSON carries (fetched once more on a mismatch).
5. **Pack**: articles go into Parquet shards of bounded size (``shard_bytes`` of XML), raw XML plus the
   metadata columns, each shard written whole (a temporary file renamed, or one PUT): the pubmed stage gets
   a few thousand balanced tasks, not millions of one-file tasks.
6. **Catalog**: every version of the inventory with its status (``packed`` and the shard holding it, or the
   reason it is not), plus the versions that left the inventory (``withdrawn``); then the summary, then
   ``state/CURRENT.json``, which names the catalog and is written last.

Layout under the mirror root (``<output>/pmc``; local or object storage)::

    shards/s<sync>-<n>.parquet       packed articles (PACKED_SCHEMA)
    state/catalog-<sync>.parquet     every version of that sync's inventory (CATALOG_SCHEMA)
    state/dead-<sync>.parquet        shard rows that are no longer current, with why (DEAD_SCHEMA)
    state/summary-<sync>.json        what the sync did, by step and reason
    state/CURRENT.json               the last finished sync: its number, snapshot and catalog
    summary.json                     the last sync's summary

A killed sync resumes: its finished shards (``s<sync>-*``, the sync after CURRENT's) are read back and
their versions are not fetched again. A later sync fetches the JSON of new and changed versions only, and
the XML of versions not packed before (or whose JSON changed). Shards are never rewritten: an article
packed earlier that is no longer current (a newer version or a new copy, withdrawn, retracted since) goes
on the dead list with its reason, which the pubmed stage reads to drop it. Transient failures are retried by the
client; what still fails (``fetch_failed``) is recorded and fetched again by the next sync.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import pyarrow as pa
import urllib3
from lxml import etree

from gap_replay.core import storage
from gap_replay.core.http import BodyTooLarge, HttpClient, RequestFailed, UnusableBody, read_capped

DEFAULT_PMC_URL = "https://pmc-oa-opendata.s3.amazonaws.com"
INVENTORY_PREFIX = "inventory-reports/pmc-oa-opendata/metadata/"
COMMERCIAL_LICENSES = frozenset({"CC0", "CC BY", "CC BY-SA", "CC BY-ND"})
LICENSE_CHOICES = ("all", "commercial")
USER_AGENT = "gap-replay/0.1 (PMC Open Access mirror for corpus regeneration)"
MIRROR_DIR = "pmc"
CURRENT = "state/CURRENT.json"
DEFAULT_CONCURRENCY = 32
DEFAULT_SHARD_BYTES = 128 << 20
MAX_JSON_BYTES = 1 << 20
MAX_ARTICLE_BYTES = 256 << 20
MAX_LISTING_BYTES = 16 << 20
ROW_GROUP_BYTES = 32 << 20

PACKED = "packed"
# Why a listed version is not packed (the catalog's status; the pubmed stage's drop reasons where it sees them).
SUPERSEDED = "superseded_version"
NOT_OPEN_ACCESS = "not_open_access"
LICENSE_NOT_SELECTED = "license_not_selected"
MANUSCRIPT_NOT_SELECTED = "manuscript_not_selected"
RETRACTED = "retracted"
WITHDRAWN = "withdrawn"
MISSING_METADATA = "missing_metadata"
UNPARSEABLE_METADATA = "unparseable_metadata"
MISSING_OBJECT = "missing_object"
MD5_MISMATCH = "md5_mismatch"
TOO_LARGE = "too_large"
FETCH_FAILED = "fetch_failed"  # transient, after the client's retries: the next sync tries again

_METADATA_KEY = re.compile(r"metadata/(PMC\d+)\.(\d+)\.json")
_SNAPSHOT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z")
_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

METADATA_FIELDS = [
    pa.field("pmcid", pa.string()), pa.field("version", pa.int32()), pa.field("pmid", pa.int64()),
    pa.field("doi", pa.string()), pa.field("mid", pa.string()), pa.field("title", pa.string()),
    pa.field("citation", pa.string()), pa.field("license_code", pa.string()),
    pa.field("is_openaccess", pa.bool_()), pa.field("is_manuscript", pa.bool_()),
    pa.field("is_historical_ocr", pa.bool_()), pa.field("is_retracted", pa.bool_()),
    pa.field("xml_key", pa.string()), pa.field("xml_md5", pa.string()),
]
METADATA_NAMES = tuple(field_.name for field_ in METADATA_FIELDS)
CATALOG_SCHEMA = pa.schema([
    pa.field("key", pa.string()), pa.field("etag", pa.string()), pa.field("last_modified", pa.string()),
    *METADATA_FIELDS,
    pa.field("status", pa.string()), pa.field("detail", pa.string()), pa.field("shard", pa.string()),
])
# Rows of the shards that are no longer current (a newer version or copy, withdrawn, retracted since,
# deselected), cumulative over syncs: the pubmed stage drops them with this reason.
DEAD_SCHEMA = pa.schema([
    pa.field("shard", pa.string()), pa.field("key", pa.string()), pa.field("etag", pa.string()),
    pa.field("reason", pa.string()), pa.field("detail", pa.string()),
])
PACKED_SCHEMA = pa.schema([
    pa.field("key", pa.string()), pa.field("etag", pa.string()), *METADATA_FIELDS, pa.field("xml", pa.binary()),
])

T = TypeVar("T")
R = TypeVar("R")


class SyncError(RuntimeError):
    """The sync cannot start or go on (no inventory, an unreadable manifest or part): nothing is published."""


@dataclass(frozen=True)
class InventoryRow:
    key: str
    etag: str
    last_modified: str


@dataclass(slots=True)
class Version:
    """One listed version: its inventory row, its metadata (once read) and what the sync made of it."""
    key: str
    etag: str
    last_modified: str
    meta: dict[str, Any] = field(default_factory=dict)
    status: str | None = None
    detail: str | None = None
    shard: str | None = None

    @property
    def pmcid(self) -> str:
        return _METADATA_KEY.fullmatch(self.key).group(1)

    @property
    def version(self) -> int:
        return int(_METADATA_KEY.fullmatch(self.key).group(2))

    def row(self) -> dict[str, Any]:
        meta = {name: self.meta.get(name) for name in CATALOG_SCHEMA.names}
        meta.update(pmcid=self.meta.get("pmcid") or self.pmcid, version=self.meta.get("version") or self.version)
        return {**meta, "key": self.key, "etag": self.etag, "last_modified": self.last_modified,
                "status": self.status, "detail": self.detail, "shard": self.shard}


@dataclass
class SyncReport:
    sync: int
    snapshot: str
    listed: int = 0
    metadata_fetched: int = 0          # JSON read in this sync (new or changed versions)
    metadata_reused: int = 0           # JSON unchanged since the last sync (ETag), taken from the catalog
    selected: int = 0
    fetched: int = 0                   # XML received in this sync
    verified: int = 0                  # ... and matching its MD5
    packed: int = 0                    # ... and written into a shard
    already_packed: int = 0            # selected and in a shard of an earlier (or the killed) sync
    withdrawn: int = 0                 # packed before, gone from this inventory
    shards_written: int = 0
    bytes_fetched: int = 0
    requests: int = 0
    seconds: float = 0.0
    not_packed: Counter = field(default_factory=Counter)  # reason -> versions

    @property
    def failed(self) -> int:
        """Versions whose fetch still failed after the client's retries (worth another sync)."""
        return self.not_packed.get(FETCH_FAILED, 0)

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in (
            "sync", "snapshot", "listed", "metadata_fetched", "metadata_reused", "selected", "fetched", "verified",
            "packed", "already_packed", "withdrawn", "shards_written", "bytes_fetched", "requests")}
        out["seconds"] = round(self.seconds, 3)
        out["not_packed"] = dict(sorted(self.not_packed.items()))
        return out

    def summary(self) -> str:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(self.not_packed.items()))
        return (f"pmc sync {self.sync} ({self.snapshot}): {self.listed:,} versions listed, {self.selected:,} selected; "
                f"{self.packed:,} packed now, {self.already_packed:,} already packed; {self.withdrawn:,} withdrawn; "
                f"metadata read {self.metadata_fetched:,}, reused {self.metadata_reused:,}; "
                f"not packed: {reasons or 'none'}")


# --- reading the bucket --------------------------------------------------------------------------

class Bucket:
    """The service at `base_url` (objects at ``<base_url>/<key>``), read anonymously through `client`."""

    def __init__(self, base_url: str, client: HttpClient):
        self.base_url, self.client = base_url.rstrip("/"), client

    def url(self, key: str) -> str:
        return f"{self.base_url}/{quote(key, safe='/')}"

    def get(self, key: str, limit: int) -> bytes | None:
        """The object's bytes; None when the bucket lacks it (404, or 403 as S3 answers anonymous readers
        for a missing key); :class:`RequestFailed` for anything else, after the client's retries."""
        return self._read(self.url(key), key, limit, missing_ok=True)

    def _read(self, url: str, label: str, limit: int, *, missing_ok: bool) -> bytes | None:
        """The body within `limit` bytes, on the wire and decoded (a Content-Encoding the object was
        stored with is undone as it arrives: :func:`read_capped`). Over the cap it is :class:`_TooLarge`
        at its first bytes past it, however slowly they come: failed once, never retried by the client
        (a read left to stall past the cap would be a read timeout, which it retries)."""
        def read(response) -> bytes | None:
            if missing_ok and response.status in (403, 404):
                return None
            if response.status != 200:
                raise RequestFailed(f"HTTP {response.status} for {label}", response.status)
            try:
                return read_capped(response, limit)
            except BodyTooLarge as error:
                raise _TooLarge(f"{label} is larger than {limit:,} bytes ({error.reason})") from None
            except UnusableBody as error:  # a corrupt coding: fetch_failed, as when urllib3 decoded it
                raise RequestFailed(f"{label}: {error.reason}", response.status) from None

        return self.client.get(url, read, headers={"Accept-Encoding": "identity"}, redirects=5, label=label)

    def common_prefixes(self, prefix: str) -> list[str]:
        """The 'folders' directly under `prefix` (ListObjectsV2 with a delimiter), every page."""
        found: list[str] = []
        token = None
        while True:
            query = {"list-type": "2", "prefix": prefix, "delimiter": "/"}
            if token:
                query["continuation-token"] = token
            try:
                page = self._read(f"{self.base_url}/?{urlencode(query)}", f"the listing of {prefix}",
                                  MAX_LISTING_BYTES, missing_ok=False)
            except (RequestFailed, _TooLarge) as error:
                raise SyncError(f"cannot list {self.base_url}/{prefix}: {error}") from None
            root = etree.fromstring(page, parser=etree.XMLParser(resolve_entities=False, no_network=True))
            namespace = _S3_NS if root.tag.startswith(_S3_NS) else ""
            found += [element.text or "" for element in root.iter(f"{namespace}Prefix")
                      if element.getparent().tag == f"{namespace}CommonPrefixes"]
            truncated = (root.findtext(f"{namespace}IsTruncated") or "").lower() == "true"
            token = root.findtext(f"{namespace}NextContinuationToken")
            if not truncated or not token:
                return found


class _TooLarge(Exception):
    pass


def newest_snapshot(bucket: Bucket) -> str:
    """The name of the newest inventory snapshot (``2026-11-30T01-00Z``)."""
    names = [prefix[len(INVENTORY_PREFIX):].strip("/") for prefix in bucket.common_prefixes(INVENTORY_PREFIX)]
    snapshots = sorted(name for name in names if _SNAPSHOT.fullmatch(name))
    if not snapshots:
        raise SyncError(f"no inventory snapshot under {bucket.url(INVENTORY_PREFIX)} (found: {', '.join(names) or 'nothing'})")
    return snapshots[-1]


def read_inventory(bucket: Bucket, snapshot: str) -> list[InventoryRow]:
    """The metadata keys listed by `snapshot`'s inventory, sorted by key; other keys are skipped."""
    manifest_key = f"{INVENTORY_PREFIX}{snapshot}/manifest.json"
    try:
        data = bucket.get(manifest_key, MAX_LISTING_BYTES)
    except _TooLarge as error:
        raise SyncError(str(error)) from None
    if data is None:
        raise SyncError(f"{manifest_key} is missing")
    try:
        manifest = json.loads(data)
        columns = [name.strip() for name in manifest["fileSchema"].split(",")]
        parts = manifest["files"]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise SyncError(f"{manifest_key}: not an S3 inventory manifest ({error})") from None
    if str(manifest.get("fileFormat", "CSV")).upper() != "CSV":
        raise SyncError(f"{manifest_key}: inventory format {manifest.get('fileFormat')!r}, only CSV is read")
    missing = {"Key", "ETag"} - set(columns)
    if missing:
        raise SyncError(f"{manifest_key}: fileSchema lacks {', '.join(sorted(missing))}")
    key_at, etag_at = columns.index("Key"), columns.index("ETag")
    modified_at = columns.index("LastModifiedDate") if "LastModifiedDate" in columns else None
    rows: dict[str, InventoryRow] = {}
    for part in parts:
        for attempt in (1, 2):  # a part that does not match its MD5 is fetched once more
            try:
                body = bucket.get(part["key"], 1 << 34)
            except _TooLarge as error:
                raise SyncError(str(error)) from None
            if body is None:
                raise SyncError(f"inventory part {part['key']} is missing")
            expected = (part.get("MD5checksum") or "").lower()
            if not expected or hashlib.md5(body, usedforsecurity=False).hexdigest() == expected:
                break
            if attempt == 2:
                raise SyncError(f"inventory part {part['key']} does not match its MD5 {expected}")
        with gzip.open(io.BytesIO(body), "rt", encoding="utf-8", newline="") as text:
            for record in csv.reader(text):
                if len(record) < len(columns):
                    continue
                key = record[key_at]
                if _METADATA_KEY.fullmatch(key):
                    rows[key] = InventoryRow(key, record[etag_at].strip('"').lower(),
                                             record[modified_at] if modified_at is not None else "")
    return [rows[key] for key in sorted(rows)]


def parse_metadata(data: bytes, key: str) -> dict[str, Any]:
    """The fields of a version's metadata JSON that the mirror keeps; ``ValueError`` when it is unusable."""
    record = json.loads(data)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    match = _METADATA_KEY.fullmatch(key)
    pmcid = str(record.get("pmcid") or match.group(1))
    if not pmcid.startswith("PMC"):
        pmcid = f"PMC{pmcid}"
    version = int(record.get("version") or match.group(2))
    # The link names the key (s3://pmc-oa-opendata/PMC1.2/PMC1.2.xml?md5=...; an https form works too);
    # without one, the key the layout gives the version's XML.
    xml_url = record.get("xml_url") or ""
    located, _, query = xml_url.partition("?")
    in_link = re.search(r"(PMC\d+\.\d+/[^/]+)$", located)
    xml_key = in_link.group(1) if in_link else f"{pmcid}.{version}/{pmcid}.{version}.xml"
    md5 = re.search(r"(?:^|&)md5=([0-9a-fA-F]{32})", query)
    pmid = record.get("pmid")
    return {
        "pmcid": pmcid, "version": version,
        "pmid": int(pmid) if isinstance(pmid, (int, str)) and str(pmid).isdigit() else None,
        "doi": record.get("doi") or None, "mid": record.get("mid") or None,
        "title": record.get("title") or None, "citation": record.get("citation") or None,
        "license_code": record.get("license_code") or None,
        "is_openaccess": bool(record.get("is_pmc_openaccess")), "is_manuscript": bool(record.get("is_manuscript")),
        "is_historical_ocr": bool(record.get("is_historical_ocr")), "is_retracted": bool(record.get("is_retracted")),
        "xml_key": xml_key, "xml_md5": md5.group(1).lower() if md5 else None,
    }


# --- selection -----------------------------------------------------------------------------------

def select_versions(versions: Iterable[Version], *, licenses: str = "all", manuscripts: bool = True) -> None:
    """Set the status of each version with metadata: None (to be packed) for the highest version of each
    PMCID that passes the settings, else the reason. Versions already given a status are left alone."""
    if licenses not in LICENSE_CHOICES:
        raise ValueError(f"licenses: {licenses!r}; choose from {', '.join(LICENSE_CHOICES)}")
    by_pmcid: dict[str, list[Version]] = {}
    for version in versions:
        if version.status is None:
            by_pmcid.setdefault(version.pmcid, []).append(version)
    for group in by_pmcid.values():
        group.sort(key=lambda version: version.version, reverse=True)
        newest = group[0]
        for older in group[1:]:
            older.status, older.detail = SUPERSEDED, f"{newest.pmcid}.{newest.version} is newer"
        meta = newest.meta
        if meta["is_retracted"]:
            newest.status, newest.detail = RETRACTED, "is_retracted in its metadata"
        elif meta["is_manuscript"] and not manuscripts:
            newest.status, newest.detail = MANUSCRIPT_NOT_SELECTED, "an author manuscript (pubmed.pmc_manuscripts)"
        elif not meta["is_openaccess"] and not meta["is_manuscript"]:
            newest.status, newest.detail = NOT_OPEN_ACCESS, "is_pmc_openaccess is false"
        elif licenses == "commercial" and meta["license_code"] not in COMMERCIAL_LICENSES:
            newest.status, newest.detail = LICENSE_NOT_SELECTED, f"licence {meta['license_code'] or 'none'}"


# --- packing -------------------------------------------------------------------------------------

class ShardPacker:
    """Collects articles and writes them as Parquet shards of about `shard_bytes` of XML each, every shard
    whole (``storage.write_bytes``). Names run ``s<sync>-<n>.parquet`` from `first`."""

    def __init__(self, shards_dir: str, sync: int, shard_bytes: int, first: int = 0):
        self.shards_dir, self.sync, self.shard_bytes = shards_dir, sync, shard_bytes
        self.number, self.rows, self.bytes, self.written = first, [], 0, []

    def name(self, number: int) -> str:
        return f"s{self.sync:05d}-{number:05d}.parquet"

    def add(self, version: Version, xml: bytes) -> str:
        """Queue `version`; the name of the shard it goes into."""
        self.rows.append({**version.row(), "xml": xml})
        self.bytes += len(xml)
        name = self.name(self.number)
        if self.bytes >= self.shard_bytes:
            self.flush()
        return name

    def flush(self) -> None:
        if not self.rows:
            return
        table = pa.Table.from_pylist([{name: row.get(name) for name in PACKED_SCHEMA.names} for row in self.rows],
                                     schema=PACKED_SCHEMA)
        mean = max(1, self.bytes // len(self.rows))
        storage.write_table(storage.join(self.shards_dir, self.name(self.number)), table,
                            row_group_size=max(1, ROW_GROUP_BYTES // mean))
        self.written.append(self.name(self.number))
        self.number, self.rows, self.bytes = self.number + 1, [], 0


def packed_in_shards(shards_dir: str, names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """metadata key -> (etag, shard) of the articles in the shards `names` (key and etag columns only)."""
    found: dict[str, tuple[str, str]] = {}
    for name in names:
        table = storage.read_table(storage.join(shards_dir, name), columns=["key", "etag"])
        for key, etag in zip(table.column("key").to_pylist(), table.column("etag").to_pylist()):
            found[key] = (etag, name)
    return found


# --- the sync ------------------------------------------------------------------------------------

def bounded_map(function: Callable[[T], R], items: Iterable[T], concurrency: int) -> Iterator[tuple[T, R | BaseException]]:
    """(item, result or the exception it raised) for each item, in the items' order, with at most
    `concurrency` calls in flight."""
    window: list[tuple[T, Future]] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="pmc-sync") as pool:
        for item in items:
            window.append((item, pool.submit(function, item)))
            if len(window) >= 2 * max(1, concurrency):
                yield _outcome(*window.pop(0))
        while window:
            yield _outcome(*window.pop(0))


def _outcome(item, future: Future):
    try:
        return item, future.result()
    except Exception as error:  # noqa: BLE001 - handed to the caller, who records it
        return item, error


def read_current(mirror: str) -> dict[str, Any] | None:
    path = storage.join(mirror, CURRENT)
    if not storage.exists(path):
        return None
    return json.loads(storage.read_text(path))


def read_catalog(mirror: str, current: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """key -> catalog row of the last finished sync (empty before the first)."""
    if not current:
        return {}
    return {row["key"]: row for row in storage.read_table(storage.join(mirror, current["catalog"])).to_pylist()}


def pmc_client(concurrency: int, retries: int, backoff: float, sleep=time.sleep, say=None) -> HttpClient:
    """The HTTP client of a sync: a pool as wide as the requests in flight (blocking, so threads wait for a
    connection rather than open throwaway ones)."""
    pool = urllib3.PoolManager(num_pools=4, maxsize=max(1, concurrency), block=True,
                               timeout=urllib3.Timeout(connect=10.0, read=60.0))
    return HttpClient(user_agent=USER_AGENT, retries=retries, backoff=backoff, pool=pool, sleep=sleep, say=say)


def sync_pmc(output: str, *, pmc_url: str = DEFAULT_PMC_URL, licenses: str = "all", manuscripts: bool = True,
             concurrency: int = DEFAULT_CONCURRENCY, shard_bytes: int = DEFAULT_SHARD_BYTES, retries: int = 5,
             backoff: float = 1.0, client: HttpClient | None = None, say: Callable[[str], None] = print,
             progress: Callable[[str, int, int], None] | None = None) -> SyncReport:
    """Bring the mirror at ``<output>/pmc`` up to the newest inventory of the service at `pmc_url` (module
    docstring). Never raises for one version: each gets its status in the catalog and the report."""
    started = time.perf_counter()
    mirror = storage.join(storage.absolute_uri(str(output)), MIRROR_DIR)
    shards_dir = storage.join(mirror, "shards")
    client = client or pmc_client(concurrency, retries, backoff, say=say)
    bucket = Bucket(pmc_url, client)
    requests_before = client.requests_made
    current = read_current(mirror)
    previous = read_catalog(mirror, current)
    sync = (current["sync"] if current else 0) + 1
    snapshot = newest_snapshot(bucket)
    say(f"pmc: inventory snapshot {snapshot} at {pmc_url}")
    inventory = read_inventory(bucket, snapshot)
    report = SyncReport(sync=sync, snapshot=snapshot, listed=len(inventory))
    say(f"pmc: {len(inventory):,} versions listed")

    # What is packed already: the last catalog's packed versions, and the shards of a killed run of this sync.
    packed = {key: (row["etag"], row["shard"]) for key, row in previous.items() if row["status"] == PACKED}
    in_shards = {(shard, key): etag for key, (etag, shard) in packed.items()}  # every packed row, for the dead list
    leftover = sorted(name.rsplit("/", 1)[-1] for name in storage.list_files(shards_dir)
                      if name.rsplit("/", 1)[-1].startswith(f"s{sync:05d}-"))
    if leftover:
        found = packed_in_shards(shards_dir, leftover)
        packed.update(found)
        in_shards.update({(shard, key): etag for key, (etag, shard) in found.items()})
        say(f"pmc: resuming sync {sync}: {len(leftover)} shard(s) of a killed run are kept")

    versions = [Version(row.key, row.etag, row.last_modified) for row in inventory]
    to_read = []
    for version in versions:
        before = previous.get(version.key)
        if before is not None and before["etag"] == version.etag and before["is_openaccess"] is not None:
            version.meta = {name: before[name] for name in METADATA_NAMES}
            report.metadata_reused += 1
        else:
            to_read.append(version)

    report.metadata_fetched = read_metadata(bucket, to_read, concurrency, progress)

    select_versions([v for v in versions if v.meta and v.status is None], licenses=licenses, manuscripts=manuscripts)
    selected = [v for v in versions if v.status is None]
    report.selected = len(selected)
    to_fetch = []
    for version in selected:
        held = packed.get(version.key)
        if held is not None and held[0] == version.etag:
            version.status, version.shard = PACKED, held[1]
            report.already_packed += 1
        else:
            to_fetch.append(version)
    say(f"pmc: {len(selected):,} versions selected, {report.already_packed:,} already packed, "
        f"fetching {len(to_fetch):,} with {concurrency} in flight")

    first = 1 + max((int(name[7:12]) for name in leftover), default=-1)
    packer = ShardPacker(shards_dir, sync, shard_bytes, first=first)
    lock = threading.Lock()

    def fetch(version: Version) -> bytes:
        def received(body: bytes) -> None:
            with lock:
                report.fetched += 1
                report.bytes_fetched += len(body)

        return fetch_article(bucket, version.meta, received)

    for done, (version, result) in enumerate(bounded_map(fetch, to_fetch, concurrency), 1):
        if isinstance(result, BaseException):
            version.status, version.detail = failure(result)
        else:
            report.verified += 1
            version.shard = packer.add(version, result)
            version.status = PACKED
            in_shards[(version.shard, version.key)] = version.etag
            report.packed += 1
        if progress is not None:
            progress("articles", done, len(to_fetch))
    packer.flush()
    report.shards_written = len(packer.written)

    listed = {version.key for version in versions}
    gone = [Version(key, row["etag"], row["last_modified"],
                    meta={name: row[name] for name in METADATA_NAMES},
                    status=WITHDRAWN, detail=f"no longer in the inventory of {snapshot}", shard=row["shard"])
            for key, row in sorted(previous.items()) if key not in listed and row["status"] == PACKED]
    report.withdrawn = len(gone)
    for version in versions:
        if version.status != PACKED:
            report.not_packed[version.status] += 1
    report.requests = client.requests_made - requests_before
    report.seconds = time.perf_counter() - started

    catalog_name, dead_name = f"state/catalog-{sync:05d}.parquet", f"state/dead-{sync:05d}.parquet"
    storage.write_table(storage.join(mirror, catalog_name),
                        pa.Table.from_pylist([version.row() for version in versions + gone], schema=CATALOG_SCHEMA))
    dead = dead_rows(read_dead(mirror, current), in_shards, {version.key: version for version in versions + gone})
    storage.write_table(storage.join(mirror, dead_name), pa.Table.from_pylist(dead, schema=DEAD_SCHEMA))
    summary = json.dumps(report.to_dict(), indent=2) + "\n"
    storage.write_text(storage.join(mirror, f"state/summary-{sync:05d}.json"), summary)
    storage.write_text(storage.join(mirror, "summary.json"), summary)
    storage.write_text(storage.join(mirror, CURRENT), json.dumps(
        {"sync": sync, "snapshot": snapshot, "catalog": catalog_name, "dead": dead_name, "pmc_url": pmc_url,
         "licenses": licenses,
         "manuscripts": manuscripts}, indent=2) + "\n")
    say(report.summary())
    return report


def read_metadata(bucket: Bucket, versions: list[Version], concurrency: int,
                  progress: Callable[[str, int, int], None] | None = None) -> int:
    """Read and parse the metadata JSON of `versions` (many in flight), setting each one's ``meta``, or its
    status where the JSON is missing, unusable or could not be fetched; the number read."""
    read = 0
    fetch = lambda version: bucket.get(version.key, MAX_JSON_BYTES)  # noqa: E731
    for done, (version, result) in enumerate(bounded_map(fetch, versions, concurrency), 1):
        if isinstance(result, BaseException):
            version.status, version.detail = failure(result)
        elif result is None:
            version.status, version.detail = MISSING_METADATA, f"{version.key} is listed but missing"
        else:
            read += 1
            try:
                version.meta = parse_metadata(result, version.key)
            except (ValueError, TypeError) as error:
                version.status, version.detail = UNPARSEABLE_METADATA, f"{type(error).__name__}: {error}"
        if progress is not None:
            progress("metadata", done, len(versions))
    return read


def fetch_article(bucket: Bucket, meta: dict[str, Any], received: Callable[[bytes], None] | None = None) -> bytes:
    """The XML of a version, checked against the MD5 its metadata carries (fetched once more on a
    mismatch). Raises what :func:`failure` reads: the object missing, the MD5 still wrong, too large, or
    :class:`RequestFailed` after the client's retries."""
    for _ in (1, 2):
        body = bucket.get(meta["xml_key"], MAX_ARTICLE_BYTES)
        if body is None:
            raise _Missing(f"{meta['xml_key']} is listed but the bucket lacks it")
        if received is not None:
            received(body)
        digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if meta["xml_md5"] is None or digest == meta["xml_md5"]:
            return body
    raise _Mismatch(f"{meta['xml_key']}: MD5 {digest}, its metadata says {meta['xml_md5']} (also when fetched again)")


def dead_rows(before: list[dict[str, Any]], in_shards: dict[tuple[str, str], str],
              now: dict[str, Version]) -> list[dict[str, Any]]:
    """The dead list after a sync: the earlier one, plus every (shard, key) holding an article that is not
    the current packed copy of its version (`now`: key -> the version as this sync left it)."""
    dead = {(row["shard"], row["key"]): row for row in before}
    for (shard, key), etag in in_shards.items():
        version = now.get(key)
        if version is not None and version.status == PACKED and version.shard == shard:
            dead.pop((shard, key), None)  # current (again)
            continue
        if (shard, key) in dead and version is not None and version.status == dead[(shard, key)]["reason"]:
            continue
        if version is None or version.status == WITHDRAWN:
            reason, detail = WITHDRAWN, "no longer in the inventory"
        elif version.status == PACKED:
            reason, detail = SUPERSEDED, f"a newer copy of {key} (changed metadata) is in {version.shard}"
        else:
            reason, detail = version.status, version.detail
        dead[(shard, key)] = {"shard": shard, "key": key, "etag": etag, "reason": reason, "detail": detail}
    return [dead[item] for item in sorted(dead)]


def read_dead(mirror: str, current: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not current or not current.get("dead"):
        return []
    return storage.read_table(storage.join(mirror, current["dead"])).to_pylist()


class _Missing(Exception):
    pass


class _Mismatch(Exception):
    pass


def failure(error: BaseException) -> tuple[str, str]:
    """(status, detail) of a version whose metadata or XML could not be had."""
    if isinstance(error, _Missing):
        return MISSING_OBJECT, str(error)
    if isinstance(error, _Mismatch):
        return MD5_MISMATCH, str(error)
    if isinstance(error, _TooLarge):
        return TOO_LARGE, str(error)
    if isinstance(error, RequestFailed):
        return FETCH_FAILED, error.reason
    return FETCH_FAILED, f"{type(error).__name__}: {error}"
