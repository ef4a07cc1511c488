"""How many times each document goes into the mixture: the pure arithmetic of the mixer.

Every document gets a uniform random number ``u`` in [0, 2^63) from a seeded hash of its id, and
its part (``source``) gets one *plan*:

- ``weight`` (factor ``w``): a document with base factor ``b`` (papers: ``1 + upsampling_score``,
  DESIGN.md; others: 1) is written ``floor(w*b)`` times, plus once more when
  ``u / 2^63 < frac(w*b)``: ``w*b`` rounded probabilistically with the seed. A part's weight comes from
  ``mix.weights``, or from ``mix.target_tokens`` for papers (``w = target / sum(b * tokens)``, met in
  expectation).
- ``prefix`` (exact token target, parts whose documents all have base factor 1: replay, and
  guidelines or abstracts with a target): ``full`` passes over every document, then the documents
  whose ``(u, id)`` sorts before ``bound``: a seeded sample without replacement, cut where its tokens
  come closest to the remainder, so the part's training tokens miss the target by at most half a
  document. Replay's target is ``replay_share / (1 - replay_share)`` times the training tokens of the
  other parts once they are mixed, so replay is ``replay_share`` of the training mixture.

The plans are computed on the training split; validation documents follow the same rules. Because
the counts are functions of (seed, id, plan), all copies of a document share its split, and the
result does not depend on how the data is partitioned.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gap_replay.core.sampling import U_BITS, U_RANGE
from gap_replay.mixer.settings import PAPERS, REPLAY, MixConfig

BUCKET_BITS = 12  # histogram buckets of u used to find a prefix's cut (2^12 = 4096 buckets)
BUCKET_SHIFT = U_BITS - BUCKET_BITS
BASE_SCALE = 1000  # base factors are summed as integers (round(b * 1000)) so sums are exact


@dataclass(frozen=True)
class Plan:
    method: str  # "weight" or "prefix"
    weight: float = 1.0
    full: int = 0
    bound: tuple[int, str] | None = None  # prefix: documents with (u, id) < bound get one more copy
    target_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method}
        if self.method == "weight":
            out["weight"] = self.weight
        else:
            out["full_passes"] = self.full
            out["bound"] = None if self.bound is None else {"u": self.bound[0], "id": self.bound[1]}
        if self.target_tokens is not None:
            out["target_tokens"] = self.target_tokens
        return out


def weight_plan(part: str, mix: MixConfig, base_weighted_train_tokens: int) -> Plan:
    """The plan of a part sized by a weight (or, for papers, by a target met in expectation).

    `base_weighted_train_tokens` is sum(round(b * BASE_SCALE) * tokens) over the part's training
    documents."""
    if part in mix.target_tokens:
        target = mix.target_tokens[part]
        weight = target * BASE_SCALE / base_weighted_train_tokens if base_weighted_train_tokens else 0.0
        return Plan("weight", weight=weight, target_tokens=target)
    return Plan("weight", weight=float(mix.weights.get(part, 1.0)))


def needs_prefix(part: str, mix: MixConfig) -> bool:
    return part == REPLAY or (part in mix.target_tokens and part != PAPERS)


def unmeetable_targets(mix: MixConfig, before: dict) -> dict[str, str]:
    """Parts asked for a number or share of training tokens that have no training documents to
    give them (no weight or repetition can meet such a target), with the target as configured."""
    asked = {part: f"{tokens:,}" for part, tokens in mix.target_tokens.items() if tokens > 0}
    if mix.replay_share > 0 and REPLAY not in mix.target_tokens:
        asked[REPLAY] = f"{mix.replay_share:.2%} of the mixture"
    return {part: target for part, target in asked.items()
            if not before.get((part, "train"), {}).get("tokens", 0)}


def replay_target(mix: MixConfig, other_train_tokens: int) -> int:
    """Replay's training tokens: a target of its own, or its share of the final training mixture."""
    if REPLAY in mix.target_tokens:
        return mix.target_tokens[REPLAY]
    share = mix.replay_share
    return round(share * other_train_tokens / (1 - share)) if share else 0


