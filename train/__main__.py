"""`python -m gap_replay.train --config run.toml` (also under `torchrun ... -m gap_replay.train`)."""

import sys

from gap_replay.train.cli import main

sys.exit(main())
