"""Processes and sharding: the process group (NCCL on GPUs, gloo on CPUs), FSDP2 over the decoder
layers and the root on a 1-D mesh or, with `parallel.replicate`, a 2-D HSDP mesh, optional CPU offload,
activation checkpointing and torch.compile (fullgraph first) per layer, the chunked loss's output
projection, which rows of a parameter each rank holds, and loading rank 0's full weights into the shards.

`torchrun` sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT; without
them (plain `python -m gap_replay.train`) the run is a world of one process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

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
    if kind == "cuda" and config.parallel.cpu_offload and backend == "nccl":
        backend = "cuda:nccl,cpu:gloo"  # offloaded shards: the gradient-norm and finite-check collectives on the host
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    device = torch.device(kind, local_rank) if kind == "cuda" else torch.device("cpu")
    if kind == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        # Two time limits: the rendezvous (every process joining, the store exchanges that set up the group)
        # waits at most parallel.init_timeout_s; each collective afterwards at most parallel.timeout_s (NCCL's
        # watchdog, gloo's per-operation limit). init_process_group takes one limit for both, so the
        # rendezvous is made here, as it would make it, and the group built on its store.
        init_timeout = timedelta(seconds=config.parallel.init_timeout_s)
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            store, rank, size = next(dist.rendezvous("env://", timeout=init_timeout))
        else:
            # One process, no launcher: an in-process store, so no port is picked and then lost to another.
            store, rank, size = dist.HashStore(), 0, 1
        store.set_timeout(init_timeout)
        dist.init_process_group(backend, store=dist.PrefixStore("default_pg", store), rank=rank, world_size=size,
                                timeout=timedelta(seconds=config.parallel.timeout_s),
                                device_id=device if kind == "cuda" else None)
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


def compile_layers(config: TrainConfig, device: torch.device) -> bool:
    """Whether each decoder layer runs through torch.compile: on by default on GPUs, where fusing the
    norms, rotary embeddings and activations saves memory traffic; off on CPUs (compiling costs more
    than it saves on a tiny model)."""
    if config.parallel.compile == "auto":
        return device.type == "cuda"
    return config.parallel.compile == "on"


# Selective activation checkpointing keeps these outputs (the expensive ones to recompute).
_KEPT_OPERATIONS = ("mm", "addmm", "bmm", "_scaled_dot_product_flash_attention",
                    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
                    "_scaled_dot_product_flash_attention_for_cpu")


def _selective_checkpoint_context():
    from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

    kept = {getattr(torch.ops.aten, name).default for name in _KEPT_OPERATIONS if hasattr(torch.ops.aten, name)}

    def policy(context, operation, *args, **kwargs):
        return CheckpointPolicy.MUST_SAVE if operation in kept else CheckpointPolicy.PREFER_RECOMPUTE

    return create_selective_checkpoint_contexts(policy)


def _checkpointed(layer: nn.Module, mode: str) -> nn.Module:
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    if mode == "selective":
        return checkpoint_wrapper(layer, preserve_rng_state=False, context_fn=_selective_checkpoint_context)
    return checkpoint_wrapper(layer, preserve_rng_state=False)


class FullGraphFirst:
    """The forward of a torch.compile'd decoder layer: the layer compiled with ``fullgraph=True`` (one graph,
    no Python between its pieces); if Dynamo cannot capture it whole (a graph break), compiled without
    fullgraph from then on, the reason reported once (`report`) and kept (`reason`)."""

    def __init__(self, layer: nn.Module, whole: Callable, report: Callable[[str], None] | None, backend: str):
        self.layer, self.whole, self.report, self.backend = layer, whole, report, backend
        self.partial: Callable | None = None
        self.reason: str | None = None

    def __call__(self, *args, **kwargs):
        if self.partial is None:
            try:
                return self.whole(*args, **kwargs)
            except (torch._dynamo.exc.Unsupported, torch._dynamo.exc.UserError) as error:
                text = str(error).strip()
                self.reason = text.splitlines()[0] if text else type(error).__name__
                self.partial = torch.compile(self.layer, backend=self.backend).forward
                if self.report is not None:
                    self.report(f"torch.compile: a decoder layer does not compile as one graph (fullgraph) here, "
                                f"compiled with graph breaks instead: {self.reason}")
        return self.partial(*args, **kwargs)


def compile_layer(layer: nn.Module, report: Callable[[str], None] | None = None,
                  backend: str = "inductor") -> nn.Module:
    """torch.compile(layer, fullgraph=True), falling back to graph breaks with a reported reason
    (`FullGraphFirst`, its forward). The result is torch.compile's own wrapper (the layer its `_orig_mod`),
    so parameter and state-dict names are those of any compiled module."""
    compiled = torch.compile(layer, fullgraph=True, backend=backend)
    compiled.forward = FullGraphFirst(layer, compiled.forward, report, backend)
    return compiled


def mesh(config: TrainConfig, world_size: int, device: torch.device):
    """The device mesh FSDP shards over: 1-D (all processes) by default; with `parallel.replicate` R > 1 a
    2-D mesh ("replicate", "shard") of R groups of world/R processes (HSDP: parameters sharded within a
    group, replicated across groups, gradients reduce-scattered within and all-reduced across)."""
    from torch.distributed.device_mesh import init_device_mesh

    from gap_replay.core.config import ConfigError

    replicate = config.parallel.replicate
    if replicate <= 1:
        return init_device_mesh(device.type, (world_size,), mesh_dim_names=("shard",))
    if world_size % replicate:
        raise ConfigError(f"parallel.replicate = {replicate} must divide the number of processes ({world_size})")
    return init_device_mesh(device.type, (replicate, world_size // replicate), mesh_dim_names=("replicate", "shard"))


def shard(model: nn.Module, config: TrainConfig, device: torch.device,
          report: Callable[[str], None] | None = None) -> nn.Module:
    """FSDP2: each decoder layer is one communication unit (all-gathered before its forward and
    backward, its gradients reduce-scattered after), the root holds the embeddings, final norm and
    output projection. Parameters stay sharded in float32 (what the optimizer updates); compute runs in
    the configured dtype, gradients are reduced in `reduce_dtype`. Each layer is wrapped, innermost
    first, in activation checkpointing and torch.compile when configured, then sharded (the FSDP hooks
    stay outside the compiled code). Compilation asks for one graph per layer (fullgraph) and falls back
    to graph breaks with a `report`ed reason. The output projection computes the loss in chunks
    (`parallel.loss_chunk_tokens`, train/packing.py). `parallel.replicate` makes the mesh 2-D (HSDP);
    `parallel.cpu_offload` keeps the sharded parameters, gradients and optimizer state in host memory."""
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    from gap_replay.train.packing import use_chunked_loss

    reported: set[str] = set()

    def report_once(message: str) -> None:
        if report is not None and message not in reported:
            reported.add(message)
            report(message)

    compute = param_dtype(config, device)
    reduce = DTYPE_NAMES.get(config.parallel.reduce_dtype, torch.float32)
    policy = MixedPrecisionPolicy(param_dtype=None if compute == torch.float32 else compute,
                                  reduce_dtype=None if reduce == compute == torch.float32 else reduce)
    layers = model.model.layers
    compiled = compile_layers(config, device)
    if config.parallel.loss_chunk_tokens:
        refused = use_chunked_loss(model, config.parallel.loss_chunk_tokens, compiled=compiled)
        if refused:
            report_once(f"parallel.loss_chunk_tokens: the plain loss is used: {refused}")
    for index, layer in enumerate(layers):
        if config.parallel.activation_checkpointing != "off":
            layer = _checkpointed(layer, config.parallel.activation_checkpointing)
        if compiled:
            layer = compile_layer(layer, report_once)
        layers[index] = layer
    world_size = dist.get_world_size() if dist.is_initialized() else 1
    placement = mesh(config, world_size, device)
    offload = (CPUOffloadPolicy(pin_memory=device.type == "cuda") if config.parallel.cpu_offload
               else OffloadPolicy())
    last = len(layers) - 1
    for index, layer in enumerate(layers):
        # The last layer's backward starts right after the forward: keeping it gathered saves an all-gather.
        fully_shard(layer, mesh=placement, mp_policy=policy, offload_policy=offload,
                    reshard_after_forward=config.parallel.reshard_after_forward and index < last)
    fully_shard(model, mesh=placement, mp_policy=policy, offload_policy=offload,
                reshard_after_forward=config.parallel.reshard_after_forward)
    return model


# Wrappers that put a segment into parameter names: activation checkpointing, torch.compile.
WRAPPER_SEGMENTS = ("_checkpoint_wrapped_module.", "_orig_mod.")


def checkpoint_name(name: str) -> str:
    """A parameter's name in a Hugging Face checkpoint: its name in the model without wrapper segments."""
    for segment in WRAPPER_SEGMENTS:
        name = name.replace(segment, "")
    return name


