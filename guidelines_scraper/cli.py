"""Commands the guidelines stage owns: `gap-replay guidelines compare`.

Registered through the stage's declaration (``STAGE.commands``); this module imports nothing heavy.
"""

from __future__ import annotations


def register(commands, common) -> None:
    description = ("compare a guidelines output with MEDITRON's published epfl-llm/guidelines: per-source "
                   "coverage and text similarity")
    parser = commands.add_parser("guidelines-compare", prog="gap-replay guidelines compare",
                                 help=description + " (also: gap-replay guidelines compare)", description=description)
    parser.add_argument("--reference", required=True, metavar="FILE",
                        help="the published articles: open_guidelines.jsonl (plain, .gz, .zst) or Parquet")
    parser.add_argument("--input", nargs="+", required=True, metavar="DIR",
                        help="guidelines stage or build outputs, or directories of document shards")
    parser.add_argument("--json", metavar="FILE", help="also write the full report (with unmatched articles) here")
    parser.add_argument("--worst", type=int, default=10, metavar="N",
                        help="list the N least similar matched pairs (default 10)")
    parser.add_argument("--debug", action="store_true", help="print full tracebacks on errors")
    parser.set_defaults(handler=compare)


def compare(args, make_context) -> list:
    import json

    from gap_replay.core import storage
    from gap_replay.core.errors import ConfigError
    from gap_replay.guidelines_scraper.compare import compare as compare_articles
    from gap_replay.guidelines_scraper.compare import format_report, read_our_documents, read_reference
    from gap_replay.guidelines_scraper.sources import load_sources

    if args.worst < 0:
        raise ConfigError("--worst must be >= 0")
    reference = read_reference(args.reference)
    ours = read_our_documents(args.input)
    report = compare_articles(reference, ours, worst=args.worst, known_sources=load_sources())
    report = {"reference": args.reference, "input": list(args.input), **report}
    print(format_report(report))
    if args.json:
        storage.write_text(args.json, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return []
