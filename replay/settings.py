"""The [replay] configuration section: its fields, defaults and rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from gap_replay.core.errors import ConfigError


@dataclass
class ReplayConfig:
    # General-domain replay text: RedPajama-style JSONL (.jsonl, .jsonl.gz, .jsonl.zst) or Parquet
    # files, directories or globs. Empty: a build has no replay part.
    inputs: list[str] = field(default_factory=list)
    # The share of the valid replay documents the stage keeps, sampled at read time in the mix's own
    # seeded order (replay/sample.py; the seed is mix.seed): 1 keeps them all. The mix uses about 1% of
    # the mixture's tokens of replay, so a replay input far larger than that needs only a slice: set
    # sample_rate to (replay target tokens / replay input tokens) times a margin for the documents
    # dedup drops (1.5, say). The mix says in its manifest the smallest rate that gives its mixture
    # (replay.sample_rate_needed), and stops, naming the rate it needs, when the sample falls short.
    sample_rate: float = 1.0

    def validate(self) -> None:
        if not 0 < self.sample_rate <= 1:
            raise ConfigError(f"replay.sample_rate: must be in (0, 1] (1: keep every document), got {self.sample_rate}")
