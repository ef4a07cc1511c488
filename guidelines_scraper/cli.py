"""Commands the guidelines stage owns: `gap-replay guidelines check` and `gap-replay guidelines compare`.

Registered through the stage's declaration (``STAGE.commands``); this module imports nothing heavy.
"""

from __future__ import annotations

import sys


def register(commands, common) -> None:
    description = ("probe each guideline source (a few listing pages and articles, as politely as the crawl) "
                   "and report its health against the paper's yield; exit 1 when a selected source is broken")
    parser = commands.add_parser("guidelines-check", prog="gap-replay guidelines check",
                                 help=description + " (also: gap-replay guidelines check)", description=description)
    parser.add_argument("--sources", metavar="TAGS",
                        help="comma-separated source tags (default: guidelines.sources, else all that need no browser)")
    parser.add_argument("--max-listings", type=int, default=3, metavar="N",
                        help="listing or sitemap pages fetched per source (default 3: CCO's articles are three "
                             "listing levels deep)")
    parser.add_argument("--max-articles", type=int, default=5, metavar="M",
                        help="articles fetched and extracted per source, spread over the links found (default 5)")
    parser.add_argument("--json", metavar="FILE", help="also write the per-source figures here")
    parser.add_argument("--sample", action="store_true",
                        help="probe the embedded sample's guideline site (served on 127.0.0.1) instead of the web")
    common(parser)
    parser.set_defaults(handler=check)

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


def check(args, make_context) -> int:
    import json
    import tempfile
    import time
    import tomllib
    from contextlib import nullcontext

    from gap_replay.core import storage
    from gap_replay.core.errors import ConfigError
    from gap_replay.guidelines_scraper.fetch import Fetcher
    from gap_replay.guidelines_scraper.health import BROKEN, health_table, probe_sources
    from gap_replay.guidelines_scraper.local_site import sample_mirror, sample_site_root, sample_sources_path, serve_directory
    from gap_replay.guidelines_scraper.sources import SourceConfigError, load_sources, select_sources

    if args.max_listings < 1 or args.max_articles < 1:
        raise ConfigError("--max-listings and --max-articles must be at least 1")
    settings = make_context().config.guidelines
    if args.sample:  # the sample's own sources, served locally: no politeness delay needed
        settings.sources_config = settings.sources_config or str(sample_sources_path())
        settings.sources = settings.sources or list(tomllib.loads(sample_sources_path().read_text())["sources"])
        settings.request_delay, settings.timeout, settings.max_retries = 0.0, 10.0, 1
    tags = [tag.strip() for tag in args.sources.split(",") if tag.strip()] if args.sources else settings.sources
    try:
        selected = select_sources(load_sources(settings.sources_config or None), tags or None)
    except SourceConfigError as error:
        raise ConfigError(str(error)) from None
    healths, seconds = {}, {}
    fetcher = Fetcher(user_agent=settings.user_agent, min_delay=settings.request_delay,
                      read_timeout=settings.timeout, max_retries=settings.max_retries)
    with fetcher, serve_directory(sample_site_root()) if args.sample else nullcontext(None) as base, \
            tempfile.TemporaryDirectory(prefix="gap-replay-check-") as scratch:
        mirror = sample_mirror(base, selected) if args.sample else {}
        for source in selected:  # one at a time, to time each probe
            started = time.perf_counter()
            healths.update(probe_sources([source], f"{scratch}/{source.tag}", fetcher=fetcher, mirror=mirror,
                                         max_listings=args.max_listings, max_articles=args.max_articles,
                                         fixture=args.sample))
            seconds[source.tag] = time.perf_counter() - started
    print(health_table(healths.values()))
    print()
    for health in healths.values():
        print(f"{health.line()} [{seconds[health.tag]:.1f}s]")
    if args.json:
        report = {"max_listings": args.max_listings, "max_articles": args.max_articles,
                  "sources": {tag: {**health.to_dict(), "seconds": round(seconds[tag], 3)}
                              for tag, health in healths.items()}}
        storage.write_text(args.json, json.dumps(report, indent=2) + "\n")
    broken = [tag for tag, health in healths.items() if health.verdict() == BROKEN]
    if broken:
        print(f"gap-replay: broken source(s): {', '.join(broken)}", file=sys.stderr)
        return 1
    return 0
