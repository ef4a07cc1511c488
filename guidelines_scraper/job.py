"""`gap-replay guidelines`: crawl the sources on Spark into a raw store, then extract documents on Spark.

Crawling: the selected sources are grouped into *units* (:func:`~guidelines_scraper.crawl.crawl_units`:
sources whose allowed hosts overlap share a unit; in practice one unit per site), and each unit is
crawled, discovery included, by one Spark task with its own polite fetcher (robots.txt, per-host
delay, retries). Since no host is reachable from two units, every request to a host goes through
one fetcher, however many executors run: politeness holds across the cluster. Each task appends to
the raw store through its own writer (unique file names per task attempt; each response durable
before the next request), so a crawl killed and rerun fetches no stored article again. The attempts
of one task are one crawler too: a task holds its unit's crawl lease in the raw store while it
crawls, so a retry started while an earlier attempt still runs, or a speculative copy, waits for it
(and never fetches meanwhile); the attempts share the crawl's run id, so the next attempt takes what
the earlier ones stored (robots.txt, listings and sitemaps included) and fetches no page twice
(:mod:`~guidelines_scraper.crawl`), even when they died by SIGKILL.
Each unit is its own Spark job, submitted from a driver thread, so the driver reports each unit's
sources as soon as its task finishes.
The raw store is written by the executors, so on a cluster ``guidelines.raw_store`` must be a
directory every executor sees at the same path (a shared POSIX mount: NFS, EFS, Filestore...).
Object stores cannot hold it: the store appends to open WARC files, fsyncs each response before
the next request, renames finished files and takes lock files, none of which S3 or GCS offer, so an
``s3://``/``gs://`` raw store is refused (:func:`raw_store_path`). With the stage output on object
storage and no raw store configured, a local master keeps it in the local cache directory; any
other master must be told where it goes.

Extraction is a Spark job over the raw store, so it can be rerun without refetching. Each article
URL is one input (its newest record, unless that is a transient failure and an older usable one
exists): kept as a document, or dropped with the reason extraction gives (``fetch_error``,
``too_short``, ``extract_error``...). Then title deduplication within each source (the paper's
rule): of the documents of one source with the same title (:func:`~guidelines_scraper.extract.title_key`),
the one with the longest text (then the smallest id) is kept, the others are dropped as
``duplicate_title`` with the kept document's id as the detail.

Recrawl: with ``guidelines.recrawl = true`` in the configuration the stored articles are fetched
again with conditional requests (``If-None-Match``/``If-Modified-Since``); a 304 keeps the stored
body. Without it, articles already stored are not fetched again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from typing import Any

import pyarrow as pa

from gap_replay.core import storage
from gap_replay.core.errors import ConfigError, InputError
from gap_replay.core.ledger import StageLedger
from gap_replay.core.outcome import Drop, outcomes_to_batches
from gap_replay.core.progress import progress_bars
from gap_replay.core.runner import RunContext, run_stage, stage_fingerprint
from gap_replay.core.schema import DROP_DETAIL, DROP_REASON, OUTCOME_SCHEMA
from gap_replay.core.shards import DATA_DIR, DROPS_DIR, part_count, write_outcomes
from gap_replay.core.spark import is_local_master, spark_schema
from gap_replay.guidelines_scraper.crawl import CrawlReport, SourceReport, crawl, crawl_units
from gap_replay.guidelines_scraper.extract import DOCUMENT_SOURCE, DUPLICATE_TITLE, extract_records, title_key
from gap_replay.guidelines_scraper.fetch import Fetcher
from gap_replay.guidelines_scraper.health import healths_by_tag
from gap_replay.guidelines_scraper.local_site import sample_mirror, sample_site_root, serve_directory
from gap_replay.guidelines_scraper.raw_store import RAW_SCHEMA, RawStore, crawl_lease, read_warc_records
from gap_replay.guidelines_scraper.settings import GuidelinesConfig
from gap_replay.guidelines_scraper.sources import GuidelineSource, load_sources, select_sources

STAGE = "guidelines"
TITLE_KEY = "_title_key"
EXTRACT_SCHEMA = OUTCOME_SCHEMA.append(pa.field(TITLE_KEY, pa.string()))


# -- crawling ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CrawlTask:
    """What one Spark task needs to crawl one unit (picklable)."""

    sources: tuple[GuidelineSource, ...]
    raw_store: str
    fetcher: tuple[tuple[str, Any], ...]      # Fetcher keyword arguments
    mirror: tuple[tuple[str, str], ...] = ()
    max_pages_per_source: int | None = None
    recrawl: bool = False
    run: str | None = None                    # the crawl run: its attempts share what they stored


def _waiting_for_lease(tags: list[str], holder: str) -> None:
    print(f"guidelines crawl of {', '.join(tags)}: another attempt holds the crawl lease ({holder}); waiting for it "
          "to end, then resuming from what it stored", file=sys.stderr, flush=True)


def run_crawl_task(task: CrawlTask) -> dict[str, dict[str, Any]]:
    """Crawl one unit (runs inside a Spark task, or anywhere); returns its per-source reports.

    The unit's crawl lease is taken first, so one attempt at a time crawls it: another attempt of the
    task (a retry, a speculative copy) waits until this one ends, then opens the store (recovering a
    dead attempt's records) and takes the answers this run already stored instead of fetching them."""
    tags = [source.tag for source in task.sources]
    with crawl_lease(task.raw_store, tags, on_wait=lambda holder: _waiting_for_lease(tags, holder)), \
            RawStore(task.raw_store, run=task.run) as store, Fetcher(**dict(task.fetcher)) as fetcher:
        report = crawl(task.sources, store, fetcher=fetcher, mirror=dict(task.mirror),
                       max_pages_per_source=task.max_pages_per_source, recrawl=task.recrawl)
    return {tag: dataclasses.asdict(rep) for tag, rep in report.sources.items()}


def crawl_on_spark(spark, tasks: list[CrawlTask], on_done=None) -> CrawlReport:
    """Run each task as a one-task Spark job, concurrently; `on_done(task, reports)` on the driver as
    each finishes. Returns the merged report."""
    context = spark.sparkContext
    report = CrawlReport()

    def run(task: CrawlTask) -> dict[str, dict[str, Any]]:
        tags = ",".join(source.tag for source in task.sources)
        context.setJobDescription(f"crawl guideline sources {tags}")
        return context.parallelize([task], 1).map(run_crawl_task).collect()[0]

    if not tasks:
        return report
    with ThreadPoolExecutor(max_workers=min(len(tasks), 32), thread_name_prefix="crawl") as pool:
        futures = {pool.submit(run, task): task for task in tasks}
        results: dict[int, dict[str, dict[str, Any]]] = {}
        for future in as_completed(futures):
            task = futures[future]
            reports = future.result()
            results[tasks.index(task)] = reports
            if on_done is not None:
                on_done(task, reports)
    for index in range(len(tasks)):  # in source order, whatever the order tasks finished in
        for tag, values in results[index].items():
            report.sources[tag] = SourceReport(**values)
    return report


def crawl_tasks(sources: list[GuidelineSource], raw_store: str, fetcher: Mapping[str, Any],
                mirror: Mapping[str, str] | None = None, max_pages_per_source: int | None = None,
                recrawl: bool = False, run: str | None = None) -> list[CrawlTask]:
    """One task per crawl unit of `sources`, all of one crawl run (`run`, by default a new one): the
    attempts of a task take each other's answers from the raw store; a later run fetches listings again."""
    run = run or uuid.uuid4().hex[:16]
    return [CrawlTask(tuple(unit), raw_store, tuple(sorted(fetcher.items())), tuple(sorted((mirror or {}).items())),
                      max_pages_per_source, recrawl, run) for unit in crawl_units(sources)]


# -- extraction ----------------------------------------------------------------------------------

def extract_partition(sources: Mapping[str, GuidelineSource]):
    """mapInArrow function: raw article records -> outcomes, with the title key of kept documents."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for out in outcomes_to_batches(extract_records(batch.to_pylist(), sources), batch_size=64):
                keys = [title_key(title) if reason is None else None
                        for title, reason in zip(out.column("title").to_pylist(), out.column(DROP_REASON).to_pylist())]
                yield pa.RecordBatch.from_arrays(out.columns + [pa.array(keys, pa.string())], schema=EXTRACT_SCHEMA)

    return run


def _transient(status, error):
    """Column expression of raw_store.is_transient."""
    from pyspark.sql import functions as F

    no_response = status.isNull() & (error.isNull() | ~error.startswith("disallowed by robots.txt"))
    return F.coalesce(no_response | (status == 429) | (status >= 500), F.lit(False))


def read_raw_files(files: list[str], kinds: list[str], tags: list[str]):
    """mapInArrow function: file indexes (``id``) -> the raw records of those WARC files."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for index in batch.column("id").to_pylist():
                rows = []
                for row in read_warc_records(files[index], kinds, tags):
                    rows.append(row)
                    if len(rows) == 64:
                        yield pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)
                        rows = []
                if rows:
                    yield pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)

    return run


