"""bench/train_gpu.py at its tiny size on the CPU, compile off and on, in a fresh interpreter where the
pipeline's own dependencies cannot be imported (the GPU machine it is meant for lacks them)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.train.conftest import ROOT

# Dependencies of the pipeline stages, none of which the trainer's step may need.
PIPELINE_ONLY = ("pyspark", "fasttext", "bs4", "lxml", "lxml_html_clean", "trafilatura", "pdfminer", "cssselect",
                 "warcio", "zstandard", "matplotlib", "urllib3")

RUN_WITHOUT_PIPELINE_DEPENDENCIES = f"""
import runpy, sys
for name in {PIPELINE_ONLY!r}:
    sys.modules[name] = None  # `import name` now raises ImportError
sys.argv = ["bench/train_gpu.py", "--tiny", "--device", "cpu", "--compile", "both", "--steps", "2"]
runpy.run_path("bench/train_gpu.py", run_name="__main__")
"""


@pytest.mark.slow
def test_gpu_bench_runs_tiny_on_the_cpu_and_prints_one_json_line(tmp_path):
    # No PYTHONPATH: the script finds this checkout's packages itself.
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", RUN_WITHOUT_PIPELINE_DEPENDENCIES], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-5000:]
    (line,) = result.stdout.strip().splitlines()
    report = json.loads(line)
    assert report["bench"] == "train_gpu" and report["device"].startswith("cpu")
    assert report["model"]["layers"] == 2 and report["seq_len"] == 64 and report["tokens_per_step"] == 128
    assert report["flops_per_token"] == 6 * report["model"]["compute_parameters"] + 12 * 2 * 64 * 64
    assert "6*N" in report["flops_per_token_formula"]
    assert report["peak_tflops"] is None and report["attention"] == "sdpa"
    assert report["causal_flops_per_token"] == 6 * report["model"]["compute_parameters"] + 6 * 2 * 64 * 64
    assert report["torch"] and report["mesh"] == {"replicate": 1, "shard": 1}
    assert set(report["runs"]) == {f"compile {c}, masking {m}" for c in ("off", "on") for m in ("off", "on")}
    for run in report["runs"].values():
        assert set(run) == {"compile", "document_masking", "tokens_per_s", "mfu", "mfu_causal", "tflops",
                            "step_seconds", "peak_memory_gib", "final_loss", "compile_fallbacks"}
        assert run["tokens_per_s"] > 0 and run["mfu"] is None and run["peak_memory_gib"] > 0
        assert 0 < run["final_loss"] < 10
    assert set(report["document_masking_cost"]) == {"compile off", "compile on"}
    assert report["best"]["run"] in report["runs"]


def test_gpu_bench_defaults_are_a_1b_llama_at_sequence_2048():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import train_gpu
    finally:
        sys.path.remove(str(ROOT / "bench"))
    args = train_gpu.parse_arguments([])
    assert (args.layers, args.hidden, args.seq_len, args.micro_batch, args.compile) == (16, 2048, 2048, 8, "both")
    assert (args.document_masking, args.replicate, args.loss_chunk_tokens) == ("both", 1, 4096)
    from gap_replay.train.model import compute_parameters, meta_model

    config = train_gpu.run_config(args, True, ROOT)
    from gap_replay.train.model import llama_architecture

    model = meta_model(config, llama_architecture(config.model, args.vocab))
    assert 0.9e9 < sum(p.numel() for p in model.parameters()) < 1.2e9
    assert 0.9e9 < compute_parameters(model) < 1.1e9
    assert config.parallel.compile == "on" and config.model.attn_implementation == "sdpa"
    assert config.data.document_masking
    assert not train_gpu.run_config(args, True, ROOT, masking=False).data.document_masking


@pytest.mark.slow
def test_gpu_bench_runs_hsdp_under_torchrun_and_rank_0_prints(tmp_path):
    """Two CPU processes under torchrun, `--replicate 2` (HSDP: 2 groups of 1): figures per device, one line."""
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "bench/train_gpu.py",
               "--tiny", "--device", "cpu", "--compile", "off", "--replicate", "2", "--steps", "2"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-5000:]
    (line,) = result.stdout.strip().splitlines()
    report = json.loads(line)
    assert report["processes"] == 2 and report["mesh"] == {"replicate": 2, "shard": 1}
    assert report["document_tokens"] == 20 and set(report["document_masking_cost"]) == {"compile off"}
    masked, unmasked = report["runs"]["compile off, masking on"], report["runs"]["compile off, masking off"]
    assert masked["final_loss"] != unmasked["final_loss"]  # documents of ~20 tokens: the mask changes the loss