def shard_dimension(parameter: torch.Tensor) -> int:
    """The mesh dimension a parameter is sharded over: FSDP's Shard(0) on a 1-D mesh, or HSDP's
    (Replicate(), Shard(0)) on a 2-D mesh (replicated over dimension 0, sharded over dimension 1)."""
    from torch.distributed.tensor import Replicate, Shard

    placements = tuple(parameter.placements)
    if placements == (Shard(0),):
        return 0
    if placements == (Replicate(), Shard(0)):
        return 1
    raise NotImplementedError(f"expected FSDP's Shard(0) or HSDP's (Replicate(), Shard(0)), got {placements}")


def shard_group(parameter: torch.Tensor):
    """The process group of the ranks among which a parameter's rows are spread (None: not sharded)."""
    from torch.distributed.tensor import DTensor

    if not isinstance(parameter, DTensor):
        return None
    return parameter.device_mesh.get_group(shard_dimension(parameter))


def owned_rows(parameter: torch.Tensor) -> tuple[int, int]:
    """The rows [start, stop) of the full tensor this rank holds: FSDP2 shards dimension 0 over its mesh's
    shard dimension (the only one, or HSDP's second) in torch.chunk's way (ceil(rows / ranks) each, the last
    ranks may hold fewer or none). A plain tensor (a world of one without sharding) is all rows."""
    from torch.distributed.tensor import DTensor

    rows = parameter.shape[0] if parameter.ndim else 1
    if not isinstance(parameter, DTensor):
        return 0, rows
    dimension = shard_dimension(parameter)
    ranks, rank = parameter.device_mesh.size(dimension), parameter.device_mesh.get_local_rank(dimension)
    chunk = -(-rows // ranks)
    start, stop = min(rows, rank * chunk), min(rows, (rank + 1) * chunk)
    if parameter.to_local().shape[0] != stop - start:  # never: FSDP2 changed its sharding
        raise RuntimeError(f"local shard has {parameter.to_local().shape[0]} rows, expected {stop - start}")
    return start, stop


def materialise(model: nn.Module, full_state: dict | None, device: torch.device,
                buffers: torch.device | None = None) -> None:
    """Allocate the sharded (meta) model on `device` (its computed buffers on `buffers`, default the same)
    and fill it from rank 0's full state dict."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    from gap_replay.train.model import restore_computed_buffers

    model.to_empty(device=device)
    restore_computed_buffers(model, buffers or device)
    set_model_state_dict(model, full_state if full_state is not None else {},
                         options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
