"""One TOML configuration file plus command-line overrides, validated with clear errors.

Every section is a dataclass; its fields, types and defaults are the documentation of the
configuration (the README's configuration section lists them). ``--set section.key=value``
overrides one value; the value is read as a TOML literal (``--set mix.seed=7``,
``--set filter.languages='["en"]'``), falling back to a plain string.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any


from gap_replay.errors import ConfigError  # noqa: F401 - re-exported: raised by every section
from filters.settings import FilterConfig  # noqa: F401


@dataclass
class SparkConfig:
    master: str = "local[*]"
    app_name: str = "gap-replay"
    ui: bool = False
    log_level: str = "ERROR"
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class PubmedConfig:
    # Input files, directories or globs: PubMed XML (.xml/.xml.gz), JATS (.nxml/.xml), PMC OA .tar.gz.
    inputs: list[str] = field(default_factory=list)
    # Spark tasks for parsing; 0 means one task per input file.
    partitions: int = 0
    # PMC upsampling (DESIGN.md): date the recency row counts from, a text file of clinically reviewed
    # journals (one title per line), and an optional citation table (CSV or Parquet, columns
    # `id` as `pmid:<n>`/`pmcid:PMC<n>` and `citations`).
    reference_date: str = "2023-08-01"
    # `gap-replay pubmed download`: where NCBI's distributions are served from (a mirror works too).
    ncbi_base_url: str = "https://ftp.ncbi.nlm.nih.gov"
    clinical_journals: str = ""
    citations: str = ""


@dataclass
class GuidelinesConfig:
    sources: list[str] = field(default_factory=list)  # tags; empty = every source that needs no browser
    sources_config: str = ""  # TOML file adding or overriding sources
    raw_store: str = ""  # where raw responses are kept; default <output>/../guidelines-raw
    user_agent: str = "gap-replay/0.1 (clinical-guidelines corpus builder; +https://github.com/gap-replay)"
    request_delay: float = 1.0  # seconds between requests to one host, unless robots.txt asks for more
    timeout: float = 30.0
    max_retries: int = 4
    max_pages_per_source: int = 0  # 0 = no limit
    # Refetch stored articles with conditional requests (If-None-Match / If-Modified-Since); a 304
    # keeps the stored page. Off: stored articles are not requested again.
    recrawl: bool = False


@dataclass
class DedupConfig:
    exact: bool = True  # drop exact duplicates of normalised text
    by_id: bool = True  # PMID / PMCID: a paper's full text supersedes its abstract
    # MinHash LSH near-duplicates (dedup/minhash.py defines shingles, hashes and permutations exactly).
    near: bool = True  # drop near-duplicates (Jaccard similarity of word n-gram shingle sets >= threshold)
    ngram: int = 5  # words per shingle
    num_perm: int = 128  # MinHash permutations
    threshold: float = 0.8  # Jaccard similarity from which two documents are near-duplicates
    # Bands x rows are chosen like datasketch's MinHashLSH: minimise fp_weight * P(false positive) +
    # fn_weight * P(false negative). With `verify` on, false positives only cost a check, so the
    # default weights favour recall. bands/rows > 0 set them directly (bands * rows <= num_perm).
    false_positive_weight: float = 0.05
    false_negative_weight: float = 0.95
    bands: int = 0
    rows: int = 0
    seed: int = 1  # seed of the permutations (datasketch's `seed`)
    permutation: str = "affine32"  # datasketch 2.x permutation scheme: "affine32" or "legacy"
    shingle_hash: str = "poly64"  # "poly64" (vectorised) or "sha1" (datasketch's default hashfunc, slower)
    verify: bool = True  # keep only candidate pairs whose exact Jaccard similarity reaches the threshold
    # Decontamination: drop a document when at least `contamination_ratio` of its word n-grams
    # (n = contamination_ngram) occur in benchmark questions. JSONL files or directories of them, each
    # line {"question": ..., "options": {...}}; empty = no decontamination.
    decontaminate: list[str] = field(default_factory=list)
    contamination_ngram: int = 8
    contamination_ratio: float = 0.8


@dataclass
class MixConfig:
    # Replay text: RedPajama-style JSONL (.jsonl, .jsonl.gz, .jsonl.zst) or Parquet files/directories.
    replay: list[str] = field(default_factory=list)
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
    shard_rows: int = 100_000  # target documents per output shard
    shard_tokens: int = 100_000_000  # target tokens per output shard (0: by shard_rows only)


@dataclass
class Config:
    spark: SparkConfig = field(default_factory=SparkConfig)
    pubmed: PubmedConfig = field(default_factory=PubmedConfig)
    guidelines: GuidelinesConfig = field(default_factory=GuidelinesConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    mix: MixConfig = field(default_factory=MixConfig)

    def section_fingerprint(self, *sections: str) -> str:
        """Stable hash of the named sections, used to decide whether a finished output can be reused."""
        data = {name: dataclasses.asdict(getattr(self, name)) for name in sections}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_value(where: str, value: Any, annotation: Any, *, comma_lists: bool = True) -> Any:
    """`value` checked against a setting's type annotation (bool, int, float, str, list, dict).

    With `comma_lists`, a string given for a list of strings is split on commas (`--set pubmed.inputs=a,b`).
    """
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is list:
        (item,) = typing.get_args(annotation)
        if comma_lists and isinstance(value, str) and item is str:
            value = [part for part in value.split(",") if part]  # `--set pubmed.inputs=a,b`
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [check_value(f"{where}[{i}]", v, item, comma_lists=comma_lists) for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(annotation)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return {str(k): check_value(f"{where}.{k}", v, item, comma_lists=comma_lists) for k, v in value.items()}
    raise ConfigError(f"{where}: unsupported setting type {annotation!r}")  # pragma: no cover


def _apply(section: Any, values: Mapping[str, Any], where: str) -> None:
    hints = typing.get_type_hints(type(section))
    known = {f.name for f in dataclasses.fields(section)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(known))}")
        setattr(section, key, check_value(f"{where}.{key}", value, hints[key]))


def _validate(config: Config) -> None:
    try:
        date.fromisoformat(config.pubmed.reference_date)
    except ValueError:
        raise ConfigError(f"pubmed.reference_date: expected YYYY-MM-DD, got {config.pubmed.reference_date!r}") from None
    config.filter.validate()
    for source, fraction in config.mix.validation_fraction.items():
        if not 0 <= fraction < 1:
            raise ConfigError(f"mix.validation_fraction.{source}: must be in [0, 1), got {fraction}")
    if config.mix.shard_rows < 1:
        raise ConfigError("mix.shard_rows: must be at least 1")
    if config.guidelines.request_delay < 0 or config.guidelines.timeout <= 0:
        raise ConfigError("guidelines.request_delay must be >= 0 and guidelines.timeout > 0")


def parse_override(text: str) -> tuple[str, str, Any]:
    """`section.key=value` -> (section, key, value)."""
    name, sep, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not key:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return section, key.strip(), value


def load_config(path: str | Path | None = None, overrides: Iterable[str] = (),
                base: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then `base` (e.g. the embedded sample's settings), then the TOML file, then overrides."""
    config = Config()
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if base:
        layers.append(("built-in settings", base))
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            layers.append((str(path), tomllib.loads(path.read_text(encoding="utf-8"))))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: invalid TOML: {error}") from None
    sections = {f.name for f in dataclasses.fields(config)}
    for where, data in layers:
        for name, values in data.items():
            if name not in sections:
                raise ConfigError(f"{where}: unknown section [{name}]; known: {', '.join(sorted(sections))}")
            if not isinstance(values, Mapping):
                raise ConfigError(f"{where}: [{name}] must be a table")
            _apply(getattr(config, name), values, f"{where}: {name}")
    for text in overrides:
        name, key, value = parse_override(text)
        if name not in sections:
            raise ConfigError(f"--set {text}: unknown section {name!r}; known: {', '.join(sorted(sections))}")
        _apply(getattr(config, name), {key: value}, f"--set {name}")
    _validate(config)
    return config
