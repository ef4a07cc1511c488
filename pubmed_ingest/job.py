"""`gap-replay pubmed`: PubMed/MEDLINE XML and PMC JATS files (or OA .tar.gz packages) into documents.

Update semantics: input files are ranked by file name (NCBI numbers baseline and update files in
order). When a PMID (or PMCID) occurs more than once, the record from the last file, and within a
file the last record, wins; earlier ones are dropped as ``superseded_version``. A ``DeleteCitation``
drops every earlier version of its PMIDs as ``deleted``; a record re-added after the deletion stays.

Papers then take the publication types, MeSH terms and retraction flag of their PubMed citation when it
is among the inputs; retracted abstracts and papers are dropped as ``retracted`` (unless
``pubmed.keep_retracted``); each paper gets its upsampling score (``pubmed_ingest.upsampling``); papers
in an excluded category (animal studies, retracted publications, preprints...) are dropped as
``upsampling_excluded``. An abstract whose paper is present in full text is dropped as
``superseded_by_fulltext`` (detail: the paper's id): by default whatever becomes of the paper (MEDITRON's
rule), or only when the paper is kept by this stage (``pubmed.supersede_abstracts``, :func:`supersede_abstracts`).

Failures: reading an input that fails for a reason that may pass (I/O, object storage, memory:
``gap_replay.core.errors.is_transient``) fails its task, which Spark tries again; an input whose content is bad
as a whole is its own drop (``file:<name>``) and the stage goes on, unless more than
``pubmed.max_failed_share`` of the inputs failed so (:func:`check_failed_share`): then the stage fails naming
them, and publishes nothing.

Tasks: the input files balanced by bytes (``ingest.file_tasks``); a PMC package or mirror shard bigger than
its share of the bytes is read in slices by several tasks (:func:`splittable`, ``ingest.plan_slices``), each
parsing the members whose position is its own modulo the slices, records ranked as in a whole read: the same
rows, and one failed input (one ``file:<name>`` drop) for a damaged package however many slices read it.

Passes: the parse tasks write their ranked rows to Parquet (:func:`parse_inputs`); Spark decides on those files'
narrow columns (:func:`pubmed_decisions`) and saves the decisions by row; Python tasks read the parsed files
beside their decisions and write the stage's parts (:func:`apply_decisions`, ``shards.write_mapped_outcomes``).
The text never passes through the JVM.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import partial
from datetime import date
from typing import BinaryIO

import pyarrow as pa

from gap_replay.core import storage
from gap_replay.core.errors import TooManyFailedInputs
from gap_replay.core.ingest import (
    FILE_RANK,
    RANKED_OUTCOME_SCHEMA,
    RECORD_RANK,
    Unit,
    expand_sized_inputs,
    expand_units,
    file_tasks,
    listed_sizes,
    open_input,
    ranked_outcomes,
)
from gap_replay.core.ledger import StageLedger
from gap_replay.core.outcome import Drop, Outcome
from gap_replay.core.runner import RunContext, run_stage, stage_fingerprint
from gap_replay.core.schema import DROP_DETAIL, DROP_REASON
from gap_replay.core.shards import (FILE_KEY, ROW_KEY, InputError, KeyedRows, read_parquet, spark_reads,
                                    with_row_keys, write_mapped_outcomes, write_parquet, write_task_files)
from gap_replay.core.spark import spark_schema
from gap_replay.pubmed_ingest.settings import SUPERSEDE_RULES, PubmedConfig
from gap_replay.pubmed_ingest.upsampling import UpsamplingRules, score_batch

STAGE = "pubmed"
SUFFIXES = (".xml", ".xml.gz", ".nxml", ".tar.gz", ".tgz")
# What one PMC version read straight from the service counts as input when balancing the parse tasks
# (the inventory gives no sizes): about a mean JATS article's XML.
PMC_VERSION_BYTES = 100_000
DELETE = "__delete_citation__"  # internal marker row, never written


def parse_input(stream: BinaryIO, path: str, *, max_member_bytes: int | None = None) -> Iterator[Outcome]:
    """Parse one input file of any supported kind; deletions become DELETE marker rows.

    The outcomes of :func:`input_units`, each package member parsed in place (see there).
    """
    return expand_units(input_units(stream, path, max_member_bytes=max_member_bytes))


def input_units(stream: BinaryIO, path: str, *, max_member_bytes: int | None = None) -> Iterator[Outcome | Unit]:
    """Parse one input file of any supported kind; deletions become DELETE marker rows. A package's members come
    as :class:`~gap_replay.core.ingest.Unit`s (parsed when their task's slice takes them, ``parse_files``; a
    member whose parsing raises is a ``parse_error`` drop ``file:<package>:<member>`` and the package goes on).

    Records and drops name the input by its file name (NCBI file names are unique), so that the
    output does not depend on where the inputs were stored. A JATS file, or a member of a JATS
    package, gives one outcome per article (``pubmed_ingest.jats.iter_jats_articles``: a
    ``pmc-articleset`` of several names its articles ``<name>#article<k>``). A single JATS file, or
    a package member, over `max_member_bytes` (default ``inputs.DEFAULT_MAX_MEMBER_BYTES``, after
    gunzipping a single file) is a ``too_large`` drop of the file, never read whole.
    """
    from gap_replay.pubmed_ingest.inputs import (
        DEFAULT_MAX_MEMBER_BYTES,
        classify_stream,
        iter_jats_archive,
        read_jats_file,
    )
    from gap_replay.pubmed_ingest.jats import iter_jats_articles
    from gap_replay.pubmed_ingest.medline import DeleteCitation, iter_medline

    cap = DEFAULT_MAX_MEMBER_BYTES if max_member_bytes is None else max_member_bytes
    name = path.rstrip("/").rsplit("/", 1)[-1]
    kind = classify_stream(stream)
    if kind == "medline":
        for item in iter_medline(stream, name=name):
            if isinstance(item, DeleteCitation):
                for pmid in item.pmids:
                    yield Drop(f"pmid:{pmid}", DELETE, name, "pubmed_abstracts")
            else:
                yield item
    elif kind == "jats":
        data = read_jats_file(stream, name=name, max_member_bytes=cap)
        if isinstance(data, Drop):
            yield data
        else:
            yield from iter_jats_articles(data, name=name)
    elif kind == "jats_archive":
        for member, data in iter_jats_archive(stream, name=name, max_member_bytes=cap):
            if isinstance(data, Drop):
                yield data
            else:
                yield Unit(partial(iter_jats_articles, data, name=f"{name}:{member}"), f"file:{name}:{member}", PAPERS)
    else:
        yield Drop(f"file:{name}", "unsupported_input", f"not PubMed XML, JATS or a tar.gz of JATS ({kind})")


ABSTRACTS, PAPERS = "pubmed_abstracts", "pubmed_papers"
# What the stage decides on (:func:`decision_table`): the row key, the ids and the metadata its rules read, never
# the text. The paper-only columns are left null for other rows; the rest of each row waits in `ranked`.
DECIDED = ("id", "source", "pmid", "pmcid", "publication_types", "mesh_terms", "retracted", "upsampling_score",
           DROP_REASON, DROP_DETAIL)
PAPER_ONLY = ("keywords", "journal", "year")
# Columns a decision may change on a paper; an abstract's are its own (:func:`join_text`).
PAPER_DECIDED = ("publication_types", "mesh_terms", "retracted", "upsampling_score")


ROW_KEYS = (FILE_KEY, ROW_KEY)  # where a parsed row lies (:func:`parse_inputs`): its parsed file and row


def decision_table(ranked):
    """The narrow rows the stage decides on: (file_rank, record_rank), the row key, the parsed row's place
    (`ROW_KEYS`) when `ranked` has it, and `DECIDED` and `PAPER_ONLY` columns, without `text` or the other
    columns no rule reads."""
    from pyspark.sql import functions as F

    is_paper = F.col("source") == PAPERS
    keys = [name for name in ROW_KEYS if name in ranked.columns]
    return ranked.select(*keys, FILE_RANK, RECORD_RANK, *DECIDED,
                         *[F.when(is_paper, F.col(name)).alias(name) for name in PAPER_ONLY])


def resolve_versions(rows):
    """Apply update semantics (module docstring) to ranked rows (any columns beside id, file_rank,
    record_rank, drop_reason, drop_detail); returns the rows other than the deletion markers, the same
    columns, drop_reason/drop_detail set for the superseded and deleted ones."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    position = F.struct(F.col(FILE_RANK), F.col(RECORD_RANK))
    deletions = (rows.where(F.col(DROP_REASON) == DELETE)
                 .groupBy("id").agg(F.max(position).alias("_deleted_at"), F.max(DROP_DETAIL).alias("_deleted_in")))
    records = rows.where(F.col(DROP_REASON).isNull() | (F.col(DROP_REASON) != DELETE))
    latest_first = Window.partitionBy("id").orderBy(F.col(FILE_RANK).desc(), F.col(RECORD_RANK).desc())
    records = (records.withColumn("_version_rank", F.row_number().over(latest_first))
                      .join(deletions, "id", "left"))
    deleted = F.col("_deleted_at").isNotNull() & (position < F.col("_deleted_at"))
    superseded = F.col("_version_rank") > 1
    reason = F.coalesce(F.col(DROP_REASON),
                        F.when(deleted, F.lit("deleted")).when(superseded, F.lit("superseded_version")))
    detail = F.coalesce(F.col(DROP_DETAIL),
                        F.when(deleted, F.concat(F.lit("DeleteCitation in "), F.col("_deleted_in")))
                        .when(superseded, F.lit("a later record of the same id exists")))
    columns = [name for name in rows.columns if name not in (DROP_REASON, DROP_DETAIL)]
    return records.select(*columns, reason.alias(DROP_REASON), detail.alias(DROP_DETAIL))


def _split_key(key: str) -> list:
    """Partition columns that group rows by `key` while every row without one stays alone, keyed by its
    (file_rank, record_rank): null keys never pile into one partition, whatever adaptive execution does."""
    from pyspark.sql import functions as F

    missing = F.col(key).isNull()
    return [F.col(key), F.when(missing, F.col(FILE_RANK)), F.when(missing, F.col(RECORD_RANK))]


CITATION, BY_PMID, BY_PMCID = "_citation", "_paper_by_pmid", "_paper_by_pmcid"
SUPERSEDES = "_supersedes"  # a paper that supersedes its abstracts (pubmed.supersede_abstracts)


def match_by_pmid(rows, supersede: bool):
    """One pass over the rows grouped by PMID: each paper learns its PubMed citation (`CITATION`: the
    publication types, MeSH terms and retraction flag of the kept abstract of its PMID, the first by id); with
    `supersede`, each abstract learns the first kept paper of its PMID (`BY_PMID`). Rows without a PMID match
    nothing and are spread by their row key (:func:`_split_key`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    alive, has_pmid = F.col(DROP_REASON).isNull(), F.col("pmid").isNotNull()
    is_paper, is_abstract = F.col("source") == PAPERS, F.col("source") == ABSTRACTS
    same_pmid = Window.partitionBy(*_split_key("pmid"))
    citation = F.struct(F.col("id").alias("id"), F.col("publication_types").alias("types"),
                        F.col("mesh_terms").alias("mesh"), F.col("retracted").alias("retracted"))
    cited = F.min(F.when(is_abstract & alive & has_pmid, citation)).over(same_pmid)
    added = {CITATION: F.when(is_paper & has_pmid, cited)}
    if supersede:
        first_paper = F.min(F.when(is_paper & alive & has_pmid, F.col("id"))).over(same_pmid)
        added[BY_PMID] = F.when(is_abstract & has_pmid, first_paper)
    return rows.withColumns(added)  # added together: one window, one exchange


def enrich_papers(rows):
    """Papers take the publication types, MeSH terms and retraction flag of their PubMed citation (JATS has
    neither), from :func:`match_by_pmid`'s `CITATION` column, which this drops. Other rows keep their
    retraction flag and lose their types and MeSH terms, which no later rule reads (:func:`join_text` takes
    their own from the parsed rows)."""
    from pyspark.sql import functions as F

    is_paper = F.col("source") == PAPERS
    empty = F.array().cast("array<string>")
    cited = F.col(CITATION)
    types = F.array_distinct(F.concat(F.coalesce("publication_types", empty), F.coalesce(cited["types"], empty)))
    retracted = F.coalesce(F.col("retracted"), F.lit(False)) | F.coalesce(cited["retracted"], F.lit(False))
    return (rows.withColumn("publication_types", F.when(is_paper, types))
                .withColumn("mesh_terms", F.when(is_paper, F.coalesce(F.col("mesh_terms"), cited["mesh"])))
                .withColumn("retracted", F.when(is_paper, retracted).otherwise(F.col("retracted")))
                .drop(CITATION))


RETRACTED = "retracted"


def drop_retracted(outcomes, keep: bool):
    """Drop kept records marked retracted (`RETRACTED`): an abstract PubMed marks (a Retracted Publication,
    or a RetractionIn notice), a paper whose citation or PMC metadata marks it. `keep`
    (``pubmed.keep_retracted``): leave them in, flagged by the `retracted` column."""
    from pyspark.sql import functions as F

    if keep:
        return outcomes
    hit = F.col(DROP_REASON).isNull() & F.coalesce(F.col("retracted"), F.lit(False))
    detail = (F.when(F.col("source") == "pubmed_papers", F.lit("its PubMed citation or its PMC metadata marks it retracted"))
              .otherwise(F.lit("PubMed marks it retracted (Retracted Publication, or a RetractionIn notice)")))
    return outcomes.select(
        *[name for name in outcomes.columns if name not in (DROP_REASON, DROP_DETAIL)],
        F.when(hit, F.lit(RETRACTED)).otherwise(F.col(DROP_REASON)).alias(DROP_REASON),
        F.when(hit, detail).otherwise(F.col(DROP_DETAIL)).alias(DROP_DETAIL),
    )


CITATIONS_PER_YEAR = "_citations_per_year"


def read_citation_table(spark, path: str):
    """(id, citations) from a CSV with a header or a Parquet file/directory."""
    from pyspark.sql import functions as F

    csv = path.endswith((".csv", ".csv.gz"))
    if spark_reads(path):
        reader = spark.read.option("header", "true") if csv else spark.read
        table = reader.csv(path) if csv else reader.parquet(path)
    else:  # object storage: read through pyarrow (Spark would need hadoop-aws), the driver parsing a CSV
        table = _read_remote_citations(spark, path, csv)
    missing = {"id", "citations"} - set(table.columns)
    if missing:
        raise InputError(f"citation table {path} lacks column(s): {', '.join(sorted(missing))}")
    return table.select(F.col("id").cast("string").alias("_cited_id"),
                        F.col("citations").cast("long").alias("_citations"))


def _read_remote_citations(spark, path: str, csv: bool):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not storage.exists(path):
        raise InputError(f"citation table not found: {path}")
    if csv:  # streamed by one executor task, never held by the driver
        fs, local = storage.resolve(path)
        with fs.open_input_stream(local, compression="detect") as stream:
            header = pacsv.open_csv(stream, read_options=pacsv.ReadOptions(block_size=1 << 16)).schema.names
        if not {"id", "citations"} <= set(header):
            return spark.createDataFrame([], ", ".join(f"`{name}` string" for name in header))
        schema = pa.schema([("id", pa.string()), ("citations", pa.int64())])
        return spark.createDataFrame([(path,)], "path string").mapInArrow(
            _stream_citations(schema), spark_schema(schema))
    files = storage.list_files(path) or [path]
    fs, first = storage.resolve(files[0])
    with fs.open_input_file(first) as handle:
        arrow_schema = pq.ParquetFile(handle).schema_arrow
    return read_parquet(spark, files, spark_schema(arrow_schema))


def _stream_citations(schema: pa.Schema):
    """mapInArrow core: the (id, citations) rows of the CSV files named in the batches, in blocks of a few MB."""
    import pyarrow.csv as pacsv

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for path in batch.column("path").to_pylist():
                fs, local = storage.resolve(path)
                with fs.open_input_stream(local, compression="detect") as stream:
                    reader = pacsv.open_csv(stream, read_options=pacsv.ReadOptions(block_size=4 << 20),
                                            convert_options=pacsv.ConvertOptions(
                                                column_types={"id": pa.string(), "citations": pa.int64()},
                                                include_columns=["id", "citations"]))
                    for block in reader:
                        yield pa.RecordBatch.from_arrays([block.column("id"), block.column("citations")],
                                                         schema=schema)

    return run


def add_citations_per_year(rows, citations, reference: date):
    """Citations per year of each paper (matched by its id or by `pmid:<pmid>`); null without data. Rows
    that cannot match (not papers, no PMID) are spread by their row key, never piled on a null key."""
    from pyspark.sql import functions as F

    is_paper = F.col("source") == PAPERS
    by_id = citations.groupBy("_cited_id").agg(F.max("_citations").alias("_by_id"))
    by_pmid = by_id.select(F.col("_cited_id").alias("_cited_pmid"), F.col("_by_id").alias("_by_pmid"))
    pmid_key = F.coalesce(F.when(is_paper, F.concat(F.lit("pmid:"), F.col("pmid"))),
                          F.concat(F.lit("\u0000"), F.col(FILE_RANK).cast("string"), F.lit(":"),
                                   F.col(RECORD_RANK).cast("string")))
    joined = (rows.join(by_id, is_paper & (F.col("id") == F.col("_cited_id")), "left")
                  .join(by_pmid, is_paper & F.col("pmid").isNotNull() & (pmid_key == F.col("_cited_pmid")), "left"))
    count = F.coalesce("_by_id", "_by_pmid")
    years = F.greatest(F.lit(1), F.lit(reference.year) - F.col("year") + F.lit(1))
    return (joined.withColumn(CITATIONS_PER_YEAR, F.when(is_paper, (count / years).cast("double")))
                  .drop("_cited_id", "_by_id", "_cited_pmid", "_by_pmid"))


def score_papers(rules: UpsamplingRules):
    """mapInArrow core over the decision table: the upsampling score of each kept paper, or its exclusion as a
    drop; every other row and column passes as it came. Column by column (``upsampling.score_batch``): no
    row becomes a dict, and only the kept papers' values of the columns the rules read become Python values."""
    import pyarrow.compute as pc

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            reasons = batch.column(DROP_REASON)
            scored = pc.and_kleene(pc.equal(batch.column("source"), PAPERS), pc.is_null(reasons))
            rows = [index for index, hit in enumerate(scored.to_pylist()) if hit]
            if not rows:
                yield batch
                continue
            results = score_batch(batch, rows, CITATIONS_PER_YEAR, rules)
            scores = batch.column("upsampling_score").to_pylist()
            reason_values, details = reasons.to_pylist(), batch.column(DROP_DETAIL).to_pylist()
            for index, result in zip(rows, results):
                if result.excluded:
                    reason_values[index], details[index] = "upsampling_excluded", result.excluded
                else:
                    scores[index] = result.score
            replaced = {"upsampling_score": scores, DROP_REASON: reason_values, DROP_DETAIL: details}
            yield pa.RecordBatch.from_arrays(
                [pa.array(replaced[field.name], field.type) if field.name in replaced else batch.column(index)
                 for index, field in enumerate(batch.schema)], schema=batch.schema)

    return run


QUANTILE_BUCKETS_PER_E = 1024  # log-spaced histogram buckets: each spans 0.1% of its values


def _log_bucket(value):
    """A bucket key that orders like the value: floor(K ln(1 + |v|)), mirrored below zero."""
    from pyspark.sql import functions as F

    magnitude = F.floor(F.log1p(F.abs(value)) * QUANTILE_BUCKETS_PER_E)
    return F.when(value >= 0, magnitude).otherwise(-magnitude - 1)


def nearest_rank_quantiles(frame, column: str, probabilities: Sequence[float]) -> list[float] | None:
    """The exact nearest-rank quantiles of `column` (the value at rank ceil(p n) of the n non-null values, the
    smallest at p = 0), as ``approxQuantile(column, probabilities, 0.0)`` gives them, without its cost: that
    merges every value's summary into one task. Here two aggregations with small results: a histogram of
    log-spaced buckets gives the bucket holding each rank, then the distinct values of those buckets (each
    spans 0.1% of its values) give the value at the rank. Deterministic whatever the partitioning; None when
    there are no values."""
    from pyspark.sql import functions as F

    value = F.col(column)
    values = frame.select(value.cast("double").alias(column)).where(value.isNotNull() & ~F.isnan(value)) \
                  .withColumn("_bucket", _log_bucket(value))
    histogram = sorted((row["_bucket"], row["count"]) for row in values.groupBy("_bucket").count().collect())
    total = sum(count for _, count in histogram)
    if not total:
        return None
    ranks = [max(1, math.ceil(probability * total)) for probability in probabilities]
    # The bucket of each rank, and how many values lie in the buckets before it.
    located: dict[int, int] = {}
    wanted: list[tuple[int, int]] = []
    for rank in ranks:
        before = 0
        for bucket, count in histogram:
            if before + count >= rank:
                located[bucket] = before
                wanted.append((bucket, rank - before))
                break
            before += count
    distinct = values.where(F.col("_bucket").isin(list(located))).groupBy("_bucket", column).count().collect()
    by_bucket: dict[int, list[tuple[float, int]]] = {}
    for row in distinct:
        by_bucket.setdefault(row["_bucket"], []).append((row[column], row["count"]))
    cuts = []
    for bucket, rank in wanted:
        seen = 0
        for found, count in sorted(by_bucket[bucket]):
            seen += count
            if seen >= rank:
                cuts.append(found)
                break
    return cuts


def upsampling_rules(spark, settings, rows) -> tuple[UpsamplingRules, object]:
    """The configured rules, and `rows` with the citations-per-year column they need."""
    from pyspark.sql import functions as F

    reference = date.fromisoformat(settings.reference_date)
    journals: frozenset[str] = frozenset()
    if settings.clinical_journals:
        with open_input(storage.absolute_uri(settings.clinical_journals)) as stream:
            lines = stream.read().decode("utf-8").splitlines()
        journals = frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))
    quartiles = None
    if settings.citations:
        rows = add_citations_per_year(rows, read_citation_table(spark, settings.citations), reference)
        known = rows.where(F.col(CITATIONS_PER_YEAR).isNotNull() & (F.col("source") == PAPERS))
        cuts = nearest_rank_quantiles(known, CITATIONS_PER_YEAR, (0.25, 0.75))
        quartiles = (cuts[0], cuts[1]) if cuts else None
    else:
        rows = rows.withColumn(CITATIONS_PER_YEAR, F.lit(None).cast("double"))
    return UpsamplingRules(reference, journals, quartiles), rows


