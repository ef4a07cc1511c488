"""Checks run inside torchrun processes (gloo, CPU) by tests/train/test_sharded.py; each rank writes
what it measured to OUTPUT/rank-<r>.json (and its shards where asked), the test asserts.

    torchrun --nproc-per-node 2 tests/train/sharded_checks.py gradient-sync OUTPUT
    torchrun --nproc-per-node 2 tests/train/sharded_checks.py load-export OUTPUT PRETRAINED MAX_FILE_BYTES
    torchrun --nproc-per-node N tests/train/sharded_checks.py validation OUTPUT CORPUS TOKENIZER
    torchrun --nproc-per-node 4 tests/train/sharded_checks.py hsdp-load-export OUTPUT PRETRAINED REPLICATE
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor

from gap_replay.train import checkpoint as ckpt
from gap_replay.train import model as models
from gap_replay.train.cli import leave_process
from gap_replay.train.config import load_train_config
from gap_replay.train.parallel import close_world, init_world, owned_rows
from gap_replay.train.trainer import accumulate_gradients, build_model

TINY = ["model.hidden_size=64", "model.intermediate_size=128", "model.num_layers=2", "model.num_heads=4",
        "model.num_kv_heads=2", "model.max_position_embeddings=64", "run.threads=1"]


def kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def start_peak() -> int:
    """Reset the process's resident-memory high-water mark (VmHWM) to now; return the resident size now."""
    Path("/proc/self/clear_refs").write_text("5")
    return kib("VmRSS")


