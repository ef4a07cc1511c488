"""The guidelines crawl on a local Spark session that retries failed tasks (``local[2,4]``), undisturbed or
with the first two attempts of each crawl task disturbed mid-crawl:

    python crawl_retry_run.py WORKDIR

Two crawl units (two Spark tasks): a listing source (3 listing pages, 24 articles) and a sitemap source
(robots.txt names a sitemap index; 2 sitemaps, one gzipped, 8 articles). Three crawls, each with its own
site server and raw store: ``none``; ``fail``, where the first attempt of each task raises before its third request
and the second before its sixth (the third finishes); ``kill``, the same with the Python worker SIGKILLed
instead. Prints, per crawl, as JSON: the requests the site received per path, the per-source reports, the
stored records (without fetch times) and the attempts that were disturbed.

The site and sources are also what ``test_crawl_lease.py`` crawls without Spark."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

LISTED = "https://listed.example.org"
MAPPED = "https://mapped.example.org"
LISTED_ARTICLES, MAPPED_ARTICLES = 24, 8
FAIL_BEFORE = {0: 3, 1: 6}  # n-th disturbance of a task -> the request it fails before (from its own first)


def make_sites(root: Path) -> None:
    """``root/listed`` and ``root/mapped``, served under one base (see :func:`mirror`)."""
    listed, mapped = root / "listed", root / "mapped"
    (listed / "list").mkdir(parents=True)
    (listed / "guidance").mkdir()
    (mapped / "pathway").mkdir(parents=True)
    per_page = 8
    for page in range(1, LISTED_ARTICLES // per_page + 1):
        links = "".join(f'<li><a href="/guidance/g{n:03d}">Guideline {n}</a></li>'
                        for n in range((page - 1) * per_page + 1, page * per_page + 1))
        nxt = f'<a href="/list/{page + 1}">Next</a>' if page * per_page < LISTED_ARTICLES else ""
        (listed / "list" / str(page)).write_text(f"<html><body><ul>{links}</ul>{nxt}</body></html>")
    for n in range(1, LISTED_ARTICLES + 1):
        (listed / "guidance" / f"g{n:03d}").write_text(
            f"<html><head><title>Guideline {n}</title></head><body><article><h1>Guideline {n}</h1>"
            f"<p>Recommendation {n}: offer the treatment to adults who meet the criteria, and review it yearly.</p>"
            "</article></body></html>")
    (listed / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")

    import gzip

    def urlset(numbers) -> str:
        locs = "".join(f"<url><loc>{MAPPED}/pathway/p{n:02d}</loc></url>" for n in numbers)
        return f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'

    (mapped / "robots.txt").write_text(f"User-agent: *\nAllow: /\nSitemap: {MAPPED}/sitemap-index.xml\n")
    (mapped / "sitemap-index.xml").write_text(
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{MAPPED}/sitemap-1.xml</loc></sitemap><sitemap><loc>{MAPPED}/sitemap-2.xml.gz</loc></sitemap>"
        "</sitemapindex>")
    (mapped / "sitemap-1.xml").write_text(urlset(range(1, 5)))
    (mapped / "sitemap-2.xml.gz").write_bytes(gzip.compress(urlset(range(5, MAPPED_ARTICLES + 1)).encode(), mtime=0))
    for n in range(1, MAPPED_ARTICLES + 1):
        (mapped / "pathway" / f"p{n:02d}").write_text(
            f"<html><head><title>Pathway {n}</title></head><body><main><h1>Pathway {n}</h1>"
            f"<p>Step {n}: refer the patient within two weeks when the criteria are met.</p></main></body></html>")


def sources():
    from gap_replay.guidelines_scraper.sources import parse_sources

    return list(parse_sources({
        "listed": dict(name="Listed", base_url=LISTED, seeds=["/list/1"], discovery="listing",
                       listing_pattern=r"/list/\d+$", link_pattern=r"/guidance/", min_words=10),
        "mapped": dict(name="Mapped", base_url=MAPPED, seeds=[], discovery="sitemap", link_pattern=r"/pathway/",
                       min_words=10),
    }).values())


def mirror(base: str) -> dict[str, str]:
    return {LISTED: f"{base}/listed", MAPPED: f"{base}/mapped"}


def stored(raw: Path) -> list[list]:
    """Every record of a raw store as (source, kind, url, final_url, status, body sha256, error), sorted: what
    a crawl stored, whenever it fetched it."""
    from gap_replay.guidelines_scraper.raw_store import RawStore

    return sorted([r["source"], r["kind"], r["url"], r["final_url"], r["status"], r["body_sha256"], r["error"] or ""]
                  for r in RawStore(raw).records())


def disturbed(real, mode: str, markers: str):
    """`real` (run_crawl_task) with the first two attempts of each task that reach it failing mid-crawl
    (`mode` fail or kill): the n-th disturbance of a task fails before its request ``FAIL_BEFORE[n]`` and
    leaves a file ``<tags>.<n>`` in `markers`. Counted by disturbance, not by attempt number, so an attempt
    that fails for a reason of Spark's own (it retries it too) does not use up a planned disturbance; every
    attempt appends (tags, attempt, fetches, outcome) to ``markers/attempts.jsonl`` for the test's message."""

    def run(task):
        from gap_replay.core.spark import task_identity
        from gap_replay.guidelines_scraper import fetch

        tags = "+".join(s.tag for s in task.sources)
        attempt = task_identity()[1]
        ordinal = sum(1 for p in Path(markers).iterdir() if p.name.startswith(f"{tags}."))
        limit = FAIL_BEFORE.get(ordinal)
        original, calls, outcome = fetch.Fetcher.fetch, [], "raised"

        def log(outcome: str) -> None:
            with open(Path(markers, "attempts.jsonl"), "a") as out:
                out.write(json.dumps([tags, attempt, len(calls), outcome]) + "\n")

        def counting(self, url, **kwargs):
            calls.append(url)
            if len(calls) == limit:
                Path(markers, f"{tags}.{ordinal}").touch()
                log("killed" if mode == "kill" else "failed")
                if mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError(f"attempt {attempt} fails before its request {limit} ({url})")
            return original(self, url, **kwargs)

        fetch.Fetcher.fetch = counting
        try:
            result = real(task)
            outcome = "finished"
            return result
        finally:
            fetch.Fetcher.fetch = original
            if len(calls) != limit:  # the planned failure logged itself
                log(outcome)

    return run


