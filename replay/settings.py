"""The [replay] configuration section: its fields, defaults and rules."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReplayConfig:
    # General-domain replay text: RedPajama-style JSONL (.jsonl, .jsonl.gz, .jsonl.zst) or Parquet
    # files, directories or globs. Empty: a build has no replay part.
    inputs: list[str] = field(default_factory=list)
