"""The replay stage: general-domain text (RedPajama-style JSONL or Parquet) into document shards."""

from __future__ import annotations

from gap_replay.stage import InBuild, Inputs, Stage
from replay.settings import ReplayConfig


def _run(context, settings, inputs, output):
    from mixer.job import run_replay

    return run_replay(context, inputs, output)


STAGE = Stage(
    name="replay",
    help="read RedPajama-style JSONL replay text into document shards",
    settings=ReplayConfig,
    run=_run,
    inputs=Inputs("PATH", "files, directories or globs (.jsonl, .jsonl.gz, .jsonl.zst, .parquet); "
                          "a build reads replay.inputs"),
    build=InBuild(configured_inputs=lambda settings: list(settings.inputs)),
)
