"""Replay sampled at read time, seen from the mix: the same shards as from a full read while the sample
holds the target, a stop naming the rate when it does not, and the sample in the manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from gap_replay.core.errors import InputError
from gap_replay.core.runner import RunContext
from gap_replay.mixer.job import run_mix
from gap_replay.mixer.report import drop_counts
from gap_replay.mixer.synthetic import synthetic_table, write_corpus
from gap_replay.mixer.tokens import save_tokenizer, train_tokenizer
from gap_replay.replay.job import run_replay
from gap_replay.stages import load_config

PARTS = {"guidelines": 0.06, "pubmed_abstracts": 0.55, "pubmed_papers": 0.2, "replay": 0.19}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Medical documents as shards, replay as RedPajama-style JSONL, a tokenizer."""
    root = tmp_path_factory.mktemp("replay-sample")
    table = synthetic_table(1200, seed=11, mix=PARTS, scale=0.15)
    is_replay = pc.equal(table.column("source"), "replay")
    write_corpus(str(root / "medical"), table.filter(pc.invert(is_replay)), files=2)
    replay = table.filter(is_replay)
    (root / "replay.jsonl").write_text("".join(
        json.dumps({"text": text, "meta": {"redpajama_set_name": "RedPajamaC4"}}) + "\n"
        for text in replay.column("text").to_pylist()))
    save_tokenizer(train_tokenizer(table.column("text").to_pylist()[::4], vocab_size=800), str(root / "tokenizer"))
    return root, replay.num_rows


def config(root: Path, rate: float):
    return load_config(base={"replay": {"sample_rate": rate}, "mix": {
        "tokenizer": str(root / "tokenizer"), "seed": 7, "shard_rows": 300, "shard_tokens": 200_000,
        "replay_share": 0.03}})


def replay_then_mix(root: Path, rate: float, name: str) -> Path:
    replay = root / f"replay-{name}"
    run_replay(RunContext(config(root, rate)), [str(root / "replay.jsonl")], str(replay))
    output = root / f"mix-{name}"
    run_mix(RunContext(config(root, rate)), [str(root / "medical"), str(replay)], str(output))
    return output


def shards(output: Path) -> dict[str, str]:
    return {str(path.relative_to(output)): hashlib.sha256(path.read_bytes()).hexdigest()
            for split in ("train", "validation") for path in sorted((output / split).glob("*.parquet"))}


def manifest(output: Path) -> dict:
    return json.loads((output / "manifest.json").read_text())


@pytest.fixture(scope="module")
def full(spark, inputs):
    root, _ = inputs
    return replay_then_mix(root, 1.0, "full")


def test_a_sample_that_holds_the_target_gives_the_full_reads_shards(full, inputs):
    root, replay_documents = inputs
    read_in_full = manifest(full)["replay"]
    assert read_in_full["sample"] is None
    needed = read_in_full["sample_rate_needed"]
    assert 0.1 < needed < 0.7  # the mix takes a prefix of replay in its own order, not all of it
    rate = round(needed * 1.2, 3)  # a margin of 20%
    sampled = replay_then_mix(root, rate, "sampled")
    assert shards(sampled) == shards(full)
    replay = manifest(sampled)["replay"]
    assert replay["sample_rate_needed"] == needed and replay["target_tokens"] == read_in_full["target_tokens"]
    sample = replay["sample"]
    assert (sample["rate"], sample["seed"], sample["read"]) == (rate, 7, replay_documents)
    assert sample["kept"] + sample["not_sampled"] == replay_documents
    assert replay_documents * rate * 0.7 < sample["kept"] < replay_documents * rate * 1.3
    # Fewer replay documents reached the mix, and it left out fewer of them.
    parts = manifest(sampled)["parts"]["replay"]
    assert parts["before"]["total"]["documents"] == sample["kept"]
    assert parts["after"] == manifest(full)["parts"]["replay"]["after"]
    card = (sampled / "README.md").read_text()
    assert f"Replay was sampled as it was read: {sample['kept']:,} of {replay_documents:,} documents" in card


def test_a_sample_short_of_the_target_stops_the_mix_naming_the_rate(full, inputs, tmp_path):
    root, _ = inputs
    needed = manifest(full)["replay"]["sample_rate_needed"]
    rate = round(needed / 3, 3)
    replay = tmp_path / "replay"
    run_replay(RunContext(config(root, rate)), [str(root / "replay.jsonl")], str(replay))
    with pytest.raises(InputError, match=r"replay.sample_rate = [0-9.]+, \d+ of \d+ documents.*"
                                         r"Rerun with replay.sample_rate of at least ([0-9.]+)") as caught:
        run_mix(RunContext(config(root, rate)), [str(root / "medical"), str(replay)], str(tmp_path / "mix"))
    suggested = float(caught.value.args[0].split("at least ")[1].split()[0])
    assert needed / 1.5 < suggested < needed * 1.5  # in proportion to what the sample held
    assert not (tmp_path / "mix" / "_SUCCESS").exists()


def test_the_report_counts_drops_a_ledger_counts_without_listing(tmp_path):
    drops = tmp_path / "stages" / "replay" / "drops"
    drops.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["file:r.jsonl#line2"], "stage": ["replay"], "reason": ["parse_error"],
                             "detail": ["invalid JSON"]}), drops / "part-00000.parquet")
    stages = [{"stage": "replay", "in": 501, "kept": 0, "dropped": {"parse_error": 1, "not_sampled": 500}}]
    assert drop_counts(str(tmp_path), {"stages": stages}) == {("replay", "parse_error"): 1, ("replay", "not_sampled"): 500}
