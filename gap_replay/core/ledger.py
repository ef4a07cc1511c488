"""Per-stage accounting: every document in is kept or dropped with a reason.

A :class:`StageLedger` holds the totals of one stage; the per-document drops live beside it as a
Parquet table of :data:`~gap_replay.core.schema.DROPS_SCHEMA` (``<stage output>/drops``). The totals are
written to ``<stage output>/_ledger.json`` and gathered in the build's ``manifest.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gap_replay.core import storage

LEDGER_FILE = "_ledger.json"


class LedgerError(RuntimeError):
    """A stage's counts do not add up: documents were lost or invented."""


@dataclass
class StageLedger:
    stage: str
    documents_in: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    seconds: float | None = None
    # Stages that read files: how many, and the file-level failures by reason (an input that could not
    # be read or parsed to its end). 0 inputs: the stage does not count them.
    inputs: int = 0
    failed_inputs: Counter = field(default_factory=Counter)
    # A stage's own figures beyond the counts (the guidelines stage: each source's health).
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def failed_inputs_total(self) -> int:
        return sum(self.failed_inputs.values())

    def input_failures(self) -> str | None:
        """One line on the inputs that failed, or None when none did."""
        if not self.failed_inputs:
            return None
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(self.failed_inputs.items()))
        if self.every_input_failed:
            return f"{self.stage}: every input failed ({self.inputs:,} inputs; {reasons}): nothing was kept"
        return f"{self.stage}: {self.failed_inputs_total:,} of {self.inputs:,} inputs failed ({reasons}); see drops/"

    @property
    def every_input_failed(self) -> bool:
        return self.inputs > 0 and self.kept == 0 and self.failed_inputs_total >= self.inputs

    def check(self) -> StageLedger:
        """Raise LedgerError unless in = kept + dropped."""
        if self.documents_in != self.kept + self.dropped_total:
            raise LedgerError(
                f"stage {self.stage}: {self.documents_in} documents in but {self.kept} kept + "
                f"{self.dropped_total} dropped = {self.kept + self.dropped_total}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "stage": self.stage,
            "in": self.documents_in,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
        }
        if self.inputs:
            out["inputs"] = self.inputs
            out["failed_inputs"] = dict(sorted(self.failed_inputs.items()))
        if self.details:
            out["details"] = self.details
        if self.seconds is not None:
            out["seconds"] = round(self.seconds, 3)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageLedger:
        return cls(
            stage=data["stage"],
            documents_in=int(data["in"]),
            kept=int(data["kept"]),
            dropped=Counter({str(k): int(v) for k, v in data.get("dropped", {}).items()}),
            seconds=data.get("seconds"),
            inputs=int(data.get("inputs", 0)),
            failed_inputs=Counter({str(k): int(v) for k, v in data.get("failed_inputs", {}).items()}),
            details=dict(data.get("details", {})),
        )

    def write(self, directory: str) -> None:
        storage.write_text(storage.join(directory, LEDGER_FILE), json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, directory: str) -> StageLedger:
        return cls.from_dict(json.loads(storage.read_text(storage.join(directory, LEDGER_FILE))))


def redaction_totals(ledger: StageLedger) -> dict[str, int]:
    """Personal data a stage replaced (its ``details.redaction``, :mod:`gap_replay.core.redaction`), by kind
    over every part: {} when the stage redacts nothing."""
    redaction = ledger.details.get("redaction") or {}
    totals = {kind: 0 for kind in redaction.get("kinds", [])}
    for counts in redaction.get("by_source", {}).values():
        for kind in totals:
            totals[kind] += int(counts.get(kind, 0))
    return totals


def format_summary(ledgers: list[StageLedger], total_seconds: float | None = None) -> str:
    """The one-screen summary printed at the end of every command."""
    lines = [f"{'stage':<12} {'in':>10} {'kept':>10} {'dropped':>10}  {'time':>8}"]
    for ledger in ledgers:
        time = f"{ledger.seconds:7.1f}s" if ledger.seconds is not None else "  reused"
        lines.append(f"{ledger.stage:<12} {ledger.documents_in:>10,} {ledger.kept:>10,} {ledger.dropped_total:>10,}  {time:>8}")
        for reason, count in sorted(ledger.dropped.items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"{'':<12} {'':>10} {'':>10} {count:>10,}  {reason}")
        redacted = redaction_totals(ledger)
        if any(redacted.values()):
            lines.append(f"{'':<12} {'':>10} {'':>10} {'':>10}  redacted: "
                         + ", ".join(f"{kind} {count:,}" for kind, count in redacted.items()))
    if total_seconds is not None:
        lines.append(f"total time {total_seconds:.1f}s")
    return "\n".join(lines)
