"""Fixtures shared by the whole suite: one local Spark session, paths of the real data in ../shared."""

from __future__ import annotations

import os
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
