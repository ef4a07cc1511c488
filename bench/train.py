"""Training throughput on the CPU: our FSDP trainer (`python -m gap_replay.train`, 1 and 2 processes under torchrun)
against a plain single-process PyTorch loop over the same model, weights and data. Prints one JSON line.

    python bench/train.py [--steps 10] [--warmup 3] [--repeats 2] [--keep DIR]
    python bench/train.py --accumulation-memory [--memory-shape 8,512,8192,4] [--memory-processes 1,2]
    python bench/train.py --masking-cost [--processes 1]   # document masking on/off, chunked loss on/off

The plain loop is forward, backward, gradient clipping and AdamW over batches packed in memory beforehand
(no data pipeline, no FSDP, no logging): the least a training step can cost. Our trainer reads and
tokenises the shards itself. Tokens per second are those of the median step after the warm-up (robust to
other load on a shared machine); each configuration runs `--repeats` times, interleaved, and the best run
counts. MFU uses the
trainer's FLOPs per token (6N + attention) against a peak measured here: the best fp32 matrix-product
throughput of all cores together, shared evenly by the processes of a run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OVERHEAD_TARGET = 0.10
WORDS = ("patient treatment dose clinical trial guideline therapy risk blood pressure diabetes insulin infection "
         "antibiotic sepsis triage children asthma fever cough screening tuberculosis outcome mortality cohort "
         "randomised placebo adverse event hypertension renal cardiac").split()

CONFIG = """\
[run]
output_dir = "{output}"
steps = {steps}
seed = 1
[model]
hidden_size = 256
intermediate_size = 688
num_layers = 4
num_heads = 8
num_kv_heads = 4
max_position_embeddings = 512
[tokenizer]
path = "{tokenizer}"
[data]
train = "{corpus}/train"
seq_len = 256
micro_batch_size = 4
global_batch_size = 8
[optim]
warmup_steps = 2
[checkpoint]
interval = 0
[log]
interval = 1
peak_tflops = {peak_tflops}
[export]
enabled = false
"""


def write_corpus(directory: Path, documents: int = 3000) -> None:
    import pyarrow as pa

    from gap_replay.core.schema import DOCUMENT_SCHEMA, SOURCES, documents_to_batch, make_document
    from gap_replay.core.shards import ShardWriter

    rng = random.Random(0)
    rows = []
    for i in range(documents):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))).capitalize() + "."
                     for _ in range(rng.randint(5, 40))]
        rows.append(make_document(id=f"replay:bench:{i}", source=SOURCES[i % 4], text=" ".join(sentences)))
    for shard in range(2):
        writer = ShardWriter(str(directory / "train" / f"train-{shard:05d}-of-00002.parquet"), DOCUMENT_SCHEMA)
        writer.write(pa.Table.from_batches([documents_to_batch(rows[shard::2])]))
        writer.close()


def gemm_peak_tflops(threads: int, size: int = 1024, seconds: float = 2.0) -> float:
    """Best fp32 matrix-product throughput with `threads` threads (in a fresh process)."""
    code = f"""
import time, torch
torch.set_num_threads({threads})
a, b = torch.randn({size}, {size}), torch.randn({size}, {size})
for _ in range(3): a @ b
best, end = 0.0, time.perf_counter() + {seconds}
while time.perf_counter() < end:
    start = time.perf_counter(); [a @ b for _ in range(4)]; elapsed = time.perf_counter() - start
    best = max(best, 4 * 2 * {size} ** 3 / elapsed)
print(best / 1e12)
"""
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def measured_rate(metrics: Path, warmup: int) -> tuple[float, float | None]:
    """Tokens per second of the median step after the warm-up (from the trainer's per-step log), and the
    trainer's own MFU figure for that step (median)."""
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "train" and r["step"] > warmup]
    mfus = [r["mfu"] for r in steps if r["mfu"] is not None]
    return median([r["tokens_per_s"] for r in steps]), (median(mfus) if mfus else None)


