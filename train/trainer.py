"""The training loop: continued pretraining of a Llama on GAP-Replay shards with FSDP2.

One step = `accumulation` micro-batches per process (forward, backward; FSDP reduce-scatters each
micro-batch's gradients, or with `parallel.accumulation = "no_sync"` only the last's), then gradient
clipping, a finite check that every process agrees on (a non-finite step applies no update), AdamW and the
learning-rate schedule. Every process runs the same code on its own slice of the documents; rank 0 logs,
writes the metrics file and the export.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from gap_replay.core.config import ConfigError
from gap_replay.train import checkpoint as ckpt
from gap_replay.train import model as models
from gap_replay.train.config import TrainConfig, dump_toml
from gap_replay.train.data import BatchStream, parts, shard_files, validation_sequences
from gap_replay.train.packing import IGNORE, DocumentMasking, chunked_head, scoring, shifted_targets
from gap_replay.train.metrics import RunLog, Throughput, mfu, peak_flops, synchronize
from gap_replay.train.parallel import DTYPE_NAMES, World, close_world, init_world, materialise, shard



def lr_factor(step: int, warmup_steps: int, decay_steps: int, min_ratio: float) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (1-based): linear warm-up to 1
    over `warmup_steps`, then a cosine down to `min_ratio` at `decay_steps`, flat after."""
    return Schedule([(0, 0.0, warmup_steps, decay_steps)], min_ratio).factor(step)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    o = config.optim
    decay, no_decay = [], []
    embedding = model.get_input_embeddings().weight  # an output projection tied to it is the same parameter
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        if parameter is embedding:
            decayed = o.decay_embeddings
        else:
            decayed = parameter.ndim >= 2 or o.decay_norms_and_biases
        (decay if decayed else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": o.weight_decay}]  # first: the learning rate logged is its
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    # fused: the whole update in one kernel per parameter group on GPUs; foreach: one multi-tensor kernel
    # per operation rather than one per parameter (on sharded DTensor parameters this also saves most of
    # the per-operation dispatch cost).
    device = next(model.parameters()).device
    fused = o.implementation == "fused" or (o.implementation == "auto" and device.type == "cuda")
    return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, weight_decay=o.weight_decay,
                             **({"fused": True} if fused else {"foreach": True}))


