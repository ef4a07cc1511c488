"""Process-group time limits: `parallel.init_timeout_s` bounds the wait for the other processes at start,
`parallel.timeout_s` each collective (gloo here; NCCL's watchdog on GPUs)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from gap_replay.train.trainer import FAULTS_ENV
from tests.train.conftest import ROOT, tiny_config, torchrun


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_process_alone_gives_up_after_the_init_timeout(corpus, tmp_path):
    """Rank 0 of a world of 2 whose rank 1 never comes: one line, status 1, after init_timeout_s (the default
    would wait 10 minutes: the subprocess limit of 120 s would end the test first)."""
    config = tiny_config(tmp_path / "run.toml", corpus, tmp_path / "run")
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "gap_replay.train", "--config", str(config), "--set",
                             "parallel.init_timeout_s=2"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert "train: error: DistStoreError: Timed out after" in result.stderr
    assert "1/2 clients joined" in result.stderr


@pytest.mark.slow
def test_a_stalled_rank_makes_the_others_collectives_time_out(corpus, tmp_path):
    """Rank 1 sleeps before step 2 (twice parallel.timeout_s = 3 s); rank 0's next collective gives up after 3 s and
    the run ends with an error instead of waiting for 30 minutes."""
    config = tiny_config(tmp_path / "run.toml", corpus, tmp_path / "run")
    result = torchrun("-m", "gap_replay.train", "--config", str(config), "--set", "parallel.timeout_s=3",
                      "--set", "checkpoint.interval=0", env={FAULTS_ENV: "stall@2:1"}, expect_failure=True,
                      timeout=240)
    lines = [line for line in result.stderr.splitlines() if line.startswith("train: error:")]
    assert lines and "Timed out" in lines[0] and "3000ms" in lines[0], result.stderr[-3000:]