def run_trainer(config: Path, processes: int, output: Path, warmup: int, threads: int,
                settings: tuple[str, ...] = ()) -> dict:
    shutil.rmtree(output, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "gap_replay.train", "--config", str(config), "--set", f"run.output_dir={output}",
               *[item for setting in settings for item in ("--set", setting)]]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    rate, mfu = measured_rate(output / "metrics.jsonl", warmup)
    return {"tokens_per_s": rate, "logged_mfu": mfu}


def plain_loop(config_path: str, warmup: int) -> None:
    """The baseline, in this (fresh) process: prints tokens/s over the steps after the warm-up."""
    import torch

    from gap_replay.train import model as models
    from gap_replay.train.config import load_train_config
    from gap_replay.train.data import BatchStream, shard_files
    from gap_replay.train.trainer import accumulation_steps, causal_lm_loss, document_masking

    config = load_train_config(config_path)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    tokenizer = models.load_tokenizer(config)
    model = models.reference_model(config, models.model_config(config, tokenizer))
    model.train()
    accumulation = accumulation_steps(config, 1)
    stream = BatchStream(shard_files(config.data.train), models.tokenize_function(tokenizer), config.data.seq_len,
                         models.eod_id(tokenizer, config), config.data.micro_batch_size,
                         bos_id=models.bos_id(tokenizer, config))
    batches = [torch.from_numpy(next(stream)) for _ in range(config.run.steps * accumulation)]
    documents = document_masking(config, models.eod_id(tokenizer, config))  # as the trainer: the same work
    o = config.optim
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps,
                                  weight_decay=o.weight_decay)
    tokens_per_step = accumulation * config.data.micro_batch_size * config.data.seq_len
    seconds = []
    for step in range(1, config.run.steps + 1):
        started = time.perf_counter()
        for micro in range(accumulation):
            loss = causal_lm_loss(model, batches[(step - 1) * accumulation + micro], documents=documents)
            (loss / accumulation).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        float(loss)
        seconds.append(time.perf_counter() - started)
    print(json.dumps({"tokens_per_s": tokens_per_step / median(seconds[warmup:])}))


def _vm(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def memory_worker(mode: str, output: str, shape: str) -> None:
    """One process of an accumulation-memory measurement (under torchrun): the trainer's model builder and
    `accumulate_gradients` in `mode`; the peak resident memory of the second accumulation (the first one
    warms up: imports, gloo buffers) above the resident size before it. Writes OUT/rank-<r>.json."""
    import gc

    import torch

    from gap_replay.train import model as models
    from gap_replay.train.config import load_train_config
    from gap_replay.train.parallel import close_world, init_world
    from gap_replay.train.trainer import accumulate_gradients, build_model

    layers, hidden, vocab, micro_batches = (int(value) for value in shape.split(","))
    config = load_train_config(overrides=[
        f"run.output_dir={output}", "data.train=unused", "tokenizer.train_vocab_size=300", "run.threads=1",
        f"model.hidden_size={hidden}", f"model.intermediate_size={hidden * 8 // 3}", f"model.num_layers={layers}",
        "model.num_heads=8", "model.num_kv_heads=8", "model.max_position_embeddings=64",
        f"parallel.accumulation={mode!r}"])
    world = init_world(config)
    model = build_model(config, models.llama_architecture(config.model, vocab_size=vocab), world)
    generator = torch.Generator().manual_seed(world.rank)
    batches = [torch.randint(0, vocab, (1, 64), generator=generator) for _ in range(micro_batches)]
    sync = mode == "reduce_scatter"
    peaks = []
    for _ in range(2):
        served = iter(batches)
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # the high-water mark (VmHWM) restarts from now
        base = _vm("VmRSS")
        accumulate_gradients(model, lambda: next(served), micro_batches, sync_every_micro_batch=sync)
        peaks.append(_vm("VmHWM") - base)
        model.zero_grad(set_to_none=True)
    parameters = list(model.parameters())
    result = {"peak_bytes": peaks[-1], "parameters": sum(p.numel() for p in parameters),
              "local_parameters": sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel()
                                      for p in parameters)}
    Path(output, f"rank-{world.rank}.json").write_text(json.dumps(result))
    close_world(world)
    from gap_replay.train.cli import leave_process

    leave_process(0)


