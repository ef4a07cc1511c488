"""Acceptance on the CPU: 2-process torchrun (gloo) runs of a tiny Llama. Training lowers the loss; a
run stopped at step k and resumed logs the same losses at steps k+1..k+3 as an uninterrupted run; the
export loads with `transformers` and generates. The resume runs read shards written directly (fast);
one run reads the shards of a real sample build (`gap-replay build --sample`, Spark)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.train.conftest import ROOT, tiny_config, torchrun

pytestmark = pytest.mark.slow

STEPS, STOP = 8, 4


def records(output: Path, kind: str) -> list[dict]:
    lines = (output / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["kind"] == kind]


def losses(output: Path) -> dict[int, float]:
    return {record["step"]: record["loss"] for record in records(output, "train")}


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("uninterrupted")
    config = tiny_config(work / "run.toml", corpus, work / "run", steps=STEPS)
    torchrun("-m", "gap_replay.train", "--config", str(config))
    return work / "run"


def test_two_processes_train_and_the_loss_goes_down(uninterrupted, corpus):
    (run,) = records(uninterrupted, "run")
    assert run["processes"] == 2 and run["accumulation"] == 2 and run["tokens_per_step"] == 8 * 64
    trained = losses(uninterrupted)
    assert sorted(trained) == list(range(1, STEPS + 1))
    assert trained[STEPS] < trained[1] - 0.5, trained
    for record in records(uninterrupted, "train"):
        # MFU = tokens/s per device x FLOPs per token / the configured peak (0.05 TFLOP/s).
        expected = record["tokens_per_s_per_device"] * run["flops_per_token"] / 0.05e12
        assert record["mfu"] == pytest.approx(expected, rel=1e-9) and record["mfu"] > 0
        assert record["grad_norm"] > 0 and record["lr"] > 0
    (evaluation,) = records(uninterrupted, "eval")
    sources = set()
    for path in (corpus / "validation").glob("*.parquet"):
        sources.update(pq.read_table(path, columns=["source"]).column("source").to_pylist())
    assert {key.split("/", 1)[1] for key in evaluation if key.startswith("val_loss/")} == sources
    assert evaluation["val_loss"] < trained[1]
    assert sorted(path.name for path in (uninterrupted / "checkpoints").iterdir()) == ["step-00000004",
                                                                                      "step-00000008"]


def test_stopped_and_resumed_run_matches_the_uninterrupted_one(uninterrupted, corpus, tmp_path):
    config = tiny_config(tmp_path / "run.toml", corpus, tmp_path / "run", steps=STEPS)
    # First part through `gap-replay train` (torchrun running a non-Python executable), stopped at step k...
    torchrun("--no-python", "gap-replay", "train", "--config", str(config), "--set", f"run.stop_at={STOP}")
    assert sorted(losses(tmp_path / "run")) == list(range(1, STOP + 1))
    assert [path.name for path in (tmp_path / "run" / "checkpoints").iterdir()] == [f"step-{STOP:08d}"]
    assert not (tmp_path / "run" / "hf").exists()
    # ... then resumed through `python -m gap_replay.train` from the latest checkpoint.
    result = torchrun("-m", "gap_replay.train", "--config", str(config))
    assert f"resumed from {tmp_path / 'run' / 'checkpoints' / f'step-{STOP:08d}'}" in result.stderr
    resumed, reference = losses(tmp_path / "run"), losses(uninterrupted)
    for step in range(STOP + 1, STEPS + 1):
        assert resumed[step] == pytest.approx(reference[step], abs=1e-5), (step, resumed[step], reference[step])


def test_export_loads_with_transformers_and_generates(uninterrupted):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gap_replay.train.config import CHAT_TOKENS, MARKER_TOKENS

    model = AutoModelForCausalLM.from_pretrained(uninterrupted / "hf")
    tokenizer = AutoTokenizer.from_pretrained(uninterrupted / "hf")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.get_input_embeddings().weight.shape[0] >= len(tokenizer)
    for token in MARKER_TOKENS + CHAT_TOKENS:
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1, token
    prompt = tokenizer("# Diabetes\n\nThe patient", return_tensors="pt")
    assert prompt["input_ids"][0, 0] == tokenizer.bos_token_id  # as every training document started
    with torch.no_grad():
        generated = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    assert generated.shape[1] == prompt["input_ids"].shape[1] + 12
    assert tokenizer.decode(generated[0], skip_special_tokens=True).startswith("# Diabetes")


def test_two_processes_train_on_a_real_sample_build(tmp_path):
    """`gap-replay build --sample` (Spark), then torchrun training on OUT/train and OUT/validation."""
    build = tmp_path / "build"
    result = subprocess.run([sys.executable, "-m", "gap_replay.cli", "build", "--sample", "--output", str(build)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    config = tiny_config(tmp_path / "run.toml", build, tmp_path / "run", steps=8)
    torchrun("-m", "gap_replay.train", "--config", str(config), "--set", "checkpoint.interval=0")
    trained = losses(tmp_path / "run")
    assert trained[8] < trained[1] - 0.3, trained
    sources = set()
    for path in (build / "validation").glob("*.parquet"):
        sources.update(pq.read_table(path, columns=["source"]).column("source").to_pylist())
    (evaluation,) = records(tmp_path / "run", "eval")
    assert {key.split("/", 1)[1] for key in evaluation if key.startswith("val_loss/")} == sources
    assert all(evaluation[f"val_loss/{source}"] is not None for source in sources)
    assert (tmp_path / "run" / "hf" / "config.json").is_file()


def test_checkpoints_on_object_storage_resume_to_the_same_losses(uninterrupted, corpus, tmp_path, bucket):
    """checkpoint.directory on S3 (moto's server on 127.0.0.1; torch writes through fsspec and s3fs): stopped,
    then resumed from the bucket, the run matches the uninterrupted one."""
    from gap_replay.train.checkpoint import complete_checkpoints

    checkpoints = f"{bucket}/run/checkpoints"
    config = tiny_config(tmp_path / "run.toml", corpus, tmp_path / "run", steps=STEPS)
    torchrun("-m", "gap_replay.train", "--config", str(config), "--set", f"run.stop_at={STOP}",
             "--set", f"checkpoint.directory='{checkpoints}'")
    assert [step for step, _ in complete_checkpoints(checkpoints)] == [STOP]
    assert not (tmp_path / "run" / "checkpoints").exists()
    result = torchrun("-m", "gap_replay.train", "--config", str(config), "--set", f"checkpoint.directory='{checkpoints}'")
    assert f"resumed from {checkpoints}/step-{STOP:08d}" in result.stderr
    resumed, reference = losses(tmp_path / "run"), losses(uninterrupted)
    for step in range(STOP + 1, STEPS + 1):
        assert resumed[step] == pytest.approx(reference[step], abs=1e-5), (step, resumed[step], reference[step])
