"""Fixtures shared by the whole suite: one local Spark session, paths of the real data in ../shared."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
LID_MODEL = SHARED / "models" / "lid.176.ftz"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Real PubMed/PMC files published by others (read in place, never copied into the project)."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.fail(f"{data} is missing: the test suite needs ../shared beside the checkout")
    return data


@pytest.fixture(scope="session", autouse=True)
def lid_model() -> Path:
    if not LID_MODEL.is_file():
        pytest.fail(f"{LID_MODEL} is missing: the test suite needs ../shared/models/lid.176.ftz")
    os.environ["GAP_REPLAY_LID_MODEL"] = str(LID_MODEL)
    return LID_MODEL


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole run (starting one costs ~8 s)."""
    from gap_replay.core.config import SparkConfig
    from gap_replay.core.spark import spark_session

    session = spark_session(SparkConfig(master="local[2]"))
    yield session
    session.stop()


@pytest.fixture
def server():
    """A scripted HTTP server on 127.0.0.1 (tests/guidelines_scraper/conftest.py: ScriptedServer)."""
    from tests.guidelines_scraper.conftest import ScriptedServer

    served = ScriptedServer().start()
    try:
        yield served
    finally:
        served.stop()


# An S3-compatible server (moto's, from the project's test extra) on 127.0.0.1 for the object-storage tests.
@pytest.fixture(scope="session")
def s3_server():
    """The server's environment (endpoint, region, credentials), also set in this process while it runs:
    pyarrow, and any `gap-replay` started with it, reach the server as they would reach S3."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


@pytest.fixture
def bucket(s3_server) -> str:
    """A new empty bucket, as ``s3://NAME``."""
    import pyarrow.fs as pafs

    name = f"test-{uuid.uuid4().hex[:12]}"
    pafs.S3FileSystem(endpoint_override=s3_server["AWS_ENDPOINT_URL"], allow_bucket_creation=True).create_dir(name)
    return f"s3://{name}"


@pytest.fixture
def cpu_load():
    """Two busy-looping processes for the duration of a test: a loaded machine, where reads stall."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield busy
    finally:
        for process in busy:
            process.kill()
            process.wait(10)
