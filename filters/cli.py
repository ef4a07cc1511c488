"""`gap-replay quality train`: train the fastText quality classifier the filter stage can apply."""

from __future__ import annotations


def register(commands, common) -> None:
    help = "train a fastText quality classifier from positive and negative shards (also: gap-replay quality train)"
    parser = commands.add_parser("quality-train", help=help, description=help)
    parser.add_argument("--positive", nargs="+", required=True, metavar="DIR", help="shards of good documents")
    parser.add_argument("--negative", nargs="+", required=True, metavar="DIR", help="shards of other documents")
    parser.add_argument("--output", required=True, metavar="FILE", help="where to save the model (local path)")
    common(parser)
    parser.set_defaults(handler=train)


def train(args, make_context) -> list:
    from filters.quality_model import run_quality_train

    run_quality_train(make_context(), args.positive, args.negative, args.output)
    return []
