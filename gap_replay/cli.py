"""The `gap-replay` command."""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
import traceback
from collections.abc import Sequence

from gap_replay.core.errors import ConfigError, InputError, OutputExistsError
from gap_replay.core.ledger import LedgerError, StageLedger, format_summary
from gap_replay.core.runner import RunContext
from gap_replay.stages import load_config, registered

EXIT_USAGE, EXIT_FAILURE = 2, 1


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

    # One command per stage (--input when it takes inputs, --output, its own options, the common
    # options), then the commands stages own (`pubmed download`, `tokenizer train`, `train`, ...).
    for stage in registered():
        if not stage.job:
            continue
        sub = commands.add_parser(stage.name, help=stage.help, description=stage.help)
        if stage.inputs is not None:
            sub.add_argument("--input", nargs="+", required=True, metavar=stage.inputs.metavar,
                             help=stage.inputs.help)
        sub.add_argument("--output", required=True, metavar="DIR", help="where the stage's output is written")
        if stage.add_arguments is not None:
            stage.add_arguments(sub)
        _common(sub)
        sub.set_defaults(stage=stage)
    p = commands.add_parser("build", help="run every stage in order", description=BUILD_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", required=True, metavar="DIR", help="the build's output directory")
    p.add_argument("--sample", action="store_true", help="build from the embedded sample")
    _common(p)
    for stage in registered():
        stage.register_commands(commands, _common)
    return parser


BUILD_HELP = """run every stage in order, each on the outputs of the stages before it

A build reads its inputs from the configuration (--config FILE, --set SECTION.KEY=VALUE):
  pubmed.inputs        PubMed XML, PMC JATS and PMC OA .tar.gz files, directories or globs
  guidelines.sources   guideline source tags (default: all that need no browser)
  replay.inputs        replay JSONL or Parquet
and writes OUT/stages/<stage>/ for each stage, then the shards, manifest, card and report in OUT.
"""


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


def _run(args: argparse.Namespace) -> list[StageLedger] | int:
    if getattr(args, "handler", None) is not None:  # a command's own handler: ledgers, or an exit status
        result = args.handler(args, lambda: _context(args))
        return result if isinstance(result, int) else list(result or [])
    context = _context(args)
    if args.command == "build":
        from gap_replay.build import run_build

        return run_build(context, args.output, sample=args.sample)
    stage = args.stage
    settings = stage.settings_in(context.config)
    if stage.apply_arguments is not None:
        stage.apply_arguments(args, settings)
    return [stage.run(context, settings, list(getattr(args, "input", None) or []), args.output)]


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
    user_errors = (ConfigError, FileNotFoundError, InputError, OutputExistsError)
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
    if isinstance(ledgers, int):
        return ledgers
    if ledgers:
        print(format_summary(ledgers, time.perf_counter() - started))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
