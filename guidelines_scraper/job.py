"""`gap-replay guidelines`: crawl the sources into a raw store, then extract documents on Spark.

Crawling runs on the driver, one source after another, through one polite fetcher (robots.txt,
per-host delays, retries), and keeps every response in the raw store; extraction is a Spark job over
that store, so it can be rerun without refetching. Each article URL is one input: kept as a document,
or dropped with the reason extraction gives (``fetch_error``, ``too_short``, ``extract_error``...).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pyarrow as pa

from gap_replay import storage
from gap_replay.ledger import StageLedger
from gap_replay.outcome import outcomes_to_batches
from gap_replay.progress import ProgressBar
from gap_replay.runner import RunContext, run_stage, stage_fingerprint
from gap_replay.schema import OUTCOME_SCHEMA
from gap_replay.shards import write_outcomes
from gap_replay.spark import spark_schema
from guidelines_scraper.crawl import crawl
from guidelines_scraper.extract import extract_records
from guidelines_scraper.fetch import Fetcher
from guidelines_scraper.local_site import sample_mirror, sample_site_root, serve_directory
from guidelines_scraper.raw_store import RAW_SCHEMA, RawStore
from guidelines_scraper.sources import GuidelineSource, load_sources, select_sources

STAGE = "guidelines"


def extract_partition(sources: Mapping[str, GuidelineSource]):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield from outcomes_to_batches(extract_records(batch.to_pylist(), sources), batch_size=64)

    return run


def latest_articles(spark, files: list[str], tags: list[str]):
    """The last stored record of each article URL of the `tags` sources (a refetch after a transient
    error supersedes the failed attempt)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    raw = spark.read.schema(spark_schema(RAW_SCHEMA)).parquet(*files).where((F.col("kind") == "article") & F.col("source").isin(tags))
    order = Window.partitionBy("source", "url").orderBy(F.col("fetched_at").desc(), F.col("body_sha256").desc())
    return raw.withColumn("_rank", F.row_number().over(order)).where(F.col("_rank") == 1).drop("_rank")


def run_guidelines(context: RunContext, output: str, sample: bool = False) -> StageLedger:
    settings = context.config.guidelines
    sources = load_sources(settings.sources_config or None)
    selected = select_sources(sources, settings.sources or None)
    output = storage.absolute_uri(output)
    raw_path = settings.raw_store or output.rstrip("/") + "-raw"
    fingerprint = stage_fingerprint(context.config, ["guidelines"], [], f"sample:{sample}")

    def produce(output_dir) -> StageLedger:
        fetcher = Fetcher(user_agent=settings.user_agent, min_delay=settings.request_delay,
                          read_timeout=settings.timeout, max_retries=settings.max_retries)
        bar = ProgressBar("crawling", context.stream)
        limit = settings.max_pages_per_source or None
        with RawStore(raw_path) as store:
            if sample:
                with serve_directory(sample_site_root()) as base:
                    context.say(f"guidelines: serving the sample site at {base}")
                    report = crawl(selected, store, fetcher=fetcher, mirror=sample_mirror(base, selected),
                                   max_pages_per_source=limit, progress=bar.update)
            else:
                report = crawl(selected, store, fetcher=fetcher, max_pages_per_source=limit, progress=bar.update)
            files = [str(path) for path in store.files()]
        for line in report.summary().splitlines():
            context.say(f"guidelines: {line}")
        spark = context.spark
        by_tag = {source.tag: source for source in selected}
        if not files:
            articles = spark.createDataFrame([], spark_schema(RAW_SCHEMA))
        else:
            articles = latest_articles(spark, files, sorted(by_tag))
        outcomes = articles.mapInArrow(extract_partition(by_tag), spark_schema(OUTCOME_SCHEMA))
        return write_outcomes(outcomes, output_dir.staging, STAGE)

    return run_stage(context, STAGE, output, fingerprint, produce)