def full(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def gradient_sync(output: Path) -> None:
    """The same two models and micro-batches: gradients accumulated with the reduce-scatter skipped on
    all but the last micro-batch (`parallel.accumulation = "no_sync"`), and with it after every
    micro-batch (the default, "reduce_scatter")."""
    config = load_train_config(overrides=[f"run.output_dir={output}", "data.train=unused",
                                          "tokenizer.train_vocab_size=300", *TINY])
    world = init_world(config)
    architecture = models.llama_architecture(config.model, vocab_size=128)
    skipped, synced = build_model(config, architecture, world), build_model(config, architecture, world)
    generator = torch.Generator().manual_seed(1000 + world.rank)  # each rank its own data: the reduction matters
    batches = [torch.randint(0, 128, (2, 32), generator=generator) for _ in range(3)]

    def no_sharded_gradients(model) -> bool:
        return all(parameter.grad is None for parameter in model.parameters())

    def recording(model, seen):  # before each micro-batch: has a reduce-scatter produced sharded gradients yet?
        def next_batch():
            seen.append(no_sharded_gradients(model))
            return batches[len(seen) - 1]
        return next_batch

    seen_skipped, seen_synced = [], []
    accumulate_gradients(skipped, recording(skipped, seen_skipped), len(batches), sync_every_micro_batch=False)
    accumulate_gradients(synced, recording(synced, seen_synced), len(batches))  # the default: every micro-batch
    difference, largest = 0.0, 0.0
    for (name, a), (_, b) in zip(skipped.named_parameters(), synced.named_parameters()):
        difference = max(difference, float((full(a.grad) - full(b.grad)).abs().max()))
        largest = max(largest, float(full(b.grad).abs().max()))
    result = {"max_difference": difference, "max_gradient": largest, "no_gradients_before_skipped": seen_skipped,
              "no_gradients_before_synced": seen_synced}
    (output / f"rank-{world.rank}.json").write_text(json.dumps(result))
    close_world(world)


def pretrained_config(output: Path, pretrained: Path):
    return load_train_config(overrides=[f"run.output_dir={output}", "data.train=unused",
                                        f"model.pretrained={pretrained}", "run.threads=1"])


def load_export(output: Path, pretrained: Path, max_file_bytes: int) -> None:
    """The trainer's model builder on a pretrained directory (peak memory measured around it), each
    rank's shards saved, then the shard-wise export (peak memory measured around it)."""
    config = pretrained_config(output, pretrained)
    world = init_world(config)
    tokenizer = models.load_tokenizer(config)
    architecture = models.model_config(config, tokenizer)
    # First the same path on a tiny copy of the architecture: it imports what the path needs (FSDP,
    # DTensor, safetensors: code, not model memory) without leaving freed model memory to reuse.
    tiny = output / "tiny-pretrained"
    if world.main:
        import transformers

        small = architecture.__class__.from_dict({**architecture.to_dict(), "num_hidden_layers": 1, "vocab_size": 320,
                                                  "hidden_size": 64, "intermediate_size": 64})
        transformers.AutoModelForCausalLM.from_config(small).save_pretrained(tiny)
        tokenizer.save_pretrained(tiny)
    torch.distributed.barrier()
    tiny_config = pretrained_config(output, tiny)
    build_model(tiny_config, models.model_config(tiny_config, tokenizer), world)
    gc.collect()
    base = start_peak()
    model = build_model(config, architecture, world)
    load_peak = kib("VmHWM") - base
    parameters = list(model.named_parameters())
    shards = {name: (owned_rows(parameter)[0], parameter.to_local().clone()) for name, parameter in parameters}
    torch.save(shards, output / f"shards-{world.rank}.pt")
    del shards
    gc.collect()
    base = start_peak()
    ckpt.export_hf(model, tokenizer, output / "hf", torch.float32, world.rank, world.size, max_file_bytes)
    export_peak = kib("VmHWM") - base
    result = {"load_peak_bytes": load_peak, "export_peak_bytes": export_peak,
              "shard_bytes": sum(p.to_local().numel() * p.element_size() for _, p in parameters),
              "model_bytes": sum(p.numel() * p.element_size() for _, p in parameters),
              "largest_tensor_bytes": max(p.numel() * p.element_size() for _, p in parameters)}
    (output / f"rank-{world.rank}.json").write_text(json.dumps(result))
    close_world(world)


def validation(output: Path, corpus: Path, tokenizer: Path) -> None:
    """The trainer's validation loss of the same initial model (built from the configuration: the same
    weights whatever the number of processes) on the corpus's validation split."""
    from gap_replay.train.trainer import Validation

    config = load_train_config(overrides=[f"run.output_dir={output}", f"data.train={corpus}/train",
                                          f"data.validation={corpus}/validation", f"tokenizer.path={tokenizer}",
                                          "data.seq_len=64", "data.micro_batch_size=2", "eval.sequences_per_part=5",
                                          *TINY])
    world = init_world(config)
    tokenizer = models.load_tokenizer(config)
    model = build_model(config, models.model_config(config, tokenizer), world)
    result = Validation(config, models.tokenize_function(tokenizer), models.eod_id(tokenizer, config), world,
                        models.bos_id(tokenizer, config)).evaluate(model)
    (output / f"rank-{world.rank}.json").write_text(json.dumps(result))
    close_world(world)


def hsdp_load_export(output: Path, pretrained: Path, replicate: int) -> None:
    """A pretrained directory loaded shard-wise on an HSDP mesh (`parallel.replicate`), then exported: rank 0
    saves the whole loaded model (full tensors) for the test to compare with the directory and the export."""
    config = load_train_config(overrides=[f"run.output_dir={output}", "data.train=unused",
                                          f"model.pretrained={pretrained}", "run.threads=1",
                                          f"parallel.replicate={replicate}"])
    world = init_world(config)
    tokenizer = models.load_tokenizer(config)
    model = build_model(config, models.model_config(config, tokenizer), world)
    whole = {name: full(parameter).detach().clone() for name, parameter in model.named_parameters()}
    rows = {name: list(owned_rows(parameter)) for name, parameter in model.named_parameters()}
    if world.main:
        torch.save(whole, output / "loaded.pt")
    ckpt.export_hf(model, tokenizer, output / "hf", torch.float32, world.rank, world.size, 2**20)
    placements = {name: [str(p) for p in parameter.placements] for name, parameter in model.named_parameters()}
    (output / f"rank-{world.rank}.json").write_text(json.dumps({"rows": rows, "placements": placements}))
    close_world(world)


if __name__ == "__main__":
    check, target, *rest = sys.argv[1:]
    if check == "gradient-sync":
        gradient_sync(Path(target))
    elif check == "validation":
        validation(Path(target), Path(rest[0]), Path(rest[1]))
    elif check == "hsdp-load-export":
        hsdp_load_export(Path(target), Path(rest[0]), int(rest[1]))
    elif check == "load-export":
        load_export(Path(target), Path(rest[0]), int(rest[1]))
    else:
        raise SystemExit(f"unknown check {check}")
    leave_process(0)  # as the trainer does: gloo's threads can abort a finished process at interpreter shutdown
