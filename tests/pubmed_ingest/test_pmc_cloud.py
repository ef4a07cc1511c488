"""`gap-replay pubmed download --collections pmc` (pubmed_ingest.pmc_cloud) against a stand-in of the PMC
Cloud Service: moto's S3 server on 127.0.0.1 laid out as ../shared/PMC_CLOUD.md describes (pmc_bucket.py),
its article XML the real JATS files of ../shared/data/pmc, read through a counting proxy."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pyarrow.parquet as pq
import pytest

from gap_replay.cli import main
from gap_replay.pubmed_ingest import pmc_cloud
from gap_replay.pubmed_ingest.pmc_cloud import SyncError, sync_pmc
from tests.pubmed_ingest.pmc_bucket import StandInBucket, shared_versions

SNAPSHOT_1, SNAPSHOT_2 = "2026-11-01T01-00Z", "2026-12-01T01-00Z"


@pytest.fixture
def pmc(s3_server):
    with StandInBucket(s3_server["AWS_ENDPOINT_URL"], f"pmc-oa-opendata-{uuid.uuid4().hex[:8]}") as bucket:
        yield bucket


@pytest.fixture(scope="module")
def articles(shared_data):
    """The real articles as version 1 of eleven PMCIDs, by file name."""
    return {version.source: version for version in shared_versions(shared_data / "pmc")}


def first_layout(articles):
    """Version 1 and 2 of one PMCID, a retracted version, a non-commercial licence, an author manuscript,
    an object the inventory lists but the bucket lacks, and an MD5 that does not match."""
    a = articles["PMC7417471.nxml"]
    return {
        "a1": a,
        "a2": dataclasses.replace(a, version=2, xml=articles["pone.0000217.nxml"].xml),
        "retracted": dataclasses.replace(articles["mds526.nxml"], is_retracted=True),
        "noncommercial": dataclasses.replace(articles["elife00007.xml"], license_code="CC BY-NC"),
        "manuscript": dataclasses.replace(articles["elife02935.xml"], is_manuscript=True, is_openaccess=False,
                                          license_code="TDM", mid="NIHMS1234567"),
        "missing": dataclasses.replace(articles["elife04490.xml"], missing_xml=True),
        "bad_md5": dataclasses.replace(articles["elife05031.xml"], wrong_md5=True),
        "plain": articles["ehp-116-1694.nxml"],
    }


def publish(pmc, versions, snapshot):
    pmc.put_versions(list(versions))
    pmc.write_inventory(snapshot, parts=3)


def catalog(output):
    current = json.loads((output / "pmc" / "state" / "CURRENT.json").read_text())
    rows = pq.read_table(output / "pmc" / current["catalog"]).to_pylist()
    return {(row["pmcid"], row["version"]): row for row in rows}


def packed(output):
    table = pq.read_table(output / "pmc" / "shards")
    return {(row["pmcid"], row["version"]): row for row in table.to_pylist()}


def sync(pmc, output, **settings):
    messages = []
    report = sync_pmc(str(output), pmc_url=pmc.proxy_url, concurrency=4, retries=1, backoff=0.0,
                      say=messages.append, **settings)
    return report, messages


def test_a_first_sync_keeps_the_latest_version_and_accounts_for_every_other(pmc, articles, tmp_path):
    layout = first_layout(articles)
    publish(pmc, layout.values(), SNAPSHOT_1)
    report, _ = sync(pmc, tmp_path)
    status = {name: catalog(tmp_path)[(v.pmcid, v.version)]["status"] for name, v in layout.items()}
    assert status == {"a1": "superseded_version", "a2": "packed", "retracted": "retracted",
                      "noncommercial": "packed", "manuscript": "packed", "missing": "missing_object",
                      "bad_md5": "md5_mismatch", "plain": "packed"}
    assert (report.listed, report.selected, report.packed, report.already_packed) == (8, 6, 4, 0)
    assert report.not_packed == {"superseded_version": 1, "retracted": 1, "missing_object": 1, "md5_mismatch": 1}
    # Packed: the exact bytes, verified, with the metadata columns the pubmed stage needs.
    shards = packed(tmp_path)
    assert set(shards) == {(v.pmcid, v.version) for name, v in layout.items() if status[name] == "packed"}
    a2 = shards[(layout["a2"].pmcid, 2)]
    assert a2["xml"] == layout["a2"].xml and a2["pmid"] == layout["a2"].pmid and a2["license_code"] == "CC BY"
    assert shards[(layout["manuscript"].pmcid, 1)]["is_manuscript"]
    # The MD5 mismatch was fetched twice before giving up; the missing object once (a 404 is not retried).
    counts = pmc.get_counts()
    assert counts[layout["bad_md5"].xml_key] == 2
    assert counts[layout["missing"].xml_key] == 1
    assert counts[layout["a1"].xml_key] == 0  # superseded: never fetched
    summary = json.loads((tmp_path / "pmc" / "summary.json").read_text())
    assert summary["packed"] == 4 and summary["not_packed"]["md5_mismatch"] == 1 and summary["snapshot"] == SNAPSHOT_1


def test_licence_and_manuscript_settings(pmc, articles, tmp_path):
    layout = first_layout(articles)
    publish(pmc, layout.values(), SNAPSHOT_1)
    report, _ = sync(pmc, tmp_path, licenses="commercial", manuscripts=False)
    rows = catalog(tmp_path)
    assert rows[(layout["noncommercial"].pmcid, 1)]["status"] == "license_not_selected"
    assert rows[(layout["manuscript"].pmcid, 1)]["status"] == "manuscript_not_selected"
    assert report.packed == 2  # a2 and plain


def test_a_second_sync_fetches_only_what_changed(pmc, articles, tmp_path):
    layout = first_layout(articles)
    publish(pmc, layout.values(), SNAPSHOT_1)
    sync(pmc, tmp_path)
    # A month later: a new article, a third version of A, the plain article withdrawn, the manuscript
    # retracted (its JSON changes), and the missing object now present.
    new = articles["1471-2180-11-174.nxml"]
    a3 = dataclasses.replace(layout["a2"], version=3, xml=articles["6605965a.nxml"].xml)
    pmc.put_versions([new, a3, dataclasses.replace(layout["manuscript"], is_retracted=True),
                      dataclasses.replace(layout["missing"], missing_xml=False)])
    pmc.remove_version(layout["plain"].pmcid, 1)
    pmc.write_inventory(SNAPSHOT_2, parts=2)
    pmc.reset_count()
    report, _ = sync(pmc, tmp_path)
    fetched = {key for key, count in pmc.get_counts().items() if key.endswith(".xml") and count}
    assert fetched == {v.xml_key for v in (new, a3, layout["missing"], layout["bad_md5"])}
    json_read = {key for key, count in pmc.get_counts().items() if key.startswith("metadata/") and count}
    # The missing object's JSON did not change (same ETag): only its XML, never packed, is asked for again.
    assert json_read == {v.metadata_key for v in (new, a3, layout["manuscript"])}
    assert report.sync == 2 and report.withdrawn == 1 and report.metadata_reused == 6
    rows = catalog(tmp_path)
    assert rows[(a3.pmcid, 2)]["status"] == "superseded_version" and rows[(a3.pmcid, 3)]["status"] == "packed"
    assert rows[(layout["plain"].pmcid, 1)]["status"] == "withdrawn"
    assert rows[(layout["manuscript"].pmcid, 1)]["status"] == "retracted"
    # The dead list names every packed row that is no longer current, with its reason.
    dead = pq.read_table(tmp_path / "pmc" / "state" / "dead-00002.parquet").to_pylist()
    assert sorted((row["key"], row["reason"]) for row in dead) == sorted([
        (layout["a2"].metadata_key, "superseded_version"), (layout["plain"].metadata_key, "withdrawn"),
        (layout["manuscript"].metadata_key, "retracted")])


def test_a_killed_sync_resumes_without_refetching_what_it_packed(pmc, articles, tmp_path, monkeypatch):
    versions = list(articles.values())
    publish(pmc, versions, SNAPSHOT_1)
    real_add, added = pmc_cloud.ShardPacker.add, []

    def add_then_die(self, version, xml):
        if len(added) == 6:
            raise KeyboardInterrupt  # the process is killed while packing the 7th article
        added.append(version.key)
        return real_add(self, version, xml)

    monkeypatch.setattr(pmc_cloud.ShardPacker, "add", add_then_die)
    with pytest.raises(KeyboardInterrupt):
        sync(pmc, tmp_path, shard_bytes=1)  # every article its own shard
    monkeypatch.setattr(pmc_cloud.ShardPacker, "add", real_add)
    assert not (tmp_path / "pmc" / "state" / "CURRENT.json").exists()
    assert len(list((tmp_path / "pmc" / "shards").glob("s00001-*.parquet"))) == 6
    pmc.reset_count()
    report, messages = sync(pmc, tmp_path, shard_bytes=1)
    assert any("resuming sync 1: 6 shard(s)" in message for message in messages)
    fetched = {key for key, count in pmc.get_counts().items() if key.endswith(".xml") and count}
    assert fetched == {version.xml_key for version in versions if version.metadata_key not in added}
    assert (report.packed, report.already_packed) == (len(versions) - 6, 6)
    assert {row["status"] for row in catalog(tmp_path).values()} == {"packed"}
    assert len(packed(tmp_path)) == len(versions)


def test_a_bucket_without_an_inventory_is_an_error(pmc, tmp_path):
    with pytest.raises(SyncError, match="no inventory snapshot"):
        sync(pmc, tmp_path)
    assert not (tmp_path / "pmc" / "state").exists()


def test_the_command_line(pmc, articles, tmp_path, capsys):
    publish(pmc, list(articles.values())[:3], SNAPSHOT_1)
    assert main(["pubmed", "download", "--collections", "pmc", "--pmc-url", pmc.url, "--output",
                 str(tmp_path)]) == 0
    assert "3 versions listed, 3 selected; 3 packed now" in capsys.readouterr().out
    assert main(["pubmed", "download", "--collections", "oa_comm", "--output", str(tmp_path)]) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "removed the PMC FTP packages (oa_comm)" in error[0] and "--collections pmc" in error[0]


def stage(output, inputs):
    from gap_replay.core.runner import RunContext
    from gap_replay.pubmed_ingest.job import run_pubmed
    from gap_replay.stages import load_config

    ledger = run_pubmed(RunContext(load_config()), [str(path) for path in inputs], str(output))
    kept = {row["id"]: row for row in pq.read_table(output / "data").to_pylist()}
    dropped = {row["id"]: (row["reason"], row["detail"]) for row in pq.read_table(output / "drops").to_pylist()}
    return ledger, kept, dropped


def test_the_pubmed_stage_over_the_mirror_is_the_current_state_of_pmc(spark, pmc, articles, tmp_path):
    from tests.pubmed_ingest.test_jats import articleset

    layout = first_layout(articles)
    # A version whose XML is a <pmc-articleset> of two articles: one document each, under their own ids.
    layout["set"] = dataclasses.replace(articles["elife04490.xml"], pmcid="PMC9100001", xml=articleset(
        articles["ehp-116-1694.nxml"].xml, articles["pone.0000217.nxml"].xml))
    publish(pmc, layout.values(), SNAPSHOT_1)
    sync(pmc, tmp_path / "mirror", shard_bytes=60_000)  # several shards: several tasks
    a3 = dataclasses.replace(layout["a2"], version=3, xml=articles["6605965a.nxml"].xml)
    pmc.put_versions([a3, dataclasses.replace(layout["manuscript"], is_retracted=True)])
    pmc.remove_version(layout["plain"].pmcid, 1)
    pmc.write_inventory(SNAPSHOT_2)
    sync(pmc, tmp_path / "mirror", shard_bytes=60_000)
    sync(pmc, tmp_path / "fresh")  # one sync of the newer inventory, for comparison
    ledger, kept, dropped = stage(tmp_path / "out", [tmp_path / "mirror"])  # the folder holding pmc/
    _, fresh_kept, fresh_dropped = stage(tmp_path / "fresh-out", [tmp_path / "fresh" / "pmc"])
    # The same documents as a fresh sync of the newer inventory; the mirror's history is dropped with reasons.
    assert {id_: row["text"] for id_, row in kept.items()} == {id_: row["text"] for id_, row in fresh_kept.items()}
    assert set(kept) == {f"pmcid:{layout[name].pmcid}" for name in ("a2", "noncommercial")} | {
        "pmcid:PMC2599765", "pmcid:PMC1790863"}  # the set's two articles
    assert json.loads(kept["pmcid:PMC1790863"]["extra"])["pmc"]["key"] == layout["set"].xml_key
    pmcid = layout["a2"].pmcid
    assert dropped[f"pmcid:{pmcid}.2"][0] == "superseded_version"
    assert dropped[f"pmcid:{layout['plain'].pmcid}.1"][0] == "withdrawn"
    assert dropped[f"pmcid:{layout['manuscript'].pmcid}.1"][0] == "retracted"
    assert not fresh_dropped
    assert ledger.documents_in == len(kept) + len(dropped) == 7 and ledger.failed_inputs_total == 0
    # The service's metadata travels into the documents.
    paper = kept[f"pmcid:{pmcid}"]
    assert json.loads(paper["extra"])["pmc"] == {"version": 3, "license_code": "CC BY", "manuscript": False,
                                                 "mid": None, "key": a3.xml_key, "xml_pmcid": "PMC2994229"}
    assert paper["license"] == "cc-by" and paper["pmid"] == a3.pmid
    noncommercial = kept[f"pmcid:{layout['noncommercial'].pmcid}"]
    assert noncommercial["license"] == "cc-by-nc" and noncommercial["pmcid"] == layout["noncommercial"].pmcid


def test_reading_straight_from_the_bucket_gives_what_the_mirror_gives(spark, pmc, articles, tmp_path):
    from tests.pubmed_ingest.test_jats import articleset

    layout = first_layout(articles)
    layout["set"] = dataclasses.replace(articles["elife04490.xml"], pmcid="PMC9100001", xml=articleset(
        articles["mds526.nxml"].xml, articles["pone.0000217.nxml"].xml))
    publish(pmc, layout.values(), SNAPSHOT_1)
    sync(pmc, tmp_path / "mirror")
    _, mirror_kept, _ = stage(tmp_path / "from-mirror", [tmp_path / "mirror"])
    from gap_replay.core.runner import RunContext
    from gap_replay.pubmed_ingest.job import run_pubmed
    from gap_replay.stages import load_config

    context = RunContext(load_config(base={"pubmed": {"partitions": 3}}))
    ledger = run_pubmed(context, [pmc.url], str(tmp_path / "direct"))
    kept = {row["id"]: row for row in pq.read_table(tmp_path / "direct" / "data").to_pylist()}
    dropped = {row["id"]: row["reason"] for row in pq.read_table(tmp_path / "direct" / "drops").to_pylist()}
    def same(rows):  # extra.input names where the article was read: a shard, or a task's share of the service
        return {id_: (row["text"], row["license"], {k: v for k, v in json.loads(row["extra"]).items() if k != "input"})
                for id_, row in rows.items()}

    assert same(kept) == same(mirror_kept) and len(kept) == 6
    # Every listed version is accounted for in the stage, with the sync's reasons.
    assert dropped == {f"pmcid:{layout['a1'].pmcid}.1": "superseded_version",
                       f"pmcid:{layout['retracted'].pmcid}.1": "retracted",
                       f"pmcid:{layout['missing'].pmcid}.1": "missing_object",
                       f"pmcid:{layout['bad_md5'].pmcid}.1": "md5_mismatch"}
    assert ledger.inputs == 3 and ledger.documents_in == len(kept) + len(dropped)
    assert not (tmp_path / "direct" / "_pmc_plan").exists()  # the tasks' shares are not part of the output
    # A newer inventory is a new input: the finished output is not taken for it.
    from gap_replay.core.errors import OutputExistsError

    assert run_pubmed(context, [pmc.url], str(tmp_path / "direct")).seconds is None  # same inventory: reused
    pmc.write_inventory(SNAPSHOT_2)
    with pytest.raises(OutputExistsError):
        run_pubmed(context, [pmc.url], str(tmp_path / "direct"))


def test_a_task_whose_requests_keep_failing_fails_rather_than_dropping(tmp_path):
    import io

    from gap_replay.core.errors import TransientInputError
    from gap_replay.pubmed_ingest.pmc_direct import parse_plan

    plan = {"address": "http://127.0.0.1:9/pmc-oa-opendata", "snapshot": SNAPSHOT_1, "licenses": "all",
            "manuscripts": True, "concurrency": 2, "versions": [["metadata/PMC1.1.json", "0" * 32]]}
    with pytest.raises(TransientInputError, match="still failing after the retries"):
        list(parse_plan(io.BytesIO(json.dumps(plan).encode()), "pmc/x/task-00000.json", 1 << 20, retries=0))


def test_metadata_json_in_its_variants():
    from gap_replay.pubmed_ingest.pmc_cloud import parse_metadata

    md5 = "99210445" + "0" * 24
    meta = parse_metadata(json.dumps({
        "pmcid": "PMC12855588", "version": 1, "pmid": 41234567, "doi": "10.1016/j.isci.2025.114581",
        "license_code": "CC BY", "is_pmc_openaccess": True, "is_manuscript": False, "is_retracted": False,
        "xml_url": f"s3://pmc-oa-opendata/PMC12855588.1/PMC12855588.1.xml?md5={md5}"}).encode(),
        "metadata/PMC12855588.1.json")
    assert (meta["xml_key"], meta["xml_md5"], meta["pmid"]) == ("PMC12855588.1/PMC12855588.1.xml", md5, 41234567)
    https = parse_metadata(json.dumps({"pmcid": "12855588", "version": "2", "pmid": "41234567", "xml_url":
        f"https://pmc-oa-opendata.s3.amazonaws.com/PMC12855588.2/PMC12855588.2.xml?md5={md5.upper()}"}).encode(),
        "metadata/PMC12855588.2.json")
    assert (https["pmcid"], https["version"], https["pmid"], https["xml_md5"]) == ("PMC12855588", 2, 41234567, md5)
    assert https["xml_key"] == "PMC12855588.2/PMC12855588.2.xml" and https["license_code"] is None
    bare = parse_metadata(b'{"pmid": null, "xml_url": null}', "metadata/PMC7.3.json")
    assert (bare["pmcid"], bare["version"], bare["xml_key"], bare["xml_md5"]) == ("PMC7", 3, "PMC7.3/PMC7.3.xml", None)
    with pytest.raises(ValueError):
        parse_metadata(b"[1, 2]", "metadata/PMC7.3.json")


@pytest.mark.slow
def test_the_mirror_on_object_storage(spark, pmc, articles, tmp_path):
    import subprocess
    import sys

    from gap_replay.core import storage

    layout = first_layout(articles)
    publish(pmc, layout.values(), SNAPSHOT_1)
    mirror_bucket = f"mirror-{uuid.uuid4().hex[:8]}"
    pmc.client.create_bucket(Bucket=mirror_bucket)
    report, _ = sync(pmc, f"s3://{mirror_bucket}/gap")
    assert report.packed == 4
    assert json.loads(storage.read_text(f"s3://{mirror_bucket}/gap/pmc/summary.json"))["packed"] == 4
    pmc.reset_count()
    again, _ = sync(pmc, f"s3://{mirror_bucket}/gap")  # the same inventory: only what failed is asked for again
    assert (again.sync, again.packed, again.already_packed) == (2, 0, 4)
    assert pmc.get_counts() == {layout["missing"].xml_key: 1, layout["bad_md5"].xml_key: 2,
                                f"{pmc_cloud.INVENTORY_PREFIX}{SNAPSHOT_1}/manifest.json": 1,
                                **{key: 1 for key in pmc.get_counts() if key.endswith(".csv.gz")}}
    # The stage reads it from the bucket (in a process of its own: its Spark executors get the S3 endpoint).
    done = subprocess.run([sys.executable, "-m", "gap_replay.cli", "pubmed", "--input", f"s3://{mirror_bucket}/gap",
                           "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    kept = {row["id"] for row in pq.read_table(tmp_path / "out" / "data").to_pylist()}
    sync(pmc, tmp_path / "local")
    _, local_kept, _ = stage(tmp_path / "local-out", [tmp_path / "local"])
    assert kept == set(local_kept) and len(kept) == 4 and pq.read_table(tmp_path / "out" / "drops").num_rows == 0


@pytest.mark.slow
def test_a_sync_killed_by_a_signal_resumes(s3_server, articles, tmp_path):
    """A real kill: `gap-replay pubmed download --collections pmc` in a process of its own, SIGKILLed once its
    first shard is written; the rerun keeps that shard and fetches only the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time

    made = [dataclasses.replace(original, pmcid=f"PMC{7_000_000 + 11 * copy + number}")
            for copy in range(4) for number, original in enumerate(articles.values())]
    with StandInBucket(s3_server["AWS_ENDPOINT_URL"], f"pmc-oa-opendata-{uuid.uuid4().hex[:8]}",
                       latency=0.05) as slow:
        publish(slow, made, SNAPSHOT_1)
        command = [sys.executable, "-m", "gap_replay.cli", "pubmed", "download", "--collections", "pmc",
                   "--pmc-url", slow.proxy_url, "--output", str(tmp_path), "--set", "pubmed.pmc_concurrency=1",
                   "--set", "pubmed.pmc_shard_mib=1"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shards = tmp_path / "pmc" / "shards"
        deadline = time.monotonic() + 120
        while not list(shards.glob("s00001-*.parquet")) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        packed_before = set(pq.read_table(shards, columns=["xml_key"]).column("xml_key").to_pylist())
        assert 0 < len(packed_before) < len(made) and not (tmp_path / "pmc" / "state" / "CURRENT.json").exists()
        time.sleep(1)  # a request the killed process had in flight still reaches the proxy: not the rerun's
        assert not [path for path in shards.iterdir() if not path.name.startswith(".")  # a partial one is hidden
                    and not path.name.endswith(".parquet")]
        slow.reset_count()
        assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
        fetched = {key for key, count in slow.get_counts().items() if key.endswith(".xml") and count}
        assert fetched == {version.xml_key for version in made} - packed_before  # nothing packed is fetched again
    rows = catalog(tmp_path)
    assert len(rows) == len(made) and {row["status"] for row in rows.values()} == {"packed"}
    assert len(packed(tmp_path)) == len(made)


def test_which_inputs_name_the_service():
    from gap_replay.pubmed_ingest.pmc_direct import plan_tasks, service_address
    from gap_replay.pubmed_ingest.pmc_cloud import InventoryRow

    assert service_address("s3://pmc-oa-opendata/") == "https://pmc-oa-opendata.s3.amazonaws.com"
    assert service_address("s3://pmc-oa-opendata", "http://127.0.0.1:9000/b/") == "http://127.0.0.1:9000/b"
    assert service_address("http://127.0.0.1:9000/pmc-oa-opendata/") == "http://127.0.0.1:9000/pmc-oa-opendata"
    assert service_address("s3://my-bucket/pubmed") is None and service_address("/data/pmc") is None
    # Tasks of about the size asked for, a PMCID's versions never split between two.
    rows = [InventoryRow(f"metadata/PMC{n}.{v}.json", "e", "") for n in range(10, 20) for v in (1, 2, 3)[: 1 + n % 3]]
    tasks = plan_tasks(sorted(rows, key=lambda row: row.key), 4)
    assert sum(len(task) for task in tasks) == len(rows) and max(len(task) for task in tasks) <= 4 + 2
    pmcids = [{key.split("/")[1].split(".")[0] for key, _ in task} for task in tasks]
    assert all(not a & b for i, a in enumerate(pmcids) for b in pmcids[i + 1:])
