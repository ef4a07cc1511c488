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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import date
from typing import BinaryIO

import pyarrow as pa

from gap_replay.core import storage
from gap_replay.core.errors import TooManyFailedInputs
from gap_replay.core.ingest import (
    FILE_RANK,
    RANKED_OUTCOME_SCHEMA,
    RECORD_RANK,
    expand_named_inputs,
    files_dataframe,
    open_input,
    parse_files,
)
from gap_replay.core.ledger import StageLedger
from gap_replay.core.outcome import Drop, Outcome
from gap_replay.core.runner import RunContext, run_stage, stage_fingerprint
from gap_replay.core.schema import DROP_DETAIL, DROP_REASON, OUTCOME_SCHEMA
from gap_replay.core.shards import InputError, part_count, read_parquet, spark_reads, write_outcomes
from gap_replay.core.spark import spark_schema
from gap_replay.pubmed_ingest.settings import SUPERSEDE_RULES, PubmedConfig
from gap_replay.pubmed_ingest.upsampling import UpsamplingRules, paper_types, upsampling

STAGE = "pubmed"
SUFFIXES = (".xml", ".xml.gz", ".nxml", ".tar.gz", ".tgz")
# What one PMC version read straight from the service counts as input when sizing the output's parts
# (the inventory gives no sizes): about a mean JATS article's XML.
PMC_VERSION_BYTES = 100_000
DELETE = "__delete_citation__"  # internal marker row, never written


def parse_input(stream: BinaryIO, path: str, *, max_member_bytes: int | None = None) -> Iterator[Outcome]:
    """Parse one input file of any supported kind; deletions become DELETE marker rows.

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
                yield from iter_jats_articles(data, name=f"{name}:{member}")
    else:
        yield Drop(f"file:{name}", "unsupported_input", f"not PubMed XML, JATS or a tar.gz of JATS ({kind})")


def resolve_versions(ranked):
    """Apply update semantics (module docstring) to ranked outcomes; returns OUTCOME_SCHEMA columns."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    position = F.struct(F.col(FILE_RANK), F.col(RECORD_RANK))
    deletions = (ranked.where(F.col(DROP_REASON) == DELETE)
                 .groupBy("id").agg(F.max(position).alias("_deleted_at"), F.max(DROP_DETAIL).alias("_deleted_in")))
    records = ranked.where(F.col(DROP_REASON).isNull() | (F.col(DROP_REASON) != DELETE))
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
    columns = [name for name in OUTCOME_SCHEMA.names if name not in (DROP_REASON, DROP_DETAIL)]
    return records.select(*columns, reason.alias(DROP_REASON), detail.alias(DROP_DETAIL))


