"""A Spark standalone cluster (one master, N workers) on 127.0.0.1, started from the pyspark installation."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pyspark


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _spark_class(*args: str, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
                 host: str = "127.0.0.1") -> subprocess.Popen:
    home = os.path.dirname(pyspark.__file__)
    env = {**os.environ, **(env or {}), "SPARK_HOME": home, "SPARK_LOCAL_IP": host}
    return subprocess.Popen([os.path.join(home, "bin", "spark-class"), *args], env=env, cwd=cwd,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def worker_environment(root: Path) -> dict[str, str]:
    """A worker's own directories, as on a machine of its own: Spark's work and scratch directories,
    the temporary directory and the cache of its executors; nothing under it is shared."""
    for name in ("work", "local", "tmp", "cache", "cwd"):
        (root / name).mkdir(parents=True, exist_ok=True)
    return {"SPARK_WORKER_DIR": str(root / "work"), "SPARK_LOCAL_DIRS": str(root / "local"),
            "TMPDIR": str(root / "tmp"), "GAP_REPLAY_CACHE": str(root / "cache"), "HOME": str(root / "cwd")}


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as response:
            import json

            return int(json.load(response).get("aliveworkers", 0))
    except OSError:
        return 0


@contextmanager
def standalone_cluster(workers: int, work_dir: Path, cores: int = 1, memory: str = "1g", timeout: float = 120,
                       env: dict[str, str] | None = None, separate: bool = False, own_hosts: bool = False):
    """Yield the master URL of a cluster on 127.0.0.1. `env` is every worker's (and so its executors')
    environment on top of this process's; with `separate` each worker also gets its own working,
    scratch, temporary and cache directories and cwd (:func:`worker_environment`). With `own_hosts`, worker i
    binds 127.0.0.(i+1): to Spark, each is a host of its own (it never runs a speculative copy of a task on
    the host of the original attempt), while all of 127/8 is this machine's loopback."""
    work_dir.mkdir(parents=True, exist_ok=True)
    port, ui_port = free_port(), free_port()
    master_url = f"spark://127.0.0.1:{port}"
    processes = [_spark_class("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                              "--webui-port", str(ui_port), log=work_dir / "master.log")]
    try:
        for index in range(workers):
            own = worker_environment(work_dir / f"worker{index}") if separate else {}
            host = f"127.0.0.{index + 1}" if own_hosts else "127.0.0.1"
            processes.append(_spark_class(
                "org.apache.spark.deploy.worker.Worker", master_url, "--host", host, "--cores", str(cores),
                "--memory", memory, "--webui-port", "0",
                "--work-dir", own.get("SPARK_WORKER_DIR", str(work_dir / f"worker{index}")),
                log=work_dir / f"worker{index}.log", env={**(env or {}), **own},
                cwd=work_dir / f"worker{index}" / "cwd" if separate else None, host=host))
        deadline = time.monotonic() + timeout
        while _alive_workers(ui_port) < workers:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                logs = "\n".join(path.read_text(errors="replace")[-2000:] for path in sorted(work_dir.glob("*.log")))
                raise RuntimeError(f"standalone cluster did not come up:\n{logs}")
            time.sleep(0.5)
        yield master_url
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
