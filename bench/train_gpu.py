"""Training throughput and MFU of the trainer's step, torch.compile off and on, document masking off and on.
Prints one JSON line.

    python3 bench/train_gpu.py                      # a ~1B Llama at sequence 2048 in bf16 on one GPU
    python3 bench/train_gpu.py --tiny --device cpu  # the smoke test's size, on the CPU
    torchrun --nproc-per-node 8 bench/train_gpu.py --replicate 2   # HSDP: 2 groups of 4 GPUs (rank 0 prints)

The data are packed documents: random token ids cut into documents whose lengths are drawn uniformly
around `--document-tokens` (default 300, 7 to 14 documents per 4k sequence as PubMed abstracts give), each
started by a BOS and ended by an end-of-document token, so document masking has documents to keep apart.

The model is a Llama built from its configuration (no downloads), random token ids are the data. Every
piece is the trainer's own: the model builder (meta device, activation checkpointing and torch.compile
per layer, FSDP2 through train/parallel.py on a process group of one), the optimizer builder (fused
AdamW on GPUs), the learning-rate schedule and `train_step` (accumulation, clipping, the update). Clocks
are read after the device has finished its queued work (the trainer's `Throughput`), and the warm-up
steps (compilation, allocator growth) are left out.

MFU = tokens/s x FLOPs per token / the device's dense bf16 peak (the trainer's table: A100 312, H100 SXM
and H200 989.5 TFLOP/s; `--peak-tflops` overrides), with FLOPs per token = 6N + 12 x layers x heads x
head_dim x seq_len (N: parameters in matrix products, all but the input embedding; the second term is
attention's QK^T and AV, forward and backward, without a causal discount): `mfu`. `mfu_causal` counts
the attention term at half (6 x ..., the causal mask skips half the products), as some reports do; with
document masking the attention actually computed is less again (the sum of the documents' squares).
Under torchrun the figures are per device (rank 0 prints; `--replicate R` makes the mesh HSDP). Peak memory is
torch.cuda.max_memory_allocated on a GPU, the process's resident high-water mark (cumulative) on a CPU.

Runs from a plain checkout: the `gap_replay.*` imports resolve to this checkout's folders as
pyproject.toml maps them, whether or not the package is installed, and need only torch, transformers,
safetensors, numpy and pyarrow.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import sys
import tempfile
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FLOPS_FORMULA = ("6*N + 12*layers*heads*head_dim*seq_len; N = parameters in matrix products (all but the input "
                 "embedding, the output projection included)")
CAUSAL_FLOPS_FORMULA = "6*N + 6*layers*heads*head_dim*seq_len (attention halved by the causal mask)"
TINY = {"layers": 2, "hidden": 64, "intermediate": 128, "heads": 4, "kv_heads": 2, "vocab": 256, "seq_len": 64,
        "micro_batch": 2, "steps": 3, "warmup": 1, "document_tokens": 20}


class _CheckoutFinder:
    """Finds the packages pyproject.toml's [tool.setuptools.package-dir] names in this checkout's
    folders (gap_replay -> gap_replay/, gap_replay.train -> train/, ...)."""

    def __init__(self, folders: dict[str, str]):
        self.folders = folders

    def find_spec(self, name, path=None, target=None):
        if name not in self.folders:
            return None
        folder = ROOT / self.folders[name]
        return importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])


def use_this_checkout() -> None:
    """Import gap_replay.* from this checkout (ahead of any installed copy: the bench measures the code
    next to it)."""
    import tomllib

    folders = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-dir"]
    sys.meta_path.insert(0, _CheckoutFinder(folders))


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true",
                        help="the smoke test's size (2 layers, hidden 64, sequence 64); explicit flags still win")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    parser.add_argument("--compile", default="both", choices=("off", "on", "both"),
                        help="torch.compile per decoder layer: measure without, with, or both (default)")
    parser.add_argument("--document-masking", default="both", choices=("off", "on", "both"),
                        help="attention within each document (data.document_masking): without, with, or both (default)")
    parser.add_argument("--document-tokens", type=int,
                        help="mean document length in tokens of the packed data (default 300)")
    parser.add_argument("--attention", default="sdpa", choices=("sdpa", "flex_attention", "eager"),
                        help="model.attn_implementation (default sdpa: a block-diagonal mask when masking)")
    parser.add_argument("--loss-chunk-tokens", type=int, default=4096,
                        help="parallel.loss_chunk_tokens (default 4096; 0 = the plain loss, all logits at once)")
    parser.add_argument("--replicate", type=int, default=1,
                        help="parallel.replicate: HSDP groups under torchrun (default 1: FSDP over all processes)")
    parser.add_argument("--steps", type=int, help="measured optimizer steps (default 20)")
    parser.add_argument("--warmup", type=int, help="steps before the measurement (default 5)")
    parser.add_argument("--seq-len", type=int, help="tokens per sequence (default 2048)")
    parser.add_argument("--micro-batch", type=int, help="sequences per forward/backward (default 8)")
    parser.add_argument("--accumulation", type=int, default=1, help="micro-batches per optimizer step (default 1)")
    parser.add_argument("--layers", type=int, help="decoder layers (default 16)")
    parser.add_argument("--hidden", type=int, help="hidden size (default 2048)")
    parser.add_argument("--intermediate", type=int, help="SwiGLU size (default 8192)")
    parser.add_argument("--heads", type=int, help="attention heads (default 16: head_dim 128)")
    parser.add_argument("--kv-heads", type=int, help="key/value heads (default 8)")
    parser.add_argument("--vocab", type=int, help="vocabulary (default 32000)")
    parser.add_argument("--activation-checkpointing", default="off", choices=("off", "full", "selective"))
    parser.add_argument("--param-dtype", default="auto",
                        help="compute dtype (default: bfloat16 on GPUs, float32 on CPUs)")
    parser.add_argument("--peak-tflops", type=float, default=0.0,
                        help="the device's peak for MFU (default: the trainer's table of GPUs; none on CPUs)")
    args = parser.parse_args(argv)
    defaults = {"layers": 16, "hidden": 2048, "intermediate": 8192, "heads": 16, "kv_heads": 8, "vocab": 32000,
                "seq_len": 2048, "micro_batch": 8, "steps": 20, "warmup": 5, "document_tokens": 300}
    for name, value in (TINY if args.tiny else defaults).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def run_config(args: argparse.Namespace, compiled: bool, work: Path, masking: bool = True):
    """The run configuration of one measurement, through the trainer's own loader (validated)."""
    from gap_replay.train.config import load_train_config

    processes = int(os.environ.get("WORLD_SIZE", "1"))  # under torchrun: every process its micro-batches
    return load_train_config(overrides=[
        f"run.output_dir={work}", "data.train=unused", f"tokenizer.train_vocab_size={args.vocab}",
        f"run.device={args.device}", f"model.num_layers={args.layers}", f"model.hidden_size={args.hidden}",
        f"model.intermediate_size={args.intermediate}", f"model.num_heads={args.heads}",
        f"model.num_kv_heads={args.kv_heads}", f"model.max_position_embeddings={args.seq_len}",
        f"model.attn_implementation={args.attention}", f"data.seq_len={args.seq_len}",
        f"data.micro_batch_size={args.micro_batch}", f"data.document_masking={'true' if masking else 'false'}",
        f"parallel.loss_chunk_tokens={args.loss_chunk_tokens}", f"parallel.replicate={args.replicate}",
        f"data.global_batch_size={args.micro_batch * args.accumulation * processes}", "optim.warmup_steps=10",
        f"parallel.param_dtype={args.param_dtype}", f"parallel.compile={'on' if compiled else 'off'}",
        f"parallel.activation_checkpointing={args.activation_checkpointing}", f"log.peak_tflops={args.peak_tflops}",
    ])


