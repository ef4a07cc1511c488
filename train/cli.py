"""`gap-replay train` and `python -m gap_replay.train`: run (or resume) a training run from one TOML file.

Launch one process per device with torchrun (``torchrun --nproc-per-node 8 -m gap_replay.train --config run.toml``),
or let the command start torchrun itself with ``--nproc-per-node N``; without either it is a run of one
process.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

DESCRIPTION = "continue pretraining a Llama model on GAP-Replay shards (FSDP, torchrun)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="the run's TOML configuration")
    parser.add_argument("--set", metavar="SECTION.KEY=VALUE", action="append", default=[], dest="overrides",
                        help="override one setting, value as a TOML literal (repeatable)")
    parser.add_argument("--nproc-per-node", type=int, default=0, metavar="N",
                        help="start N processes on this machine with torchrun (default: run in this process, "
                             "or as launched by torchrun)")
    parser.add_argument("--debug", action="store_true", help="print full tracebacks on errors")


def register(commands, common) -> None:
    sub = commands.add_parser("train", help=DESCRIPTION, description=DESCRIPTION)
    add_arguments(sub)
    sub.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, make_context) -> list:
    if run(args) is not None:  # this process trained: end it here (leave_process says why)
        leave_process(0)
    return []


def leave_process(code: int) -> NoReturn:
    """End a process that has trained, skipping the interpreter's shutdown.

    gloo's worker threads outlive destroy_process_group, because DTensor's caches keep the device mesh and so its
    groups alive. At interpreter shutdown one of those threads may still be freeing a finished collective's
    tensors, which takes the GIL, and the process aborts ("terminate called without an active exception", exit
    -6) after a run that succeeded: seen under load, after the last step. Everything the run writes is closed
    when train() returns; what is left is buffered output, flushed here."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe has nothing left to deliver
            pass
    logging.shutdown()
    os._exit(code)


def _forwarded(args: argparse.Namespace) -> list[str]:
    argv = ["--config", args.config]
    for override in args.overrides:
        argv += ["--set", override]
    return argv + (["--debug"] if args.debug else [])


def run(args: argparse.Namespace):
    from gap_replay.core.config import ConfigError
    from gap_replay.train.config import load_train_config

    try:
        import torch  # noqa: F401 - the [train] extra: the data pipeline runs without it
    except ImportError:
        raise ConfigError("the trainer needs PyTorch, which is not installed: pip install 'gap-replay[train]' "
                          "(README, 'Set-up': the CPU or the CUDA build)") from None

    config = load_train_config(args.config, args.overrides)  # configuration errors before any process starts
    if args.nproc_per_node and "LOCAL_RANK" not in os.environ:
        from torch.distributed.run import main as torchrun

        torchrun(["--standalone", f"--nproc-per-node={args.nproc_per_node}", "-m", "gap_replay.train", *_forwarded(args)])
        return None
    from gap_replay.train.trainer import train

    return train(config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gap_replay.train", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    from gap_replay.core.config import ConfigError

    try:
        run(args)
    except KeyboardInterrupt:
        _say("train: interrupted")
        return 130
    except (ConfigError, FileNotFoundError) as error:
        if args.debug:
            traceback.print_exc()
        _say(f"train: error: {error}")
        return 2
    except Exception as error:  # noqa: BLE001 - one line unless --debug
        if args.debug:
            traceback.print_exc()
        first = (str(error).strip().splitlines() or [""])[0]
        _say(f"train: error: {type(error).__name__}: {first}"
             + ("" if args.debug else " (rerun with --debug for the full trace)"))
        return 1
    return 0


def _say(line: str) -> None:
    """`line` on stderr in one write: ranks of one node share the stream, and print's separate write of the
    newline lets another rank's line land in between."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
