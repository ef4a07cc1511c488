"""The filter stage: language identification and quality rules."""

from filters.settings import FilterConfig
from gap_replay.stage import InBuild, Inputs, Stage

STAGE = Stage(
    name="filter",
    help="language identification and quality filtering",
    settings=FilterConfig,
    job="filters.job:run_filter",
    inputs=Inputs("DIR", "finished stage outputs (pubmed, guidelines)"),
    commands="filters.cli:register",
    preflight="filters.langid:check_model",
    build=InBuild(consumes=("pubmed", "guidelines")),
)
