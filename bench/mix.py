"""Time of `gap-replay mix` on 100,000 and 400,000 synthetic documents, and how it grows. Prints one
JSON line.

The documents (mixer/synthetic.py) have realistic lengths (log-normal around 1,500 words for guidelines,
220 for abstracts, 3,000 for papers, 600 for replay) and come in the paper's proportions (74% abstracts,
23% papers, 2% replay, 0.2% guidelines); papers carry upsampling scores. They are written as Parquet shards
of 10,000 documents beforehand, and a tokenizer is trained on a sample of them; neither is timed. The Spark
session is started and warmed up on a small mix first. Each timed mix runs the whole stage: token counts,
plans, statistics, shards, manifest and dataset card, with the default settings (1% replay). Beside the wall
times (`seconds`, `ratio`) each run reports the CPU seconds of the process tree (driver, JVM, Python
workers) and the load average: on a shared machine the CPU ratio shows the growth of the work itself.

    python bench/mix.py [--sizes 100000 400000] [--keep DIR] [--driver-memory 6g] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


TARGET_RATIO = 4.4
FILE_DOCUMENTS = 10_000


def tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and all its descendants (the JVM, Spark's Python
    workers), reaped children included: less sensitive than wall time to other loads on the machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = sum(int(value) for value in fields[11:15]) / ticks  # utime stime cutime cstime
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(pid, 0.0) for pid in tree)


def write_documents(directory: Path, count: int, seed: int = 2023, scale: float = 1.0) -> list[str]:
    import pyarrow.parquet as pq

    from gap_replay.mixer.synthetic import synthetic_table

    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for index, start in enumerate(range(0, count, FILE_DOCUMENTS)):
        path = directory / f"part-{index:05d}.parquet"
        if not path.exists():
            table = synthetic_table(min(FILE_DOCUMENTS, count - start), seed=seed + index, start=start, scale=scale)
            pq.write_table(table, path, compression="zstd")
        files.append(str(path))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[100_000, 400_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--keep", help="keep the documents and outputs in this directory (and reuse its documents)")
    parser.add_argument("--driver-memory", default="6g", help="spark.driver.memory of the local session")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink (or grow) document lengths (default 1: realistic)")
    args = parser.parse_args()
    if any(size % FILE_DOCUMENTS for size in args.sizes) or args.sizes[0] >= args.sizes[1]:
        parser.error(f"--sizes: two increasing multiples of {FILE_DOCUMENTS:,}")

    from gap_replay.core.config import SparkConfig
    from gap_replay.stages import load_config
    from gap_replay.core.runner import RunContext
    from gap_replay.core.spark import spark_session
    from gap_replay.mixer.job import run_mix
    from gap_replay.mixer.synthetic import synthetic_table
    from gap_replay.mixer.tokens import save_tokenizer, train_tokenizer

    work = Path(args.keep or tempfile.mkdtemp(prefix="gap-mix-bench-"))
    try:
        small, large = args.sizes
        all_files = write_documents(work / f"documents-{args.scale:g}", large, scale=args.scale)
        small_files = all_files[: small // FILE_DOCUMENTS]
        tokenizer = work / "tokenizer"
        if not (tokenizer / "tokenizer.json").exists():
            sample = synthetic_table(2_000, seed=7).column("text").to_pylist()
            save_tokenizer(train_tokenizer(sample, vocab_size=32_000), str(tokenizer))  # Llama-2's size
        spark_session(SparkConfig(master="local[*]", conf={"spark.driver.memory": args.driver_memory}))
        phases: list[dict[str, float]] = []

        class Clock(io.TextIOBase):
            """Times the stage's phases from its progress messages."""

            def write(self, text: str) -> int:
                if "mix: writing" in text:
                    phases[-1]["counting_and_planning"] = round(time.perf_counter() - phases[-1]["start"], 2)
                return len(text)

        def mix(files: list[str], output: Path) -> tuple[float, dict]:
            config = load_config(base={"mix": {"tokenizer": str(tokenizer)}})
            cpu = tree_cpu_seconds()
            phases.append({"start": time.perf_counter()})
            run_mix(RunContext(config, overwrite=True, stream=Clock()), files, str(output))
            seconds = time.perf_counter() - phases[-1].pop("start")
            phases[-1]["writing"] = round(seconds - phases[-1]["counting_and_planning"], 2)
            phases[-1]["cpu_seconds"] = round(tree_cpu_seconds() - cpu, 1)
            phases[-1]["load_average_1min"] = round(os.getloadavg()[0], 2)
            return seconds, json.loads((output / "manifest.json").read_text())

        warm_dir = work / "warm-up"
        write_documents(warm_dir, 2_000, seed=1, scale=args.scale)
        mix([str(warm_dir / "part-00000.parquet")], work / "out-warm-up")
        small_seconds, small_manifest = mix(small_files, work / "out-small")
        large_seconds, large_manifest = mix(all_files, work / "out-large")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def tokens(manifest: dict) -> int:
        return sum(part["before"]["total"]["tokens"] for part in manifest["parts"].values())

    ratio = large_seconds / small_seconds
    print(json.dumps({
        "bench": "mix",
        "documents": [small, large],
        "seconds": [round(small_seconds, 2), round(large_seconds, 2)],
        "ratio": round(ratio, 3),
        "cpu_ratio": round(phases[2]["cpu_seconds"] / phases[1]["cpu_seconds"], 3),
        "runs": phases[1:],
        "data_ratio": round(large / small, 3),
        "target_ratio": TARGET_RATIO,
        "within_target": ratio <= TARGET_RATIO,
        "input_tokens": [tokens(small_manifest), tokens(large_manifest)],
        "scale": args.scale,
        "train_rows": [small_manifest["splits"]["train"]["rows"], large_manifest["splits"]["train"]["rows"]],
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
