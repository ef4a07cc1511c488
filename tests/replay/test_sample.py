"""Replay sampled at read time: the rule (the mix's own u, computed in Python), and the stage with it."""

from __future__ import annotations

import gzip
import json
import os
import random

import pyarrow.parquet as pq
import pytest

from gap_replay.cli import main
from gap_replay.core.outcome import Drop
from gap_replay.core.runner import RunContext
from gap_replay.core import sampling
from gap_replay.replay.job import run_replay
from gap_replay.replay.reader import replay_document
from gap_replay.core.sampling import U_RANGE, mix_u
from gap_replay.replay.sample import COUNT_REASON, ReplaySample
from gap_replay.stages import load_config


def test_u_is_the_mixers_u_bit_for_bit(spark, monkeypatch):
    """The replay stage computes in Python (core.sampling) the number the mix computes in Spark (mixer.job)."""
    from gap_replay.mixer.job import U, with_mix_columns
    from gap_replay.mixer.settings import MixConfig

    monkeypatch.setattr(sampling, "_HEADS", {})
    ids = [f"replay:{name}:{os.urandom(8).hex()}" for name in ("wikipedia", "c4", "book", "stack_exchange")
           for _ in range(50)] + ["replay:x:é€𝄞", "", "pmid:1"]
    frame = spark.createDataFrame([(doc_id, "replay", 0.0) for doc_id in ids], "id string, source string, upsampling_score float")
    for seed in (42, 7, -5, 1 << 40):
        rows = with_mix_columns(frame, MixConfig(seed=seed)).select("id", U).collect()
        assert {row["id"]: row[U] for row in rows} == {doc_id: mix_u(seed, doc_id) for doc_id in ids}, seed


def test_spark_xxhash64_is_sparks(spark):
    from pyspark.sql import functions as F

    row = spark.range(1).select(F.xxhash64(F.lit(7), F.lit("abc")).alias("a"), F.xxhash64(F.lit(1 << 40)).alias("b"),
                                F.xxhash64(F.lit("é€𝄞"), F.lit(-3)).alias("c")).first()
    signed = [value - (1 << 64) if value >= 1 << 63 else value
              for value in (sampling.spark_xxhash64(7, "abc"), sampling.spark_xxhash64(1 << 40),
                            sampling.spark_xxhash64("é€𝄞", -3))]
    assert signed == [row["a"], row["b"], row["c"]]


def documents(count: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [replay_document({"text": f"Replay text {n}: " + " ".join(str(rng.random()) for _ in range(5)),
                             "meta": {"redpajama_set_name": "RedPajamaC4"}}) for n in range(count)]


def test_the_rule_keeps_u_below_the_threshold_and_counts_the_rest():
    docs = documents(2000)
    rule = ReplaySample(seed=42, rate=0.25)
    assert rule.threshold == U_RANGE // 4
    bad = Drop("file:r.jsonl#line7", "parse_error", "invalid JSON", "replay")
    out = list(rule.apply([*docs[:1000], bad, *docs[1000:]], "r.jsonl"))
    kept = [item for item in out if isinstance(item, dict)]
    assert kept == [doc for doc in docs if mix_u(42, doc["id"]) < U_RANGE // 4]
    assert 400 < len(kept) < 600
    assert bad in out  # drops of unreadable records pass: they are listed whatever the sample
    assert out[-1] == Drop("file:r.jsonl", COUNT_REASON, str(2000 - len(kept)), "replay")
    # Rate 1 keeps all, with no count row; a higher rate keeps a superset (a prefix of the same order).
    assert list(ReplaySample(42, 1.0).apply(docs, "r.jsonl")) == docs
    more = [item["id"] for item in ReplaySample(42, 0.5).apply(docs, "r.jsonl") if isinstance(item, dict)]
    assert {doc["id"] for doc in kept} < set(more)

    def failing():
        yield from docs[:300]
        raise OSError("connection reset")

    seen = []
    with pytest.raises(OSError):
        for item in rule.apply(failing(), "r.jsonl"):
            seen.append(item)
    assert seen[-1].reason == COUNT_REASON  # what was read is counted before the error goes on
    assert int(seen[-1].detail) + len(seen) - 1 == 300


def write_jsonl(path, docs: list[dict], extra_lines=(), compress=False) -> None:
    lines = [json.dumps({"text": doc["text"], "meta": {"redpajama_set_name": "RedPajamaC4"}}) for doc in docs]
    data = ("\n".join([*lines, *extra_lines]) + "\n").encode()
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)


def test_the_stage_keeps_the_sample_and_counts_what_it_left_out(spark, tmp_path):
    docs = documents(600, seed=1)
    write_jsonl(tmp_path / "one.jsonl", docs, extra_lines=["{not json", json.dumps({"text": " "})])
    (tmp_path / "three").mkdir()
    for index in range(3):  # the same records in three gzipped files, in another order
        write_jsonl(tmp_path / "three" / f"part-{index}.jsonl.gz", docs[index::3][::-1], compress=True)
    write_jsonl(tmp_path / "three" / "bad.jsonl", [], extra_lines=["{not json", json.dumps({"text": " "})])
    config = load_config(base={"replay": {"sample_rate": 0.3}, "mix": {"seed": 9}})
    threshold = int(0.3 * U_RANGE)
    expected = sorted(doc["id"] for doc in docs if mix_u(9, doc["id"]) < threshold)
    results = {}
    for name in ("one.jsonl", "three"):
        output = tmp_path / f"out-{name}"
        ledger = run_replay(RunContext(config), [str(tmp_path / name)], str(output))
        kept = sorted(pq.read_table(output / "data").column("id").to_pylist())
        drops = pq.read_table(output / "drops").to_pylist()
        results[name] = (kept, ledger)
        assert kept == expected
        left_out = 600 - len(expected)
        assert ledger.documents_in == 602 and ledger.kept == len(expected)
        assert dict(ledger.dropped) == {"not_sampled": left_out, "parse_error": 1, "empty_text": 1}
        # Counted, not listed: the drop table lists the unreadable records only.
        assert sorted(row["reason"] for row in drops) == ["empty_text", "parse_error"]
        sample = ledger.details["sample"]
        assert {key: sample[key] for key in ("seed", "rate", "threshold", "read", "kept", "not_sampled")} == \
            {"seed": 9, "rate": 0.3, "threshold": threshold, "read": 600, "kept": len(expected), "not_sampled": left_out}
        assert json.loads((output / "_ledger.json").read_text())["details"]["sample"] == sample
    assert results["one.jsonl"][0] == results["three"][0]
    # Every document read: as before, no sample recorded.
    ledger = run_replay(RunContext(load_config()), [str(tmp_path / "one.jsonl")], str(tmp_path / "all"))
    assert ledger.kept == 600 and "sample" not in ledger.details and "not_sampled" not in ledger.dropped
    assert ledger.details["redaction"]["by_source"]["replay"]["documents"] == 600


@pytest.mark.parametrize("rate", ["0", "1.5", "-0.1", "nan"])
def test_an_out_of_range_rate_stops_before_spark(tmp_path, capsys, rate):
    assert main(["replay", "--input", str(tmp_path), "--output", str(tmp_path / "out"),
                 "--set", f"replay.sample_rate={rate}"]) == 2
    assert "replay.sample_rate" in capsys.readouterr().err
