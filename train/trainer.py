"""The training loop: continued pretraining of a Llama on GAP-Replay shards with FSDP2.

One step = `accumulation` micro-batches per process (forward, backward; FSDP reduce-scatters the
gradients once, after the last), then gradient clipping, AdamW and the learning-rate schedule. Every
process runs the same code on its own slice of the documents; rank 0 logs, writes the metrics file and
the export.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

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
from gap_replay.train.metrics import RunLog, Throughput, mfu, peak_flops, synchronize
from gap_replay.train.parallel import DTYPE_NAMES, World, close_world, init_world, materialise, shard

IGNORE = -100


def lr_factor(step: int, warmup_steps: int, decay_steps: int, min_ratio: float) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (1-based): linear warm-up to 1
    over `warmup_steps`, then a cosine down to `min_ratio` at `decay_steps`, flat after."""
    if warmup_steps and step <= warmup_steps:
        return step / warmup_steps
    span = max(1, decay_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    o = config.optim
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 or o.decay_norms_and_biases else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": o.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    # fused: the whole update in one kernel per parameter group on GPUs; foreach: one multi-tensor kernel
    # per operation rather than one per parameter (on sharded DTensor parameters this also saves most of
    # the per-operation dispatch cost).
    device = next(model.parameters()).device
    fused = o.implementation == "fused" or (o.implementation == "auto" and device.type == "cuda")
    return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, weight_decay=o.weight_decay,
                             **({"fused": True} if fused else {"foreach": True}))


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    o = config.optim
    decay_steps = o.decay_steps or config.run.steps
    # LambdaLR calls the function with the number of scheduler steps taken so far: the lr of step n is f(n).
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda taken: lr_factor(taken + 1, o.warmup_steps, decay_steps, o.min_lr_ratio))


