"""Two "nodes" on 127.0.0.1 (two torchrun invocations, --nnodes 2 --nproc-per-node 2, --node-rank 0 and 1,
gloo), each with its own run.output_dir as a node-local disk would give: the run trains a tokenizer, checkpoints
(to a shared checkpoint.directory, asynchronously), resumes to the uninterrupted run's losses and exports a whole
model directory on each node; a checkpoint directory that is node-local is refused at start with one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.train.conftest import ROOT, tiny_config
from tests.train.test_distributed import losses

STEPS, STOP = 6, 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def two_nodes(config: Path, outputs: list[Path], *settings: str, expect_failure: bool = False,
              timeout: int = 300) -> list[subprocess.CompletedProcess]:
    """The same configuration on two torchrun "nodes" of 2 processes, node i's run.output_dir outputs[i]."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    processes = []
    for node, output in enumerate(outputs):
        arguments = [item for setting in (f"run.output_dir='{output}'", *settings) for item in ("--set", setting)]
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=2",
                   f"--node-rank={node}", "--master-addr=127.0.0.1", f"--master-port={port}",
                   "-m", "gap_replay.train", "--config", str(config), *arguments]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    for result in results:
        assert (result.returncode != 0) == expect_failure, result.stderr[-5000:]
    return results


@pytest.mark.slow
def test_two_nodes_with_node_local_output_directories_checkpoint_resume_and_export(corpus, tmp_path):
    from transformers import AutoModelForCausalLM

    config = tiny_config(tmp_path / "run.toml", corpus, tmp_path / "unused", steps=STEPS)
    shared = tmp_path / "shared-checkpoints"
    settings = (f"checkpoint.directory='{shared}'", "checkpoint.interval=0", "checkpoint.async_save=true")
    reference = [tmp_path / "reference-0", tmp_path / "reference-1"]
    two_nodes(config, reference, f"checkpoint.directory='{tmp_path / 'reference-checkpoints'}'",
              "checkpoint.interval=0")
    nodes = [tmp_path / "node-0", tmp_path / "node-1"]
    two_nodes(config, nodes, *settings, f"run.stop_at={STOP}")
    for node in nodes:  # each node's disk got the trained tokenizer and the configuration
        assert (node / "tokenizer" / "tokenizer.json").is_file()
        assert (node / "config.toml").is_file()
    assert (nodes[0] / "tokenizer" / "tokenizer.json").read_bytes() == \
        (nodes[1] / "tokenizer" / "tokenizer.json").read_bytes()
    assert (shared / f"step-{STOP:08d}" / "COMPLETE").is_file()
    results = two_nodes(config, nodes, *settings)
    assert f"resumed from {shared}/step-{STOP:08d}" in results[0].stderr
    resumed, expected = losses(nodes[0]), losses(reference[0])  # the log is rank 0's, on node 0
    assert not (nodes[1] / "metrics.jsonl").exists()
    for step in range(STOP + 1, STEPS + 1):
        assert resumed[step] == pytest.approx(expected[step], abs=1e-5), step
    exported = [AutoModelForCausalLM.from_pretrained(node / "hf", dtype=torch.float32).state_dict() for node in nodes]
    assert exported[0].keys() == exported[1].keys()
    for name, tensor in exported[0].items():
        assert torch.equal(tensor, exported[1][name]), name
    assert not list(nodes[0].glob(".ranks-*")) and not list(nodes[1].glob(".ranks-*"))


@pytest.mark.slow
def test_a_node_local_checkpoint_directory_is_refused_at_start(corpus, tmp_path):
    config = tiny_config(tmp_path / "run.toml", corpus, tmp_path / "unused", steps=2)
    results = two_nodes(config, [tmp_path / "node-0", tmp_path / "node-1"], expect_failure=True)
    message = "is not shared by all 4 processes (this one sees 2: a node-local disk?)"
    assert any(message in result.stderr for result in results), results[0].stderr[-3000:]
