"""What a stage declares: the one object through which the command line and the build know it.

A stage package (pubmed_ingest, guidelines_scraper, replay, filters, dedup, mixer) has a ``stage``
module whose ``STAGE`` is a :class:`Stage`; a package that only adds commands (train) declares one
with ``run=None``. The registry (``gap_replay.stages``) lists those modules; neither the build nor
the command line imports anything else of a stage. Declaring a stage imports nothing heavy: the
``run`` and ``commands`` callables import the stage's machinery when they are called.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gap_replay.config import Config
from gap_replay.ledger import StageLedger
from gap_replay.runner import RunContext

# run(context, settings, inputs, output) -> the stage's ledger; `settings` is its configuration section.
Run = Callable[[RunContext, Any, Sequence[str], str], StageLedger]
# commands(subparsers, common): adds the stage's own commands, each with set_defaults(handler=...);
# a handler is called as handler(args, make_context) and returns the ledgers to summarise.
Commands = Callable[[argparse._SubParsersAction, Callable[[argparse.ArgumentParser], None]], None]


@dataclass(frozen=True)
class Inputs:
    """What `--input` takes on the stage's command line."""

    metavar: str  # PATH (files) or DIR (finished stage outputs)
    help: str


@dataclass(frozen=True)
class InBuild:
    """How `gap-replay build` runs the stage.

    Its inputs are the outputs of the `consumes` stages that ran, plus what `configured_inputs`
    returns from its settings; it runs when `runs(config, sample)` says so and it has inputs
    (`needs_inputs`). A stage that `publishes` writes the build's own output directory, not
    ``OUT/stages/<name>``, and gets the upstream ledgers in ``context.upstream``.
    """

    consumes: tuple[str, ...] = ()
    configured_inputs: Callable[[Any], list[str]] | None = None
    runs: Callable[[Config, bool], bool] = lambda config, sample: True
    needs_inputs: bool = True
    publishes: bool = False
    # Called after the whole build with (context, output); returns a line to report, or None.
    finish: Callable[[RunContext, str], str | None] | None = None


@dataclass(frozen=True)
class Stage:
    name: str  # the command (`gap-replay <name>`) and OUT/stages/<name>
    help: str
    settings: type | None = None  # the configuration section's dataclass: defaults and validate()
    section: str = ""  # the section's name in the TOML file; default: the stage's name
    run: Run | None = None
    inputs: Inputs | None = None  # None: the command takes no --input
    # add_arguments(parser): the command's own options; apply_arguments(args, settings) puts them
    # into the settings before the run.
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    apply_arguments: Callable[[argparse.Namespace, Any], None] | None = None
    # preflight(settings): checks that need files or models (a configured tokenizer loads, the
    # language model exists), run before a build starts so that it fails in seconds, not hours.
    preflight: Callable[[Any], None] | None = None
    commands: Commands | None = None
    build: InBuild | None = None

    @property
    def section_name(self) -> str:
        return self.section or self.name
