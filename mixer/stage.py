"""The mix stage: train/validation shards with a manifest and a dataset card."""

from __future__ import annotations

from gap_replay.stage import InBuild, Inputs, Stage
from mixer.settings import MixConfig


def _run(context, settings, inputs, output):
    from mixer.job import run_mix

    return run_mix(context, inputs, output, upstream=context.upstream)


def _preflight(settings: MixConfig) -> None:
    from mixer.job import check_tokenizer

    check_tokenizer(settings.tokenizer)  # a configured tokenizer must load before the stages run


def _report(context, output: str) -> str:
    from mixer.report import write_report

    return f"report: {write_report(output)}"


def _commands(commands, common) -> None:
    from mixer.cli import register

    register(commands, common)


STAGE = Stage(
    name="mix",
    help="mix documents into train/validation shards with a manifest",
    settings=MixConfig,
    run=_run,
    inputs=Inputs("DIR", "finished stage outputs (dedup)"),
    preflight=_preflight,
    commands=_commands,
    build=InBuild(consumes=("dedup",), publishes=True, finish=_report),
)
