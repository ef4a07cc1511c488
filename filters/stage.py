"""The filter stage: language identification and quality rules."""

from __future__ import annotations

from filters.settings import FilterConfig
from gap_replay.stage import InBuild, Inputs, Stage


def _run(context, settings, inputs, output):
    from filters.job import run_filter

    return run_filter(context, inputs, output)


def _preflight(settings: FilterConfig) -> None:
    from filters.langid import resolve_model_path

    resolve_model_path(settings.lid_model)  # the model must be there before hours of parsing, not after


def _commands(commands, common) -> None:
    from filters.cli import register

    register(commands, common)


STAGE = Stage(
    name="filter",
    help="language identification and quality filtering",
    settings=FilterConfig,
    run=_run,
    inputs=Inputs("DIR", "finished stage outputs (pubmed, guidelines)"),
    preflight=_preflight,
    commands=_commands,
    build=InBuild(consumes=("pubmed", "guidelines")),
)
