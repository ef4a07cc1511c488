"""Runs one stage: reuse a finished output or write a new one atomically, time it, keep its ledger."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from gap_replay.core import storage
from gap_replay.core.config import Config
from gap_replay.core.errors import InputError
from gap_replay.core.ledger import StageLedger


@dataclass
class RunContext:
    config: Config
    overwrite: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    sample: bool = False  # the run reads the embedded sample (the guidelines stage serves its site)
    upstream: list[StageLedger] = field(default_factory=list)  # in a build: the ledgers of the stages before
    _spark: object = None

    @property
    def spark(self):
        if self._spark is None:
            from gap_replay.core.spark import spark_session

            self.say("starting Spark", self.config.spark.master)
            self._spark = spark_session(self.config.spark)
        return self._spark

    def say(self, *parts: object) -> None:
        print("[gap-replay]", *parts, file=self.stream, flush=True)


def run_stage(
    context: RunContext,
    stage: str,
    target: str,
    fingerprint: str,
    produce: Callable[[storage.AtomicOutput], StageLedger],
) -> StageLedger:
    """Run `produce` into an atomic output at `target` unless a finished one can be reused.

    `produce` writes its entries under the output's staging path and returns the stage's ledger;
    the ledger is checked (in = kept + dropped) and stored beside the data.
    """
    target = storage.absolute_uri(target)
    done = storage.finished_output(target, stage, fingerprint, context.overwrite)
    if done is not None:
        ledger = StageLedger.read(target)
        ledger.seconds = None
        context.say(f"{stage}: reusing finished output {target}")
        return ledger
    context.say(f"{stage}: running -> {target}")
    started = time.perf_counter()
    with storage.atomic_output(target, stage, fingerprint) as output:
        ledger = produce(output).check()
        if ledger.every_input_failed:  # nothing to publish: an error, not an empty output
            raise InputError(ledger.input_failures())
        ledger.seconds = time.perf_counter() - started
        ledger.write(output.staging)
    if ledger.failed_inputs:
        context.say(ledger.input_failures())
    context.say(f"{stage}: {ledger.documents_in:,} in, {ledger.kept:,} kept, {ledger.dropped_total:,} dropped "
                f"({ledger.seconds:.1f}s)")
    return ledger


def stage_fingerprint(config: Config, sections: Sequence[str], inputs: Sequence[str] = (), *extra: str,
                      listed: Sequence[tuple[str, int]] = ()) -> str:
    """What decides whether a finished output can be reused: the stage's settings and its inputs.

    Finished outputs count by their own fingerprint (so a changed upstream invalidates downstream);
    other inputs by path and size. `listed` are input files with the size the listing that found them gave
    (``ingest.expand_sized_inputs``): they count the same way without a request each, which for a stage
    reading thousands of files from object storage is thousands of round trips on the driver. The part size
    (``spark.part_mib``) counts too: it fixes the layout.
    """
    identities = [config.section_fingerprint(*sections), f"part_mib:{config.spark.part_mib}", *extra]
    for uri in inputs:
        uri = storage.absolute_uri(uri)
        done = storage.Finished.read(uri) if storage.exists(uri) else None
        identities.append(f"{done.stage}:{done.fingerprint}" if done else f"{uri}:{storage.size(uri)}")
    identities += [f"{storage.absolute_uri(uri)}:{size}" for uri, size in listed]
    return hashlib.sha256("\n".join(identities).encode()).hexdigest()[:16]