def enrich_papers(outcomes):
    """Papers take the publication types and MeSH terms of their PubMed citation (JATS has neither)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    alive = F.col(DROP_REASON).isNull()
    citations = (outcomes.where(alive & (F.col("source") == "pubmed_abstracts") & F.col("pmid").isNotNull())
                 .select(F.col("pmid").alias("_cite_pmid"), F.col("id").alias("_cite_id"),
                         F.col("publication_types").alias("_cite_types"), F.col("mesh_terms").alias("_cite_mesh"),
                         F.col("retracted").alias("_cite_retracted")))
    first = Window.partitionBy("_cite_pmid").orderBy("_cite_id")
    citations = citations.withColumn("_n", F.row_number().over(first)).where(F.col("_n") == 1).drop("_n", "_cite_id")
    is_paper = F.col("source") == "pubmed_papers"
    joined = outcomes.join(citations, is_paper & (F.col("pmid") == F.col("_cite_pmid")), "left")
    empty = F.array().cast("array<string>")
    types = F.array_distinct(F.concat(F.coalesce("publication_types", empty), F.coalesce("_cite_types", empty)))
    retracted = F.coalesce(F.col("retracted"), F.lit(False)) | F.coalesce(F.col("_cite_retracted"), F.lit(False))
    return (joined.withColumn("publication_types", F.when(is_paper, types).otherwise(F.col("publication_types")))
                  .withColumn("mesh_terms", F.when(is_paper & F.col("mesh_terms").isNull(), F.col("_cite_mesh"))
                              .otherwise(F.col("mesh_terms")))
                  .withColumn("retracted", F.when(is_paper, retracted).otherwise(F.col("retracted")))
                  .drop("_cite_pmid", "_cite_types", "_cite_mesh", "_cite_retracted"))


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
    if csv:
        fs, local = storage.resolve(path)
        with fs.open_input_stream(local, compression="detect") as stream:
            arrow = pacsv.read_csv(stream, convert_options=pacsv.ConvertOptions(column_types={"id": pa.string()}))
        return spark.createDataFrame(arrow.select([name for name in arrow.column_names if name in ("id", "citations")]))
    files = storage.list_files(path) or [path]
    fs, first = storage.resolve(files[0])
    with fs.open_input_file(first) as handle:
        arrow_schema = pq.ParquetFile(handle).schema_arrow
    return read_parquet(spark, files, spark_schema(arrow_schema))


def add_citations_per_year(outcomes, citations, reference: date):
    """Citations per year of each paper (matched by its id or by `pmid:<pmid>`); null without data."""
    from pyspark.sql import functions as F

    by_id = citations.groupBy("_cited_id").agg(F.max("_citations").alias("_by_id"))
    by_pmid = by_id.select(F.col("_cited_id").alias("_cited_pmid"), F.col("_by_id").alias("_by_pmid"))
    is_paper = F.col("source") == "pubmed_papers"
    joined = (outcomes.join(by_id, is_paper & (F.col("id") == F.col("_cited_id")), "left")
                      .join(by_pmid, is_paper & (F.concat(F.lit("pmid:"), F.col("pmid")) == F.col("_cited_pmid")),
                            "left"))
    count = F.coalesce("_by_id", "_by_pmid")
    years = F.greatest(F.lit(1), F.lit(reference.year) - F.col("year") + F.lit(1))
    return (joined.withColumn(CITATIONS_PER_YEAR, (count / years).cast("double"))
                  .drop("_cited_id", "_by_id", "_cited_pmid", "_by_pmid"))


def score_papers(rules: UpsamplingRules):
    """mapInArrow core: the upsampling score of each kept paper, or its exclusion as a drop."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            rows = batch.to_pylist()
            for row in rows:
                if row["source"] != "pubmed_papers" or row[DROP_REASON] is not None:
                    continue
                result = upsampling(
                    paper_types(row["publication_types"], row["keywords"]),
                    [term["descriptor"] for term in row["mesh_terms"] or ()],
                    row["journal"],
                    row["year"], row[CITATIONS_PER_YEAR], rules)
                if result.excluded:
                    row[DROP_REASON], row[DROP_DETAIL] = "upsampling_excluded", result.excluded
                else:
                    row["upsampling_score"] = result.score
            yield pa.RecordBatch.from_pylist(rows, schema=OUTCOME_SCHEMA)

    return run


def upsampling_rules(spark, settings, outcomes) -> tuple[UpsamplingRules, object]:
    """The configured rules, and `outcomes` with the citations-per-year column they need."""
    from pyspark.sql import functions as F

    reference = date.fromisoformat(settings.reference_date)
    journals: frozenset[str] = frozenset()
    if settings.clinical_journals:
        with open_input(storage.absolute_uri(settings.clinical_journals)) as stream:
            lines = stream.read().decode("utf-8").splitlines()
        journals = frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))
    quartiles = None
    if settings.citations:
        outcomes = add_citations_per_year(outcomes, read_citation_table(spark, settings.citations), reference)
        known = outcomes.where(F.col(CITATIONS_PER_YEAR).isNotNull() & (F.col("source") == "pubmed_papers"))
        cuts = known.approxQuantile(CITATIONS_PER_YEAR, [0.25, 0.75], 0.0)  # exact, so reruns agree
        quartiles = (cuts[0], cuts[1]) if len(cuts) == 2 else None
    else:
        outcomes = outcomes.withColumn(CITATIONS_PER_YEAR, F.lit(None).cast("double"))
    return UpsamplingRules(reference, journals, quartiles), outcomes


