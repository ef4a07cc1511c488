"""`gap-replay build`: every stage in order, each on the previous one's output.

Layout of a build output::

    OUT/manifest.json            settings, tokenizer, per-part tokens, shards (rows, tokens, sha256), ledgers
    OUT/README.md                the dataset card
    OUT/train/train-00000-of-0000N.parquet            training shards
    OUT/validation/validation-00000-of-0000M.parquet
    OUT/tokenizer/               the tokenizer that counted the tokens, when the mix trained it
    OUT/drops/                   documents the mix left out (sampling)
    OUT/report.html, OUT/report/*.png                 plots of the build
    OUT/stages/<stage>/          each stage's own output: data/, drops/, _ledger.json, _SUCCESS
    OUT/_SUCCESS

Each stage's finished output is reused by a rerun, so a build killed at any point resumes where it
stopped; a stage whose settings or inputs changed refuses to reuse stale output unless --overwrite.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from gap_replay import storage
from gap_replay.ledger import StageLedger
from gap_replay.runner import RunContext


def sample_dir() -> Path:
    return Path(str(resources.files("gap_replay") / "sample"))


def sample_settings() -> dict[str, Any]:
    """Settings of the embedded sample build (layered under any --config and --set)."""
    root = sample_dir()
    return {
        "pubmed": {"inputs": [str(root / "pubmed"), str(root / "pmc")]},
        "guidelines": {"sources": ["who", "nice", "wikidoc"],
                       "sources_config": str(root / "guidelines_sources.toml"), "request_delay": 0.0,
                       "timeout": 10.0, "max_retries": 1},
        "mix": {
            "replay": [str(root / "replay")],
            # The sample has a few dozen documents per part: a larger validation share keeps every
            # validation shard populated.
            "validation_fraction": {"guidelines": 0.25, "pubmed_abstracts": 0.2, "pubmed_papers": 0.25,
                                    "replay": 0.0},
            "shard_rows": 40,
            # A tokenizer trained on the sample itself (a small vocabulary: the sample is a few dozen
            # documents), by the mixer, into OUT/tokenizer/.
            "tokenizer_vocab_size": 1000,
            # The sample's replay is two dozen documents of ~700 tokens: a share this large keeps its
            # token target many documents long, so whole documents hit it within 2%.
            "replay_share": 0.5,
        },
    }


def run_build(context: RunContext, output: str, sample: bool = False) -> list[StageLedger]:
    from dedup.job import run_dedup
    from filters.job import run_filter
    from guidelines_scraper.job import run_guidelines
    from mixer.job import run_mix, run_replay
    from pubmed_ingest.job import run_pubmed

    from filters.langid import resolve_model_path

    from mixer.job import check_tokenizer
    from mixer.plan import validate_mix_settings

    config = context.config
    resolve_model_path(config.filter.lid_model)  # fail before hours of parsing, not after
    validate_mix_settings(config.mix)
    check_tokenizer(config.mix.tokenizer)  # a configured tokenizer must load, before the stages run
    output = storage.absolute_uri(output)
    stages = storage.join(output, "stages")
    ledgers: list[StageLedger] = []
    ingested: list[str] = []

    if config.pubmed.inputs:
        ledgers.append(run_pubmed(context, config.pubmed.inputs, storage.join(stages, "pubmed")))
        ingested.append(storage.join(stages, "pubmed"))
    if config.guidelines.sources or config.guidelines.sources_config or not sample:
        ledgers.append(run_guidelines(context, storage.join(stages, "guidelines"), sample=sample))
        ingested.append(storage.join(stages, "guidelines"))
    if not ingested:
        from gap_replay.shards import InputError

        raise InputError("nothing to build: set pubmed.inputs and/or guidelines sources in the config")
    ledgers.append(run_filter(context, ingested, storage.join(stages, "filter")))
    to_dedup = [storage.join(stages, "filter")]
    if config.mix.replay:
        ledgers.append(run_replay(context, config.mix.replay, storage.join(stages, "replay")))
        to_dedup.append(storage.join(stages, "replay"))
    ledgers.append(run_dedup(context, to_dedup, storage.join(stages, "dedup")))
    ledgers.append(run_mix(context, [storage.join(stages, "dedup")], output, upstream=list(ledgers)))
    from mixer.report import write_report

    context.say(f"report: {write_report(output)}")
    return ledgers
