"""On PYTHONPATH, makes `torch` unimportable in this interpreter and every Python process it starts
(Spark's workers included): the data pipeline must run on an install without the [train] extra."""

import importlib.abc
import sys


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: testing an install without torch)",
                                      name=name)
        return None


sys.meta_path.insert(0, _NoTorch())
