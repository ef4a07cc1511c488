"""The mix stage: train/validation shards with a manifest and a dataset card, and the build's report."""

from gap_replay.core.stage import InBuild, Inputs, Stage
from gap_replay.mixer.settings import MixConfig

STAGE = Stage(
    name="mix",
    help="mix documents into train/validation shards with a manifest",
    settings=MixConfig,
    job="gap_replay.mixer.job:run_mix",
    inputs=Inputs("DIR", "finished stage outputs (dedup)"),
    commands="gap_replay.mixer.cli:register",
    preflight="gap_replay.mixer.job:check_tokenizer",
    build=InBuild(consumes=("dedup",), publishes=True, finish="gap_replay.mixer.report:build_report"),
)