SUPERSEDED = "superseded_by_fulltext"
ALWAYS, IF_PAPER_KEPT = SUPERSEDE_RULES  # pubmed.supersede_abstracts


def match_papers(rows, key: str, column: str):
    """`rows` with `column`: for an abstract with a `key` (pmid or pmcid), the first (by id) paper with that key
    that supersedes its abstracts (`SUPERSEDES`); null for every other row. One pass over the rows grouped by
    `key`, the rows without one spread by their row key (:func:`_split_key`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    has_key = F.col(key).isNotNull()
    same_key = Window.partitionBy(*_split_key(key))
    first_paper = F.min(F.when(F.col(SUPERSEDES) & has_key, F.col("id"))).over(same_key)
    return rows.withColumn(column, F.when((F.col("source") == ABSTRACTS) & has_key, first_paper))


def supersede_abstracts(rows):
    """Mark kept abstracts whose paper was found (`BY_PMID`, else `BY_PMCID`) as dropped (`SUPERSEDED`,
    detail = the paper's id), and drop the helper columns."""
    from pyspark.sql import functions as F

    paper = F.coalesce(BY_PMID, BY_PMCID)
    superseded = F.col(DROP_REASON).isNull() & paper.isNotNull()
    return rows.select(
        *[name for name in rows.columns if name not in (DROP_REASON, DROP_DETAIL, BY_PMID, BY_PMCID, SUPERSEDES)],
        F.when(superseded, F.lit(SUPERSEDED)).otherwise(F.col(DROP_REASON)).alias(DROP_REASON),
        F.when(superseded, paper).otherwise(F.col(DROP_DETAIL)).alias(DROP_DETAIL),
    )


# What a decision sets on a parsed row (:func:`apply_decisions`): its outcome, and a paper's decided metadata.
DECISION = (DROP_REASON, DROP_DETAIL, *PAPER_DECIDED)


def pubmed_decisions(spark, ranked, settings):
    """From parsed, ranked records (any columns with the decision table's: :func:`decision_table`) to the
    stage's decisions: a row per record other than the deletion markers, with its row key, the parsed row's
    place (`ROW_KEYS`, when `ranked` has it), id, source and `DECISION` columns: versions, papers' metadata,
    retractions, upsampling scores, superseded abstracts.

    Which papers supersede their abstracts (``pubmed.supersede_abstracts``): ``always`` (MEDITRON's rule:
    PubMed abstracts are those "of papers whose full text is not open"), every paper whose current version
    the stage read as a document, even one it then drops as ``retracted`` or ``upsampling_excluded``;
    ``if_paper_kept``, only the papers this stage keeps. Neither knows what later stages do with a paper
    (language, quality, dedup, decontamination): an abstract superseded here stays dropped.

    Every decision is taken on the narrow :func:`decision_table` (row key, ids, metadata: no text), each step
    one pass over it grouped by id, PMID or PMCID (rows without the key spread by their row key, never piled
    on a null); the text meets its decision in the tasks that write the outcomes (:func:`apply_decisions`).
    """
    from pyspark.sql import functions as F

    always = settings.supersede_abstracts == ALWAYS
    is_paper = F.col("source") == PAPERS
    read = enrich_papers(match_by_pmid(resolve_versions(decision_table(ranked)), supersede=always))
    if always:  # the papers read as documents, whatever becomes of them
        read = read.withColumn(SUPERSEDES, F.coalesce(is_paper & F.col(DROP_REASON).isNull(), F.lit(False)))
    rules, unscored = upsampling_rules(spark, settings, drop_retracted(read, settings.keep_retracted))
    decided = unscored.mapInArrow(score_papers(rules), _nullable(unscored.schema)).drop(CITATIONS_PER_YEAR)
    if not always:  # IF_PAPER_KEPT: the papers this stage keeps
        decided = decided.withColumn(SUPERSEDES, F.coalesce(is_paper & F.col(DROP_REASON).isNull(), F.lit(False)))
        decided = match_papers(decided, "pmid", BY_PMID)
    decided = supersede_abstracts(match_papers(decided, "pmcid", BY_PMCID))
    keys = [name for name in ROW_KEYS if name in decided.columns]
    return decided.select(*keys, FILE_RANK, RECORD_RANK, "id", "source", *DECISION)


def apply_decisions(decisions: KeyedRows):
    """The outcomes of a piece of parsed rows (with their keys, as ``core.shards.write_mapped_outcomes`` reads
    them): each row that has a decision (every record but the deletion markers), with the decision's outcome
    and, for a paper, its decided metadata; an abstract keeps its own."""
    import pyarrow.compute as pc

    def outcomes(parsed: pa.Table) -> pa.Table:
        decided = decisions.of(parsed)
        rows = parsed.take(pc.subtract(decided.column(ROW_KEY), parsed.column(ROW_KEY)[0]))
        is_paper = pc.fill_null(pc.equal(rows.column("source"), PAPERS), False)
        for name in DECISION:
            column = decided.column(name).cast(rows.schema.field(name).type)
            if name in PAPER_DECIDED:
                column = pc.if_else(is_paper, column, rows.column(name))
            rows = rows.set_column(rows.schema.get_field_index(name), name, column)
        return rows

    return outcomes


def _nullable(schema):
    """`schema` with every field nullable (a mapInArrow output schema)."""
    from pyspark.sql.types import StructField, StructType

    return StructType([StructField(field.name, field.dataType, True) for field in schema.fields])


def failed_input_files(ranked, names: Sequence[str]) -> list[tuple[str, str]]:
    """(name, reason) of each input file that failed as a whole, in rank order: a drop under the file's own id
    (``file:<name>``; ``file:<file name>`` as :func:`parse_input` names it), with the reason of its first one.
    A drop of part of a file (``file:<name>#record<k>``, a package member's ``file:<name>:<member>``, an
    article of a mirror's shard) is not a failure of the input. `names` are the inputs' names by rank (a file
    read in slices is one input)."""
    from pyspark.sql import functions as F

    rows = (ranked.where(F.col("id").startswith("file:") & F.col(DROP_REASON).isNotNull())
            .groupBy(FILE_RANK, "id").agg(F.min(F.struct(RECORD_RANK, DROP_REASON)).alias("_first"))
            .collect())
    first: dict[int, tuple[int, str]] = {}
    for row in rows:
        name = names[row[FILE_RANK]]
        if row["id"] in (f"file:{name}", f"file:{name.rsplit('/', 1)[-1]}"):
            found = (row["_first"][RECORD_RANK], row["_first"][DROP_REASON])
            first[row[FILE_RANK]] = min(first.get(row[FILE_RANK], found), found)
    return [(names[rank], first[rank][1]) for rank in sorted(first)]


FAILED_NAMED = 5  # failed inputs named in the error; the drops name them all


def check_failed_share(ledger: StageLedger, failed: Sequence[tuple[str, str]], max_share: float) -> None:
    """Raise :class:`TooManyFailedInputs` when more than `max_share` of the stage's inputs (``ledger.inputs``)
    failed as a whole (`failed`: :func:`failed_input_files`), naming the first few. A stage whose every input
    failed and that kept nothing is left to the runner, which says so in its own words."""
    if not failed or ledger.every_input_failed or len(failed) <= max_share * ledger.inputs:
        return
    named = ", ".join(f"{name} ({reason})" for name, reason in failed[:FAILED_NAMED])
    more = f" and {len(failed) - FAILED_NAMED:,} more" if len(failed) > FAILED_NAMED else ""
    raise TooManyFailedInputs(
        f"{STAGE}: {len(failed):,} of {ledger.inputs:,} inputs failed ({len(failed) / ledger.inputs:.1%}, more than "
        f"pubmed.max_failed_share = {max_share:g}): {named}{more}; nothing was published")


def input_parser(dead: dict, max_member_bytes: int | None = None):
    """The parser of the stage's inputs: a PMC mirror's shard (``pmc_mirror.parse_shard``, with the mirror's
    dead list) or any file :func:`parse_input` reads; a package's members and a shard's rows come as
    :class:`~gap_replay.core.ingest.Unit`s, so that such a file can be read in slices (:func:`splittable`)."""

    from gap_replay.pubmed_ingest.inputs import DEFAULT_MAX_MEMBER_BYTES

    cap = max_member_bytes or DEFAULT_MAX_MEMBER_BYTES

    def parse(stream: BinaryIO, name: str, uri: str) -> Iterator[Outcome]:
        if name.startswith("pmc/") and name.endswith(".json"):  # a task's share of the PMC service
            from gap_replay.pubmed_ingest.pmc_direct import parse_plan

            yield from parse_plan(stream, name, cap)
        elif name.endswith(".parquet"):
            from gap_replay.pubmed_ingest.pmc_mirror import parse_shard

            yield from parse_shard(uri, name, dead, cap, units=True)
        else:
            yield from input_units(stream, name, max_member_bytes=max_member_bytes)

    return parse


# Inputs whose parser yields Units (input_parser): PMC packages and mirror shards, read in slices by several tasks
# when one is bigger than its share of the stage's bytes. MEDLINE files and single JATS files are read whole
# (their parsing is one XML stream: a slice would parse all of it).
SPLITTABLE = (".tar.gz", ".tgz", ".parquet")


def splittable(name: str) -> bool:
    """Whether the stage may read input `name` in slices (``files_dataframe``)."""
    return name.endswith(SPLITTABLE)


def streamed(name: str) -> bool:
    """Whether input `name` is a compressed stream read in order (a PMC package), which slices cut by how far
    its bytes were read, each slice unpacking the stream only to its own end (``ingest.ranked_outcomes``);
    a mirror's shard, read by row groups, is cut by the position of its rows."""
    return name.endswith((".tar.gz", ".tgz"))


PARSED_DIR, DECIDED_DIR = "_parsed", "_decided"  # the stage's own intermediate files, under its staging folder
# A parsed file: the ranked outcomes of one parse task, each row with its place (`ROW_KEYS`: the file's number
# and the row's), so that the decisions taken on its narrow columns find their way back to it.
PARSED_SCHEMA = pa.schema([pa.field(FILE_KEY, pa.int64()), pa.field(ROW_KEY, pa.int64()), *RANKED_OUTCOME_SCHEMA])


def parse_inputs(spark, tasks: Sequence[list[tuple]], parser, directory: str) -> list[str]:
    """The parse pass: one Python task per list of `tasks` (``ingest.file_tasks``) parses its files (or
    slices) and writes their ranked outcomes as ``part-<task>.parquet`` under `directory` (`PARSED_SCHEMA`,
    row groups bounded by text bytes); the files, in task order. The texts never pass through the JVM."""
    ranked = ranked_outcomes(parser, with_uri=True, streamed=streamed)

    def produce(number: int, rows: list[tuple]) -> Iterator[pa.Table]:
        first = 0
        for batch in ranked(rows):
            yield with_row_keys(pa.Table.from_batches([batch]), number, first)
            first += batch.num_rows

    files, _ = write_task_files(spark, tasks, produce, directory, PARSED_SCHEMA, text_column="text")
    return files


def stage_inputs(inputs: Sequence[str], pmc_url: str) -> tuple[list[tuple[str, str, int]], dict, list[str], list[str]]:
    """(uri, name, size in bytes) of every input file, sorted by file name, the dead list of the PMC mirrors
    among the inputs, the mirrors' state files (for the fingerprint), and the PMC service addresses among the
    inputs (``pmc_direct``). An input may be a PMC mirror, or a folder holding one as ``pmc/`` beside PubMed
    files. The sizes come from the listings that found the files."""
    from gap_replay.pubmed_ingest.pmc_direct import service_address
    from gap_replay.pubmed_ingest.pmc_mirror import find_mirror

    plain, shards, dead, state, services = [], [], {}, [], []
    for path in inputs:
        address = service_address(path, pmc_url)
        if address is not None:
            services.append(address)
            continue
        mirror = find_mirror(storage.absolute_uri(path))
        if mirror is None or mirror.root != storage.absolute_uri(path).rstrip("/"):
            plain.append(path)
        if mirror is not None:
            shards += mirror.shards()
            dead.update(mirror.dead())
            state += mirror.state_files()
    files = {uri: (name, size) for uri, name, size in expand_sized_inputs(plain, SUFFIXES)} if plain else {}
    files.update((uri, (name, size)) for (uri, name), size in zip(shards, listed_sizes([uri for uri, _ in shards])))
    return by_file_name((uri, name, size) for uri, (name, size) in files.items()), dead, state, services


def by_file_name(files) -> list[tuple]:
    """(uri, name, ...) tuples in the order that ranks versions: by file name, then name, then uri."""
    return sorted(files, key=lambda item: (item[1].rsplit("/", 1)[-1], item[1], item[0]))


def run_pubmed(context: RunContext, inputs: Sequence[str], output: str,
               settings: PubmedConfig | None = None) -> StageLedger:
    settings = settings or context.config.pubmed
    if not inputs:
        raise InputError("no PubMed/PMC inputs given (--input PATHS or pubmed.inputs in the config)")
    files, dead, mirror_state, addresses = stage_inputs(inputs, settings.pmc_url)
    if not files and not addresses:
        raise InputError(f"no PubMed or PMC files ({', '.join(SUFFIXES)}, or a PMC mirror) under {', '.join(inputs)}")
    from gap_replay.pubmed_ingest.pmc_direct import PLAN_DIR, ServiceInput, open_service, write_plan

    services = []
    for address in addresses:
        bucket, snapshot = open_service(address)
        services.append((ServiceInput(address, snapshot), bucket))
    tables = [path for path in (settings.clinical_journals, settings.citations) if path]
    fingerprint = stage_fingerprint(context.config, ["pubmed"], [*mirror_state, *tables],
                                    *(service.identity for service, _ in services),
                                    listed=[(uri, size) for uri, _, size in files])

    def produce(output_dir) -> StageLedger:
        planned = list(files)
        for service, bucket in services:
            from gap_replay.pubmed_ingest.pmc_cloud import read_inventory

            rows = read_inventory(bucket, service.snapshot)
            plans = write_plan(service, rows, storage.join(output_dir.staging, PLAN_DIR), settings)
            context.say(f"pubmed: {len(rows):,} PMC versions of inventory {service.snapshot} in {len(plans):,} task(s)")
            share = len(rows) * PMC_VERSION_BYTES // max(1, len(plans))  # what each plan's task will read, about
            planned += [(uri, name, share) for uri, name in plans]
        # Tasks balanced by bytes; a file's rank is its place in the name order whichever task reads it.
        # A package or mirror shard bigger than its share of the bytes is read in slices, by several tasks.
        ordered = by_file_name(planned)
        tasks = file_tasks(ordered, settings.partitions, splittable=splittable)
        parsed_dir = storage.join(output_dir.staging, PARSED_DIR)
        decided_dir = storage.join(output_dir.staging, DECIDED_DIR)
        try:
            # Parsed once, by Python tasks that write the rows; Spark reads their narrow columns to decide, and
            # the tasks that write the outcomes read the rest (the text among them) beside the decisions.
            parsed = parse_inputs(context.spark, tasks, input_parser(dead), parsed_dir)
            narrow = pa.schema([PARSED_SCHEMA.field(name) for name in (*ROW_KEYS, FILE_RANK, RECORD_RANK, *DECIDED,
                                                                         *PAPER_ONLY)])
            ranked = read_parquet(context.spark, parsed, spark_schema(narrow))
            decisions = pubmed_decisions(context.spark, ranked, settings)
            write_parquet(decisions.select(*ROW_KEYS, *DECISION).orderBy(*ROW_KEYS), decided_dir)
            ledger = write_mapped_outcomes(context.spark, parsed, apply_decisions(KeyedRows(decided_dir)),
                                           output_dir.staging, STAGE, part_bytes=context.config.spark.part_mib << 20,
                                           columns=RANKED_OUTCOME_SCHEMA.names, schema=PARSED_SCHEMA)
            failed = failed_input_files(ranked, [name for _, name, *_ in ordered])
            ledger.inputs, ledger.failed_inputs = len(planned), Counter(reason for _, reason in failed)
            check_failed_share(ledger, failed, settings.max_failed_share)
            return ledger
        finally:
            for directory in (parsed_dir, decided_dir, storage.join(output_dir.staging, PLAN_DIR)):
                if storage.exists(directory):  # the tasks' shares and intermediate files: not part of the output
                    storage.delete(directory)

    return run_stage(context, STAGE, output, fingerprint, produce)