def accumulation_memory(processes: list[int], shape: str) -> dict:
    """Peak host memory of gradient accumulation in both modes, per process (the largest of the ranks),
    each mode in fresh processes. glibc is told to map every allocation above 64 KiB on its own
    (MALLOC_MMAP_THRESHOLD_), so freed tensors leave the resident set and the peaks measure tensors."""
    figures = {}
    for count in processes:
        for mode in ("reduce_scatter", "no_sync"):
            with tempfile.TemporaryDirectory(prefix="gap-train-memory-") as out:
                env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                       "MALLOC_MMAP_THRESHOLD_": "65536"}
                command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc-per-node={count}", __file__, "--memory-worker", mode, out, shape]
                subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
                ranks = [json.loads(Path(out, f"rank-{rank}.json").read_text()) for rank in range(count)]
            parameters = ranks[0]["parameters"]
            figures[f"{count}proc_{mode}"] = {
                "peak_mib": round(max(rank["peak_bytes"] for rank in ranks) / 2**20, 1),
                "sharded_fp32_gradients_mib": round(max(rank["local_parameters"] for rank in ranks) * 4 / 2**20, 1),
                "unsharded_fp32_gradients_mib": round(parameters * 4 / 2**20, 1)}
    layers, hidden, vocab, micro_batches = (int(value) for value in shape.split(","))
    return {"bench": "train_accumulation_memory", "parameters": parameters,
            "model": {"layers": layers, "hidden": hidden, "vocab": vocab}, "micro_batches": micro_batches,
            "micro_batch": "1 x 64 tokens", "peak": "resident-memory high-water mark of one accumulation above the "
            "resident size before it, largest rank", "runs": figures}