def _attempts(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def main() -> None:
    from gap_replay.core.config import SparkConfig
    from gap_replay.core.spark import spark_session
    from gap_replay.guidelines_scraper import job
    from gap_replay.guidelines_scraper.local_site import serve_site

    work = Path(sys.argv[1])
    spark = spark_session(SparkConfig(master="local[2,4]"))
    real = job.run_crawl_task
    results = {}
    for mode in ("none", "fail", "kill"):
        root, raw, markers = work / mode / "site", work / mode / "raw", work / mode / "disturbed"
        root.mkdir(parents=True)
        markers.mkdir()
        make_sites(root)
        job.run_crawl_task = real if mode == "none" else disturbed(real, mode, str(markers))
        with serve_site(root) as site:
            tasks = job.crawl_tasks(sources(), str(raw), {"min_delay": 0.0, "read_timeout": 30.0}, mirror(site.base))
            report = job.crawl_on_spark(spark, tasks)
        results[mode] = {"requests": dict(site.requests), "served": dict(site.served),
                         "reports": {tag: vars(rep) for tag, rep in report.sources.items()},
                         "records": stored(raw), "disturbed": sorted(p.name for p in markers.iterdir() if p.suffix != ".jsonl"),
                         "attempts": _attempts(markers / "attempts.jsonl"),
                         "left": sorted(p.name for p in raw.iterdir() if p.name.startswith("."))}
    job.run_crawl_task = real
    print(json.dumps(results))
    spark.stop()


if __name__ == "__main__":
    main()
