"""The dedup stage: ids, exact text and MinHash near-duplicates, and benchmark decontamination."""

from gap_replay.dedup.settings import DedupConfig
from gap_replay.core.stage import InBuild, Inputs, Stage


def _add_arguments(parser) -> None:
    defaults = DedupConfig()
    parser.add_argument("--decontaminate", nargs="+", metavar="BENCH_FILE",
                        help="benchmark JSONL files or directories (question, optional options): drop documents "
                             f"with >= {defaults.contamination_ratio:.0%} of their word "
                             f"{defaults.contamination_ngram}-grams in them (dedup.contamination_ratio, "
                             "dedup.contamination_ngram; default: dedup.decontaminate)".replace("%", "%%"))


def _apply_arguments(args, settings: DedupConfig) -> None:
    if args.decontaminate:
        settings.decontaminate = list(args.decontaminate)


STAGE = Stage(
    name="dedup",
    help="remove duplicates (ids, exact text, MinHash near-duplicates) and benchmark-contaminated documents",
    settings=DedupConfig,
    job="gap_replay.dedup.job:run_dedup",
    inputs=Inputs("DIR", "finished stage outputs (filter, replay)"),
    add_arguments=_add_arguments,
    apply_arguments=_apply_arguments,
    build=InBuild(consumes=("filter", "replay")),
)