def peak_memory_gib(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


BOS, EOD = 1, 2


def packed_documents(args: argparse.Namespace, generator, device):
    """One micro-batch of packed documents: random ids, each document [BOS] + tokens + [EOD], its length
    uniform in [document_tokens / 2, 3 document_tokens / 2]."""
    import torch

    rows = []
    for _ in range(args.micro_batch):
        row: list[int] = []
        while len(row) < args.seq_len:
            length = int(torch.randint(args.document_tokens // 2, args.document_tokens * 3 // 2 + 1, (1,),
                                       generator=generator))
            row += [BOS, *torch.randint(3, args.vocab, (length,), generator=generator).tolist(), EOD]
        rows.append(row[:args.seq_len])
    return torch.tensor(rows, device=device)


def measure(args: argparse.Namespace, compiled: bool, world, work: Path, masking: bool = True) -> dict:
    """Build the model and optimizer as the trainer does, run the warm-up steps, then time `steps`."""
    import torch

    from gap_replay.train import model as models
    from gap_replay.train.metrics import Throughput, mfu, peak_flops, synchronize
    from gap_replay.train.parallel import param_dtype
    from gap_replay.train.trainer import (accumulation_steps, build_model, build_optimizer, build_scheduler,
                                          document_masking, train_step)

    config = run_config(args, compiled, work, masking)
    device = world.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    architecture = models.llama_architecture(config.model, vocab_size=args.vocab)
    fallbacks: list[str] = []
    model = build_model(config, architecture, world, report=fallbacks.append)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config)
    accumulation = accumulation_steps(config, world.size)
    generator = torch.Generator().manual_seed(world.rank)
    pool = [packed_documents(args, generator, device) for _ in range(4)]
    served = iter(range(10**12))

    def next_batch():
        return pool[next(served) % len(pool)]

    step = partial(train_step, model, optimizer, scheduler, next_batch, accumulation, config.optim.grad_clip,
                   documents=document_masking(config, EOD))
    for _ in range(args.warmup):
        loss = step().loss
    throughput = Throughput(wait=partial(synchronize, device))  # starts the clock after the warm-up's work
    tokens_per_step = args.micro_batch * accumulation * args.seq_len
    for _ in range(args.steps):
        loss = step().loss
        throughput.add(tokens_per_step)
    rate, seconds = throughput.rate()
    # Per device: each rank counted its own tokens.
    flops_per_token = models.model_flops_per_token(model, args.seq_len)
    architecture = model.config
    head_dim = getattr(architecture, "head_dim", None) or architecture.hidden_size // architecture.num_attention_heads
    causal_flops_per_token = flops_per_token - 6 * architecture.num_hidden_layers * \
        architecture.num_attention_heads * head_dim * args.seq_len
    peak = peak_flops(config.log.peak_tflops, device)
    result = {
        "tokens_per_s": round(rate, 1),
        "mfu": None if peak is None else round(mfu(rate, flops_per_token, peak), 4),
        "mfu_causal": None if peak is None else round(mfu(rate, causal_flops_per_token, peak), 4),
        "tflops": round(rate * flops_per_token / 1e12, 3),
        "step_seconds": round(seconds / args.steps, 5),
        "peak_memory_gib": round(peak_memory_gib(device), 3),
        "final_loss": round(float(loss), 4),
        "fused_adamw": bool(optimizer.defaults.get("fused")),
        "param_dtype": str(param_dtype(config, device)).removeprefix("torch."),
        "flops_per_token": flops_per_token,
        "causal_flops_per_token": causal_flops_per_token,
        "compile_fallbacks": fallbacks,
        "peak_tflops": None if peak is None else peak / 1e12,
        "parameters": sum(p.numel() for p in model.parameters()),
        "compute_parameters": models.compute_parameters(model),
    }
    pool.clear()  # the batches go with the model: the next configuration starts from an empty device
    del model, optimizer, scheduler
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    torch._dynamo.reset()
    return result