def causal_lm_loss(model: nn.Module, batch: torch.Tensor, labels: torch.Tensor | None = None,
                   reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy over the packed sequences (labels default to the inputs).

    The targets are shifted (the last position's is ignored), not the logits, so the largest tensor of
    the step is never copied; the logits are upcast to float32 for the softmax (at 16k tokens and a
    32k vocabulary that is 2 GiB, twice with the softmax kept for the backward pass)."""
    logits = model(input_ids=batch, use_cache=False).logits
    targets = F.pad((batch if labels is None else labels)[:, 1:], (0, 1), value=IGNORE)
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction=reduction)


def set_gradient_sync(model: nn.Module, enabled: bool) -> None:
    """Whether the next backward reduce-scatters gradients (FSDP2); without, each rank accumulates its
    unsharded gradients locally. A model that is not sharded has nothing to synchronise."""
    from torch.distributed.fsdp import FSDPModule

    if isinstance(model, FSDPModule):
        model.set_requires_gradient_sync(enabled)


def accumulate_gradients(model: nn.Module, next_batch: Callable[[], torch.Tensor], count: int) -> torch.Tensor:
    """Forward and backward over `count` micro-batches, the gradients of their mean loss accumulated;
    returns that mean loss (this rank's, detached). Gradients are reduce-scattered once, after the last
    micro-batch: the earlier ones skip the communication and add into the local unsharded gradients."""
    total = torch.zeros((), device=next(model.parameters()).device)
    for index in range(count):
        batch = next_batch()
        set_gradient_sync(model, index == count - 1)
        loss = causal_lm_loss(model, batch)
        (loss / count).backward()
        total += loss.detach()
    return total / count


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, next_batch: Callable[[], torch.Tensor],
               accumulation: int, grad_clip: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One optimizer step: the accumulated gradients of `accumulation` micro-batches, clipped to
    `grad_clip` (0 = no clipping), AdamW, the schedule. Returns (this rank's mean loss, the global
    gradient norm, the learning rate the step used); the tensors stay on the device (reading them
    waits for the step)."""
    loss = accumulate_gradients(model, next_batch, accumulation)
    parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip or float("inf"))
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss, grad_norm, lr


def accumulation_steps(config: TrainConfig, world_size: int) -> int:
    per_pass = config.data.micro_batch_size * world_size
    total = config.data.global_batch_size or per_pass
    if total % per_pass:
        raise ConfigError(f"data.global_batch_size ({total}) must be a multiple of data.micro_batch_size x "
                          f"processes ({config.data.micro_batch_size} x {world_size})")
    return total // per_pass


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Validation:
    """Validation loss per part on a fixed set of sequences (the same at every evaluation)."""

    def __init__(self, config: TrainConfig, tokenize, eod: int, world: World):
        files = shard_files(config.data.validation)
        self.parts = parts(files)
        self.micro, self.world, self.eod = config.data.micro_batch_size, world, eod
        self.sequences = {
            part: validation_sequences(files, part, tokenize, config.data.seq_len, eod, world.rank, world.size,
                                       config.eval.sequences_per_part, config.data.tokenize_batch)
            for part in self.parts
        }

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float | None]:
        model.eval()
        device = self.world.device
        counts = torch.tensor([len(self.sequences[part]) for part in self.parts], dtype=torch.int64, device=device)
        dist.all_reduce(counts, op=dist.ReduceOp.MAX)  # every rank runs as many forwards (FSDP collectives)
        counts = counts.tolist()
        totals = torch.zeros(len(self.parts), 2, dtype=torch.float64, device=device)
        for p, part in enumerate(self.parts):
            local = self.sequences[part]
            for start in range(0, counts[p], self.micro):
                rows = local[start:start + self.micro] or [[self.eod, self.eod]]  # a dummy row, all ignored
                width = max(len(row) for row in rows)
                inputs = torch.full((len(rows), width), self.eod, dtype=torch.int64)
                labels = torch.full((len(rows), width), IGNORE, dtype=torch.int64)
                for r, row in enumerate(rows):
                    inputs[r, :len(row)] = torch.tensor(row)
                    if local[start:start + self.micro]:
                        labels[r, :len(row)] = torch.tensor(row)
                inputs, labels = inputs.to(device), labels.to(device)
                totals[p, 0] += causal_lm_loss(model, inputs, labels, reduction="sum").double()
                totals[p, 1] += (labels[:, 1:] != IGNORE).sum()
        dist.all_reduce(totals)
        totals = totals.cpu()
        model.train()
        result: dict[str, float | None] = {}
        for p, part in enumerate(self.parts):
            result[f"val_loss/{part}"] = float(totals[p, 0] / totals[p, 1]) if totals[p, 1] else None
        tokens = float(totals[:, 1].sum())
        result["val_loss"] = float(totals[:, 0].sum()) / tokens if tokens else None
        result["val_tokens"] = int(tokens)
        return result


def _prepare_tokenizer(config: TrainConfig, world: World, log: RunLog):
    source = models.tokenizer_source(config)
    if not config.tokenizer.path and not config.model.pretrained and not source.is_dir():
        if world.main:
            log.say(f"training a {config.tokenizer.train_vocab_size}-token BPE tokenizer on {config.data.train}")
            models.train_tokenizer(shard_files(config.data.train), config.tokenizer.train_vocab_size,
                                   config.tokenizer.train_documents, config.tokenizer.special_tokens, source)
        dist.barrier()
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
    if world.main:
        output.mkdir(parents=True, exist_ok=True)
        (output / "config.toml").write_text(dump_toml(config), encoding="utf-8")
    seed_everything(config.run.seed + world.rank)
    accumulation = accumulation_steps(config, world.size)
    checkpoints = ckpt.checkpoints_root(output, config.checkpoint.directory)
    resume_from = ckpt.latest_checkpoint(checkpoints) if config.checkpoint.resume else None
    start_step = ckpt.checkpoint_step(resume_from) if resume_from else 0
    log = RunLog(Path(config.log.jsonl) if config.log.jsonl else output / "metrics.jsonl", world.main,
                 config.run.steps, start_step, config.log.progress_bar and world.main, stream)
    try:
        tokenizer = _prepare_tokenizer(config, world, log)
        eod = models.eod_id(tokenizer, config)
        tokenize = models.tokenize_function(tokenizer)
        architecture = models.model_config(config, tokenizer)

        model = build_model(config, architecture, world, initialise=resume_from is None)
        flops_per_token = models.model_flops_per_token(model, config.data.seq_len)
        compute_params = models.compute_parameters(model)
        optimizer = build_optimizer(model, config)
        scheduler = build_scheduler(optimizer, config)

        batches = BatchStream(shard_files(config.data.train), tokenize, config.data.seq_len, eod,
                              config.data.micro_batch_size, world.rank, world.size, config.data.tokenize_batch,
                              config.data.prefetch)
        tokens_seen = 0
        if resume_from is not None:
            trainer_state, rank_state = ckpt.load_checkpoint(resume_from, model, optimizer, world.rank, world.size)
            scheduler.load_state_dict(trainer_state["scheduler"])
            tokens_seen = int(trainer_state["tokens"])
            batches.load_state_dict(rank_state["data"])
            ckpt.set_rng_state(rank_state["rng"], world.device)
            log.say(f"resumed from {resume_from} at step {start_step}")
        validation = Validation(config, tokenize, eod, world) if config.data.validation else None
        peak = peak_flops(config.log.peak_tflops, world.device)
        steps, stop = config.run.steps, min(config.run.stop_at or config.run.steps, config.run.steps)
        tokens_per_step = config.data.micro_batch_size * accumulation * world.size * config.data.seq_len
        log.write({"kind": "run", "step": start_step, "processes": world.size, "device": str(world.device),
                   "parameters": sum(p.numel() for p in model.parameters()), "compute_parameters": compute_params,
                   "vocab_size": architecture.vocab_size, "tokenizer_size": len(tokenizer),
                   "flops_per_token": flops_per_token, "peak_flops_per_device": peak,
                   "accumulation": accumulation, "tokens_per_step": tokens_per_step})

        def save(step: int) -> None:
            with throughput.pause():
                path = ckpt.save_checkpoint(
                    checkpoints, model, optimizer,
                    {"step": step, "tokens": tokens_seen, "scheduler": scheduler.state_dict()},
                    {"data": batches.state_dict(), "rng": ckpt.rng_state(world.device)},
                    world.rank, world.size, config.checkpoint.keep)
                log.say(f"checkpoint {path}")

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

        for step in range(start_step + 1, stop + 1):
            step_loss, grad_norm, lr = train_step(model, optimizer, scheduler, next_batch, accumulation,
                                                  config.optim.grad_clip)
            tokens_seen += tokens_per_step
            throughput.add(tokens_per_step)
            log.advance()
            if step % config.log.interval == 0 or step == stop:
                rate, _ = throughput.rate()  # waits for the device: the steps so far are done
                mean_loss = step_loss.clone()
                dist.all_reduce(mean_loss)
                if hasattr(grad_norm, "full_tensor"):
                    grad_norm = grad_norm.full_tensor()
                per_device = rate / world.size
                record = {"kind": "train", "step": step, "loss": float(mean_loss) / world.size, "lr": lr,
                          "grad_norm": float(grad_norm), "tokens": tokens_seen, "tokens_per_s": rate,
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
        trained = step > start_step
        if validation is not None and trained:
            last_eval = evaluate(step)
        if step == steps and config.export.enabled:
            directory = Path(config.export.directory) if config.export.directory else output / "hf"
            with throughput.pause():
                ckpt.export_hf(model, tokenizer, directory, DTYPE_NAMES[config.export.dtype], world.rank,
                               world.size, config.export.max_file_mb * 2**20)
            log.say(f"exported {directory}")
        return {"step": step, "losses": losses, "validation": last_eval, "flops_per_token": flops_per_token,
                "output_dir": str(output)}
    finally:
        log.close()


def build_model(config: TrainConfig, architecture, world: World, initialise: bool = True) -> nn.Module:
    """The run's model, sharded over the world, in training mode: built on the meta device, wrapped
    (activation checkpointing, torch.compile, FSDP2), allocated on the device, then filled: pretrained
    weights read shard-wise from the safetensors files, else the seeded initialisation made on rank 0
    and scattered. `initialise=False` leaves it allocated and empty (a checkpoint fills it)."""
    model = models.meta_model(config, architecture)
    full_state = None
    if initialise and not config.model.pretrained and world.main:
        full_state = models.reference_model(config, architecture).state_dict()
    shard(model, config, world.device)
    if initialise and not config.model.pretrained:
        materialise(model, full_state, world.device)
        del full_state
    else:
        model.to_empty(device=world.device)
        models.restore_computed_buffers(model, world.device)
        if initialise:
            ckpt.load_hf_shards(model, Path(config.model.pretrained))
    model.train()
    return model
