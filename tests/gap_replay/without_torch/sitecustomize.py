"""On PYTHONPATH, makes `torch` unimportable in this interpreter and every Python process it starts
(Spark's workers included): the data pipeline must run on an install without the [train] extra.

`None` in ``sys.modules`` is Python's own way to say a module is absent: ``import torch`` raises
ModuleNotFoundError and ``importlib.util.find_spec("torch")`` answers None, as on an install without
it (a finder that raised instead would break probes such as pyspark's ``have_package("torch")``)."""

import sys

sys.modules["torch"] = None  # type: ignore[assignment]
