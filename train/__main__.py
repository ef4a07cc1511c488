"""`python -m train --config run.toml` (also under `torchrun ... -m train`)."""

import sys

from train.cli import main

sys.exit(main())
