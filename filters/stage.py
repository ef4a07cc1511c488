"""The filter stage: language identification and quality rules."""

from gap_replay.filters.settings import FilterConfig
from gap_replay.core.stage import InBuild, Inputs, Stage

STAGE = Stage(
    name="filter",
    help="language identification and quality filtering",
    settings=FilterConfig,
    job="gap_replay.filters.job:run_filter",
    inputs=Inputs("DIR", "finished stage outputs (pubmed, guidelines)"),
    commands="gap_replay.filters.cli:register",
    preflight="gap_replay.filters.langid:check_model",
    build=InBuild(consumes=("pubmed", "guidelines")),
)
