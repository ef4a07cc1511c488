"""Distributed checkpoints, and Hugging Face model directories read and written.

A checkpoint is a directory ``OUTPUT/checkpoints/step-00001000/`` (or under ``checkpoint.directory``, which may be
an object-storage URI) holding

- the model and optimizer state, sharded, written by every rank with ``torch.distributed.checkpoint``
  (``.metadata`` + ``__<rank>_0.distcp``): a checkpoint loads into any number of processes;
- ``trainer.pt``: step, tokens seen, learning-rate scheduler (rank 0);
- ``rank-00000.pt``...: each rank's data position and random-number-generator states;
- ``COMPLETE``: written by rank 0 once every rank has finished (JSON: step, world size, whether every
  weight was finite). A directory without it (a run killed while saving) is ignored and overwritten.

Pruning (``checkpoint.keep``) keeps the newest checkpoints and, always, the newest one whose weights were
finite; resuming starts from the newest finite one. A checkpoint without the ``finite`` field (written
before it existed) counts as finite.

With ``checkpoint.async_save`` the shards are written in a background thread (`PendingCheckpoint`);
COMPLETE is still written last, once every rank's write has finished. The checkpoint directory must be
seen by every rank (`check_shared_checkpoints` refuses one that is node-local).

Hugging Face model directories are read and written shard-wise (`load_hf_shards`, `export_hf`): no
rank ever builds the whole model in host memory. On node-local disks (`directory_view` says which ranks
see the same directory) each node's ranks write a whole export, and a tokenizer trained by rank 0 is
copied to each filesystem (`copy_from_rank0`).

Resuming needs the same number of processes (each rank's data position is a position in its own
slice of the documents).
"""

from __future__ import annotations

import io
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

from gap_replay.core import storage

CHECKPOINTS = "checkpoints"
COMPLETE = "COMPLETE"

# Checkpoints live under a local directory or an object-storage URI (s3://, gs://...). Our own files go through
# the project's storage layer; the sharded state through torch.distributed.checkpoint, which opens a URI with fsspec.


def checkpoints_root(output_dir: str | Path, directory: str = "") -> str:
    """Where a run's checkpoints go: `directory` (``checkpoint.directory``) when set, else OUTPUT/checkpoints."""
    return directory.rstrip("/") if directory else storage.join(str(output_dir), CHECKPOINTS)


def checkpoint_dir(root: str | Path, step: int) -> str:
    return storage.join(str(root), f"step-{step:08d}")


def checkpoint_step(path: str | Path) -> int:
    return int(str(path).rstrip("/").rsplit("/", 1)[-1].split("-", 1)[1])


def complete_checkpoints(root: str | Path) -> list[tuple[int, str]]:
    found = []
    for marker in storage.list_files(str(root), suffix="/" + COMPLETE):
        name = marker.rsplit("/", 2)[-2]
        if name.startswith("step-"):
            try:
                found.append((checkpoint_step(name), storage.join(str(root), name)))
            except ValueError:
                continue
    return sorted(found)


def checkpoint_record(path: str | Path) -> dict[str, Any]:
    """The JSON of a complete checkpoint's COMPLETE file."""
    return json.loads(storage.read_text(storage.join(str(path), COMPLETE)))


def is_finite(path: str | Path) -> bool:
    return bool(checkpoint_record(path).get("finite", True))


def latest_checkpoint(root: str | Path, finite_only: bool = True) -> str | None:
    """The newest complete checkpoint under `root` (with `finite_only`, the newest whose weights were finite)."""
    for _, path in reversed(complete_checkpoints(root)):
        if not finite_only or is_finite(path):
            return path
    return None


def to_prune(found: list[tuple[str, bool]], keep: int) -> list[str]:
    """Of complete checkpoints (path, finite), oldest first: those pruning deletes to keep the `keep` newest
    (0 = all) and, whatever their age, the newest finite one."""
    if not keep:
        return []
    last_finite = next((path for path, finite in reversed(found) if finite), None)
    return [path for path, _ in found[:-keep] if path != last_finite]


def _save_object(value: Any, uri: str) -> None:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    storage.write_bytes(uri, buffer.getvalue())


def _load_object(uri: str) -> Any:
    return torch.load(io.BytesIO(storage.read_bytes(uri)), weights_only=False)


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


