"""Distributed checkpoints and the Hugging Face export.

A checkpoint is a directory ``OUTPUT/checkpoints/step-00001000/`` holding

- the model and optimizer state, sharded, written by every rank with ``torch.distributed.checkpoint``
  (``.metadata`` + ``__<rank>_0.distcp``): a checkpoint loads into any number of processes;
- ``trainer.pt``: step, tokens seen, learning-rate scheduler (rank 0);
- ``rank-00000.pt``...: each rank's data position and random-number-generator states;
- ``COMPLETE``: written by rank 0 once every rank has finished (JSON: step, world size). A directory
  without it (a run killed while saving) is ignored and overwritten.

Resuming needs the same number of processes (each rank's data position is a position in its own
slice of the documents).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

CHECKPOINTS = "checkpoints"
COMPLETE = "COMPLETE"


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return output_dir / CHECKPOINTS / f"step-{step:08d}"


def complete_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    root = output_dir / CHECKPOINTS
    found = []
    if root.is_dir():
        for path in root.glob("step-*"):
            if (path / COMPLETE).is_file():
                try:
                    found.append((int(path.name.split("-", 1)[1]), path))
                except ValueError:
                    continue
    return sorted(found)


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = complete_checkpoints(output_dir)
    return found[-1][1] if found else None


def rng_state(device: torch.device) -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, trainer: dict[str, Any],
                    rank_state: dict[str, Any], rank: int, world_size: int, keep: int = 0) -> None:
    """Every rank calls this; returns once the checkpoint is complete (and older ones pruned)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    if rank == 0 and path.exists():  # a partial checkpoint from a killed run
        shutil.rmtree(path)
    dist.barrier()
    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(path))
    torch.save(rank_state, path / f"rank-{rank:05d}.pt")
    if rank == 0:
        torch.save(trainer, path / "trainer.pt")
    dist.barrier()
    if rank == 0:
        (path / COMPLETE).write_text(json.dumps({"step": trainer["step"], "world_size": world_size,
                                                 "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
        if keep:
            for _, old in complete_checkpoints(path.parent.parent)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    dist.barrier()


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, rank: int,
                    world_size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load model and optimizer shards in place; return (trainer state, this rank's state)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    from gap_replay.core.config import ConfigError

    saved = json.loads((path / COMPLETE).read_text())
    if saved["world_size"] != world_size:
        raise ConfigError(f"checkpoint {path} was written by {saved['world_size']} processes, this run has "
                          f"{world_size}: resume with the same number of processes (or a new run.output_dir)")
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=str(path))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    trainer = torch.load(path / "trainer.pt", weights_only=False)
    rank_state = torch.load(path / f"rank-{rank:05d}.pt", weights_only=False)
    return trainer, rank_state


def export_hf(model: nn.Module, tokenizer, directory: Path, dtype: torch.dtype, rank: int) -> None:
    """Gather the full weights on rank 0 and write a Hugging Face model directory (config, safetensors,
    generation config, tokenizer) that `AutoModelForCausalLM.from_pretrained` loads. Every rank calls it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if rank == 0:
        import transformers

        from gap_replay.train.model import restore_computed_buffers

        config = model.config.__class__.from_dict(model.config.to_dict())
        config.use_cache = True
        with torch.device("meta"):
            exported = transformers.AutoModelForCausalLM.from_config(config)
        exported.load_state_dict({key: value.to(dtype) for key, value in full.items()}, assign=True, strict=True)
        restore_computed_buffers(exported, torch.device("cpu"))
        if getattr(config, "tie_word_embeddings", False):
            exported.tie_weights()
        temporary = directory.with_name(directory.name + ".incomplete")
        shutil.rmtree(temporary, ignore_errors=True)
        transformers.utils.logging.disable_progress_bar()
        exported.save_pretrained(str(temporary))
        tokenizer.save_pretrained(str(temporary))
        shutil.rmtree(directory, ignore_errors=True)
        temporary.rename(directory)
    dist.barrier()
