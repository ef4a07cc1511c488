"""The registry: the stages the command line and the build know, in build order.

Adding a stage: write its package with a ``stage`` module declaring ``STAGE`` (see
``gap_replay.core.stage``), then add that module here. Nothing else names it.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Mapping

from gap_replay.core import config as configuration
from gap_replay.core.stage import Stage

# Build order: a stage comes after every stage it consumes.
STAGE_MODULES = (
    "gap_replay.pubmed_ingest.stage",
    "gap_replay.guidelines_scraper.stage",
    "gap_replay.filters.stage",
    "gap_replay.replay.stage",
    "gap_replay.dedup.stage",
    "gap_replay.mixer.stage",
    "gap_replay.train.stage",
)


@functools.cache
def registered() -> tuple[Stage, ...]:
    stages = tuple(importlib.import_module(module).STAGE for module in STAGE_MODULES)
    seen: set[str] = set()
    for stage in stages:
        unknown = [name for name in (stage.build.consumes if stage.build else ()) if name not in seen]
        if unknown:
            raise RuntimeError(f"stage {stage.name!r} consumes {unknown}, which no earlier stage is")
        seen.add(stage.name)
    return stages


def section_types() -> dict[str, type]:
    return {stage.section_name: stage.settings for stage in registered() if stage.settings is not None}


def load_config(path: str | Path | None = None, overrides: Iterable[str] = (),
                base: Mapping[str, Any] | None = None) -> configuration.Config:
    """The pipeline configuration: [spark] and every registered stage's section, layered and validated."""
    return configuration.load_config(section_types(), path, overrides, base)