class PendingCheckpoint:
    """A checkpoint being written in the background (`checkpoint.async_save`): `finish` (every rank) waits for
    the write, then marks it COMPLETE and prunes, as a synchronous save does."""

    def __init__(self, path: str, future, finish: Any):
        self.path, self._future, self._finish = path, future, finish

    def finish(self) -> str:
        if self._future is not None:
            self._future.result()  # this rank's shards and, on the coordinator, the metadata are written
            self._future = None
            self._finish()
        return self.path


def save_checkpoint(root: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, trainer: dict[str, Any],
                    rank_state: dict[str, Any], rank: int, world_size: int, keep: int = 0, finite: bool = True,
                    async_group: Any = None) -> str | PendingCheckpoint:
    """Every rank calls this; returns the checkpoint of step ``trainer["step"]`` under `root` once it is complete
    (and older ones pruned). `finite`: whether every weight is finite (recorded in COMPLETE; pruning never
    deletes the newest finite checkpoint).

    With `async_group` (a gloo process group of every rank, kept for checkpoints) the model and optimizer
    state is copied to host memory and written by a background thread (torch.distributed.checkpoint's
    async_save, its collectives on that group, never on the training's); the call returns a
    `PendingCheckpoint` at once, whose `finish` waits for the write and only then writes COMPLETE."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    path = checkpoint_dir(root, trainer["step"])
    if rank == 0:
        storage.delete(path)  # a partial checkpoint from a killed run
    dist.barrier()
    model_state, optim_state = get_state_dict(model, optimizer)
    _save_object(rank_state, storage.join(path, f"rank-{rank:05d}.pt"))
    if rank == 0:
        _save_object(trainer, storage.join(path, "trainer.pt"))

    def complete() -> None:
        dist.barrier()  # every rank's write is done
        if rank == 0:
            storage.write_text(storage.join(path, COMPLETE),  # last: only a complete checkpoint has it
                               json.dumps({"step": trainer["step"], "world_size": world_size, "finite": bool(finite),
                                           "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
            if keep:
                found = [(path, is_finite(path)) for _, path in complete_checkpoints(root)]
                for old in to_prune(found, keep):
                    storage.delete(old)
        dist.barrier()

    state = {"model": model_state, "optim": optim_state}
    if async_group is not None:
        # The copy to host memory (staging) happens before async_save returns: training may change the weights.
        return PendingCheckpoint(path, dcp.async_save(state, checkpoint_id=path, process_group=async_group), complete)
    dcp.save(state, checkpoint_id=path)
    complete()
    return path


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, rank: int,
                    world_size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load model and optimizer shards in place; return (trainer state, this rank's state)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    from gap_replay.core.config import ConfigError

    path = str(path)
    saved = json.loads(storage.read_text(storage.join(path, COMPLETE)))
    if saved["world_size"] != world_size:
        raise ConfigError(f"checkpoint {path} was written by {saved['world_size']} processes, this run has "
                          f"{world_size}: resume with the same number of processes (or a new run.output_dir)")
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=path)
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    return _load_object(storage.join(path, "trainer.pt")), _load_object(storage.join(path, f"rank-{rank:05d}.pt"))


HF_SINGLE_FILE = "model.safetensors"
HF_INDEX = "model.safetensors.index.json"


def hf_weight_files(directory: Path) -> dict[str, Path]:
    """Tensor name -> the safetensors file holding it, in a Hugging Face model directory (one
    model.safetensors, or several files and their index)."""
    from safetensors import safe_open

    from gap_replay.core.config import ConfigError

    index = directory / HF_INDEX
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return {name: directory / file for name, file in weight_map.items()}
    single = directory / HF_SINGLE_FILE
    if single.is_file():
        with safe_open(str(single), framework="pt") as handle:
            return {name: single for name in handle.keys()}
    raise ConfigError(f"model.pretrained: {directory} has no {HF_SINGLE_FILE} or {HF_INDEX} "
                      "(pretrained weights are read from safetensors files)")


@torch.no_grad()
def load_hf_shards(model: nn.Module, directory: Path) -> None:
    """Fill the allocated (sharded, uninitialised) model from a Hugging Face directory's safetensors
    files: each rank reads only the rows of each tensor it holds, one tensor at a time, so no rank ever
    holds more than its shard and one tensor. Every rank calls it.

    Rows the checkpoint lacks (an embedding grown for the added tokens) get the mean of its rows: the
    value `transformers`' mean resizing centres its samples on, here exact and the same on every rank."""
    from safetensors import safe_open
    from torch.distributed.tensor import DTensor

    from gap_replay.core.config import ConfigError
    from gap_replay.train.parallel import checkpoint_name, owned_rows, shard_group

    files = hf_weight_files(directory)
    for name, parameter in model.named_parameters():
        key = checkpoint_name(name)
        if key not in files:
            raise ConfigError(f"model.pretrained: {directory} has no tensor {key}")
        local = parameter.to_local() if isinstance(parameter, DTensor) else parameter
        start, stop = owned_rows(parameter)
        # One opening per tensor: the memory map (and the file pages it made resident) goes with it.
        with safe_open(str(files[key]), framework="pt") as handle:
            stored = handle.get_slice(key)
            shape = tuple(stored.get_shape())
            if shape[1:] != tuple(parameter.shape[1:]) or shape[0] > parameter.shape[0]:
                raise ConfigError(f"model.pretrained: {key} has shape {list(shape)}, the model "
                                  f"{list(parameter.shape)}")
            if min(stop, shape[0]) > start:
                local[:min(stop, shape[0]) - start].copy_(stored[start:min(stop, shape[0])])
        if shape[0] < parameter.shape[0]:
            held = local[:max(0, min(stop, shape[0]) - start)]
            total = held.double().sum(0)
            if isinstance(parameter, DTensor):
                dist.all_reduce(total, group=shard_group(parameter))
            grown = max(start, shape[0]) - start
            local[grown:].copy_((total / shape[0]).to(local.dtype).expand_as(local[grown:]))