class Schedule:
    """The learning-rate multiplier of each optimizer step, as segments ``(start, from_ratio, warmup, end)``:
    from step ``start + 1`` a linear warm-up from `from_ratio` to 1 over `warmup` steps, then a cosine down
    to `min_ratio` at step `end`, flat after; the last segment starting before a step rules it. A run's
    schedule is one segment ``(0, 0.0, warmup_steps, decay_end)``; re-warming a resumed run adds one."""

    def __init__(self, segments: list[tuple[int, float, int, int]], min_ratio: float):
        self.segments, self.min_ratio = [tuple(segment) for segment in segments], min_ratio

    def factor(self, step: int) -> float:
        start, from_ratio, warmup, end = next(segment for segment in reversed(self.segments) if segment[0] < step
                                              or segment is self.segments[0])
        local = step - start
        if warmup and local <= warmup:
            return from_ratio + (1.0 - from_ratio) * local / warmup
        span = max(1, end - start - warmup)
        progress = min(1.0, (local - warmup) / span)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def __call__(self, taken: int) -> float:
        # LambdaLR calls it with the number of scheduler steps taken so far: the lr of step n is factor(n).
        return self.factor(taken + 1)

    @property
    def end(self) -> int:
        return self.segments[-1][3]

    def state_dict(self) -> dict[str, Any]:
        return {"segments": [list(segment) for segment in self.segments]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.segments = [tuple(segment) for segment in state["segments"]]


def schedule_end(config: TrainConfig) -> int:
    return config.optim.decay_steps or config.run.steps


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    o = config.optim
    schedule = Schedule([(0, 0.0, o.warmup_steps, schedule_end(config))], o.min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def change_schedule(schedule: Schedule, config: TrainConfig, step: int) -> str | None:
    """Resuming at `step` a run whose schedule ends elsewhere than the configuration says: apply
    `optim.schedule_change` (or refuse with one line). Returns what was done, None when nothing changed."""
    new_end, old_end, choice = schedule_end(config), schedule.end, config.optim.schedule_change
    if new_end == old_end:
        return None
    now = schedule.factor(step)
    if choice == "refuse":
        jump = Schedule([*schedule.segments[:-1], (*schedule.segments[-1][:3], new_end)], schedule.min_ratio)
        raise ConfigError(
            f"the schedule ended at step {old_end}, the configuration says {new_end} (run.steps or optim.decay_steps "
            f"changed; resuming after step {step}, at {now:.0%} of the peak lr): set optim.schedule_change = 'floor' "
            f"(keep the schedule: {schedule.factor(step + 1):.0%} at the next step), 'rewarm' (warm up again over "
            f"{config.optim.warmup_steps} steps, then a cosine to step {new_end}) or 'recompute' (the schedule of a run "
            f"of {new_end} steps: {jump.factor(step + 1):.0%} at the next step)")
    if choice == "floor":
        return f"schedule kept (optim.schedule_change = 'floor'): it ended at step {old_end}, the floor after it"
    if choice == "rewarm":
        schedule.segments.append((step, now, config.optim.warmup_steps, new_end))
        return (f"schedule re-warmed (optim.schedule_change = 'rewarm'): from {now:.0%} of the peak to the peak "
                f"over {config.optim.warmup_steps} steps, then a cosine to step {new_end}")
    schedule.segments[-1] = (*schedule.segments[-1][:3], new_end)
    return f"schedule recomputed (optim.schedule_change = 'recompute') to end at step {new_end}"


def token_losses(model: nn.Module, batch: torch.Tensor, labels: torch.Tensor | None = None,
                 documents: DocumentMasking | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token cross-entropy of each position of the packed sequences, float32, 0 where not scored, and
    the targets (labels default to the inputs; IGNORE where not scored).

    The targets are shifted (the last position's is ignored), not the logits. With `documents` (document
    masking) attention stays within each document, positions restart with each document and the target
    starting a new document is not scored (train/packing.py). A model whose output projection is a
    `ChunkedLossHead` computes the losses chunk by chunk, never holding the whole batch's logits; otherwise
    the logits are upcast to float32 for the softmax (at 16k tokens and a 32k vocabulary that is 2 GiB)."""
    arguments, starts = documents.inputs(batch) if documents is not None else ({}, None)
    targets = shifted_targets(batch, labels, starts)
    head = chunked_head(model)
    if head is not None:
        with scoring(head, targets):
            return model(input_ids=batch, use_cache=False, **arguments).logits.view(targets.shape), targets
    logits = model(input_ids=batch, use_cache=False, **arguments).logits
    losses = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction="none")
    return losses.view(targets.shape), targets


def causal_lm_loss(model: nn.Module, batch: torch.Tensor, labels: torch.Tensor | None = None,
                   reduction: str = "mean", documents: DocumentMasking | None = None) -> torch.Tensor:
    """The mean (or with reduction "none", per-position) next-token cross-entropy (`token_losses`)."""
    losses, targets = token_losses(model, batch, labels, documents)
    if reduction == "none":
        return losses.flatten()
    return losses.sum() / (targets != IGNORE).sum().clamp(min=1)


def document_masking(config: TrainConfig, eod: int) -> DocumentMasking | None:
    """The run's document masking (`data.document_masking`), or None."""
    return DocumentMasking(eod, config.model.attn_implementation) if config.data.document_masking else None


def set_gradient_sync(model: nn.Module, enabled: bool) -> None:
    """Whether the next backward reduce-scatters gradients (FSDP2); without, each rank accumulates its
    unsharded gradients locally. A model that is not sharded has nothing to synchronise."""
    from torch.distributed.fsdp import FSDPModule

    if isinstance(model, FSDPModule):
        model.set_requires_gradient_sync(enabled)


def accumulate_gradients(model: nn.Module, next_batch: Callable[[], torch.Tensor], count: int,
                         sync_every_micro_batch: bool = True, poison: bool = False,
                         documents: DocumentMasking | None = None) -> torch.Tensor:
    """Forward and backward over `count` micro-batches, the gradients of their mean loss accumulated;
    returns that mean loss (this rank's, detached).

    By default each micro-batch's gradients are reduce-scattered right after its backward and added into
    the sharded fp32 gradients (`parallel.accumulation = "reduce_scatter"`): a rank never holds more than
    one layer's unsharded gradients. With `sync_every_micro_batch=False` (`"no_sync"`) the micro-batches
    before the last skip the communication and accumulate the whole model's unsharded gradients locally (in
    the reduce dtype), reduce-scattered once after the last: less communication, 4 bytes per parameter more
    memory on every rank in fp32. `poison` (a test hook) makes this rank's loss NaN. `documents`: document
    masking (train/packing.py)."""
    total = None
    for index in range(count):
        batch = next_batch()
        set_gradient_sync(model, sync_every_micro_batch or index == count - 1)
        loss = causal_lm_loss(model, batch, documents=documents)
        if poison and index == 0:
            loss = loss * float("nan")
        (loss / count).backward()
        total = loss.detach() if total is None else total + loss.detach()
    return total / count


class StepResult(NamedTuple):
    loss: float  # mean over the global batch (every rank's micro-batches); may be non-finite
    grad_norm: float  # global gradient norm before clipping; may be non-finite
    lr: float  # the learning rate the step used (or would have used, when skipped)
    finite: bool  # loss and gradient norm finite on every rank: the update was applied


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, next_batch: Callable[[], torch.Tensor],
               accumulation: int, grad_clip: float, sync_every_micro_batch: bool = True,
               poison: bool = False, documents: DocumentMasking | None = None) -> StepResult:
    """One optimizer step: the accumulated gradients of `accumulation` micro-batches, clipped to
    `grad_clip` (0 = no clipping), AdamW, the schedule.

    Before the update, one all-reduce sums [this rank's loss, the gradient norm] over the ranks: the sum
    is the global loss, and it is finite on every rank or on none (a NaN or inf anywhere propagates to
    every rank's sum), so all ranks agree on skipping. A step whose loss or gradient norm is not finite
    applies no update (the optimizer's state untouched); the schedule advances all the same. Reading the
    sum waits for the backward pass (one device synchronisation per step)."""
    loss = accumulate_gradients(model, next_batch, accumulation, sync_every_micro_batch, poison, documents)
    parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip or float("inf"))
    if hasattr(grad_norm, "full_tensor"):  # a DTensor: the same global norm on every rank
        grad_norm = grad_norm.full_tensor()
    # With CPU offload the gradient norm is on the host, the loss on the device (the collective's).
    summed = torch.stack([loss.float(), grad_norm.detach().float().to(loss.device)])
    world = 1
    if dist.is_initialized():
        dist.all_reduce(summed)
        world = dist.get_world_size()
    loss_sum, norm_sum, norm = torch.cat([summed, grad_norm.detach().float().reshape(1).to(loss.device)]).tolist()
    finite = math.isfinite(loss_sum) and math.isfinite(norm_sum)
    lr = optimizer.param_groups[0]["lr"]
    if finite:
        optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(loss_sum / world, norm if finite else norm_sum / world, lr, finite)


@torch.no_grad()
def weights_finite(model: nn.Module) -> bool:
    """Whether every parameter of the model is finite, on every rank (one all-reduce, on the parameters'
    device: the host's with CPU offload, whose process group has a gloo backend for it)."""
    bad = torch.zeros((), dtype=torch.int64, device=next(model.parameters()).device)
    for parameter in model.parameters():
        local = parameter.to_local() if hasattr(parameter, "to_local") else parameter
        bad += (~torch.isfinite(local)).any().to(torch.int64)
    if dist.is_initialized():
        dist.all_reduce(bad)
    return int(bad) == 0


class NonFiniteError(RuntimeError):
    """A step's loss or gradient norm was not finite and `optim.on_nonfinite` says to stop (or too many
    steps in a row were skipped)."""


FAULTS_ENV = "GAP_REPLAY_TRAIN_FAULTS"


def injected_faults(rank: int) -> dict[int, set[str]]:
    """A test hook: ``GAP_REPLAY_TRAIN_FAULTS="loss@3,weights@5:1"`` makes the loss of step 3 NaN on every
    rank and fills rank 1's shard of the weights with NaN after step 5 (``KIND@STEP`` or ``KIND@STEP:RANK``;
    kinds: loss, weights, stall: sleep twice `parallel.timeout_s` before the step, so that the other ranks'
    collectives time out). Step -> the kinds injected on this rank."""
    faults: dict[int, set[str]] = {}
    for item in filter(None, (part.strip() for part in os.environ.get(FAULTS_ENV, "").split(","))):
        kind, _, where = item.partition("@")
        step, _, ranks = where.partition(":")
        if kind not in ("loss", "weights", "stall") or not step.isdigit():
            raise ValueError(f"{FAULTS_ENV}: expected KIND@STEP[:RANK] with KIND loss, weights or stall, "
                             f"got {item!r}")
        if not ranks or int(ranks) == rank:
            faults.setdefault(int(step), set()).add(kind)
    return faults


@torch.no_grad()
def poison_weights(model: nn.Module) -> None:
    for parameter in model.parameters():
        (parameter.to_local() if hasattr(parameter, "to_local") else parameter).fill_(float("nan"))


def accumulation_steps(config: TrainConfig, world_size: int) -> int:
    per_pass = config.data.micro_batch_size * world_size
    total = config.data.global_batch_size or per_pass
    if total % per_pass:
        raise ConfigError(f"data.global_batch_size ({total}) must be a multiple of data.micro_batch_size x "
                          f"processes ({config.data.micro_batch_size} x {world_size})")
    return total // per_pass


def no_sync_bytes(parameters: int, local_parameters: int, reduce_bytes: int) -> tuple[int, int]:
    """(unsharded gradients, AdamW state) bytes a process needs on top of its weight shard with
    `parallel.accumulation = "no_sync"`: every parameter's gradient, unsharded, in the reduce dtype, and
    the two fp32 moments of its shard (allocated at the first step)."""
    return parameters * reduce_bytes, 2 * 4 * local_parameters


def available_memory(world: World) -> int | None:
    """Bytes this process may still allocate: free device memory on a GPU; on a CPU the host's
    MemAvailable divided among the node's processes; None when unknown (no check)."""
    if world.device.type == "cuda":
        return int(torch.cuda.mem_get_info(world.device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 // max(1, world.local_size)
    except OSError:
        pass
    return None


def check_no_sync_memory(model: nn.Module, config: TrainConfig, world: World) -> None:
    """Refuse `parallel.accumulation = "no_sync"` with one line when its unsharded gradients and the
    optimizer state do not fit in the memory left (every process checks; all agree through one
    all-reduce). Activations come on top: passing is necessary, not sufficient."""
    parameters = sum(parameter.numel() for parameter in model.parameters())
    local = sum((p.to_local() if hasattr(p, "to_local") else p).numel() for p in model.parameters())
    reduce = DTYPE_NAMES.get(config.parallel.reduce_dtype, torch.float32)
    gradients, optimizer_state = no_sync_bytes(parameters, local, reduce.itemsize)
    free = available_memory(world)
    figures = torch.tensor([-(free if free is not None else 2**62), gradients + optimizer_state],
                           dtype=torch.int64, device=world.device)
    dist.all_reduce(figures, op=dist.ReduceOp.MAX)  # the least free memory, the largest need, of all processes
    least_free, need = -int(figures[0]), int(figures[1])
    if least_free < need:
        where = "free on the GPU" if world.device.type == "cuda" else "of host memory available per process"
        raise ConfigError(
            f"parallel.accumulation = 'no_sync' keeps every parameter's gradient unsharded on each process: "
            f"{gradients / 1e9:.2f} GB ({parameters:,} parameters x {reduce.itemsize} bytes, "
            f"{str(reduce).removeprefix('torch.')}) + {optimizer_state / 1e9:.2f} GB of AdamW state, more than "
            f"the {least_free / 1e9:.2f} GB {where}: use 'reduce_scatter' (the default)")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Validation:
    """Validation loss per part on a fixed set of sequences: the first `eval.sequences_per_part` sequences
    packed from each part's documents in order, the same whatever the number of processes (every process
    packs them; process r evaluates sequences r, r + n, ...). Each sequence's loss sum and token count go
    into their own row of one table, summed over the processes (each row is filled by one process, the
    others add zeros, so the sum is exact) and then over the rows in order: the result does not depend on
    how the sequences were spread over the processes."""

    def __init__(self, config: TrainConfig, tokenize, eod: int, world: World, bos: int | None = None):
        files = shard_files(config.data.validation)
        self.parts = parts(files)
        self.micro, self.world, self.eod = config.data.micro_batch_size, world, eod
        self.documents = document_masking(config, eod)
        self.sequences = {
            part: validation_sequences(files, part, tokenize, config.data.seq_len, eod,
                                       config.eval.sequences_per_part, config.data.tokenize_batch, bos)
            for part in self.parts
        }

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float | None]:
        model.eval()
        device, rank, size = self.world.device, self.world.rank, self.world.size
        offsets = np.cumsum([0] + [len(self.sequences[part]) for part in self.parts]).tolist()
        table = torch.zeros(offsets[-1], 2, dtype=torch.float64, device=device)  # per sequence: loss sum, tokens
        for p, part in enumerate(self.parts):
            everything = self.sequences[part]
            mine = list(range(rank, len(everything), size))
            forwards = -(-len(everything) // size)  # the same count on every rank (FSDP collectives)
            for start in range(0, forwards, self.micro):
                chosen = mine[start:start + self.micro]
                rows = [everything[index] for index in chosen] or [[self.eod, self.eod]]  # a dummy row, ignored
                width = max(len(row) for row in rows)
                inputs = torch.full((len(rows), width), self.eod, dtype=torch.int64)
                labels = torch.full((len(rows), width), IGNORE, dtype=torch.int64)
                for r, row in enumerate(rows):
                    inputs[r, :len(row)] = torch.tensor(row)
                    labels[r, :len(row)] = torch.tensor(row)
                inputs, labels = inputs.to(device), labels.to(device)
                losses, targets = token_losses(model, inputs, labels, self.documents)
                if chosen:
                    where = torch.tensor([offsets[p] + index for index in chosen], device=device)
                    table[where, 0] = losses.double().sum(1)
                    table[where, 1] = (targets != IGNORE).sum(1).double()
        dist.all_reduce(table)
        table = table.cpu()
        model.train()
        result: dict[str, float | None] = {}
        loss_sum = tokens = 0.0
        for p, part in enumerate(self.parts):
            part_loss, part_tokens = (float(value) for value in table[offsets[p]:offsets[p + 1]].sum(0))
            result[f"val_loss/{part}"] = part_loss / part_tokens if part_tokens else None
            loss_sum, tokens = loss_sum + part_loss, tokens + part_tokens
        result["val_loss"] = loss_sum / tokens if tokens else None
        result["val_tokens"] = int(tokens)
        return result


def _prepare_tokenizer(config: TrainConfig, world: World, log: RunLog):
    """The run's tokenizer. One trained for the run is trained by rank 0 and copied to every filesystem that
    does not have it (a node-local `run.output_dir` on the other nodes), so every rank reads its own copy."""
    source = models.tokenizer_source(config)
    if not config.tokenizer.path and not config.model.pretrained:
        missing = torch.tensor([int(not source.is_dir())], device=world.device)
        dist.all_reduce(missing, op=dist.ReduceOp.MAX)
        if int(missing):
            if world.main and not source.is_dir():
                log.say(f"training a {config.tokenizer.train_vocab_size}-token BPE tokenizer on {config.data.train}")
                models.train_tokenizer(shard_files(config.data.train), config.tokenizer.train_vocab_size,
                                       config.tokenizer.train_documents, config.tokenizer.special_tokens, source,
                                       add_bos=config.tokenizer.bos != "off")
            dist.barrier()
            ckpt.copy_from_rank0(source)
    return models.load_tokenizer(config)


def train(config: TrainConfig, stream=None) -> dict[str, Any]:
    """Run (or resume) the training described by `config` in this process; every rank calls it.
    Returns a summary (rank 0's view): steps done, the logged training losses, the last validation."""
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    if config.run.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    world = init_world(config)
    try:
        return _train(config, world, stream)
    finally:
        close_world(world)
        # Leave the process as found (matters when train() is called in-process, as the tests do).
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def _train(config: TrainConfig, world: World, stream) -> dict[str, Any]:
    output = config.output_dir
    # The ranks that see this rank's output directory: all of them on a shared filesystem, a node's on a
    # node-local disk. The first of each writes config.toml there; rank 0 alone writes the metrics log.
    output_view = ckpt.directory_view(output)
    writes_output = world.rank == output_view[0]
    if writes_output:
        (output / "config.toml").write_text(dump_toml(config), encoding="utf-8")
    seed_everything(config.run.seed + world.rank)
    accumulation = accumulation_steps(config, world.size)
    checkpoints = ckpt.checkpoints_root(output, config.checkpoint.directory)
    ckpt.check_shared_checkpoints(checkpoints)
    resume_from = ckpt.latest_checkpoint(checkpoints) if config.checkpoint.resume else None
    newest = ckpt.latest_checkpoint(checkpoints, finite_only=False) if config.checkpoint.resume else None
    if newest is not None and resume_from is None:
        raise ConfigError(f"every checkpoint in {checkpoints} holds non-finite weights: nothing to resume from "
                          "(remove them, or set checkpoint.resume = false to start afresh)")
    start_step = ckpt.checkpoint_step(resume_from) if resume_from else 0
    log = RunLog(Path(config.log.jsonl) if config.log.jsonl else output / "metrics.jsonl", world.main,
                 config.run.steps, start_step, config.log.progress_bar and world.main, stream)
    batches = None
    try:
        tokenizer = _prepare_tokenizer(config, world, log)
        eod, bos = models.eod_id(tokenizer, config), models.bos_id(tokenizer, config)
        if writes_output:  # the run's configuration as resolved: tokenizer.bos says whether documents start with BOS
            resolved = dataclasses.replace(config, tokenizer=dataclasses.replace(
                config.tokenizer, bos="off" if bos is None else "on"))
            (output / "config.toml").write_text(dump_toml(resolved), encoding="utf-8")
        tokenize = models.tokenize_function(tokenizer)
        architecture = models.model_config(config, tokenizer)

        model = build_model(config, architecture, world, initialise=resume_from is None, report=log.say)
        flops_per_token = models.model_flops_per_token(model, config.data.seq_len)
        compute_params = models.compute_parameters(model)
        if config.parallel.accumulation == "no_sync" and accumulation > 1:
            check_no_sync_memory(model, config, world)
        optimizer = build_optimizer(model, config)
        scheduler = build_scheduler(optimizer, config)

        batches = BatchStream(shard_files(config.data.train), tokenize, config.data.seq_len, eod,
                              config.data.micro_batch_size, world.rank, world.size, config.data.tokenize_batch,
                              config.data.prefetch, bos)
        tokens_seen = skipped_steps = 0
        if resume_from is not None:
            trainer_state, rank_state = ckpt.load_checkpoint(resume_from, model, optimizer, world.rank, world.size)
            saved_bos = trainer_state.get("bos")  # absent: a checkpoint from before BOS was an option (none)
            if saved_bos != bos:
                raise ConfigError(f"checkpoint {resume_from} was trained with "
                                  f"{'no BOS' if saved_bos is None else f'BOS id {saved_bos}'}, this run resolves "
                                  f"tokenizer.bos = {config.tokenizer.bos!r} to "
                                  f"{'none' if bos is None else f'id {bos}'}: the data positions would not match; "
                                  f"set tokenizer.bos = {'off' if saved_bos is None else 'on'!r}")
            scheduler.load_state_dict(trainer_state["scheduler"])
            schedule = scheduler.lr_lambdas[0]
            if "schedule" in trainer_state:  # absent: a checkpoint from before schedules were recorded
                schedule.load_state_dict(trainer_state["schedule"])
                changed = change_schedule(schedule, config, start_step)
                if changed:
                    log.say(changed)
            for group, base in zip(optimizer.param_groups, scheduler.base_lrs):  # the next step's lr, as scheduled
                group["lr"] = base * schedule(scheduler.last_epoch)
            tokens_seen = int(trainer_state["tokens"])
            skipped_steps = int(trainer_state.get("skipped_steps", 0))
            try:
                batches.load_state_dict(rank_state["data"])
            except ValueError as error:
                raise ConfigError(f"checkpoint {resume_from}: {error}; continue it with the trainer that wrote it, "
                                  "or start a new run.output_dir") from None
            ckpt.set_rng_state(rank_state["rng"], world.device)
            if newest != resume_from:
                log.say(f"{newest} holds non-finite weights: resuming from the newest finite checkpoint")
            log.say(f"resumed from {resume_from} at step {start_step}")
        validation = Validation(config, tokenize, eod, world, bos) if config.data.validation else None
        peak = peak_flops(config.log.peak_tflops, world.device)
        steps, stop = config.run.steps, min(config.run.stop_at or config.run.steps, config.run.steps)
        tokens_per_step = config.data.micro_batch_size * accumulation * world.size * config.data.seq_len
        log.write({"kind": "run", "step": start_step, "processes": world.size, "device": str(world.device),
                   "parameters": sum(p.numel() for p in model.parameters()), "compute_parameters": compute_params,
                   "vocab_size": architecture.vocab_size, "tokenizer_size": len(tokenizer),
                   "bos_id": bos, "eod_id": eod,
                   "flops_per_token": flops_per_token, "peak_flops_per_device": peak,
                   "accumulation": accumulation, "tokens_per_step": tokens_per_step,
                   "mesh": {"replicate": config.parallel.replicate, "shard": world.size // config.parallel.replicate},
                   "cpu_offload": config.parallel.cpu_offload, "document_masking": config.data.document_masking,
                   "loss_chunk_tokens": config.parallel.loss_chunk_tokens})

        async_group = dist.new_group(backend="gloo") if config.checkpoint.async_save else None
        pending: list[tuple[ckpt.PendingCheckpoint, bool]] = []

        def finish_pending() -> None:
            while pending:
                saving, finite = pending.pop()
                with throughput.pause():
                    path = saving.finish()
                say_saved(path, finite)

        def say_saved(path: str, finite: bool) -> None:
            log.say(f"checkpoint {path}" + ("" if finite else " (weights not finite: kept only while newer "
                                                              "than the last finite checkpoint)"))

        def save(step: int) -> None:
            finish_pending()  # one checkpoint in flight at a time; COMPLETE only once its write is done
            with throughput.pause():
                finite = weights_finite(model)
                saved = ckpt.save_checkpoint(
                    checkpoints, model, optimizer,
                    {"step": step, "tokens": tokens_seen, "scheduler": scheduler.state_dict(),
                     "schedule": scheduler.lr_lambdas[0].state_dict(), "bos": bos,
                     "skipped_steps": skipped_steps},
                    {"data": batches.state_dict(), "rng": ckpt.rng_state(world.device)},
                    world.rank, world.size, config.checkpoint.keep, finite=finite, async_group=async_group)
            if isinstance(saved, ckpt.PendingCheckpoint):
                pending.append((saved, finite))
            else:
                say_saved(saved, finite)

        def evaluate(step: int) -> dict[str, Any]:
            with throughput.pause():
                record = {"kind": "eval", "step": step, **validation.evaluate(model)}
                log.write(record)
                return record

        losses: dict[int, float] = {}
        last_eval: dict[str, Any] | None = None
        throughput = Throughput(wait=partial(synchronize, world.device))
        step = start_step

        def next_batch() -> torch.Tensor:
            return torch.from_numpy(next(batches)).to(world.device, non_blocking=True)

        faults = injected_faults(world.rank)
        documents = document_masking(config, eod)
        in_a_row = 0
        for step in range(start_step + 1, stop + 1):
            if "stall" in faults.get(step, ()):
                time.sleep(2 * config.parallel.timeout_s)
            result = train_step(model, optimizer, scheduler, next_batch, accumulation, config.optim.grad_clip,
                                sync_every_micro_batch=config.parallel.accumulation == "reduce_scatter",
                                poison="loss" in faults.get(step, ()), documents=documents)
            if "weights" in faults.get(step, ()):
                poison_weights(model)
            tokens_seen += tokens_per_step
            throughput.add(tokens_per_step)
            log.advance()
            if not result.finite:
                skipped_steps, in_a_row = skipped_steps + 1, in_a_row + 1
                abort = config.optim.on_nonfinite == "abort"
                log.write({"kind": "nonfinite", "step": step, "loss": result.loss, "grad_norm": result.grad_norm,
                           "lr": result.lr, "action": "abort" if abort else "skip", "skipped_steps": skipped_steps},
                          console=False)
                message = (f"step {step}: loss {result.loss}, gradient norm {result.grad_norm}: not finite, "
                           "no update")
                finish_pending()  # a checkpoint still being written is complete before it is named
                latest = ckpt.latest_checkpoint(checkpoints)
                kept = f"the last finite checkpoint is {latest}" if latest else "no checkpoint yet"
                if abort:
                    raise NonFiniteError(f"{message}; stopped (optim.on_nonfinite = 'abort'); {kept}")
                limit = config.optim.max_consecutive_skips
                if limit and in_a_row >= limit:
                    raise NonFiniteError(f"{message}; {in_a_row} non-finite steps in a row "
                                         f"(optim.max_consecutive_skips = {limit}): stopped; {kept}")
                log.say(f"{message}: skipped (optim.on_nonfinite = 'skip')")
            else:
                in_a_row = 0
            if step % config.log.interval == 0 or step == stop:
                rate, _ = throughput.rate()  # waits for the device: the steps so far are done
                per_device = rate / world.size
                record = {"kind": "train", "step": step, "loss": result.loss, "lr": result.lr,
                          "grad_norm": result.grad_norm, "skipped": not result.finite,
                          "skipped_steps": skipped_steps, "tokens": tokens_seen, "tokens_per_s": rate,
                          "tokens_per_s_per_device": per_device,
                          "tflops_per_device": per_device * flops_per_token / 1e12,
                          "mfu": mfu(per_device, flops_per_token, peak)}
                if world.device.type == "cuda":
                    record["memory_gib"] = torch.cuda.max_memory_allocated(world.device) / 2**30
                losses[step] = record["loss"]
                log.write(record)
                throughput.reset()
            if validation is not None and config.eval.interval and step % config.eval.interval == 0 and step < stop:
                last_eval = evaluate(step)
            if step == stop or (config.checkpoint.interval and step % config.checkpoint.interval == 0):
                save(step)
        batches.close()
        finish_pending()
        trained = step > start_step
        if validation is not None and trained:
            last_eval = evaluate(step)
        exported = False
        if step == steps and config.export.enabled:
            directory = Path(config.export.directory) if config.export.directory else output / "hf"
            with throughput.pause():
                if weights_finite(model):
                    ckpt.export_hf(model, tokenizer, directory, DTYPE_NAMES[config.export.dtype], world.rank,
                                   world.size, config.export.max_file_mb * 2**20,
                                   view=ckpt.directory_view(directory.parent))
                    log.say(f"exported {directory}")
                    exported = True
                else:
                    log.say(f"not exported: the weights are not finite (the last finite checkpoint is "
                            f"{ckpt.latest_checkpoint(checkpoints)})")
        return {"step": step, "losses": losses, "validation": last_eval, "flops_per_token": flops_per_token,
                "output_dir": str(output), "skipped_steps": skipped_steps, "exported": exported}
    finally:
        if batches is not None:
            batches.close()
        log.close()


def build_model(config: TrainConfig, architecture, world: World, initialise: bool = True,
                report: Callable[[str], None] | None = None) -> nn.Module:
    """The run's model, sharded over the world, in training mode: built on the meta device, wrapped
    (activation checkpointing, torch.compile, FSDP2), allocated on the device, then filled: pretrained
    weights read shard-wise from the safetensors files, else the seeded initialisation made on rank 0
    and scattered. `initialise=False` leaves it allocated and empty (a checkpoint fills it). With
    `parallel.cpu_offload` the shards live in host memory (the computed buffers on the device). `report`
    gets the reasons of fallbacks (compilation with graph breaks, the plain loss)."""
    model = models.meta_model(config, architecture)
    full_state = None
    if initialise and not config.model.pretrained and world.main:
        full_state = models.reference_model(config, architecture).state_dict()
    shard(model, config, world.device, report)
    storage_device = torch.device("cpu") if config.parallel.cpu_offload else world.device
    if initialise and not config.model.pretrained:
        materialise(model, full_state, storage_device, buffers=world.device)
        del full_state
    else:
        model.to_empty(device=storage_device)
        models.restore_computed_buffers(model, world.device)
        if initialise:
            ckpt.load_hf_shards(model, Path(config.model.pretrained))
    model.train()
    return model
