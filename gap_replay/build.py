"""`gap-replay build`: every registered stage in order, each on the outputs of the stages it consumes.

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
The stages and what each consumes come from the registry (``gap_replay.stages``).
"""

from __future__ import annotations

import tomllib

from importlib import resources
from pathlib import Path
from typing import Any

from gap_replay.core import storage
from gap_replay.core.config import Config
from gap_replay.core.errors import InputError
from gap_replay.core.ledger import StageLedger
from gap_replay.core.runner import RunContext
from gap_replay.core.stage import resolve
from gap_replay.stages import registered

STAGES_DIR = "stages"


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
        "replay": {"inputs": [str(root / "replay")]},
        "mix": {
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
            "settings_note": "the embedded sample is a few dozen documents per part: at the default 1% replay "
                             "share and 5/3/3% validation fractions its replay target would be a fraction of "
                             "one document and most validation splits empty",
        },
    }


def preflight(config: Config) -> None:
    """Each stage's checks that need files or models, before any stage runs."""
    for stage in registered():
        if stage.preflight:
            resolve(stage.preflight)(stage.settings_in(config))


def run_build(context: RunContext, output: str, sample: bool = False) -> list[StageLedger]:
    config = context.config
    context.sample = sample
    preflight(config)
    output = storage.absolute_uri(output)
    outputs: dict[str, str] = {}  # stage name -> its finished output, for the stages that consume it
    ledgers: list[StageLedger] = []
    finishers: list[str] = []
    for stage in registered():
        role = stage.build
        if role is None or not stage.job or (role.runs is not None and not role.runs(config, sample)):
            continue
        settings = stage.settings_in(config)
        inputs = [outputs[name] for name in role.consumes if name in outputs]
        if role.inputs_setting:
            inputs += list(getattr(settings, role.inputs_setting))
        if role.needs_inputs and not inputs:
            if role.consumes:
                raise InputError(f"nothing to build: the {stage.name} stage has no inputs (none of "
                                 f"{', '.join(role.consumes)} ran); set pubmed.inputs and/or guidelines sources "
                                 "in the config")
            continue
        target = output if role.publishes else storage.join(output, STAGES_DIR, stage.name)
        context.upstream = list(ledgers)
        ledgers.append(stage.run(context, settings, inputs, target))
        outputs[stage.name] = target
        if role.finish:
            finishers.append(role.finish)
    for finish in finishers:
        line = resolve(finish)(output)
        if line:
            context.say(line)
    if sample:
        for line in planted_drops_report(ledgers):
            context.say(line)
    return ledgers


def planted_drops_report(ledgers: list[StageLedger]) -> list[str]:
    """Lines naming the drops the embedded sample makes on purpose (sample/planted_drops.toml), each
    with the count this build made; a count that differs is said, and so is any drop not planted."""
    planted = tomllib.loads((sample_dir() / "planted_drops.toml").read_text())["drop"]
    made = {(ledger.stage, reason): count for ledger in ledgers for reason, count in ledger.dropped.items()}
    lines = ["sample: its drops are planted on purpose, to show the accounting:"]
    for entry in planted:
        key = (entry["stage"], entry["reason"])
        count = made.pop(key, 0)
        differs = "" if count == entry["count"] else f" (planted {entry['count']}: not as planted)"
        lines.append(f"  {entry['stage']} {entry['reason']} {count}{differs}: {entry['why']}")
    for (stage, reason), count in sorted(made.items()):
        lines.append(f"  {stage} {reason} {count}: not planted")
    return lines
