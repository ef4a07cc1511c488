"""Progress bars are tqdm's, on stderr; shown on a terminal only (logs get the stages' own lines).

This adapts the callbacks our downloads and crawls report through, ``progress(name, done, total)``,
to one tqdm bar per name.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm


def progress_bars(label: str, stream: TextIO | None = None, unit: str = "B") -> Callable[[str, int, int], None]:
    """A ``progress(name, done, total)`` callback drawing a bar per name, closed when it is done."""
    bars: dict[str, tqdm] = {}

    def progress(name: str, done: int, total: int) -> None:
        bar = bars.get(name)
        if bar is None:
            bar = bars[name] = tqdm(total=total or None, desc=f"[gap-replay] {label} {name}", unit=unit,
                                    unit_scale=unit == "B", file=stream or sys.stderr, disable=None, leave=False)
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        if total and done >= total:
            bar.close()
            del bars[name]

    return progress
