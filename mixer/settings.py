"""The [mix] configuration section: its fields, defaults and rules."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gap_replay.core.errors import ConfigError
from gap_replay.core.schema import SOURCES

PAPERS, REPLAY = "pubmed_papers", "replay"


@dataclass
class MixConfig:
    seed: int = 42
    # Token counts: a tokenizer.json, a directory holding one, or a transformers directory/name (a
    # Llama-2 tokenizer reproduces the paper's counts). Empty: the mixer trains a byte-level BPE
    # tokenizer (the paper's markers as special tokens) on a seeded sample of its inputs and ships it
    # in OUT/tokenizer/.
    tokenizer: str = ""
    tokenizer_vocab_size: int = 32_000  # when the mixer trains the tokenizer
    tokenizer_max_documents: int = 10_000  # documents it trains on (the sample with the smallest text hashes)
    # Per part, a weight (how many times each document is repeated, rounded probabilistically; papers
    # are repeated weight * (1 + upsampling_score) times) or a number of training tokens to reach
    # (target_tokens wins over weights).
    weights: dict[str, float] = field(
        default_factory=lambda: {"guidelines": 1.0, "pubmed_abstracts": 1.0, "pubmed_papers": 1.0}
    )
    target_tokens: dict[str, int] = field(default_factory=dict)
    replay_share: float = 0.01  # replay's share of the training mixture's tokens (unless target_tokens.replay)
    validation_fraction: dict[str, float] = field(
        default_factory=lambda: {"guidelines": 0.05, "pubmed_abstracts": 0.03, "pubmed_papers": 0.03, "replay": 0.0}
    )
    # Why this build departs from the default replay share or validation fractions, for the card and
    # the summary (the embedded sample sets it: its few dozen documents cannot fill 1% and 3% splits).
    settings_note: str = ""
    shard_rows: int = 100_000  # target documents per output shard
    shard_tokens: int = 100_000_000  # target tokens per output shard (0: by shard_rows only)

    def validate(self) -> None:
        parts = ", ".join(SOURCES)
        for key, value in self.weights.items():
            if key not in SOURCES or key == REPLAY:
                raise ConfigError(f"mix.weights.{key}: unknown part; parts with a weight: "
                                  f"{', '.join(s for s in SOURCES if s != REPLAY)} (replay follows mix.replay_share)")
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"mix.weights.{key}: must be a finite number >= 0, got {value}")
        for key, value in self.target_tokens.items():
            if key not in SOURCES:
                raise ConfigError(f"mix.target_tokens.{key}: unknown part; parts: {parts}")
            if value < 0:
                raise ConfigError(f"mix.target_tokens.{key}: must be >= 0, got {value}")
        for key, fraction in self.validation_fraction.items():
            if key not in SOURCES:
                raise ConfigError(f"mix.validation_fraction.{key}: unknown part; parts: {parts}")
            if not 0 <= fraction < 1:
                raise ConfigError(f"mix.validation_fraction.{key}: must be in [0, 1), got {fraction}")
        if not 0 <= self.replay_share < 1:
            raise ConfigError(f"mix.replay_share: must be in [0, 1), got {self.replay_share}")
        if self.shard_rows < 1:
            raise ConfigError("mix.shard_rows: must be at least 1")
        if self.shard_tokens < 0:
            raise ConfigError("mix.shard_tokens: must be >= 0 (0: shards sized by mix.shard_rows only)")
        if self.tokenizer_vocab_size < 512:
            raise ConfigError("mix.tokenizer_vocab_size: must be at least 512")
        if self.tokenizer_max_documents < 1:
            raise ConfigError("mix.tokenizer_max_documents: must be at least 1")


def departures_from_defaults(settings: dict) -> list[str]:
    """The mix settings (as in a manifest) whose replay share or validation fractions are not the
    defaults the paper's mixture uses, each as ``what: this build's (default: ...)``."""
    defaults = MixConfig()
    out = []
    share = settings.get("replay_share", defaults.replay_share)
    if share != defaults.replay_share:
        out.append(f"replay share {share:.0%} (default {defaults.replay_share:.0%})")
    fractions = settings.get("validation_fraction", defaults.validation_fraction)
    if fractions != defaults.validation_fraction:
        parts = sorted(set(fractions) | set(defaults.validation_fraction))
        out.append("validation fractions " + ", ".join(f"{part} {fractions.get(part, 0.0):.0%}" for part in parts)
                   + " (default " + ", ".join(f"{defaults.validation_fraction.get(part, 0.0):.0%}" for part in parts) + ")")
    return out
