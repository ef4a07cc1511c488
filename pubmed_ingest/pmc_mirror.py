"""The pubmed stage over a PMC mirror (``gap-replay pubmed download --collections pmc``,
:mod:`gap_replay.pubmed_ingest.pmc_cloud`): each packed shard is one input, so one Spark task.

A mirror is found where an input path is the mirror root (it holds ``state/CURRENT.json``) or holds one
as ``pmc/``. Every article row of every shard is accounted for: a row the mirror's dead list names (a
newer version or copy exists, withdrawn from the service, retracted since, no longer selected) is
dropped with that reason under the id ``pmcid:PMC<n>.<v>`` (the version's own id, so that it never
competes with the document of the current version); a row's XML over the size cap is ``too_large``;
every other row is parsed as JATS (one document per article) and takes the metadata the service
published beside it: the PMCID the service files it under (its id, whatever the XML says), the PMID
PMC links it to (which lets a paper supersede its abstract), the DOI where the XML lacks one, the licence code (``license``, e.g.
``cc-by-nc``), and, in ``extra.pmc``, the version, licence code, manuscript flag and id, and object key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow.parquet as pq

from gap_replay.core import storage
from gap_replay.core.outcome import Drop, Outcome
from gap_replay.pubmed_ingest.pmc_cloud import CURRENT, MIRROR_DIR, TOO_LARGE, read_current, read_dead

SOURCE = "pubmed_papers"
SHARD_BATCH_ROWS = 16  # articles decoded at a time: a task holds a few articles' XML, not a row group's

Dead = dict[tuple[str, str], tuple[str, str]]  # (shard file name, metadata key) -> (reason, detail)


@dataclass(frozen=True)
class Mirror:
    root: str                 # uri of the mirror root
    current: dict[str, Any]   # its state/CURRENT.json

    def shards(self) -> list[tuple[str, str]]:
        """(uri, name) of every shard; names are ``pmc/shards/<file>`` wherever the mirror lies."""
        return [(uri, f"{MIRROR_DIR}/shards/{uri.rsplit('/', 1)[-1]}")
                for uri in storage.list_files(storage.join(self.root, "shards"))]

    def dead(self) -> Dead:
        return {(row["shard"], row["key"]): (row["reason"], row["detail"]) for row in read_dead(self.root, self.current)}

    def state_files(self) -> list[str]:
        """What a rerun of the stage must notice changing: the pointer to the last sync and its dead list."""
        files = [storage.join(self.root, CURRENT)]
        if self.current.get("dead"):
            files.append(storage.join(self.root, self.current["dead"]))
        return files


def find_mirror(path: str) -> Mirror | None:
    """The mirror at `path`, or at `path`/pmc; None when neither holds one."""
    for root in (path, storage.join(path, MIRROR_DIR)):
        current = read_current(root)
        if current is not None:
            return Mirror(root.rstrip("/"), current)
    return None


def parse_shard(uri: str, name: str, dead: Dead, max_article_bytes: int, units: bool = False) -> Iterator[Outcome]:
    """The outcomes of the articles of one shard (module docstring). With `units`, each selected version comes as
    a :class:`~gap_replay.core.ingest.Unit` (parsed when its task's slice of the shard takes it)."""
    from gap_replay.core.ingest import Unit

    shard = name.rsplit("/", 1)[-1]
    fs, path = storage.resolve(uri)
    with fs.open_input_file(path) as handle:  # read a few rows at a time: shards are large
        for batch in pq.ParquetFile(handle).iter_batches(batch_size=SHARD_BATCH_ROWS):
            for row in batch.to_pylist():
                gone = dead.get((shard, row["key"]))
                if gone is not None:
                    yield Drop(version_id(row), gone[0], gone[1], SOURCE)
                elif units:
                    yield Unit(partial(version_outcomes, row, row["xml"] or b"", name, max_article_bytes),
                               f"file:{name}:{row['pmcid']}.{row['version']}", SOURCE)
                else:
                    yield from version_outcomes(row, row["xml"] or b"", name, max_article_bytes)


def version_id(row: dict[str, Any]) -> str:
    """The id of an article version that is not the current one: ``pmcid:PMC<n>.<v>``."""
    return f"pmcid:{row['pmcid']}.{row['version']}"


def version_outcomes(row: dict[str, Any], xml: bytes, name: str, max_article_bytes: int) -> Iterator[Outcome]:
    """The documents of one selected version (its metadata `row`, its `xml`), read from input `name`."""
    from gap_replay.pubmed_ingest.jats import iter_jats_articles

    if len(xml) > max_article_bytes:
        yield Drop(version_id(row), TOO_LARGE, f"{len(xml):,} bytes of XML, over the cap of {max_article_bytes:,}",
                   SOURCE)
        return
    known = {"pmc": row["pmcid"], "pmid": str(row["pmid"] or ""), "doi": row["doi"]}
    outcomes = list(iter_jats_articles(xml, name=f"{name}:{row['pmcid']}.{row['version']}", known_ids=known))
    for outcome in outcomes:
        yield outcome if isinstance(outcome, Drop) else with_service_metadata(outcome, row, whole=len(outcomes) == 1)


def license_name(code: str | None) -> str | None:
    """The service's licence code as the schema writes licences: ``CC BY-NC`` -> ``cc-by-nc``."""
    return code.strip().lower().replace(" ", "-") if code else None


def with_service_metadata(document: dict, row: dict[str, Any], whole: bool = True) -> dict:
    """`document` completed with what the service's metadata JSON says of its version; `whole`: the document
    is the version's only article (its ids are the version's; an article set's articles keep their own)."""
    if whole:
        document["pmid"] = row["pmid"] or document.get("pmid")  # the link to its abstract, as PMC records it
    document["license"] = license_name(row["license_code"]) or document.get("license")
    document["retracted"] = bool(row["is_retracted"]) or bool(document.get("retracted"))
    extra = json.loads(document.get("extra") or "{}")
    extra["pmc"] = {"version": row["version"], "license_code": row["license_code"],
                    "manuscript": bool(row["is_manuscript"]), "mid": row["mid"], "key": row["xml_key"]}
    if whole and document.get("pmcid") != row["pmcid"]:  # the service files the object under its PMCID
        extra["pmc"]["xml_pmcid"] = document.get("pmcid")
        document["id"], document["pmcid"] = f"pmcid:{row['pmcid']}", row["pmcid"]
        document["url"] = f"https://www.ncbi.nlm.nih.gov/pmc/articles/{row['pmcid']}/"
    document["extra"] = json.dumps(extra, ensure_ascii=False, sort_keys=True)
    return document
