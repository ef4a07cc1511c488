"""A progress bar for downloads and crawls on stderr: redrawn in place on a terminal, a line per
tenth of the work otherwise (so CI logs stay short)."""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30):
        self.label, self.stream, self.width = label, stream or sys.stderr, width
        self.interactive = self.stream.isatty()
        self._last_tenth: dict[str, int] = {}

    def update(self, name: str, done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        filled = int(self.width * fraction)
        line = f"[gap-replay] {self.label} {name}: [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}"
        if self.interactive:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
            self.stream.flush()
            return
        tenth = int(fraction * 10)
        if self._last_tenth.get(name) != tenth:
            self._last_tenth[name] = tenth
            print(line, file=self.stream, flush=True)
