"""The trainer: no stage of the build, one command (`gap-replay train`) with its own configuration file."""

from __future__ import annotations

from gap_replay.stage import Stage


def _commands(commands, common) -> None:
    from train.cli import register

    register(commands, common)


STAGE = Stage(name="train", help="continue pretraining a Llama model on GAP-Replay shards", commands=_commands)
