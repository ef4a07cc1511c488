"""`gap-replay replay` and `gap-replay mix`: replay text as documents, and the final mixture.

The mix (all deterministic functions of the seed, the document ids and totals computed exactly, so
reruns are byte-identical and nothing depends on partitioning):

1. token counts: the configured tokenizer (or one trained on a seeded sample of the inputs, shipped in
   ``OUT/tokenizer/``) counts every document's tokens in Python tasks that read the input shards with
   pyarrow (``core.shards.map_slices``; the tokenizer is loaded once per Python worker): the texts never
   pass through the JVM. Only (id, part, tokens, a few metadata columns) are kept in memory.
2. split: a document goes to validation when ``pmod(xxhash64(seed, id), 10^6) < fraction * 10^6``
   with its part's ``mix.validation_fraction``; copies of a document share its id, hence its split.
3. copies per document: weights, token targets and the replay share (mixer/plan.py).
4. shards: per split, ``max(ceil(rows / shard_rows), ceil(tokens / shard_tokens))`` shards; a row's
   shard is ``pmod(xxhash64(seed, id, copy, "shard"), N)`` and its place in the shard the order of
   ``xxhash64(seed, id, copy, "order")``: a seeded global shuffle. Files are
   ``OUT/train/train-00000-of-000NN.parquet`` and ``OUT/validation/validation-00000-of-000MM.parquet``.
5. ``manifest.json`` (settings, seed, code version, tokenizer, per-part documents and tokens before and
   after mixing, per-shard rows/tokens/bytes/sha256, statistics, every stage's ledger), the dataset card
   ``README.md`` and the mix's drop table ``OUT/drops/`` (documents left out by sampling).

Copies: the first copy of a document is the document unchanged; copy k >= 1 keeps its ``id`` and
carries ``"mix_copy": k`` at the front of its ``extra`` JSON, so (id, mix_copy) identifies a row.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from gap_replay import __version__
from gap_replay.core import storage
from gap_replay.core.config import ConfigError
from gap_replay.core.errors import InputError
from gap_replay.core.ledger import LEDGER_FILE, StageLedger
from gap_replay.core.runner import RunContext, run_stage, stage_fingerprint
from gap_replay.core.schema import COLUMN_NAMES, DOCUMENT_SCHEMA, DROPS_SCHEMA, SCHEMA_VERSION, SOURCES
from gap_replay.core.shards import (KEY_COLUMN, RESULT_DDL, commit_keyed, count_rows, document_files, keyed_writer,
                                    map_slices, new_run, read_documents, reading_parts, resolve_document_dirs,
                                    write_empty)
from gap_replay.core.spark import default_parallelism
from gap_replay.mixer import plan as planning
from gap_replay.mixer.settings import MixConfig, departures_from_defaults
from gap_replay.mixer.tokens import (
    END_OF_DOCUMENT,
    SPECIAL_TOKENS,
    TokenizerError,
    save_tokenizer,
    token_counter,
    tokenizer_info,
    train_tokenizer,
    vocabulary_shortfall,
)

MIX_STAGE = "mix"
SPLITS = ("train", "validation")
MANIFEST = "manifest.json"
CARD = "README.md"
TOKENIZER_DIR = "tokenizer"
DROPS_DIR = "drops"
DROP_SHARD_ROWS = 1_000_000
# Row groups of the shards users read: small, so a reader (a torch data loader, DuckDB) can seek.
SHARD_GROUP_ROWS = 1024
COPY_KEY = "mix_copy"

SPLIT, U, BASE, BASE_MILLI, TOKENS, COPIES, COPY = "_split", "_u", "_base", "_base_milli", "_tokens", "_copies", "_copy"
NARROW_COLUMNS = ("id", "source", "subset", "language", "upsampling_score", "license")
NARROW_DDL = ("id string, source string, subset string, language string, upsampling_score float, license string, "
              f"{TOKENS} long")
U_MASK = (1 << planning.U_BITS) - 1
# Tokenizing is the mix's heaviest work and a document's cost follows its length (papers of 500k characters beside
# abstracts): its tasks are cut four a core, so that no core waits long on another's last task.
COUNT_TASKS_PER_CORE = 4


# -- Spark expressions -----------------------------------------------------------------------------


def split_column(seed: int, fractions: dict[str, float]):
    from pyspark.sql import functions as F

    bucket = F.pmod(F.xxhash64(F.lit(seed), F.col("id")), F.lit(1_000_000))
    threshold = F.lit(0)
    for source, fraction in sorted(fractions.items()):
        threshold = F.when(F.col("source") == source, F.lit(int(round(fraction * 1_000_000)))).otherwise(threshold)
    return F.when(bucket < threshold, F.lit("validation")).otherwise(F.lit("train"))


def with_mix_columns(frame, settings: MixConfig):
    """Add the split, the uniform number u and the base factor (papers: 1 + upsampling_score)."""
    from pyspark.sql import functions as F

    score = F.greatest(F.coalesce(F.col("upsampling_score").cast("double"), F.lit(0.0)), F.lit(0.0))
    return (frame
            .withColumn(SPLIT, split_column(settings.seed, settings.validation_fraction))
            .withColumn(U, F.xxhash64(F.lit(settings.seed), F.col("id"), F.lit("sample")).bitwiseAND(F.lit(U_MASK)))
            .withColumn(BASE, F.when(F.col("source") == planning.PAPERS, F.lit(1.0) + score).otherwise(F.lit(1.0))))


def _plan_column(plan: planning.Plan):
    from pyspark.sql import functions as F

    if plan.method == "weight":
        factor = F.lit(float(plan.weight)) * F.col(BASE)
        whole = F.floor(factor)
        extra = F.when(F.col(U).cast("double") / F.lit(float(planning.U_RANGE)) < factor - whole, 1).otherwise(0)
        return (whole + extra).cast("int")
    if plan.bound is None:
        extra = F.lit(0)
    elif plan.bound[0] >= planning.U_RANGE:
        extra = F.lit(1)
    else:
        u, doc_id = plan.bound
        extra = F.when((F.col(U) < F.lit(u)) | ((F.col(U) == F.lit(u)) & (F.col("id") < F.lit(doc_id))), 1).otherwise(0)
    return (F.lit(plan.full) + extra).cast("int")


def copies_column(plans: dict[str, planning.Plan]):
    """Copies of each document (0: left out): in the training split by its part's plan (a part with no
    plan keeps weight 1); in the validation split one each, since weights and upsampling shape what
    the model trains on, not what it is measured on."""
    from pyspark.sql import functions as F

    expression = F.lit(1)
    for part, plan in sorted(plans.items()):
        expression = F.when(F.col("source") == part, _plan_column(plan)).otherwise(expression)
    return F.when(F.col(SPLIT) == "validation", F.lit(1)).otherwise(expression).cast("int")


def shard_column(seed: int, shards: dict[str, int]):
    """Global shard key: train shards 0..N-1, then validation shards N..N+M-1."""
    from pyspark.sql import functions as F

    def within(split: str):
        return F.pmod(F.xxhash64(F.lit(seed), F.col("id"), F.col(COPY), F.lit("shard")), F.lit(shards[split]))

    return F.when(F.col(SPLIT) == "train", within("train")).otherwise(F.lit(shards["train"]) + within("validation")).cast("int")


def _extra_with_copy():
    """``extra`` of copy k >= 1: ``{"mix_copy": k, ...the original keys}``; copy 0 is unchanged."""
    from pyspark.sql import functions as F

    extra, copy = F.col("extra"), F.col(COPY).cast("string")
    head = F.concat(F.lit(f'{{"{COPY_KEY}": '), copy)
    return (F.when(F.col(COPY) == 0, extra)
            .when(extra.isNull() | (F.trim(extra) == "{}"), F.concat(head, F.lit("}")))
            .when(F.trim(extra).startswith("{"), F.concat(head, F.lit(", "), F.expr("substring(ltrim(extra), 2)")))
            .otherwise(F.concat(head, F.lit(', "value": '), extra, F.lit("}"))))


# -- the mix ---------------------------------------------------------------------------------------


def _shard_names(shards: dict[str, int]) -> list[str]:
    return [f"{split}/{split}-{index:05d}-of-{shards[split]:05d}.parquet" for split in SPLITS for index in range(shards[split])]


# The tokenizer's training sample: the `wanted` texts with the smallest seeded hash, (xxhash64(seed, text),
# text) ascending. Ordering the whole corpus for them (TakeOrderedAndProject) makes one final task read
# every partition's candidates; instead each task keeps only the texts whose hash falls under a threshold
# sized from the document count, so that `wanted` plus a margin pass, and the driver orders that few.
SAMPLE_SIGMAS = 6  # the margin: six standard deviations of the number passing, plus a few documents
SAMPLE_WIDEN = 4  # should fewer than `wanted` pass (empty texts, duplicates), the threshold grows this much


def sample_threshold(wanted: int, documents: int, widen: int = 1) -> int | None:
    """The signed 64-bit hash under which about ``wanted + 6 * sqrt(wanted) + 16`` (times `widen`) of
    `documents` texts fall; None when that is all of them."""
    if documents <= 0:
        return None
    fraction = widen * (wanted + SAMPLE_SIGMAS * math.sqrt(wanted) + 16) / documents
    if fraction >= 1:
        return None
    return -(1 << 63) + int(fraction * (1 << 64))


def sample_key(seed: int):
    from pyspark.sql import functions as F

    return F.xxhash64(F.lit(seed), F.col("text"))


def tokenizer_sample_frame(documents, seed: int, threshold: int | None):
    """The non-empty texts whose seeded hash is under `threshold` (all when None), with that hash: a filter
    in each task, no exchange, nothing ordered."""
    from pyspark.sql import functions as F

    texts = documents.select("text").where(F.length("text") > 0)
    if threshold is not None:
        texts = texts.where(sample_key(seed) < F.lit(threshold))
    return texts.select(sample_key(seed).alias("key"), "text")


def tokenizer_sample(documents, seed: int, wanted: int, count: int) -> list[str]:
    """The `wanted` non-empty texts with the smallest (seeded hash, text), in that order: the same texts
    whatever the partitioning. `count` is the number of documents (the threshold's size); should fewer
    than `wanted` pass, the threshold grows until enough do or it lets every text through."""
    widen = 1
    while True:
        threshold = sample_threshold(wanted, count, widen)
        table = tokenizer_sample_frame(documents, seed, threshold).toArrow()
        if table.num_rows >= wanted or threshold is None:
            break
        widen *= SAMPLE_WIDEN
    ordered = sorted(zip(table.column("key").to_pylist(), table.column("text").to_pylist()))
    return [text for _, text in ordered[:wanted]]


def _train_tokenizer(context: RunContext, documents, directory: str, count: int) -> str:
    settings = context.config.mix
    context.say(f"mix: training a byte-level BPE tokenizer (vocab {settings.tokenizer_vocab_size:,}) "
                f"on up to {settings.tokenizer_max_documents:,} documents")
    texts = tokenizer_sample(documents, settings.seed, settings.tokenizer_max_documents, count)
    tokenizer = train_tokenizer(iter(texts), settings.tokenizer_vocab_size, length=len(texts))
    shortfall = vocabulary_shortfall(tokenizer, settings.tokenizer_vocab_size, len(texts))
    if shortfall:
        context.say(f"mix: {shortfall} (mix.tokenizer_vocab_size)")
    return save_tokenizer(tokenizer, directory)


def _before(narrow, settings: MixConfig) -> tuple[dict, dict]:
    """One pass: documents, tokens and base-weighted tokens per (part, split), and the token histogram
    over u buckets of the training documents of the parts sized by a prefix."""
    from pyspark.sql import functions as F

    prefixed = sorted(part for part in SOURCES if planning.needs_prefix(part, settings))
    bucket = F.when(F.col("source").isin(prefixed) & (F.col(SPLIT) == "train"),
                    F.shiftright(F.col(U), planning.BUCKET_SHIFT))
    rows = (narrow.groupBy("source", SPLIT, bucket.alias("bucket"))
            .agg(F.count(F.lit(1)).alias("documents"), F.sum(TOKENS).alias("tokens"),
                 F.sum(F.col(BASE_MILLI) * F.col(TOKENS)).alias("weighted")).collect())
    before: dict = {}
    histograms: dict[str, dict[int, int]] = defaultdict(dict)
    for row in rows:
        entry = before.setdefault((row["source"], row[SPLIT]), {"documents": 0, "tokens": 0, "weighted": 0})
        entry["documents"] += row["documents"]
        entry["tokens"] += row["tokens"] or 0
        entry["weighted"] += row["weighted"] or 0
        if row["bucket"] is not None:
            histograms[row["source"]][row["bucket"]] = row["tokens"] or 0
    return before, histograms


def _prefix_bound(narrow, part: str, step: planning.PrefixStep, histogram: dict[int, int]) -> tuple[int, str] | None:
    from pyspark.sql import functions as F

    if step.remainder == 0:
        return None
    bucket, before = planning.crossing_bucket(histogram, step.remainder)
    documents = (narrow.where((F.col("source") == part) & (F.col(SPLIT) == "train")
                              & (F.shiftright(F.col(U), planning.BUCKET_SHIFT) == bucket))
                 .select(U, "id", TOKENS).collect())
    return planning.cut_bucket([(row[U], row["id"], row[TOKENS]) for row in documents], bucket, step.remainder, before)


def replay_sample(context: RunContext, inputs: Sequence[str]) -> dict[str, Any] | None:
    """The replay stage's read-time sample (its ledger's ``details.sample``), from the ledgers of the
    stages before (a build) or of an input that is a replay stage's output; None when replay was read in
    full or its ledger is not at hand (a dedup output given alone does not carry it)."""
    ledgers = [ledger for ledger in context.upstream if ledger.stage == "replay"]
    if not ledgers:
        for uri in map(storage.absolute_uri, inputs):
            if storage.exists(storage.join(uri, LEDGER_FILE)):
                ledger = StageLedger.read(uri)
                if ledger.stage == "replay":
                    ledgers.append(ledger)
    samples = [ledger.details["sample"] for ledger in ledgers if "sample" in ledger.details]
    return samples[0] if samples else None


def _plans(context: RunContext, narrow, before: dict, histograms: dict[str, dict[int, int]],
           sample: dict[str, Any] | None = None) -> tuple[dict[str, planning.Plan], dict[str, Any]]:
    from pyspark.sql import functions as F

    settings = context.config.mix
    parts = sorted({part for part, _ in before} | set(SOURCES))
    plans: dict[str, planning.Plan] = {}
    sampled = f"; replay was sampled at read time (replay.sample_rate = {sample['rate']:g}): raise it" \
        if sample else ""

    def prefix(part: str, target: int) -> planning.Plan:
        step = planning.prefix_step(target, before.get((part, "train"), {}).get("tokens", 0))
        return planning.prefix_plan(step, target, _prefix_bound(narrow, part, step, histograms.get(part, {})))

    for part, target in sorted(planning.unmeetable_targets(settings, before).items()):
        setting = "mix.replay_share" if part == planning.REPLAY and part not in settings.target_tokens \
            else f"mix.target_tokens.{part}"
        raise InputError(f"mix: {setting} asks for {part} training tokens ({target}) but the inputs hold no "
                         f"{part} training documents: add them to --input (a build: the stage's inputs "
                         f"setting), or set {setting} = 0 to mix without {part}"
                         + (sampled if part == planning.REPLAY else ""))
    for part in parts:
        if part == planning.REPLAY:
            continue
        if planning.needs_prefix(part, settings):
            plans[part] = prefix(part, settings.target_tokens[part])
        else:
            plans[part] = planning.weight_plan(part, settings, before.get((part, "train"), {}).get("weighted", 0))
    other = 0
    if settings.replay_share or planning.REPLAY in settings.target_tokens:
        other = (narrow.where((F.col(SPLIT) == "train") & (F.col("source") != planning.REPLAY))
                 .select(F.sum(copies_column(plans).cast("long") * F.col(TOKENS)).alias("tokens"))
                 .collect()[0]["tokens"]) or 0
    target = planning.replay_target(settings, other)
    available = before.get((planning.REPLAY, "train"), {}).get("tokens", 0)
    short = planning.sample_shortfall(sample["rate"], target, available) if sample else None
    if short is not None:
        raise InputError(
            f"mix: replay's target is {target:,} training tokens but the replay stage's read-time sample "
            f"(replay.sample_rate = {sample['rate']:g}, {sample['kept']:,} of {sample['read']:,} documents) "
            f"holds {available:,} after the stages between: the mix would repeat it where a fuller read gives "
            f"new documents. Rerun with replay.sample_rate of at least {short:.4g} (in proportion), better "
            f"{min(1.0, 1.5 * short):.4g} (a margin for dedup's drops)")
    plans[planning.REPLAY] = prefix(planning.REPLAY, target)
    replay = {"share": settings.replay_share if planning.REPLAY not in settings.target_tokens else None,
              "target_tokens": target, "other_train_tokens": other,
              # The smallest replay.sample_rate giving this same mixture (the mix takes replay in the order
              # the read-time sample follows), and the sample this build read, if any.
              "sample_rate_needed": planning.rate_needed(plans[planning.REPLAY]), "sample": sample}
    if sample and sample["seed"] != settings.seed:
        context.say(f"mix: replay was sampled at read time with seed {sample['seed']}, not mix.seed "
                    f"{settings.seed}: not in the mix's order, so its replay is not the one a full read gives")
    return plans, replay


def _statistics(narrow, plans) -> list:
    """One aggregation over the documents with their copies: everything the manifest reports."""
    from pyspark.sql import functions as F

    source = F.col("source")
    return (narrow.withColumn(COPIES, copies_column(plans)).groupBy(
        source.alias("source"), F.col(SPLIT).alias("split"),
        F.when(source.isin("guidelines", "replay"), F.col("subset")).alias("subset"),
        F.when(source == "guidelines", F.col("license")).alias("license"),
        F.coalesce(F.col("language"), F.lit("und")).alias("language"),
        F.floor(F.log2(F.col(TOKENS) + 1) * 4).cast("int").alias("length_bucket"),
        F.when(source == planning.PAPERS, F.round(F.coalesce(F.col("upsampling_score"), F.lit(0.0)), 2)).alias("score"),
        F.col(COPIES).alias("copies"),
    ).agg(F.count(F.lit(1)).alias("documents"), F.sum(TOKENS).alias("tokens")).collect())


def _summaries(groups: list) -> dict[str, Any]:
    """Per part and split, before and after mixing; distributions for the card and the report."""
    def zero():
        return {"documents": 0, "tokens": 0}

    parts: dict[str, Any] = {}
    lengths: dict[str, Counter] = defaultdict(Counter)
    languages: dict[str, Counter] = defaultdict(Counter)
    scores: Counter = Counter()
    paper_copies: Counter = Counter()
    subsets: dict[str, dict[str, dict[str, Any]]] = {"guidelines": {}, "replay": {}}
    for row in groups:
        part, split, docs, tokens, copies = row["source"], row["split"], row["documents"], row["tokens"] or 0, row["copies"]
        entry = parts.setdefault(part, {"before": {s: zero() for s in SPLITS},
                                        "after": {s: {"documents": 0, "rows": 0, "tokens": 0} for s in SPLITS}})
        entry["before"][split]["documents"] += docs
        entry["before"][split]["tokens"] += tokens
        if copies > 0:
            after = entry["after"][split]
            after["documents"] += docs
            after["rows"] += docs * copies
            after["tokens"] += tokens * copies
            lengths[part][row["length_bucket"]] += docs
            languages[part][row["language"]] += docs
        if part == planning.PAPERS:
            scores[f"{row['score']:.2f}"] += docs
            paper_copies[copies] += docs
        if part in subsets and row["subset"] is not None:
            sub = subsets[part].setdefault(row["subset"], {"documents": 0, "rows": 0, "tokens": 0, "license": None})
            if copies > 0:
                sub["documents"] += docs
                sub["rows"] += docs * copies
                sub["tokens"] += tokens * copies
            if row["license"] is not None:
                sub["license"] = row["license"]
    for entry in parts.values():
        for stage in ("before", "after"):
            entry[stage]["total"] = {key: sum(entry[stage][s][key] for s in SPLITS) for key in entry[stage]["train"]}
    statistics = {
        "length_buckets": "bucket b holds documents with floor(4 * log2(tokens + 1)) = b, i.e. "
                          "2^(b/4) - 1 <= tokens < 2^((b+1)/4) - 1",
        "length_histogram": {part: {str(b): n for b, n in sorted(counter.items())} for part, counter in sorted(lengths.items())},
        "languages": {part: dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))
                      for part, counter in sorted(languages.items())},
        "upsampling": {"score": planning.histogram_pairs(scores.items()),
                       "copies": planning.histogram_pairs(paper_copies.items())},
        "guideline_sources": dict(sorted(subsets["guidelines"].items())),
        "replay_sets": {key: {k: v for k, v in value.items() if k != "license"}
                        for key, value in sorted(subsets["replay"].items())},
    }
    return {"parts": dict(sorted(parts.items())), "statistics": statistics}


def _guideline_sources(documents) -> dict[str, dict[str, Any]]:
    """Name, URL and redistribution status of each guideline source in the data: the guidelines stage
    puts them in every document (``extra.source_name``, ``extra.source_url``, the ``license`` column)."""
    from pyspark.sql import functions as F

    rows = (documents.where((F.col("source") == "guidelines") & F.col("subset").isNotNull())
            .groupBy("subset")
            .agg(F.max(F.get_json_object("extra", "$.source_name")).alias("name"),
                 F.max(F.get_json_object("extra", "$.source_url")).alias("url"),
                 F.max("license").alias("license"))
            .collect())
    return {row["subset"]: {"name": row["name"] or row["subset"], "url": row["url"] or "",
                            "open": row["license"] == "open"}
            for row in sorted(rows, key=lambda row: row["subset"])}


def _drop_detail(plans: dict[str, planning.Plan]):
    from pyspark.sql import functions as F

    detail = F.lit("left out by the mixture's sampling")
    for part, plan in sorted(plans.items()):
        if plan.method == "weight":
            text = f"{part}: weight {plan.weight:.6g}, rounded probabilistically with the seed"
        else:
            text = f"{part}: outside the seeded sample that reaches {plan.target_tokens:,} training tokens"
        detail = F.when(F.col("source") == part, F.lit(text)).otherwise(detail)
    return detail


def _write_drops(context: RunContext, narrow, plans, staging: str, dropped: int) -> None:
    from pyspark.sql import functions as F

    files = max(1, math.ceil(dropped / DROP_SHARD_ROWS))
    names = [f"{DROPS_DIR}/part-{index:05d}-of-{files:05d}.parquet" for index in range(files)]
    if dropped == 0:
        write_empty(staging, names[0], DROPS_SCHEMA)
        return
    written = (narrow.withColumn(COPIES, copies_column(plans)).where(F.col(COPIES) == 0)
               .select("id", F.lit(MIX_STAGE).alias("stage"), F.lit("not_sampled").alias("reason"),
                       _drop_detail(plans).alias("detail"),
                       F.pmod(F.xxhash64(F.col("id")), F.lit(files)).cast("int").alias(KEY_COLUMN))
               .repartition(min(files, default_parallelism(context.spark) * 4), KEY_COLUMN)
               .sortWithinPartitions(KEY_COLUMN, "id")
               .mapInArrow(keyed_writer(staging, names, DROPS_SCHEMA, DROPS_SCHEMA.names, new_run(),
                                        group_rows=SHARD_GROUP_ROWS), RESULT_DDL)
               .collect())
    written = commit_keyed(staging, written)
    for name in set(names) - {row["file"] for row in written}:
        write_empty(staging, name, DROPS_SCHEMA)


def _write_shards(context: RunContext, inputs: Sequence[str], plans, staging: str,
                  shards: dict[str, int]) -> dict[str, dict[str, Any]]:
    from pyspark.sql import functions as F

    settings = context.config.mix
    seed = settings.seed
    names = _shard_names(shards)
    documents = with_mix_columns(read_documents(context.spark, inputs), settings)
    rows = (documents.withColumn(COPIES, copies_column(plans)).where(F.col(COPIES) > 0)
            .withColumn(COPY, F.explode(F.sequence(F.lit(0), F.col(COPIES) - 1)))
            .withColumn("extra", _extra_with_copy())
            .withColumn(KEY_COLUMN, shard_column(seed, shards))
            .repartition(min(len(names), default_parallelism(context.spark) * 4), KEY_COLUMN)
            .sortWithinPartitions(KEY_COLUMN, F.xxhash64(F.lit(seed), F.col("id"), F.col(COPY), F.lit("order")),
                                  "id", COPY, F.xxhash64(F.col("text")), "text")
            .select(*COLUMN_NAMES, KEY_COLUMN))
    written = rows.mapInArrow(keyed_writer(staging, names, DOCUMENT_SCHEMA, COLUMN_NAMES, new_run(),
                                             group_rows=SHARD_GROUP_ROWS, text_column="text"), RESULT_DDL).collect()
    by_name = {row["file"]: row for row in commit_keyed(staging, written)}
    for name in names:
        if name not in by_name:  # no row hashed to this shard: still write it, so the set is whole
            by_name[name] = write_empty(staging, name, DOCUMENT_SCHEMA)
    return by_name


def _shard_tokens(narrow, plans, seed: int, shards: dict[str, int]) -> dict[int, tuple[int, int]]:
    """(rows, tokens) per shard key, from the token counts (no text needed)."""
    from pyspark.sql import functions as F

    rows = (narrow.withColumn(COPIES, copies_column(plans)).where(F.col(COPIES) > 0)
            .select(SPLIT, "id", TOKENS, F.explode(F.sequence(F.lit(0), F.col(COPIES) - 1)).alias(COPY))
            .groupBy(shard_column(seed, shards).alias("key"))
            .agg(F.count(F.lit(1)).alias("rows"), F.sum(TOKENS).alias("tokens")).collect())
    return {row["key"]: (row["rows"], row["tokens"]) for row in rows}


def check_tokenizer(settings: MixConfig) -> None:
    """Load the configured tokenizer now (ConfigError if it cannot be); "" (train one) passes."""
    spec = settings.tokenizer
    if spec:
        try:
            tokenizer_info(spec)
        except TokenizerError as error:
            raise ConfigError(str(error)) from None


def tokenizer_fingerprint(spec: str) -> str:
    if not spec:
        return "tokenizer:trained"
    return f"tokenizer:{spec}:{tokenizer_info(spec).sha256}"


def run_mix(context: RunContext, inputs: Sequence[str], output: str,
            settings: MixConfig | None = None) -> StageLedger:
    """Mix document inputs into ``<output>/{train,validation}`` with ``manifest.json`` and ``README.md``.

    In a build, the ledgers of the stages before (``context.upstream``) are recorded in the manifest
    beside the mix stage's own.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    settings = settings or context.config.mix
    settings.validate()
    resolve_document_dirs(inputs)  # missing or unfinished inputs fail here, before any output exists
    check_tokenizer(settings)
    fingerprint = stage_fingerprint(context.config, ["mix"], inputs, tokenizer_fingerprint(settings.tokenizer))

    def produce(output_dir) -> StageLedger:
        staging = output_dir.staging
        documents = read_documents(context.spark, inputs)
        documents_in = count_rows(inputs)
        if settings.tokenizer:
            spec, trained = settings.tokenizer, False
        else:
            spec, trained = _train_tokenizer(context, documents, storage.join(staging, TOKENIZER_DIR), documents_in), True
        info = tokenizer_info(spec)
        context.say(f"mix: counting tokens (vocabulary of {info.vocab_size:,})")
        # Python tasks read the texts with pyarrow: only the narrow rows pass through the JVM.
        files = document_files(inputs)
        counted = map_slices(context.spark, reading_parts(context.spark, files, context.config.spark.part_mib,
                                                          tasks_per_core=COUNT_TASKS_PER_CORE),
                             token_counter(spec, info.sha256, keep=NARROW_COLUMNS), NARROW_DDL,
                             columns=(*NARROW_COLUMNS, "text"))
        narrow = with_mix_columns(counted, settings)
        narrow = narrow.withColumn(BASE_MILLI, F.round(F.col(BASE) * planning.BASE_SCALE).cast("long"))
        narrow = narrow.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            before, histograms = _before(narrow, settings)
            plans, replay = _plans(context, narrow, before, histograms, replay_sample(context, inputs))
            summary = _summaries(_statistics(narrow, plans))
            totals = {split: {key: sum(part["after"][split][key] for part in summary["parts"].values())
                              for key in ("documents", "rows", "tokens")} for split in SPLITS}
            shards = {split: planning.shard_count(totals[split]["rows"], totals[split]["tokens"],
                                                  settings.shard_rows, settings.shard_tokens) for split in SPLITS}
            per_key = _shard_tokens(narrow, plans, settings.seed, shards)
            kept = sum(totals[split]["documents"] for split in SPLITS)
            dropped = sum(part["before"]["total"]["documents"] for part in summary["parts"].values()) - kept
            _write_drops(context, narrow, plans, staging, dropped)
        finally:
            narrow.unpersist()
        context.say(f"mix: writing {shards['train']} train and {shards['validation']} validation shards")
        files = _write_shards(context, inputs, plans, staging, shards)
        ledger = StageLedger(MIX_STAGE, documents_in=documents_in, kept=kept,
                             dropped=Counter({"not_sampled": dropped} if dropped else {})).check()
        names = _shard_names(shards)
        splits: dict[str, Any] = {}
        for split in SPLITS:
            offset = 0 if split == "train" else shards["train"]
            listed = []
            for key in range(offset, offset + shards[split]):
                name, (rows, tokens) = names[key], per_key.get(key, (0, 0))
                if rows != files[name]["rows"]:
                    raise RuntimeError(f"{name}: {files[name]['rows']} rows written, {rows} planned")
                listed.append({"file": name, "rows": rows, "tokens": tokens, "bytes": files[name]["bytes"],
                               "sha256": files[name]["sha256"]})
            splits[split] = {**totals[split],
                             "by_source": {part: entry["after"][split] for part, entry in summary["parts"].items()},
                             "shards": listed}
        train_tokens = totals["train"]["tokens"]
        replay_train = summary["parts"].get(planning.REPLAY, {}).get("after", {}).get("train", {}).get("tokens", 0)
        replay["train_tokens"] = replay_train
        replay["actual_share"] = replay_train / train_tokens if train_tokens else 0.0
        replay["relative_error"] = planning.relative_error(replay_train, replay["target_tokens"])
        parts = {}
        for part, entry in summary["parts"].items():
            plan = plans.get(part)
            target = plan.target_tokens if plan else None
            parts[part] = {"plan": plan.to_dict() if plan else None, **entry,
                           "relative_error": planning.relative_error(entry["after"]["train"]["tokens"], target)
                           if target is not None else None}
        mix_settings = context.config.to_dict()["mix"]
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "code_version": __version__,
            "seed": settings.seed,
            "settings": mix_settings,
            "tokenizer": {"spec": f"{TOKENIZER_DIR}/tokenizer.json" if trained else spec, "trained": trained,
                          "sha256": info.sha256, "vocab_size": info.vocab_size,
                          "special_tokens": list(SPECIAL_TOKENS) if trained else None,
                          "end_of_document": END_OF_DOCUMENT if trained else None,
                          "counts": "tokens of `text`, no special tokens added"},
            "schema": [{"name": field.name, "type": str(field.type), "nullable": field.nullable}
                       for field in DOCUMENT_SCHEMA],
            "parts": parts,
            "replay": replay,
            "splits": splits,
            "statistics": {**summary["statistics"], "guideline_registry": _guideline_sources(documents)},
            "stages": [ledger_.to_dict() for ledger_ in (*context.upstream, ledger)],
        }
        for stage in manifest["stages"]:
            stage.pop("seconds", None)  # timings vary; the manifest describes the data
        storage.write_text(storage.join(staging, MANIFEST), json.dumps(manifest, indent=2) + "\n")
        from gap_replay.mixer.card import dataset_card

        storage.write_text(storage.join(staging, CARD), dataset_card(manifest))
        replay_note = (f"; replay {replay['actual_share']:.2%} of training tokens (target "
                       f"{replay['target_tokens']:,} tokens; needs replay.sample_rate >= "
                       f"{replay['sample_rate_needed']:.4g}"
                       + (f", read at {replay['sample']['rate']:g}" if replay["sample"] else "") + ")"
                       ) if replay["target_tokens"] else ""
        context.say(f"mix: {totals['train']['rows']:,} train rows ({train_tokens:,} tokens), "
                    f"{totals['validation']['rows']:,} validation rows{replay_note}")
        departures = departures_from_defaults(mix_settings)
        if departures:
            context.say(f"mix: not the default mixture: {'; '.join(departures)}; why: "
                        f"{settings.settings_note or 'set in this configuration (mix.settings_note says why)'}")
        return ledger

    return run_stage(context, MIX_STAGE, output, fingerprint, produce)
