"""Throughput, model FLOPs utilisation and the run's log (console on rank 0, and a JSON-lines file).

MFU = achieved model FLOPs per second per device / the device's peak, where achieved model FLOPs =
tokens per second x FLOPs per token (train/model.py: 6N + attention). Recomputation from activation
checkpointing is not counted (it is not model work), as usual for MFU.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import torch

# Dense bf16 peaks (TFLOP/s) by device name, from the vendors' data sheets; the first match wins.
GPU_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("GH200", 989.5),
    ("H200", 989.5),
    ("H100", 989.5),
    ("H800", 989.5),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.05),
    ("A10G", 70.0),
    ("B200", 2250.0),
)


def peak_flops(configured_tflops: float, device: torch.device) -> float | None:
    """Per-device peak FLOP/s: the configured value, else the table for a known GPU, else None."""
    if configured_tflops > 0:
        return configured_tflops * 1e12
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in GPU_PEAK_TFLOPS:
            if key in name:
                return tflops * 1e12
    return None


def mfu(tokens_per_second_per_device: float, flops_per_token: float, peak: float | None) -> float | None:
    if not peak:
        return None
    return tokens_per_second_per_device * flops_per_token / peak


def synchronize(device: torch.device) -> None:
    """Wait until the device has run the work queued on it. GPU kernels run asynchronously: a clock read
    without this measures how fast work was queued, not done, and reads high."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Throughput:
    """Tokens per second between two reports, with pauses (checkpointing, evaluation) left out. Every
    clock read first waits for the device (`wait`, e.g. `partial(synchronize, device)`), so the work
    queued before a boundary is counted on its side of it."""

    def __init__(self, wait: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.perf_counter):
        self.wait, self.clock = wait, clock
        self.reset()

    def now(self) -> float:
        self.wait()
        return self.clock()

    def reset(self) -> None:
        self.started = self.now()
        self.tokens = 0
        self.paused = 0.0

    def add(self, tokens: int) -> None:
        self.tokens += tokens

    def pause(self):
        throughput = self

        class _Pause:
            def __enter__(self):
                self.at = throughput.now()

            def __exit__(self, *exc):
                throughput.paused += throughput.now() - self.at

        return _Pause()

    def rate(self) -> tuple[float, float]:
        """(tokens per second, seconds measured)."""
        elapsed = max(self.now() - self.started - self.paused, 1e-9)
        return self.tokens / elapsed, elapsed


def _number(value: Any, spec: str) -> str:
    """A number for the console; None (a non-finite value, nulled for JSON) and non-finite floats as 'nan'."""
    if value is None:
        return "nan"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return format(value, spec)


def _format(value: Any) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5):
            return f"{value:.3e}"
        return f"{value:.4f}"
    return str(value)


class RunLog:
    """Metric records: one JSON object per line in `path` and a short line on the console (rank 0)."""

    CONSOLE_KEYS = ("loss", "lr", "grad_norm", "tokens_per_s", "mfu")

    def __init__(self, path: Path | None, main: bool, total_steps: int, start_step: int,
                 progress_bar: bool = False, stream: TextIO | None = None):
        self.main, self.stream, self.total_steps = main, stream or sys.stderr, total_steps
        self.file = None
        self.bar = None
        if main and path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = path.open("a", encoding="utf-8")
        if main and progress_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", file=self.stream, dynamic_ncols=True)

    def write(self, record: dict[str, Any], console: bool = True) -> None:
        if not self.main:
            return
        record = {key: (None if isinstance(value, float) and not math.isfinite(value) else value)
                  for key, value in record.items()}
        if self.file is not None:
            self.file.write(json.dumps(record, sort_keys=False) + "\n")
            self.file.flush()
        if not console:
            return
        if record.get("kind") == "train" and self.bar is not None:
            self.bar.set_postfix({key: _number(record.get(key), ".4g") for key in ("loss", "lr", "tokens_per_s")},
                                 refresh=False)
            return
        if record.get("kind") == "train":
            parts = [f"step {record['step']}/{self.total_steps}", f"loss {_number(record.get('loss'), '.4f')}",
                     f"lr {_number(record.get('lr'), '.3e')}", f"grad_norm {_number(record.get('grad_norm'), '.3f')}",
                     f"tokens/s {_number(record.get('tokens_per_s'), '.0f')}"]
            if record.get("skipped"):
                parts.append("(skipped: not finite)")
            if record.get("mfu") is not None:
                parts.append(f"mfu {100 * record['mfu']:.2f}%")
            if record.get("memory_gib") is not None:
                parts.append(f"memory {record['memory_gib']:.1f}GiB")
            self.say(" ".join(parts))
            return
        self.say(" ".join(f"{key} {_format(value)}" for key, value in record.items()
                          if key not in ("kind", "time") and value is not None))

    def say(self, message: str) -> None:
        if not self.main:
            return
        line = f"[train] {message}"
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def advance(self, steps: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.file is not None:
            self.file.close()
