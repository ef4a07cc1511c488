"""The PMC Cloud Service route: how fast a sync mirrors the bucket, and how fast the pubmed stage reads the
packed mirror against the same articles as loose files.

A stand-in of the bucket (moto's S3 server on 127.0.0.1, laid out as ../shared/PMC_CLOUD.md describes, by
tests/pubmed_ingest/pmc_bucket.py) holds N article versions (default 1,100: the 11 real articles of
../shared/data/pmc, each 100 times under new PMCIDs, so the XML has the real size mix, 60 KB mean). Every
request goes through a proxy that waits ``--latency`` seconds first (default 30 ms: S3 from a machine in
another region), so the sync's concurrency matters as it does against the real service.

- ``sync``: ``pmc_cloud.sync_pmc`` into a new mirror at two concurrency levels (default 4 and 32): versions
  and requests per second, and the projected wall time to mirror 8 million versions at that rate (on this
  machine, whose two cores also run the stand-in server and the proxy).
- ``resync``: a month later, 2% of the versions new: the requests and time of syncing the mirror again
  (the inventory, then the JSON and XML of the new versions only).
- ``stage``: ``gap-replay pubmed`` (``run_pubmed``, one local Spark session, started outside the timings)
  over the packed mirror (shards of ``--shard-mib``) against the same N articles as loose ``.nxml`` files
  (one file each: one Spark task each, as the stage plans loose inputs): papers per second per core, their
  ratio (target: packed at least 3x loose), and the shards' balance (largest shard over the mean, in XML bytes
  and in articles: no task holds much more than its share).

Prints one JSON line. ``python bench/pmc_sync.py [--copies 100] [--latency 0.03] [--concurrency 4 32]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the stand-in bucket lives with the tests

from tests.pubmed_ingest.pmc_bucket import StandInBucket, shared_versions  # noqa: E402

SHARED_PMC = ROOT.parent / "shared" / "data" / "pmc"
ALL_VERSIONS = 8_000_000
TARGET_RATIO = 3.0
_PMC_ID = re.compile(rb'<article-id pub-id-type="pmc(?:id)?">[^<]*</article-id>')


def with_pmcid(xml: bytes, pmcid: str) -> bytes:
    """The article with its PMC id replaced (or added): copies of one article are distinct papers."""
    xml = _PMC_ID.sub(b"", xml)
    return re.sub(rb"(<article-meta[^>]*>)", lambda m: m.group(1) + f'<article-id pub-id-type="pmc">{pmcid}'
                  f"</article-id>".encode(), xml, count=1)


def versions(copies: int) -> list:
    made = []
    for original in shared_versions(SHARED_PMC):
        for copy in range(copies):
            pmcid = f"PMC{8_000_000 + len(made)}"
            made.append(dataclasses.replace(original, pmcid=pmcid, xml=with_pmcid(original.xml, pmcid)))
    return made


def timed_sync(bucket: StandInBucket, output: Path, concurrency: int, shard_bytes: int) -> dict:
    from gap_replay.pubmed_ingest.pmc_cloud import sync_pmc

    bucket.reset_count()
    started = time.perf_counter()
    report = sync_pmc(str(output), pmc_url=bucket.proxy_url, concurrency=concurrency, shard_bytes=shard_bytes,
                      say=lambda message: None)
    seconds = time.perf_counter() - started
    rate = report.packed / seconds
    return {"concurrency": concurrency, "seconds": round(seconds, 2), "versions": report.packed,
            "requests": report.requests, "versions_per_s": round(rate, 1),
            "requests_per_s": round(report.requests / seconds, 1), "mib_per_s": round(report.bytes_fetched / seconds / 2**20, 2),
            "projected_hours_for_8M_versions": round(ALL_VERSIONS / rate / 3600, 1)}


def timed_stage(context, inputs: list[str], output: Path) -> tuple[float, object]:
    from gap_replay.pubmed_ingest.job import run_pubmed

    started = time.perf_counter()
    ledger = run_pubmed(context, inputs, str(output))
    return time.perf_counter() - started, ledger


def shard_balance(mirror: Path) -> dict:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    sizes, counts = [], []
    for shard in sorted((mirror / "pmc" / "shards").glob("*.parquet")):
        table = pq.read_table(shard, columns=["xml"])
        sizes.append(pc.sum(pc.binary_length(table.column("xml"))).as_py())
        counts.append(table.num_rows)
    mean_size, mean_count = sum(sizes) / len(sizes), sum(counts) / len(counts)
    # The last shard of a sync holds what is left: the balance is judged on the others.
    full = sizes[:-1] or sizes
    return {"shards": len(sizes), "articles_per_shard_max": max(counts), "articles_per_shard_mean": round(mean_count, 1),
            "xml_mib_per_shard_max": round(max(sizes) / 2**20, 2), "xml_mib_per_shard_mean": round(mean_size / 2**20, 2),
            "largest_over_mean_full_shards": round(max(full) / (sum(full) / len(full)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=100, help="copies of each real article (default 100)")
    parser.add_argument("--latency", type=float, default=0.03, help="seconds added to every request (default 0.03)")
    parser.add_argument("--concurrency", type=int, nargs=2, default=[4, 32], help="two levels (default 4 32)")
    parser.add_argument("--shard-mib", type=float, default=8.0, help="XML per packed shard (default 8 MiB)")
    args = parser.parse_args()
    os.environ.setdefault("GAP_REPLAY_SPARK_LOG", os.path.join(tempfile.gettempdir(), "gap-replay-bench-pmc-spark.log"))

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the stand-in server's request log

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_REGION": "us-east-1"}.items():
        os.environ.setdefault(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    workdir = Path(tempfile.mkdtemp(prefix="gap-pmc-bench-"))
    result: dict = {"bench": "pmc_sync", "latency_s": args.latency, "cpus": os.cpu_count()}
    try:
        made = versions(args.copies)
        bucket = StandInBucket(f"http://{host}:{port}", f"pmc-oa-opendata-{uuid.uuid4().hex[:8]}", latency=args.latency)
        started = time.perf_counter()
        bucket.put_versions(made)
        bucket.write_inventory("2026-12-01T01-00Z", parts=5)
        result["stand_in"] = {"versions": len(made), "xml_mib": round(sum(len(v.xml) for v in made) / 2**20, 1),
                              "seconds_to_build": round(time.perf_counter() - started, 1)}
        shard_bytes = int(args.shard_mib * 2**20)
        result["sync"] = [timed_sync(bucket, workdir / f"mirror-{level}", level, shard_bytes)
                          for level in args.concurrency]
        mirror = workdir / f"mirror-{args.concurrency[-1]}"
        result["shards"] = shard_balance(mirror)
        # A month later: 2% of the versions are new (a second version of existing PMCIDs); re-sync the mirror.
        changed = [dataclasses.replace(version, version=2) for version in made[:: 50]]
        bucket.put_versions(changed)
        bucket.write_inventory("2027-01-01T01-00Z", parts=5)
        resync = timed_sync(bucket, mirror, args.concurrency[-1], shard_bytes)
        result["resync"] = {"changed_versions": len(changed), "seconds": resync["seconds"],
                            "requests": resync["requests"], "versions_packed": resync["versions"]}
        bucket.close()

        loose = workdir / "loose"
        loose.mkdir()
        for version in made:
            (loose / f"{version.pmcid}.nxml").write_bytes(version.xml)

        from gap_replay.core.runner import RunContext
        from gap_replay.stages import load_config

        context = RunContext(load_config(), stream=open(os.devnull, "w"))
        context.spark  # noqa: B018 - start Spark outside the timings
        cores = context.spark.sparkContext.defaultParallelism
        packed_seconds, packed = timed_stage(context, [str(mirror)], workdir / "stage-packed")
        loose_seconds, loose_ledger = timed_stage(context, [str(loose)], workdir / "stage-loose")
        context.spark.stop()
        packed_rate = packed.kept / packed_seconds / cores
        loose_rate = loose_ledger.kept / loose_seconds / cores
        result["stage"] = {
            "cores": cores, "papers": packed.kept, "loose_papers": loose_ledger.kept,
            "packed": {"seconds": round(packed_seconds, 2), "tasks": result["shards"]["shards"],
                       "papers_per_s_per_core": round(packed_rate, 1)},
            "loose": {"seconds": round(loose_seconds, 2), "tasks": len(made),
                      "papers_per_s_per_core": round(loose_rate, 1)},
            "packed_over_loose": round(packed_rate / loose_rate, 2), "target": TARGET_RATIO,
            "met": packed_rate / loose_rate >= TARGET_RATIO,
        }
        result["load_average_1min"] = round(os.getloadavg()[0], 2)
    finally:
        server.stop()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
