"""The guidelines stage: crawl the clinical-guideline sources and extract their text."""

from gap_replay.core.stage import InBuild, Stage
from gap_replay.guidelines_scraper.settings import GuidelinesConfig


def _add_arguments(parser) -> None:
    parser.add_argument("--sources", metavar="TAGS",
                        help="comma-separated source tags (default: guidelines.sources, else all that need no browser)")
    parser.add_argument("--raw-store", metavar="DIR",
                        help="where raw responses are kept (default: guidelines.raw_store, else next to --output)")


def _apply_arguments(args, settings: GuidelinesConfig) -> None:
    if args.sources:
        settings.sources = [tag.strip() for tag in args.sources.split(",") if tag.strip()]
    if args.raw_store:
        settings.raw_store = args.raw_store


def _runs_in_build(config, sample: bool) -> bool:
    # A full build crawls every source by default; the sample build only what the sample configures.
    return bool(config.guidelines.sources or config.guidelines.sources_config or not sample)


STAGE = Stage(
    name="guidelines",
    help="crawl clinical-guideline sources and extract their text",
    settings=GuidelinesConfig,
    job="gap_replay.guidelines_scraper.job:run_guidelines",
    add_arguments=_add_arguments,
    apply_arguments=_apply_arguments,
    commands="gap_replay.guidelines_scraper.cli:register",
    build=InBuild(runs=_runs_in_build, needs_inputs=False),
)
