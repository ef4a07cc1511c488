"""Commands the mixer owns: `gap-replay tokenizer train` and `gap-replay report DIR`.

Registered through gap_replay.cli's plugin hook; this module imports nothing heavy.
"""

from __future__ import annotations

import argparse
import sys

from gap_replay.core.markers import END_OF_DOCUMENT, listing


def register(commands, common) -> None:
    p = commands.add_parser(
        "tokenizer-train", prog="gap-replay tokenizer train",
        help="train a byte-level BPE tokenizer (with the paper's markers) on a corpus (also: gap-replay tokenizer train)",
        description=f"Train a byte-level BPE tokenizer with the end-of-document token {END_OF_DOCUMENT} and the paper's markers "
                    f"({listing()}) as special tokens; writes DIR/tokenizer.json and DIR/tokenizer_config.json. "
                    "Run as `gap-replay tokenizer train`.")
    p.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help="stage or build outputs, Parquet shards (column text), JSONL (field text; .gz, .zst) "
                        "or .txt files; directories and globs")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="directory for tokenizer.json and the tokenizer_config.json that transformers reads")
    p.add_argument("--vocab-size", type=int, default=32_000, help="vocabulary size, special tokens included (default 32000)")
    p.add_argument("--min-frequency", type=int, default=2, help="minimum pair frequency of a merge (default 2)")
    p.add_argument("--max-documents", type=int, default=0,
                   help="train on at most this many documents: those with the smallest text hash (default: all)")
    p.add_argument("--debug", action="store_true", help="print full tracebacks on errors")
    p.set_defaults(handler=_train)

    p = commands.add_parser("report", help="write DIR/report.html with plots of a build",
                            description="Write DIR/report.html and its PNG plots (DIR/report/) from a build's "
                                        "manifest.json and drop tables.")
    p.add_argument("directory", metavar="DIR", help="a build (or mix) output")
    p.add_argument("--debug", action="store_true", help="print full tracebacks on errors")
    p.set_defaults(handler=_report)


def _train(args: argparse.Namespace, make_context) -> list:
    from gap_replay.core.config import ConfigError
    from gap_replay.mixer.tokens import (
        iter_corpus_texts,
        save_tokenizer,
        select_texts,
        train_tokenizer,
        vocabulary_shortfall,
    )

    if args.vocab_size < 512:
        raise ConfigError("--vocab-size: must be at least 512")
    if args.min_frequency < 1 or args.max_documents < 0:
        raise ConfigError("--min-frequency must be >= 1 and --max-documents >= 0")
    texts = select_texts(iter_corpus_texts(args.input), args.max_documents)
    if not texts:
        raise ConfigError(f"no text found in {' '.join(args.input)}")
    print(f"[gap-replay] tokenizer: training on {len(texts):,} documents", file=sys.stderr)
    tokenizer = train_tokenizer(texts, args.vocab_size, args.min_frequency, length=len(texts))
    uri = save_tokenizer(tokenizer, args.output)
    shortfall = vocabulary_shortfall(tokenizer, args.vocab_size, len(texts))
    if shortfall:
        print(f"[gap-replay] {shortfall}", file=sys.stderr)
    print(f"{uri}: vocabulary {tokenizer.get_vocab_size():,}")
    return []


def _report(args: argparse.Namespace, make_context) -> list:
    from gap_replay.mixer.report import write_report

    print(write_report(args.directory))
    return []
