"""The Spark session factory: local[*] by default, any master by configuration, quiet logs."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager
from collections.abc import Mapping
from importlib import resources

import pyarrow as pa

from gap_replay.core.config import SparkConfig


class SparkStartError(RuntimeError):
    """Spark could not start (no Java, unreachable master...)."""


# Where the object store is, not who may use it: credentials come from each machine's own
# environment, profile or instance role (Spark's conf is visible in its UI and event log).
FORWARDED_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION")

# Every Python worker already has a core of its own (one task per core): a tokenizer's thread pool sized to
# all the machine's cores in each of them oversubscribes it (cores x cores threads). The driver's own
# tokenizer (the mixer training one) keeps its threads. Any of these may be set again with --spark-conf.
# SPARK_SIMPLIFIED_TRACEBACK: Spark SQL sets it for its Python workers and keeps a pool of workers per set of
# variables; set for all, plain Python jobs (core.shards.run_part_tasks) reuse the same workers instead of
# keeping a second pool alive beside them.
EXECUTOR_ENV = {"RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "SPARK_SIMPLIFIED_TRACEBACK": "1"}

# Arrow batches between the JVM and Python workers (mapInArrow): at most maxRecordsPerBatch rows (Spark's 10,000)
# and at most this many bytes (Spark 4.1's own bound is 64 MiB), so that the memory of a Python worker follows the
# batch's bytes, not its rows: 10,000 full-text papers (~50 kB each) would be half a gigabyte in one batch.
ARROW_MAX_BYTES_PER_BATCH = 32 << 20


def _log4j_config() -> str:
    return str(resources.files("gap_replay") / "log4j2.properties")


def spark_session(settings: SparkConfig | None = None, extra_conf: Mapping[str, str] | None = None):
    """Return the active SparkSession, or build one from `settings`.

    Executors run this same Python interpreter (``spark.pyspark.python``), which is what lets the
    stage code installed here be imported on a standalone cluster started from this installation.
    """
    from pyspark.sql import SparkSession

    settings = settings or SparkConfig()
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    quiet = f"-Dlog4j2.configurationFile=file:{_log4j_config()}"
    builder = (
        SparkSession.builder.master(settings.master)
        .appName(settings.app_name)
        .config("spark.ui.enabled", str(settings.ui).lower())
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.driver.extraJavaOptions", quiet)
        .config("spark.executor.extraJavaOptions", quiet)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.maxBytesPerBatch", str(ARROW_MAX_BYTES_PER_BATCH))
    )
    for name, value in EXECUTOR_ENV.items():
        builder = builder.config(f"spark.executorEnv.{name}", value)
    local_cores = _local_cores(settings.master)
    if local_cores:  # on one machine, 200 shuffle partitions (Spark's default) only add task overhead
        builder = builder.config("spark.sql.shuffle.partitions", str(max(2, local_cores)))
    for name in FORWARDED_ENV:  # executors reach the same object store as the driver
        if os.environ.get(name):
            builder = builder.config(f"spark.executorEnv.{name}", os.environ[name])
    for key, value in {**settings.conf, **(extra_conf or {})}.items():
        builder = builder.config(key, value)
    log_path = spark_log_path()
    try:
        with _stderr_to(log_path):  # the JVM inherits this stderr: its chatter goes to the log file
            session = builder.getOrCreate()
    except Exception as error:  # Py4J / Java launch failures carry pages of stack trace
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SparkStartError(f"could not start Spark with master {settings.master!r}: {first} "
                              f"(Spark's log: {log_path})") from error
    session.sparkContext.setLogLevel(settings.log_level)
    return session


def _local_cores(master: str) -> int | None:
    """Cores of a local master (`local`, `local[4]`, `local[*]`), None for a cluster."""
    match = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\d+)?\])?", master.strip())
    if not match:
        return None
    return os.cpu_count() or 2 if match.group(1) in (None, "*") else int(match.group(1))


def is_local_master(master: str) -> bool:
    """Whether `master` runs every executor on this machine (`local`, `local[N]`, `local[*]`)."""
    return _local_cores(master) is not None


def spark_log_path() -> str:
    return os.environ.get("GAP_REPLAY_SPARK_LOG") or os.path.join(tempfile.gettempdir(), f"gap-replay-spark-{os.getpid()}.log")


@contextmanager
def _stderr_to(path: str):
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def spark_schema(schema: pa.Schema):
    """The Spark StructType for an Arrow schema (used as mapInArrow's output schema)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(pa.schema([field.with_nullable(True) for field in schema]))


def default_parallelism(spark) -> int:
    return max(1, spark.sparkContext.defaultParallelism)


def task_identity() -> tuple[int, int]:
    """(partition, attempt) of the running Spark task; (0, 0) outside Spark (tests of the pure parts)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    return (context.partitionId(), context.attemptNumber()) if context is not None else (0, 0)
