"""The mix stage: train/validation shards with a manifest and a dataset card, and the build's report."""

from gap_replay.stage import InBuild, Inputs, Stage
from mixer.settings import MixConfig

STAGE = Stage(
    name="mix",
    help="mix documents into train/validation shards with a manifest",
    settings=MixConfig,
    job="mixer.job:run_mix",
    inputs=Inputs("DIR", "finished stage outputs (dedup)"),
    commands="mixer.cli:register",
    preflight="mixer.job:check_tokenizer",
    build=InBuild(consumes=("dedup",), publishes=True, finish="mixer.report:build_report"),
)