SUPERSEDED = "superseded_by_fulltext"
ALWAYS, IF_PAPER_KEPT = SUPERSEDE_RULES  # pubmed.supersede_abstracts


def supersede_abstracts(outcomes, papers=None):
    """Mark kept abstracts of the kept papers of `papers` (default: `outcomes`) as dropped (`SUPERSEDED`,
    detail = the paper's id), an abstract matching its paper by PMID, else by PMCID.

    `outcomes` and `papers` have the document columns plus drop_reason/drop_detail; the result has the
    columns of `outcomes`. Which papers count is the caller's rule (:func:`pubmed_outcomes`).
    """
    from pyspark.sql import functions as F

    papers = outcomes if papers is None else papers
    alive_papers = papers.where(F.col(DROP_REASON).isNull() & (F.col("source") == "pubmed_papers"))
    by_pmid = (alive_papers.where(F.col("pmid").isNotNull()).groupBy(F.col("pmid").alias("_paper_pmid"))
               .agg(F.min("id").alias("_by_pmid")))
    by_pmcid = (alive_papers.where(F.col("pmcid").isNotNull()).groupBy(F.col("pmcid").alias("_paper_pmcid"))
                .agg(F.min("id").alias("_by_pmcid")))
    is_abstract = F.col("source") == "pubmed_abstracts"
    joined = (outcomes.join(by_pmid,
                            is_abstract & (F.col("pmid") == F.col("_paper_pmid")), "left")
                      .join(by_pmcid, is_abstract & (F.col("pmcid") == F.col("_paper_pmcid")), "left"))
    paper = F.coalesce("_by_pmid", "_by_pmcid")
    superseded = F.col(DROP_REASON).isNull() & paper.isNotNull()
    return joined.select(
        *[name for name in outcomes.columns if name not in (DROP_REASON, DROP_DETAIL)],
        F.when(superseded, F.lit(SUPERSEDED)).otherwise(F.col(DROP_REASON)).alias(DROP_REASON),
        F.when(superseded, paper).otherwise(F.col(DROP_DETAIL)).alias(DROP_DETAIL),
    )


def pubmed_outcomes(spark, ranked, settings):
    """From parsed, ranked records to the stage's outcomes: versions, papers' metadata, retractions,
    upsampling scores, superseded abstracts.

    Which papers supersede their abstracts (``pubmed.supersede_abstracts``): ``always`` (MEDITRON's rule:
    PubMed abstracts are those "of papers whose full text is not open"), every paper whose current version
    the stage read as a document, even one it then drops as ``retracted`` or ``upsampling_excluded``;
    ``if_paper_kept``, only the papers this stage keeps. Neither knows what later stages do with a paper
    (language, quality, dedup, decontamination): an abstract superseded here stays dropped.
    """
    read = enrich_papers(resolve_versions(ranked))
    rules, unscored = upsampling_rules(spark, settings, drop_retracted(read, settings.keep_retracted))
    outcomes = unscored.mapInArrow(score_papers(rules), spark_schema(OUTCOME_SCHEMA))
    if settings.supersede_abstracts == ALWAYS:
        papers = read
    else:  # IF_PAPER_KEPT: the papers' fate, scored again on the papers alone rather than on every row twice
        from pyspark.sql import functions as F

        papers = unscored.where(F.col("source") == "pubmed_papers").mapInArrow(score_papers(rules),
                                                                                spark_schema(OUTCOME_SCHEMA))
    return supersede_abstracts(outcomes, papers)