def latest_articles(spark, files: list[str], tags: list[str]):
    """One record per article URL of the `tags` sources: the newest one that is not a transient failure,
    else the newest (a refetch after a 503 supersedes the failure; a recrawl's 503 does not hide the
    page stored before it)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    raw = (spark.range(0, len(files), 1, numPartitions=max(1, len(files)))  # one task per WARC file
           .mapInArrow(read_raw_files(files, ["article"], tags), spark_schema(RAW_SCHEMA)))
    order = Window.partitionBy("source", "url").orderBy(
        _transient(F.col("status"), F.col("error")).asc(), F.col("fetched_at").desc(), F.col("body_sha256").desc())
    return raw.withColumn("_rank", F.row_number().over(order)).where(F.col("_rank") == 1).drop("_rank")


def deduplicate_titles(outcomes):
    """Title deduplication within each source on the outcome DataFrame (see the module docstring)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    candidate = F.col(DROP_REASON).isNull() & F.col(TITLE_KEY).isNotNull()
    order = Window.partitionBy("subset", TITLE_KEY).orderBy(F.length("text").desc(), F.col("id").asc())
    with_kept = outcomes.withColumn("_kept_id", F.when(candidate, F.first("id").over(order)))
    duplicate = candidate & (F.col("_kept_id") != F.col("id"))
    return (with_kept
            .withColumn(DROP_DETAIL, F.when(duplicate, F.col("_kept_id")).otherwise(F.col(DROP_DETAIL)))
            .withColumn(DROP_REASON, F.when(duplicate, F.lit(DUPLICATE_TITLE)).otherwise(F.col(DROP_REASON)))
            .drop("_kept_id", TITLE_KEY))


