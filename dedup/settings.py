"""The [dedup] configuration section: its fields, defaults and rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from gap_replay.core.errors import ConfigError


@dataclass
class DedupConfig:
    exact: bool = True  # drop exact duplicates of normalised text
    by_id: bool = True  # drop duplicate_id: copies of a document with the same id (the best is kept)
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

    def validate(self) -> None:
        from gap_replay.dedup.minhash import HASHES, SCHEMES  # numpy: imported when a configuration is checked

        if self.ngram < 1 or self.contamination_ngram < 1:
            raise ConfigError("dedup.ngram and dedup.contamination_ngram must be at least 1")
        if self.num_perm < 2:
            raise ConfigError("dedup.num_perm must be at least 2")
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError("dedup.threshold must be in (0, 1]")
        if not 0.0 < self.contamination_ratio <= 1.0:
            raise ConfigError("dedup.contamination_ratio must be in (0, 1]")
        weights = (self.false_positive_weight, self.false_negative_weight)
        if min(weights) < 0 or max(weights) > 1 or sum(weights) <= 0:
            raise ConfigError("dedup.false_positive_weight and false_negative_weight must be in [0, 1], not both 0")
        if (self.bands > 0) != (self.rows > 0) or self.bands < 0 or self.rows < 0:
            raise ConfigError("dedup.bands and dedup.rows: set both (> 0) or neither (0)")
        if self.bands * self.rows > self.num_perm:
            raise ConfigError(f"dedup.bands x dedup.rows = {self.bands * self.rows} exceeds "
                              f"dedup.num_perm = {self.num_perm}")
        if self.permutation not in SCHEMES:
            raise ConfigError(f"dedup.permutation: expected one of {', '.join(SCHEMES)}, got {self.permutation!r}")
        if self.shingle_hash not in HASHES:
            raise ConfigError(f"dedup.shingle_hash: expected one of {', '.join(HASHES)}, got {self.shingle_hash!r}")
