"""What a stage declares: the one object through which the command line and the build know it.

A stage package (pubmed_ingest, guidelines_scraper, replay, filters, dedup, mixer) has a ``stage``
module whose ``STAGE`` is a :class:`Stage`; a package that only adds commands (train) declares one
without a job. The registry (``gap_replay.stages``) lists those modules; neither the build nor the
command line imports anything else of a stage. A declaration imports nothing heavy: its job and
commands are named as ``"module:function"`` and imported when they are called.

A stage's configuration section is a dataclass that owns its defaults and ``validate()`` (rules on
the values alone, run when the configuration loads); checks that need files or models are the
stage's `preflight`, run before a build starts so that it fails in seconds, not hours.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gap_replay.core.config import Config
from gap_replay.core.ledger import StageLedger
from gap_replay.core.runner import RunContext


def resolve(reference: str) -> Callable[..., Any]:
    """The function named by ``"package.module:function"``."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Inputs:
    """What `--input` takes on the stage's command line."""

    metavar: str  # PATH (files) or DIR (finished stage outputs)
    help: str


@dataclass(frozen=True)
class InBuild:
    """How `gap-replay build` runs the stage.

    Its inputs are the outputs of the `consumes` stages that ran, plus the paths in its settings'
    `inputs_setting` field; it runs when `runs(config, sample)` says so and it has inputs (or
    `needs_inputs` is false). A stage that `publishes` writes the build's own output directory,
    not ``OUT/stages/<name>``, and finds the upstream ledgers in ``context.upstream``. `finish`
    names a function called with the build's output once every stage ran; what it returns is
    reported.
    """

    consumes: tuple[str, ...] = ()
    inputs_setting: str = ""
    runs: Callable[[Config, bool], bool] | None = None
    needs_inputs: bool = True
    publishes: bool = False
    finish: str = ""


@dataclass(frozen=True)
class Stage:
    name: str  # the command (`gap-replay <name>`) and OUT/stages/<name>
    help: str
    settings: type | None = None  # the configuration section's dataclass
    section: str = ""  # the section's name in the TOML file; default: the stage's name
    # "module:function", called as function(context, inputs, output, settings=settings) -> StageLedger
    job: str = ""
    inputs: Inputs | None = None  # None: the command takes no --input
    # add_arguments(parser): the command's own options; apply_arguments(args, settings) puts them
    # into the settings before the run.
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    apply_arguments: Callable[[argparse.Namespace, Any], None] | None = None
    # "module:function", called as function(subparsers, common) to add the stage's own commands,
    # each with set_defaults(handler=...); a handler is called as handler(args, make_context) and
    # returns the ledgers to summarise.
    commands: str = ""
    # "module:function", called as function(settings) before a build runs any stage
    preflight: str = ""
    build: InBuild | None = None

    @property
    def section_name(self) -> str:
        return self.section or self.name

    def settings_in(self, config: Config) -> Any:
        """The stage's section of `config` (None for a stage without one)."""
        return getattr(config, self.section_name) if self.settings is not None else None

    def run(self, context: RunContext, settings: Any, inputs: Sequence[str], output: str) -> StageLedger:
        """Run the stage with its `settings` (its section of ``context.config``) on `inputs` into `output`."""
        return resolve(self.job)(context, list(inputs), output, settings=settings)

    def register_commands(self, commands: argparse._SubParsersAction,
                          common: Callable[[argparse.ArgumentParser], None]) -> None:
        if self.commands:
            resolve(self.commands)(commands, common)
