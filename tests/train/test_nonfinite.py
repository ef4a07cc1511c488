"""Non-finite steps: a NaN loss or gradient norm is skipped or stops the run (`optim.on_nonfinite`), all
ranks agreeing; the console never breaks on one; checkpoint pruning never deletes the newest checkpoint
with finite weights, and resuming starts from it. Faults are injected through the trainer's test hook
(GAP_REPLAY_TRAIN_FAULTS): in this process (a world of one) and in 2 torchrun processes (gloo), where only
rank 1 is poisoned."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest

from gap_replay.train.checkpoint import checkpoint_record, to_prune
from gap_replay.train.config import load_train_config
from gap_replay.train.metrics import RunLog
from gap_replay.train.trainer import FAULTS_ENV, NonFiniteError, injected_faults, train
from tests.train.conftest import tiny_config, torchrun


def records(output: Path, kind: str | None = None) -> list[dict]:
    lines = (output / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if kind is None or record["kind"] == kind]


def checkpoints(output: Path) -> dict[str, bool]:
    return {path.name: checkpoint_record(path)["finite"] for path in sorted((output / "checkpoints").iterdir())}


def test_pruning_keeps_the_newest_finite_checkpoint():
    found = [("s2", True), ("s4", True), ("s6", False), ("s8", False)]
    assert to_prune(found, 1) == ["s2", "s6"]
    assert to_prune(found, 2) == ["s2"]
    assert to_prune(found, 0) == []
    assert to_prune([("s2", True), ("s4", True), ("s6", True)], 1) == ["s2", "s4"]
    assert to_prune([("s2", False), ("s4", False)], 1) == ["s2"]  # none finite: the newest kept, as ever


def test_fault_hook_parses_steps_and_ranks(monkeypatch):
    monkeypatch.setenv(FAULTS_ENV, "loss@3, weights@5:1,loss@5:0")
    assert injected_faults(0) == {3: {"loss"}, 5: {"loss"}}
    assert injected_faults(1) == {3: {"loss"}, 5: {"weights"}}
    monkeypatch.setenv(FAULTS_ENV, "grads@3")
    with pytest.raises(ValueError, match="KIND@STEP"):
        injected_faults(0)


@pytest.mark.parametrize("progress_bar", [False, True])
def test_the_console_shows_non_finite_values(tmp_path, progress_bar):
    stream = io.StringIO()
    log = RunLog(tmp_path / "m.jsonl", True, 10, 0, progress_bar, stream)
    log.write({"kind": "train", "step": 1, "loss": math.nan, "lr": 1e-3, "grad_norm": math.inf,
               "tokens_per_s": 10.0, "mfu": None, "skipped": True})
    log.write({"kind": "nonfinite", "step": 1, "loss": math.nan, "action": "skip"})
    log.advance()
    log.close()
    if not progress_bar:
        assert "loss nan lr 1.000e-03 grad_norm nan tokens/s 10 (skipped: not finite)" in stream.getvalue()
    written = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert written[0]["loss"] is None and written[0]["grad_norm"] is None and written[1]["loss"] is None


def run(tmp_path: Path, corpus: Path, name: str, *overrides: str, steps: int = 6) -> dict:
    config = tiny_config(tmp_path / f"{name}.toml", corpus, tmp_path / name, steps=steps)
    return train(load_train_config(config, ["log.interval=1", "checkpoint.interval=2", "eval.sequences_per_part=2",
                                            *overrides]))


@pytest.fixture(scope="module")
def clean(corpus, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("clean")
    return run(tmp_path, corpus, "clean", "export.enabled=false")


def test_a_nan_loss_is_skipped_and_training_goes_on(corpus, tmp_path, clean, monkeypatch):
    monkeypatch.setenv(FAULTS_ENV, "loss@3")
    summary = run(tmp_path, corpus, "skip", "export.enabled=false")
    output = tmp_path / "skip"
    assert summary["skipped_steps"] == 1
    (skipped,) = records(output, "nonfinite")
    assert (skipped["step"], skipped["action"], skipped["loss"], skipped["skipped_steps"]) == (3, "skip", None, 1)
    train_records = {record["step"]: record for record in records(output, "train")}
    assert train_records[3]["skipped"] and train_records[3]["loss"] is None
    for step in (1, 2):  # before the fault: the same run
        assert summary["losses"][step] == pytest.approx(clean["losses"][step], abs=1e-6)
    for step in (4, 5, 6):  # after it: updates again, finite weights
        assert math.isfinite(summary["losses"][step]) and not train_records[step]["skipped"]
    assert train_records[6]["skipped_steps"] == 1
    assert checkpoints(output) == {"step-00000004": True, "step-00000006": True}


def test_a_nan_loss_aborts_cleanly_keeping_the_last_checkpoint(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv(FAULTS_ENV, "loss@5")
    with pytest.raises(NonFiniteError, match=r"step 5: loss nan, gradient norm nan: not finite, no update; stopped "
                                             r"\(optim.on_nonfinite = 'abort'\); the last finite checkpoint is "
                                             r".*step-00000004"):
        run(tmp_path, corpus, "abort", "optim.on_nonfinite='abort'")
    output = tmp_path / "abort"
    assert checkpoints(output) == {"step-00000002": True, "step-00000004": True}
    assert [record["action"] for record in records(output, "nonfinite")] == ["abort"]
    assert not (output / "hf").exists()


def test_too_many_skips_in_a_row_stop_the_run(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv(FAULTS_ENV, "weights@2")  # every later step is NaN
    with pytest.raises(NonFiniteError, match=r"3 non-finite steps in a row \(optim.max_consecutive_skips = 3\)"):
        run(tmp_path, corpus, "limit", "optim.max_consecutive_skips=3", steps=8)
    assert [record["step"] for record in records(tmp_path / "limit", "nonfinite")] == [3, 4, 5]


def test_non_finite_weights_never_push_out_the_last_finite_checkpoint(corpus, tmp_path, monkeypatch):
    """Weights poisoned after step 5, checkpoints every 2 steps, keep = 1: the checkpoints of steps 6 and 8
    hold NaN weights; step 4's stays, the export is refused, and a rerun resumes from step 4."""
    monkeypatch.setenv(FAULTS_ENV, "weights@5")
    summary = run(tmp_path, corpus, "weights", "checkpoint.keep=1", "optim.max_consecutive_skips=0", steps=8)
    output = tmp_path / "weights"
    assert summary["skipped_steps"] == 3 and not summary["exported"] and not (output / "hf").exists()
    assert checkpoints(output) == {"step-00000004": True, "step-00000008": False}
    monkeypatch.delenv(FAULTS_ENV)
    config = tiny_config(tmp_path / "weights.toml", corpus, output, steps=8)
    stream = io.StringIO()
    again = train(load_train_config(config, ["log.interval=1", "checkpoint.interval=2", "checkpoint.keep=1",
                                             "eval.sequences_per_part=2"]), stream=stream)
    assert f"resumed from {output / 'checkpoints' / 'step-00000004'}" in stream.getvalue()
    assert "step-00000008 holds non-finite weights" in stream.getvalue()
    assert list(again["losses"]) == [5, 6, 7, 8] and all(math.isfinite(v) for v in again["losses"].values())
    assert again["exported"] and checkpoints(output) == {"step-00000008": True}