def rate_needed(plan: Plan) -> float:
    """The smallest ``replay.sample_rate`` whose read-time sample (the documents with ``u`` under
    ``floor(rate * 2^63)``, replay/sample.py) holds every document this prefix plan takes, rounded up to
    four significant digits: 0 when it takes none, 1 when it takes every document at least once."""
    if plan.full >= 1:
        return 1.0
    if plan.bound is None:
        return 0.0
    u, doc_id = plan.bound  # the plan takes the documents with (u, id) < bound
    threshold = u + 1 if doc_id else u
    if threshold >= U_RANGE:
        return 1.0
    rate = threshold / U_RANGE
    step = 10.0 ** (math.floor(math.log10(rate)) - 3)
    rate = min(1.0, math.ceil(rate / step) * step)
    while int(rate * U_RANGE) < threshold:  # float rounding: never below the threshold
        rate = math.nextafter(rate, 2.0)
    return rate


def sample_shortfall(rate: float, target: int, available: int) -> float | None:
    """When replay was sampled at read time (`rate` < 1) and its `available` training tokens fall short of
    the `target`, the rate that would hold the target by proportion (at most 1); else None. A full read
    would give the mix new documents where a short sample makes it repeat the ones it has."""
    if rate >= 1 or target <= available:
        return None
    return 1.0 if available <= 0 else min(1.0, rate * target / available)


@dataclass(frozen=True)
class PrefixStep:
    """Where a prefix plan stands: `full` passes, and the remainder to cut in u order."""

    full: int
    remainder: int


def prefix_step(target: int, part_train_tokens: int) -> PrefixStep:
    if part_train_tokens <= 0 or target <= 0:
        return PrefixStep(0, 0)
    return PrefixStep(target // part_train_tokens, target % part_train_tokens)


def crossing_bucket(histogram: Mapping[int, int], remainder: int) -> tuple[int, int]:
    """(bucket where the cumulative tokens reach `remainder`, tokens in the buckets before it)."""
    before = 0
    for bucket in sorted(histogram):
        if before + histogram[bucket] >= remainder:
            return bucket, before
        before += histogram[bucket]
    raise ValueError("remainder exceeds the part's tokens")  # prefix_step keeps remainder < total


def cut_bucket(documents: Sequence[tuple[int, str, int]], bucket: int, remainder: int, before: int) -> tuple[int, str]:
    """The exclusive bound (u, id) of the prefix closest to `remainder` tokens.

    `documents` are the (u, id, tokens) of the crossing bucket; `before` the tokens of the buckets
    before it. Ties go to the shorter prefix."""
    total = before
    ordered = sorted(documents)
    for index, (u, doc_id, tokens) in enumerate(ordered):
        if total + tokens >= remainder:
            include = (total + tokens - remainder) < (remainder - total)
            if not include:
                return u, doc_id
            if index + 1 < len(ordered):
                return ordered[index + 1][0], ordered[index + 1][1]
            return (bucket + 1) << BUCKET_SHIFT, ""
        total += tokens
    raise ValueError("the crossing bucket does not reach the remainder")


def prefix_plan(step: PrefixStep, target: int, bound: tuple[int, str] | None) -> Plan:
    return Plan("prefix", full=step.full, bound=bound, target_tokens=target)


def copies(plan: Plan, u: int, doc_id: str, base: float = 1.0) -> int:
    """How many times a document goes into the mixture (the pure twin of the Spark expression)."""
    if plan.method == "weight":
        factor = plan.weight * base
        whole = math.floor(factor)
        return whole + (1 if u / U_RANGE < factor - whole else 0)
    extra = 1 if plan.bound is not None and (u, doc_id) < plan.bound else 0
    return plan.full + extra


def shard_count(rows: int, tokens: int, shard_rows: int, shard_tokens: int) -> int:
    by_rows = math.ceil(rows / shard_rows) if rows else 0
    by_tokens = math.ceil(tokens / shard_tokens) if shard_tokens and tokens else 0
    return max(1, by_rows, by_tokens)


def relative_error(actual: float, target: float) -> float | None:
    return None if not target else abs(actual - target) / target


def histogram_pairs(pairs: Iterable[tuple[Any, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, count in pairs:
        out[str(key)] = out.get(str(key), 0) + int(count)
    return dict(sorted(out.items(), key=lambda item: _sort_key(item[0])))


def _sort_key(key: str):
    try:
        return (0, float(key), key)
    except ValueError:
        return (1, 0.0, key)