def failed_input_files(ranked, files) -> list[tuple[str, str]]:
    """(name, reason) of each input file that failed as a whole, in rank order: a drop under the file's own id
    (``file:<name>``; ``file:<file name>`` as :func:`parse_input` names it), with the reason of its first one.
    A drop of part of a file (``file:<name>#record<k>``, a package member's ``file:<name>:<member>``, an
    article of a mirror's shard) is not a failure of the input. `files` is the stage's (file_rank, path, name)
    frame (``files_dataframe``)."""
    from pyspark.sql import functions as F

    name = F.col("_name")
    own_id = (F.col("id") == F.concat(F.lit("file:"), name)) | (
        F.col("id") == F.concat(F.lit("file:"), F.substring_index(name, "/", -1)))
    rows = (ranked.where(F.col("id").startswith("file:") & F.col(DROP_REASON).isNotNull())
            .join(files.select(F.col(FILE_RANK), F.col("name").alias("_name")), FILE_RANK)
            .where(own_id)
            .groupBy(FILE_RANK, "_name").agg(F.min(F.struct(RECORD_RANK, DROP_REASON)).alias("_first"))
            .collect())
    return [(row["_name"], row["_first"][DROP_REASON]) for row in sorted(rows, key=lambda row: row[FILE_RANK])]


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
    dead list) or any file :func:`parse_input` reads."""

    from gap_replay.pubmed_ingest.inputs import DEFAULT_MAX_MEMBER_BYTES

    cap = max_member_bytes or DEFAULT_MAX_MEMBER_BYTES

    def parse(stream: BinaryIO, name: str, uri: str) -> Iterator[Outcome]:
        if name.startswith("pmc/") and name.endswith(".json"):  # a task's share of the PMC service
            from gap_replay.pubmed_ingest.pmc_direct import parse_plan

            yield from parse_plan(stream, name, cap)
        elif name.endswith(".parquet"):
            from gap_replay.pubmed_ingest.pmc_mirror import parse_shard

            yield from parse_shard(uri, name, dead, cap)
        else:
            yield from parse_input(stream, name, max_member_bytes=max_member_bytes)

    return parse


def stage_inputs(inputs: Sequence[str], pmc_url: str) -> tuple[list[tuple[str, str]], dict, list[str], list[str]]:
    """(uri, name) of every input file, sorted by file name, the dead list of the PMC mirrors among the
    inputs, the mirrors' state files (for the fingerprint), and the PMC service addresses among the inputs
    (``pmc_direct``). An input may be a PMC mirror, or a folder holding one as ``pmc/`` beside PubMed files."""
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
    files = dict(expand_named_inputs(plain, SUFFIXES)) if plain else {}
    files.update(shards)
    return by_file_name(files.items()), dead, state, services


def by_file_name(files) -> list[tuple[str, str]]:
    """(uri, name) pairs in the order that ranks versions: by file name, then name, then uri."""
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
    fingerprint = stage_fingerprint(context.config, ["pubmed"], [*(uri for uri, _ in files), *mirror_state, *tables],
                                    *(service.identity for service, _ in services))

    def produce(output_dir) -> StageLedger:
        planned = list(files)
        input_bytes = storage.total_size(uri for uri, _ in files)
        for service, bucket in services:
            from gap_replay.pubmed_ingest.pmc_cloud import read_inventory

            rows = read_inventory(bucket, service.snapshot)
            plans = write_plan(service, rows, storage.join(output_dir.staging, PLAN_DIR), settings)
            context.say(f"pubmed: {len(rows):,} PMC versions of inventory {service.snapshot} in {len(plans):,} task(s)")
            planned += plans
            input_bytes += len(rows) * PMC_VERSION_BYTES
        frame = files_dataframe(context.spark, by_file_name(planned), settings.partitions)
        from pyspark import StorageLevel

        # Parsed once: the version, citation and superseding steps each read the records again.
        ranked = frame.mapInArrow(parse_files(input_parser(dead), with_uri=True), spark_schema(RANKED_OUTCOME_SCHEMA)) \
                      .persist(StorageLevel.DISK_ONLY)
        try:
            outcomes = pubmed_outcomes(context.spark, ranked, settings)
            ledger = write_outcomes(outcomes, output_dir.staging, STAGE, parts=part_count(input_bytes, context.config.spark.part_mib))
            failed = failed_input_files(ranked, frame)
            ledger.inputs, ledger.failed_inputs = len(planned), Counter(reason for _, reason in failed)
            check_failed_share(ledger, failed, settings.max_failed_share)
            return ledger
        finally:
            ranked.unpersist()
            storage.delete(storage.join(output_dir.staging, PLAN_DIR))  # the tasks' shares: not part of the output

    return run_stage(context, STAGE, output, fingerprint, produce)
