"""The replay stage: general-domain text (RedPajama-style JSONL or Parquet) into document shards."""

from gap_replay.stage import InBuild, Inputs, Stage
from replay.settings import ReplayConfig

STAGE = Stage(
    name="replay",
    help="read RedPajama-style JSONL replay text into document shards",
    settings=ReplayConfig,
    job="replay.job:run_replay",
    inputs=Inputs("PATH", "files, directories or globs (.jsonl, .jsonl.gz, .jsonl.zst, .parquet); "
                          "a build reads replay.inputs"),
    build=InBuild(inputs_setting="inputs"),
)
