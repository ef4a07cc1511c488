"""The replay stage: general-domain text (RedPajama-style JSONL or Parquet) into document shards."""

from gap_replay.core.stage import InBuild, Inputs, Stage
from gap_replay.replay.settings import ReplayConfig

STAGE = Stage(
    name="replay",
    help="read RedPajama-style JSONL replay text into document shards",
    settings=ReplayConfig,
    job="gap_replay.replay.job:run_replay",
    inputs=Inputs("PATH", "files, directories or globs (.jsonl, .jsonl.gz, .jsonl.zst, .parquet); "
                          "a build reads replay.inputs"),
    build=InBuild(inputs_setting="inputs"),
)