def run_plain(config: Path, warmup: int, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run([sys.executable, __file__, "--plain", str(config), "--warmup", str(warmup)], cwd=ROOT,
                            env=env, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=16, help="optimizer steps per run (default 16)")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the rates (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each configuration, best counts (default 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads per process (default 1: one core per process, steadiest on a shared machine)")
    parser.add_argument("--keep", help="work in this directory and keep it")
    parser.add_argument("--accumulation-memory", action="store_true",
                        help="instead: peak host memory of gradient accumulation, reduce_scatter and no_sync modes, "
                             "on 1 and 2 processes")
    parser.add_argument("--memory-shape", default="8,512,8192,4",
                        help="layers,hidden,vocab,micro-batches of --accumulation-memory (default 8,512,8192,4)")
    parser.add_argument("--memory-processes", default="1,2", help="process counts of --accumulation-memory")
    parser.add_argument("--masking-cost", action="store_true",
                        help="instead: the trainer's tokens/s with document masking on and off, and with the chunked "
                             "loss on and off (the same model and data; --processes processes)")
    parser.add_argument("--processes", type=int, default=1, help="processes of --masking-cost (default 1)")
    parser.add_argument("--plain", help=argparse.SUPPRESS)
    parser.add_argument("--memory-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain_loop(args.plain, args.warmup)
        return
    if args.memory_worker:
        memory_worker(*args.memory_worker)
        return
    if args.accumulation_memory:
        print(json.dumps(accumulation_memory([int(n) for n in args.memory_processes.split(",")], args.memory_shape)))
        return
    work = Path(args.keep or tempfile.mkdtemp(prefix="gap-train-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        from gap_replay.train.data import shard_files
        from gap_replay.train.model import train_tokenizer

        write_corpus(work / "corpus")
        train_tokenizer(shard_files(work / "corpus" / "train"), 2048, 3000, [], work / "tokenizer")
        cores = os.cpu_count() or 1
        # Per process (a "device" here is a process); the best of three tries, the machine may be shared.
        peak = max(gemm_peak_tflops(args.threads) for _ in range(3))
        config = work / "run.toml"
        config.write_text(CONFIG.format(output=work / "run", steps=args.steps, tokenizer=work / "tokenizer",
                                        corpus=work / "corpus", peak_tflops=peak))
        if args.masking_cost:
            variants = {"masking_on": ("data.document_masking=true",),
                        "masking_off": ("data.document_masking=false",),
                        "masking_on_plain_loss": ("data.document_masking=true", "parallel.loss_chunk_tokens=0")}
            measured: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(args.repeats):
                for name, settings in variants.items():
                    measured[name].append(run_trainer(config, args.processes, work / name, args.warmup, args.threads,
                                                      settings)["tokens_per_s"])
            best = {name: max(rates) for name, rates in measured.items()}
            import torch

            print(json.dumps({
                "bench": "train_masking", "device": f"cpu x{cores} cores", "torch": torch.__version__,
                "processes": args.processes, "threads_per_process": args.threads, "seq_len": 256,
                "steps_measured": args.steps - args.warmup, "repeats": args.repeats,
                "tokens_per_s": {name: round(rate, 1) for name, rate in best.items()},
                "all_runs_tokens_per_s": {name: [round(rate, 1) for rate in rates] for name, rates in measured.items()},
                "masking_cost": round(1 - best["masking_on"] / best["masking_off"], 4),
                "chunked_loss_cost": round(1 - best["masking_on"] / best["masking_on_plain_loss"], 4),
            }))
            return
        results: dict[str, list[dict]] = {"plain": [], "fsdp_1": [], "fsdp_2": []}
        for _ in range(args.repeats):
            results["plain"].append(run_plain(config, args.warmup, args.threads))
            results["fsdp_1"].append(run_trainer(config, 1, work / "fsdp1", args.warmup, args.threads))
            results["fsdp_2"].append(run_trainer(config, 2, work / "fsdp2", args.warmup, args.threads))
        best = {name: max(runs, key=lambda r: r["tokens_per_s"]) for name, runs in results.items()}

        import torch

        from gap_replay.train import model as models
        from gap_replay.train.config import load_train_config

        loaded = load_train_config(config)
        tokenizer = models.load_tokenizer(loaded)
        meta = models.meta_model(loaded, models.model_config(loaded, tokenizer))
        flops_per_token = models.model_flops_per_token(meta, loaded.data.seq_len)
        overhead = 1 - best["fsdp_1"]["tokens_per_s"] / best["plain"]["tokens_per_s"]
        print(json.dumps({
            "bench": "train",
            "device": f"cpu x{cores} cores",
            "torch": torch.__version__,
            "model": {"parameters": sum(p.numel() for p in meta.parameters()),
                      "layers": loaded.model.num_layers, "hidden": loaded.model.hidden_size,
                      "seq_len": loaded.data.seq_len, "global_batch_sequences": loaded.data.global_batch_size},
            "steps_measured": args.steps - args.warmup, "repeats": args.repeats,
            "tokens_per_s": {"plain_pytorch_1proc": round(best["plain"]["tokens_per_s"], 1),
                             "fsdp_1proc": round(best["fsdp_1"]["tokens_per_s"], 1),
                             "fsdp_2proc": round(best["fsdp_2"]["tokens_per_s"], 1)},
            "all_runs_tokens_per_s": {name: [round(r["tokens_per_s"], 1) for r in runs]
                                      for name, runs in results.items()},
            "fsdp_1proc_overhead": round(overhead, 4),
            "overhead_target": OVERHEAD_TARGET,
            "within_target": overhead <= OVERHEAD_TARGET,
            "flops_per_token": flops_per_token,
            "peak_tflops": round(peak, 4),
            "peak_definition": f"per process: best fp32 1024^3 matmul throughput with {args.threads} thread(s), "
                               "measured by this run",
            "threads_per_process": args.threads,
            "mfu": {name: round(best[key]["tokens_per_s"] / processes * flops_per_token / (peak * 1e12), 4)
                    for name, key, processes in (("plain_pytorch_1proc", "plain", 1), ("fsdp_1proc", "fsdp_1", 1),
                                                 ("fsdp_2proc", "fsdp_2", 2))},
            "trainer_logged_mfu_median": {"fsdp_1proc": round(best["fsdp_1"]["logged_mfu"], 4),
                                          "fsdp_2proc": round(best["fsdp_2"]["logged_mfu"], 4)},
        }))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
