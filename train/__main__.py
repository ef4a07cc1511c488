"""`python -m gap_replay.train --config run.toml` (also under `torchrun ... -m gap_replay.train`)."""

from gap_replay.train.cli import leave_process, main

leave_process(main())
