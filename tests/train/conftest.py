"""Shards in a build's layout (OUT/train/*.parquet, OUT/validation/*.parquet) and tiny run configs."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from gap_replay.core.schema import DOCUMENT_SCHEMA, SOURCES, documents_to_batch, make_document
from gap_replay.core.shards import ShardWriter

ROOT = Path(__file__).resolve().parents[2]

WORDS = ("patient treatment dose clinical trial guideline therapy risk blood pressure diabetes insulin infection "
         "antibiotic sepsis triage children asthma fever cough screening tuberculosis outcome mortality cohort "
         "randomised placebo adverse event hypertension renal cardiac").split()


def synthetic_text(rng: random.Random, index: int) -> str:
    sentences = []
    for _ in range(rng.randint(3, 12)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 14))]
        sentences.append(" ".join(words).capitalize() + ".")
    marker = rng.choice(["[BIB_REF]A cited trial of insulin dosing, Smith[/BIB_REF]",
                         "[FIG_REF]Figure 2: blood pressure by cohort[/FIG_REF]", "[FORMULA]x = 2y[/FORMULA]"])
    return f"# Document {index}\n\n" + " ".join(sentences) + f" {marker}"


def write_split(directory: Path, documents: list[dict], shards: int, prefix: str) -> None:
    per_shard = -(-len(documents) // shards)
    for shard in range(shards):
        writer = ShardWriter(str(directory / f"{prefix}-{shard:05d}-of-{shards:05d}.parquet"), DOCUMENT_SCHEMA)
        writer.write(pa.Table.from_batches([documents_to_batch(documents[shard * per_shard:(shard + 1) * per_shard])]))
        writer.close()


def write_corpus(out: Path, train_documents: int = 240, validation_documents: int = 24, seed: int = 0) -> Path:
    rng = random.Random(seed)
    for split, count, shards in (("train", train_documents, 3), ("validation", validation_documents, 1)):
        documents = [make_document(id=f"replay:test:{split}-{i}", source=SOURCES[i % len(SOURCES)],
                                   text=synthetic_text(rng, i)) for i in range(count)]
        write_split(out / split, documents, shards, split)
    return out


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """A small corpus in a build's layout, written directly (no Spark)."""
    return write_corpus(tmp_path_factory.mktemp("corpus"))


TINY = """\
[run]
output_dir = "{output}"
steps = {steps}
deterministic = true
threads = {threads}

[model]
hidden_size = 64
intermediate_size = 128
num_layers = 2
num_heads = 4
num_kv_heads = 2
max_position_embeddings = 128

[tokenizer]
train_vocab_size = 320

[data]
train = "{corpus}/train"
validation = "{corpus}/validation"
seq_len = 64
micro_batch_size = 2
global_batch_size = 8

[optim]
lr = 3e-3
warmup_steps = 2

[checkpoint]
interval = 4

[eval]
sequences_per_part = 8

[log]
interval = 1
peak_tflops = 0.05

[export]
dtype = "float32"
"""


def tiny_config(path: Path, corpus: Path, output: Path, steps: int = 8, threads: int = 1, extra: str = "") -> Path:
    path.write_text(TINY.format(output=output, corpus=corpus, steps=steps, threads=threads) + extra)
    return path


def torchrun(*args: str, nproc: int = 2, timeout: int = 300, env: dict | None = None,
             expect_failure: bool = False) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc-per-node N ARGS...` (gloo on the CPU), from the checkout; `env` adds
    variables; with `expect_failure` the run must end with a non-zero status."""
    # The checkout first, the caller's path after it (kept, so a caller's import set-up reaches the workers).
    env = {**os.environ, **(env or {}), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                            check=False)
    assert (result.returncode != 0) == expect_failure, result.stdout[-3000:] + result.stderr[-5000:]
    return result