def written_outcomes(staging: str) -> Iterator[dict | Drop]:
    """The outcomes a stage output holds, light: kept documents as ``subset`` and ``extra``, drops
    with their reason and detail (for the per-source tally; no text is read)."""
    import pyarrow.parquet as pq

    for directory, columns in ((DATA_DIR, ["subset", "extra"]), (DROPS_DIR, ["id", "reason", "detail"])):
        for file in storage.list_files(storage.join(staging, directory)):
            fs, path = storage.resolve(file)
            for row in pq.read_table(path, columns=columns, filesystem=fs).to_pylist():
                yield row if directory == DATA_DIR else Drop(id=row["id"], reason=row["reason"], detail=row["detail"],
                                                             source=DOCUMENT_SOURCE)


# -- the stage -----------------------------------------------------------------------------------

def raw_store_path(settings: GuidelinesConfig, output: str, master: str) -> str:
    """Where the raw store lives: ``guidelines.raw_store``, else beside `output` (see the module
    docstring for object storage)."""
    if settings.raw_store:
        if "://" in settings.raw_store and not settings.raw_store.startswith("file:"):
            raise ConfigError(f"guidelines.raw_store = {settings.raw_store}: the raw store needs a POSIX filesystem "
                              "(append, fsync, rename, lock files), not object storage; give a local or shared-mount "
                              "directory")
        return storage.absolute_uri(settings.raw_store.removeprefix("file://"))
    if "://" not in output:
        return output.rstrip("/") + "-raw"
    if is_local_master(master):  # every executor is on this machine: its cache directory will do
        return storage.join(storage.cache_root(), "raw-stores", hashlib.sha256(output.encode()).hexdigest()[:16])
    raise ConfigError(f"the guidelines output {output} is on object storage, where the raw store cannot live; "
                      "set guidelines.raw_store (or --raw-store) to a directory every executor mounts")