def main(argv=None) -> None:
    args = parse_arguments(argv)
    use_this_checkout()
    import torch
    import transformers

    from gap_replay.train.parallel import close_world, init_world

    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    maskings = {"off": [False], "on": [True], "both": [False, True]}[args.document_masking]
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="gap-train-gpu-bench-") as work:
        world = init_world(run_config(args, False, Path(work)))  # a process group of one, or torchrun's
        try:
            for compiled in compiles:
                for masking in maskings:
                    name = f"compile {'on' if compiled else 'off'}, masking {'on' if masking else 'off'}"
                    runs[name] = {"compile": compiled, "document_masking": masking,
                                  **measure(args, compiled, world, Path(work), masking)}
            device_name = (torch.cuda.get_device_name(world.device) if world.device.type == "cuda"
                           else f"cpu x{torch.get_num_threads()} threads")
            processes, main_rank = world.size, world.main
        finally:
            close_world(world)
    if not main_rank:
        return
    first = next(iter(runs.values()))
    shared = ("flops_per_token", "causal_flops_per_token", "peak_tflops", "parameters", "compute_parameters",
              "fused_adamw", "param_dtype")
    best = max(runs, key=lambda name: runs[name]["tokens_per_s"])
    masking_cost = {}
    for compiled in compiles:
        on = runs.get(f"compile {'on' if compiled else 'off'}, masking on")
        off = runs.get(f"compile {'on' if compiled else 'off'}, masking off")
        if on and off:
            cost = 1 - on["tokens_per_s"] / off["tokens_per_s"]
            masking_cost[f"compile {'on' if compiled else 'off'}"] = round(cost, 4)
    print(json.dumps({
        "bench": "train_gpu",
        "device": device_name,
        "processes": processes,
        "mesh": {"replicate": args.replicate, "shard": processes // args.replicate},
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "model": {"layers": args.layers, "hidden": args.hidden, "intermediate": args.intermediate,
                  "heads": args.heads, "kv_heads": args.kv_heads, "vocab": args.vocab,
                  "parameters": first["parameters"], "compute_parameters": first["compute_parameters"]},
        "seq_len": args.seq_len, "micro_batch": args.micro_batch, "accumulation": args.accumulation,
        "tokens_per_step": args.micro_batch * args.accumulation * args.seq_len,
        "document_tokens": args.document_tokens,
        "warmup_steps": args.warmup, "steps_measured": args.steps,
        "param_dtype": first["param_dtype"], "reduce_dtype": "float32", "master_weights": "float32",
        "attention": args.attention, "loss_chunk_tokens": args.loss_chunk_tokens, "fused_adamw": first["fused_adamw"],
        "activation_checkpointing": args.activation_checkpointing,
        "flops_per_token": first["flops_per_token"], "flops_per_token_formula": FLOPS_FORMULA,
        "causal_flops_per_token": first["causal_flops_per_token"], "causal_flops_formula": CAUSAL_FLOPS_FORMULA,
        "peak_tflops": first["peak_tflops"],
        "timing": "device synchronised before each clock read; warm-up steps excluded; figures per device",
        "runs": {name: {key: value for key, value in run.items() if key not in shared} for name, run in runs.items()},
        "document_masking_cost": masking_cost,
        "best": {"run": best, "tokens_per_s": runs[best]["tokens_per_s"], "mfu": runs[best]["mfu"],
                 "mfu_causal": runs[best]["mfu_causal"]},
    }))


if __name__ == "__main__":
    main()
