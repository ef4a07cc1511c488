"""The tokenizer's training sample: a seeded hash threshold in every task, never a global ordering."""

from __future__ import annotations

import pyarrow as pa
import pytest

from gap_replay.core.shards import count_rows, read_documents
from gap_replay.mixer.job import sample_threshold, tokenizer_sample, tokenizer_sample_frame
from gap_replay.mixer.synthetic import synthetic_table, write_corpus

SEED, WANTED = 7, 100


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """The same 1,600 documents as four shards and, in another order, as one; some texts empty."""
    root = tmp_path_factory.mktemp("tokenizer-sample")
    table = synthetic_table(1600, seed=5, scale=0.1)
    texts = table.column("text").to_pylist()
    index = table.schema.get_field_index("text")
    table = table.set_column(index, table.schema.field(index),
                             pa.array([("" if n % 50 == 0 else text) for n, text in enumerate(texts)], pa.string()))
    write_corpus(str(root / "four"), table, files=4)
    write_corpus(str(root / "one"), table, files=1, order_seed=3)
    return root


def old_rule(documents, seed: int, wanted: int) -> list[str]:
    """What the mixer did before: order the whole corpus by the seeded hash and take the first `wanted`."""
    from pyspark.sql import functions as F

    key = F.xxhash64(F.lit(seed), F.col("text"))
    rows = documents.select("text").where(F.length("text") > 0).orderBy(key, F.col("text")).limit(wanted).collect()
    return [row["text"] for row in rows]


def physical_plan(frame) -> str:
    return frame._jdf.queryExecution().executedPlan().toString()


def test_the_sample_is_the_old_rules_whatever_the_partitioning(spark, layouts):
    four = read_documents(spark, [str(layouts / "four")])
    count = count_rows([str(layouts / "four")])
    reference = old_rule(four, SEED, WANTED)
    assert len(reference) == WANTED
    for documents in (four, read_documents(spark, [str(layouts / "one")]), four.repartition(7), four.coalesce(1)):
        assert tokenizer_sample(documents, SEED, WANTED, count) == reference
    # A threshold sized too small (a count far above the real one) grows until enough texts pass.
    assert tokenizer_sample(four, SEED, WANTED, count * 1000) == reference
    # Wanting more than there are takes every non-empty text, in the same order.
    everything = tokenizer_sample(four, SEED, 5000, count)
    assert everything == old_rule(four, SEED, 5000) and len(everything) == 1600 - 32
    assert tokenizer_sample(four, SEED + 1, WANTED, count) != reference  # the seed decides


def test_each_task_keeps_only_its_share_and_nothing_is_ordered_across_tasks(spark, layouts):
    documents = read_documents(spark, [str(layouts / "four")])
    threshold = sample_threshold(WANTED, 1600)
    assert threshold is not None and threshold < 0  # about 11% of the hash range: the lowest hashes
    frame = tokenizer_sample_frame(documents, SEED, threshold)
    plan = physical_plan(frame)
    # The hash filter runs in the tasks that read the shards; no exchange, sort or final task gathers
    # candidates from other tasks (the driver orders the few that pass).
    assert "Filter" in plan and "xxhash64" in plan, plan
    assert not [word for word in ("TakeOrderedAndProject", "Exchange", "Sort", "Limit") if word in plan], plan
    # Spread over four tasks, each passes about its share of 100 + 6 sd + 16 (about 44 of its 400).
    per_task = tokenizer_sample_frame(documents.repartition(4), SEED, threshold).rdd.glom().map(len).collect()
    assert len(per_task) == 4 and sum(per_task) >= WANTED and max(per_task) <= 100, per_task
    # For contrast: the old rule's plan, one final task over every partition's candidates.
    from pyspark.sql import functions as F

    old = documents.select("text").orderBy(F.xxhash64(F.lit(SEED), F.col("text"))).limit(WANTED)
    assert "TakeOrderedAndProject" in physical_plan(old)


def test_thresholds():
    assert sample_threshold(10_000, 0) is None
    assert sample_threshold(10_000, 10_000) is None  # all of them
    low = sample_threshold(10_000, 10_000_000)
    fraction = (low + (1 << 63)) / (1 << 64)
    assert fraction == pytest.approx((10_000 + 600 + 16) / 10_000_000)
    assert sample_threshold(10_000, 10_000_000, widen=4) > low