def run_guidelines(context: RunContext, inputs: Sequence[str], output: str,
                   settings: GuidelinesConfig | None = None) -> StageLedger:
    """Crawl the selected sources (the stage reads no inputs; `inputs` must be empty) into `output`.

    With ``context.sample`` the embedded sample's guideline site is served on 127.0.0.1 and crawled."""
    if inputs:
        raise InputError("the guidelines stage takes no inputs: it crawls the sources in [guidelines]")
    settings = settings or context.config.guidelines
    sample = context.sample
    sources = load_sources(settings.sources_config or None)
    selected = select_sources(sources, settings.sources or None)
    output = storage.absolute_uri(output)
    raw_path = raw_store_path(settings, output, context.config.spark.master)
    fingerprint = stage_fingerprint(context.config, ["guidelines"], [], f"sample:{sample}")
    recrawl = bool(getattr(settings, "recrawl", False))

    def produce(output_dir) -> StageLedger:
        fetch_settings = {"user_agent": settings.user_agent, "min_delay": settings.request_delay,
                          "read_timeout": settings.timeout, "max_retries": settings.max_retries}
        limit = settings.max_pages_per_source or None
        spark = context.spark
        if "://" in output and not settings.raw_store:
            context.say(f"guidelines: raw store in {raw_path} (the output is on object storage)")
        RawStore(raw_path).close()  # create it; recover the open files of a crawl killed before
        progress = progress_bars("crawled", context.stream, unit="source")
        total = len(selected)
        finished = 0

        crawled: dict[str, SourceReport] = {}

        def on_done(task: CrawlTask, reports: dict[str, dict[str, Any]]) -> None:
            nonlocal finished
            finished += len(task.sources)
            for tag, values in reports.items():
                crawled[tag] = SourceReport(**values)
                context.say(f"guidelines: {CrawlReport({tag: crawled[tag]}).summary()}")
            progress("sources", finished, total)

        with serve_directory(sample_site_root()) if sample else nullcontext(None) as base:
            mirror = sample_mirror(base, selected) if sample else {}
            if sample:
                context.say(f"guidelines: serving the sample site at {base}")
            tasks = crawl_tasks(selected, str(raw_path), fetch_settings, mirror, limit, recrawl)
            context.say(f"guidelines: crawling {total} source(s) in {len(tasks)} Spark task(s), one per site")
            crawl_on_spark(spark, tasks, on_done)
        store = RawStore(raw_path)  # recovers the open WARC file of any task attempt that died
        files = [str(path) for path in store.files()]
        by_tag = {source.tag: source for source in selected}
        if not files:
            articles = spark.createDataFrame([], spark_schema(RAW_SCHEMA))
        else:
            articles = latest_articles(spark, files, sorted(by_tag))
        outcomes = articles.mapInArrow(extract_partition(by_tag), spark_schema(EXTRACT_SCHEMA))
        parts = part_count(storage.total_size(files), context.config.spark.part_mib)
        ledger = write_outcomes(deduplicate_titles(outcomes), output_dir.staging, STAGE, parts=parts)
        # Each source's health (links, fetches, extractions, fallbacks, failures by reason): a full crawl
        # reports site rot as `guidelines check` does.
        healths = healths_by_tag(by_tag, crawled, written_outcomes(output_dir.staging), fixture=sample)
        for health in healths.values():
            context.say(f"guidelines: {health.line()}")
        ledger.details = {"sources": {tag: health.to_dict() for tag, health in healths.items()}}
        return ledger

    return run_stage(context, STAGE, output, fingerprint, produce)
