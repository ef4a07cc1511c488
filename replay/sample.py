"""Replay sampled at read time: a seeded rule on each document's id, in the mix's own order.

The mix takes replay in the order of ``u = xxhash64(mix.seed, id, "sample") & (2^63 - 1)``, a seeded
uniform number per document (mixer/job.py, ``with_mix_columns``), until replay's token target is met
(mixer/plan.py). Replay is about 1% of the mixture, so most of a large replay input is never used. With
``replay.sample_rate = r < 1`` the replay stage keeps only the valid documents with
``u < threshold = floor(r * 2^63)``: a prefix of the very order the mix takes them in. As long as the
documents left after the filter and dedup stages still hold the mix's target (the mix checks, and stops
naming the rate needed when they do not), the mixture is the one a full read gives: the documents the
mix takes all have ``u`` below the threshold. (The exception: dedup keeps one member of a duplicate
cluster, and which one may change when another member was not sampled.)

Documents outside the sample are counted, not listed: the stage's ledger counts them as
``not_sampled`` drops without a row each in ``drops/`` (billions of rows would say nothing that the
rule does not: any document's fate follows from its id and the seed), and records the rule, seed,
rate, threshold and the documents read and kept by it in ``details.sample``.

``u`` is computed in Python (``gap_replay.core.sampling``), bit for bit as Spark's ``xxhash64`` computes it
(tested against Spark), so unsampled documents never leave the Python worker that read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from gap_replay.core.outcome import Drop, Outcome
from gap_replay.core.sampling import U_RANGE, mix_u

NOT_SAMPLED = "not_sampled"
# A row per input file carrying how many of its documents fell outside the sample; the stage sums and
# removes these rows before writing (a leading underscore: never a drop reason of its own).
COUNT_REASON = "_not_sampled_count"


@dataclass(frozen=True)
class ReplaySample:
    """The read-time rule: keep a valid replay document when its ``u`` (under `seed`, the mix's seed)
    falls below ``threshold = floor(rate * 2^63)``; a rate of 1 keeps every document."""

    seed: int
    rate: float = 1.0

    @property
    def keeps_all(self) -> bool:
        return self.rate >= 1

    @property
    def threshold(self) -> int:
        return U_RANGE if self.keeps_all else int(self.rate * U_RANGE)

    def keeps(self, doc_id: str) -> bool:
        return self.keeps_all or mix_u(self.seed, doc_id) < self.threshold

    def fingerprint(self) -> str:
        """What the stage's output depends on beyond its inputs, when it samples."""
        return f"replay.sample:{self.seed}:{self.threshold}"

    def apply(self, outcomes: Iterable[Outcome], name: str) -> Iterator[Outcome]:
        """The outcomes of one input file with the documents outside the sample left out; drops (unreadable
        or empty records) pass unchanged. Ends with one COUNT_REASON row holding how many documents were
        left out, when any were (also before an error escaping the reader is passed on: the documents
        read before it are counted whatever the caller makes of the error)."""
        left_out = 0
        try:
            for outcome in outcomes:
                if isinstance(outcome, Drop) or self.keeps(outcome["id"]):
                    yield outcome
                else:
                    left_out += 1
        except Exception:
            if left_out:
                yield self._count(name, left_out)
            raise
        if left_out:
            yield self._count(name, left_out)

    @staticmethod
    def _count(name: str, left_out: int) -> Drop:
        return Drop(f"file:{name}", COUNT_REASON, str(left_out), "replay")

    def record(self, read: int, kept: int) -> dict[str, Any]:
        """The sample as the ledger's ``details.sample`` (and the manifest) records it."""
        return {
            "rule": 'keep a valid document when xxhash64(seed, id, "sample") & (2^63 - 1) < threshold: '
                    "the mix's own order, so while the sample holds the mix's target the mix takes the replay "
                    "a full read gives it (up to which member of a duplicate cluster dedup keeps)",
            "seed": self.seed,
            "rate": self.rate,
            "threshold": self.threshold,
            "read": read,
            "kept": kept,
            NOT_SAMPLED: read - kept,
            "drop_rows": "none: a document outside the sample is counted, not listed (its id and the seed "
                         "say whether it was kept)",
        }
