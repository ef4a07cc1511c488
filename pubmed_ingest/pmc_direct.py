"""The pubmed stage straight from the PMC Cloud Service, for clusters next to the bucket: ``gap-replay pubmed
--input s3://pmc-oa-opendata`` (read over ``pubmed.pmc_url``) or ``--input <an http(s) address of the
service>`` (such as a stand-in's ``http://127.0.0.1:PORT/<bucket>``).

The driver plans from the newest inventory alone (:func:`plan_tasks`): the listed versions grouped by PMCID
(all versions of a PMCID in one task, since the selection is per PMCID), cut into tasks of about
``versions_per_task`` versions each. Each task's plan is a small JSON file the task reads as its input
(:func:`parse_plan`); the task reads the metadata JSON of its versions, selects as a sync does
(``pmc_cloud.select_versions``: the same settings, the same reasons), and streams the XML of the selected
versions, many requests in flight, each checked against its MD5, into documents as the mirror route makes
them (``pmc_mirror.version_outcomes``). Every listed version is accounted for in the stage's ledger: its
documents, or a drop under ``pmcid:PMC<n>.<v>`` with the sync's reason. A request that still fails after the
client's retries fails the task (:class:`TransientInputError`): it is tried again, never recorded as a drop.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from gap_replay.core import storage
from gap_replay.core.errors import TransientInputError
from gap_replay.core.outcome import Drop, Outcome
from gap_replay.pubmed_ingest.pmc_cloud import (
    DEFAULT_PMC_URL,
    FETCH_FAILED,
    PACKED,
    Bucket,
    InventoryRow,
    Version,
    bounded_map,
    failure,
    fetch_article,
    newest_snapshot,
    pmc_client,
    read_metadata,
    select_versions,
)
from gap_replay.pubmed_ingest.pmc_mirror import SOURCE, version_id, version_outcomes

BUCKET_URI = "s3://pmc-oa-opendata"
PLAN_DIR = "_pmc_plan"
DEFAULT_VERSIONS_PER_TASK = 2000


def service_address(path: str, pmc_url: str = DEFAULT_PMC_URL) -> str | None:
    """The service address an input names: `pmc_url` for the bucket's own ``s3://`` URI, the address
    itself for an ``http(s)://`` input; None for any other input (files, folders, other buckets)."""
    if path.rstrip("/") == BUCKET_URI:
        return pmc_url.rstrip("/")
    if path.startswith(("http://", "https://")):
        return path.rstrip("/")
    return None


@dataclass(frozen=True)
class ServiceInput:
    address: str
    snapshot: str

    @property
    def identity(self) -> str:
        """What the stage's fingerprint takes of it: a newer inventory is a new input."""
        return f"pmc-service:{self.address}:{self.snapshot}"


def open_service(address: str, retries: int = 5) -> tuple[Bucket, str]:
    bucket = Bucket(address, pmc_client(8, retries, 1.0))
    return bucket, newest_snapshot(bucket)


def plan_tasks(rows: list[InventoryRow], versions_per_task: int) -> list[list[list[str]]]:
    """The inventory's versions (sorted by key) cut into tasks: lists of ``[key, etag]``, all versions of a
    PMCID in the same task, about `versions_per_task` each."""
    tasks: list[list[list[str]]] = [[]]
    previous = None
    for row in rows:
        pmcid = row.key.split("/", 1)[1].split(".", 1)[0]
        if pmcid != previous and len(tasks[-1]) >= versions_per_task:
            tasks.append([])
        tasks[-1].append([row.key, row.etag])
        previous = pmcid
    return [task for task in tasks if task]


def write_plan(service: ServiceInput, rows: list[InventoryRow], folder: str, settings) -> list[tuple[str, str]]:
    """Write one plan file per task under `folder`; (uri, name) of each, for the stage's file list."""
    per_task = max(1, -(-len(rows) // settings.partitions)) if settings.partitions else DEFAULT_VERSIONS_PER_TASK
    files = []
    for number, versions in enumerate(plan_tasks(rows, per_task)):
        plan = {"address": service.address, "snapshot": service.snapshot, "licenses": settings.pmc_licenses,
                "manuscripts": settings.pmc_manuscripts, "concurrency": settings.pmc_concurrency, "versions": versions}
        uri = storage.join(folder, f"task-{number:05d}.json")
        storage.write_text(uri, json.dumps(plan))
        files.append((uri, f"pmc/{service.snapshot}/task-{number:05d}.json"))
    return files


def parse_plan(stream: BinaryIO, name: str, max_article_bytes: int, retries: int = 5) -> Iterator[Outcome]:
    """The outcomes of one task's versions (module docstring)."""
    plan = json.loads(stream.read())
    concurrency = int(plan["concurrency"])
    bucket = Bucket(plan["address"], pmc_client(concurrency, retries, 1.0))
    versions = [Version(key, etag, "") for key, etag in plan["versions"]]
    read_metadata(bucket, versions, concurrency)
    select_versions([v for v in versions if v.meta and v.status is None], licenses=plan["licenses"],
                    manuscripts=plan["manuscripts"])
    _raise_transient(versions)
    selected = [version for version in versions if version.status is None]
    for version in versions:
        if version.status is not None:
            yield Drop(version_id(version.row()), version.status, version.detail, SOURCE)
    for version, result in bounded_map(lambda v: fetch_article(bucket, v.meta), selected, concurrency):
        row = version.row()
        if isinstance(result, BaseException):
            version.status, version.detail = failure(result)
            _raise_transient([version])
            yield Drop(version_id(row), version.status, version.detail, SOURCE)
        else:
            version.status = PACKED
            yield from version_outcomes(row, result, name, max_article_bytes)


def _raise_transient(versions: list[Version]) -> None:
    failed = [version for version in versions if version.status == FETCH_FAILED]
    if failed:
        raise TransientInputError(f"{len(failed)} request(s) to the PMC service still failing after the retries "
                                  f"(first: {failed[0].key}: {failed[0].detail})")