@pytest.mark.slow
def test_two_processes_skip_a_nan_on_one_rank_and_keep_the_last_finite_checkpoint(corpus, tmp_path):
    """Only rank 1's loss is NaN at step 3 and only rank 1's weight shards after step 5: both ranks skip the
    same steps (else rank 0 would apply a NaN update and its later losses be NaN too); the NaN-weight
    checkpoints never push out step 4's."""
    config = tiny_config(tmp_path / "run.toml", corpus, tmp_path / "run", steps=8)
    torchrun("-m", "gap_replay.train", "--config", str(config), "--set", "checkpoint.interval=2", "--set",
             "checkpoint.keep=1", "--set", "optim.max_consecutive_skips=0",
             env={FAULTS_ENV: "loss@3:1,weights@5:1"})
    output = tmp_path / "run"
    assert [record["step"] for record in records(output, "nonfinite")] == [3, 6, 7, 8]
    losses = {record["step"]: record["loss"] for record in records(output, "train")}
    assert all(math.isfinite(losses[step]) for step in (1, 2, 4, 5))
    assert checkpoints(output) == {"step-00000004": True, "step-00000008": False}
    assert not (output / "hf").exists()


@pytest.mark.slow
def test_two_processes_abort_together_on_a_nan_of_one_rank(corpus, tmp_path):
    config = tiny_config(tmp_path / "run.toml", corpus, tmp_path / "run", steps=8)
    result = torchrun("-m", "gap_replay.train", "--config", str(config), "--set", "checkpoint.interval=2",
                      "--set", "checkpoint.keep=1", "--set", "optim.on_nonfinite='abort'",
                      env={FAULTS_ENV: "loss@5:1"}, expect_failure=True)
    output = tmp_path / "run"
    # Each rank stops with the same one line (no rank left waiting in a collective: the run ends).
    lines = [line for line in result.stderr.splitlines() if "train: error: NonFiniteError: step 5" in line]
    assert len(lines) == 2, result.stderr[-3000:]
    assert "the last finite checkpoint is" in lines[0] and "step-00000004" in lines[0]
    assert checkpoints(output) == {"step-00000004": True}
    assert [record["step"] for record in records(output, "train")] == [1, 2, 3, 4]