def file_of_each_tensor(sizes: list[int], max_file_bytes: int) -> list[int]:
    """Consecutive tensors into files of at most `max_file_bytes` (a larger tensor gets a file of its own)."""
    files, used, current = [], 0, 0
    for size in sizes:
        if used and used + size > max_file_bytes:
            current, used = current + 1, 0
        files.append(current)
        used += size
    return files


def hf_file_name(index: int, count: int) -> str:
    return HF_SINGLE_FILE if count == 1 else f"model-{index + 1:05d}-of-{count:05d}.safetensors"


def _transformers_class(model: nn.Module) -> type:
    """The model's `transformers` class (FSDP2 puts a class of its own in front of it)."""
    return next(cls for cls in type(model).__mro__ if cls.__module__.startswith("transformers."))


def directory_view(directory: str | Path) -> list[int]:
    """The ranks that see the same `directory` as this one (sorted; every rank calls it): all ranks on a
    shared filesystem, the ranks of one node on a node-local disk. Each rank creates the directory and leaves
    a marker named by its rank in a folder named by a token rank 0 draws. When every rank finds rank 0's
    marker (looked up by name: a network filesystem's cached directory listings cannot hide it) the directory
    is shared; otherwise each rank lists the markers it sees (local disks)."""
    import secrets

    directory = Path(directory)
    token = [secrets.token_hex(8) if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(token, src=0)
    markers = directory / f".ranks-{token[0]}"
    markers.mkdir(parents=True, exist_ok=True)
    (markers / str(dist.get_rank())).touch()
    dist.barrier()
    sees_rank0 = torch.tensor([int((markers / "0").exists())], dtype=torch.int64)
    if "gloo" not in str(dist.get_backend()):  # NCCL alone: a device tensor
        sees_rank0 = sees_rank0.to(torch.device("cuda", torch.cuda.current_device()))
    dist.all_reduce(sees_rank0, op=dist.ReduceOp.MIN)
    if int(sees_rank0):
        seen = list(range(dist.get_world_size()))
    else:
        seen = sorted(int(path.name) for path in markers.iterdir() if path.name.isdigit())
    dist.barrier()
    if dist.get_rank() == seen[0]:
        shutil.rmtree(markers, ignore_errors=True)
    return seen


def check_shared_checkpoints(root: str) -> None:
    """Refuse, with one line, a checkpoint directory on a filesystem that not every rank sees (a node-local
    disk): each rank writes its own shard there and a resume reads them all. Object storage is shared."""
    from gap_replay.core.config import ConfigError

    if "://" in root and not root.startswith("file://"):
        return
    local = root.removeprefix("file://")
    view = directory_view(local)
    if len(view) != dist.get_world_size():
        raise ConfigError(f"checkpoint directory {local} is not shared by all {dist.get_world_size()} processes "
                          f"(this one sees {len(view)}: a node-local disk?): set checkpoint.directory to a shared "
                          "filesystem or object storage (s3://...)")


def copy_from_rank0(directory: Path) -> None:
    """Make rank 0's `directory` (a few small files: the trained tokenizer) appear on every rank's
    filesystem: rank 0 broadcasts the files, each rank that does not see them writes them into a temporary
    folder of its own and renames it into place (the first rename on a filesystem wins). Every rank calls it."""
    files = [None]
    if dist.get_rank() == 0:
        files = [{path.name: path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()}]
    dist.broadcast_object_list(files, src=0)
    if dist.get_rank() != 0 and not directory.is_dir():
        temporary = directory.with_name(f"{directory.name}.rank-{dist.get_rank()}")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        for name, data in files[0].items():
            (temporary / name).write_bytes(data)
        try:
            temporary.rename(directory)
        except OSError:  # another rank of this filesystem was first
            shutil.rmtree(temporary, ignore_errors=True)
    dist.barrier()


def export_hf(model: nn.Module, tokenizer, directory: Path, dtype: torch.dtype, rank: int, world_size: int,
              max_file_bytes: int, view: list[int] | None = None) -> None:
    """Write a Hugging Face model directory (config, generation config, tokenizer, safetensors files
    and their index) that `AutoModelForCausalLM.from_pretrained` loads. Every rank calls it.

    The tensors go in order into files of at most `max_file_bytes`, file i written by the (i mod n)-th of
    the n ranks that see this rank's `directory` (`view`, from `directory_view`; default every rank: a
    shared filesystem): each tensor is gathered in turn, and only the rank writing its file keeps it, so a
    rank holds its shard, at most one file and one gathered tensor. On node-local disks each node's ranks
    write a whole copy (the first of them the configuration and the index)."""
    import transformers
    from safetensors.torch import save_file
    from torch.distributed.tensor import DTensor

    from gap_replay.train.parallel import checkpoint_name

    view = view or list(range(world_size))
    position, writers, leader = view.index(rank), len(view), rank == view[0]
    named = [(checkpoint_name(name), parameter) for name, parameter in model.named_parameters()]
    files = file_of_each_tensor([parameter.numel() * dtype.itemsize for _, parameter in named], max_file_bytes)
    count = files[-1] + 1
    temporary = directory.with_name(directory.name + ".incomplete")
    if leader:
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
    dist.barrier()
    pending: dict[str, torch.Tensor] = {}
    for index, (name, parameter) in enumerate(named):
        full = parameter.full_tensor() if isinstance(parameter, DTensor) else parameter.detach()
        if files[index] % writers == position:
            pending[name] = full.to(dtype).cpu().contiguous()
        del full
        closing = index + 1 == len(named) or files[index + 1] != files[index]
        if closing and pending:
            save_file(pending, str(temporary / hf_file_name(files[index], count)), metadata={"format": "pt"})
            pending = {}
    if leader:
        config = model.config.__class__.from_dict(model.config.to_dict())
        config.use_cache = True
        config.architectures = [_transformers_class(model).__name__]
        major = int(transformers.__version__.split(".")[0])
        setattr(config, "dtype" if major >= 5 else "torch_dtype", dtype)
        config.save_pretrained(str(temporary))
        transformers.GenerationConfig.from_model_config(config).save_pretrained(str(temporary))
        tokenizer.save_pretrained(str(temporary))
        if count > 1:
            weight_map = {name: hf_file_name(files[index], count) for index, (name, _) in enumerate(named)}
            total = sum(parameter.numel() * dtype.itemsize for _, parameter in named)
            (temporary / HF_INDEX).write_text(json.dumps({"metadata": {"total_size": total},
                                                          "weight_map": weight_map}, indent=2) + "\n")
    dist.barrier()
    if leader:
        shutil.rmtree(directory, ignore_errors=True)
        temporary.rename(directory)
    dist.barrier()
