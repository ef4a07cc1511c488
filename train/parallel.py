"""Processes and sharding: the process group (NCCL on GPUs, gloo on CPUs), FSDP2 over the decoder
layers and the root, optional activation checkpointing, and loading rank 0's full weights into the
shards.

`torchrun` sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT; without
them (plain `python -m gap_replay.train`) the run is a world of one process.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from gap_replay.train.config import TrainConfig

DTYPE_NAMES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class World:
    rank: int
    size: int
    local_rank: int
    local_size: int
    device: torch.device
    owns_group: bool  # this process initialised the process group (and destroys it at the end)

    @property
    def main(self) -> bool:
        return self.rank == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def resolve_device(config: TrainConfig) -> str:
    if config.run.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if config.run.device == "cuda" and not torch.cuda.is_available():
        from gap_replay.core.config import ConfigError

        raise ConfigError("run.device = 'cuda' but no CUDA device is available")
    return config.run.device


def init_world(config: TrainConfig) -> World:
    kind = resolve_device(config)
    backend = config.parallel.backend if config.parallel.backend != "auto" else ("nccl" if kind == "cuda" else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    device = torch.device(kind, local_rank) if kind == "cuda" else torch.device("cpu")
    if kind == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            dist.init_process_group(backend, device_id=device if kind == "cuda" else None)
        else:
            dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
        owns = True
    if kind == "cpu":
        threads = config.run.threads or (int(os.environ["OMP_NUM_THREADS"]) if os.environ.get("OMP_NUM_THREADS")
                                         else max(1, (os.cpu_count() or 1) // local_size))
        torch.set_num_threads(threads)
    return World(dist.get_rank(), dist.get_world_size(), local_rank, local_size, device, owns)


def close_world(world: World) -> None:
    if world.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def param_dtype(config: TrainConfig, device: torch.device) -> torch.dtype:
    name = config.parallel.param_dtype
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return DTYPE_NAMES[name]


def shard(model: nn.Module, config: TrainConfig, device: torch.device) -> nn.Module:
    """FSDP2: each decoder layer is one communication unit (all-gathered before its forward and
    backward, its gradients reduce-scattered after), the root holds the embeddings, final norm and
    output projection. Parameters stay sharded in float32 (what the optimizer updates); compute runs in
    the configured dtype, gradients are reduced in `reduce_dtype`."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    compute = param_dtype(config, device)
    reduce = DTYPE_NAMES.get(config.parallel.reduce_dtype, torch.float32)
    policy = MixedPrecisionPolicy(param_dtype=None if compute == torch.float32 else compute,
                                  reduce_dtype=None if reduce == compute == torch.float32 else reduce)
    layers = model.model.layers
    if config.parallel.activation_checkpointing:
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

        for index, layer in enumerate(layers):
            layers[index] = checkpoint_wrapper(layer, preserve_rng_state=False)
    last = len(layers) - 1
    for index, layer in enumerate(layers):
        # The last layer's backward starts right after the forward: keeping it gathered saves an all-gather.
        fully_shard(layer, mp_policy=policy,
                    reshard_after_forward=config.parallel.reshard_after_forward and index < last)
    fully_shard(model, mp_policy=policy, reshard_after_forward=config.parallel.reshard_after_forward)
    return model


def materialise(model: nn.Module, full_state: dict | None, device: torch.device) -> None:
    """Allocate the sharded (meta) model on `device` and fill it from rank 0's full state dict."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    from gap_replay.train.model import restore_computed_buffers

    model.to_empty(device=device)
    restore_computed_buffers(model, device)
    set_model_state_dict(model, full_state if full_state is not None else {},
                         options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
