"""The pubmed stage: PubMed XML and PMC JATS files into abstracts and papers."""

from __future__ import annotations

from gap_replay.stage import InBuild, Inputs, Stage
from pubmed_ingest.settings import PubmedConfig


def _run(context, settings, inputs, output):
    from pubmed_ingest.job import run_pubmed

    return run_pubmed(context, inputs, output)


def _commands(commands, common) -> None:
    from pubmed_ingest.cli import register

    register(commands, common)


STAGE = Stage(
    name="pubmed",
    help="parse PubMed XML and PMC JATS files into document shards",
    settings=PubmedConfig,
    run=_run,
    inputs=Inputs("PATH", "files, directories or globs (.xml, .xml.gz, .nxml, PMC OA .tar.gz); "
                          "a build reads pubmed.inputs"),
    commands=_commands,
    build=InBuild(configured_inputs=lambda settings: list(settings.inputs)),
)
