"""The trainer: no stage of the build, one command (`gap-replay train`) with its own configuration file."""

from gap_replay.core.stage import Stage

STAGE = Stage(name="train", help="continue pretraining a Llama model on GAP-Replay shards",
              commands="gap_replay.train.cli:register")
