"""Paths on any filesystem pyarrow knows (local, HDFS, S3, GCS), and atomic stage outputs.

A stage writes into ``<target>/.incomplete/``; on success its entries are moved into ``<target>``
and a ``_SUCCESS`` file is written last, naming the entries and the configuration fingerprint
that produced them. Readers (and reruns) trust a target only when ``_SUCCESS`` is there, so a job
killed at any moment leaves either the previous finished output or something a rerun replaces.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

SUCCESS = "_SUCCESS"
INCOMPLETE = ".incomplete"


from gap_replay.core.errors import OutputExistsError  # noqa: F401,E402 - re-exported


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """Filesystem and path for `uri`; a plain path is made absolute on the local filesystem."""
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    return pafs.FileSystem.from_uri(uri)


def absolute_uri(uri: str) -> str:
    """`uri` as Spark executors on other machines can use it (plain local paths made absolute)."""
    return uri if "://" in uri else os.path.abspath(uri)


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


def exists(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def size(uri: str) -> int:
    """Size in bytes of a file, or of all files under a directory; 0 when missing."""
    fs, path = resolve(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        return sum(i.size or 0 for i in fs.get_file_info(pafs.FileSelector(path, recursive=True))
                   if i.type == pafs.FileType.File)
    return info.size or 0


def read_text(uri: str) -> str:
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as stream:
        return stream.read().decode("utf-8")


def write_text(uri: str, text: str) -> None:
    fs, path = resolve(uri)
    with fs.open_output_stream(path) as stream:
        stream.write(text.encode("utf-8"))


def delete(uri: str) -> None:
    fs, path = resolve(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        fs.delete_dir(path)
    elif info.type == pafs.FileType.File:
        fs.delete_file(path)


def list_files(uri: str, suffix: str = ".parquet") -> list[str]:
    """Sorted data files under a directory, skipping hidden and `_`-prefixed entries like Spark does."""
    fs, path = resolve(uri)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    selector = pafs.FileSelector(path, recursive=True)
    found = []
    for info in fs.get_file_info(selector):
        relative = info.path[len(path):].lstrip("/")
        if info.type != pafs.FileType.File or not info.path.endswith(suffix):
            continue
        if any(part.startswith((".", "_")) for part in relative.split("/")):
            continue
        found.append(info.path if "://" not in uri else join(uri, relative))
    return sorted(found)


@dataclass(frozen=True)
class Finished:
    """What a `_SUCCESS` marker records."""

    stage: str
    fingerprint: str
    entries: tuple[str, ...]

    @classmethod
    def read(cls, target: str) -> Finished | None:
        marker = join(target, SUCCESS)
        if not exists(marker):
            return None
        data = json.loads(read_text(marker) or "{}")
        return cls(data.get("stage", ""), data.get("fingerprint", ""), tuple(data.get("entries", ())))


@dataclass
class AtomicOutput:
    """A stage output being written; see the module docstring."""

    target: str
    stage: str
    fingerprint: str

    @property
    def staging(self) -> str:
        return join(self.target, INCOMPLETE)

    def path(self, *parts: str) -> str:
        return join(self.staging, *parts)


def finished_output(target: str, stage: str, fingerprint: str, overwrite: bool) -> Finished | None:
    """The finished output at `target` if it can be reused, None if the stage must run.

    A finished output made with another fingerprint is an error unless `overwrite`: silently
    reusing it would mix configurations, silently replacing it would destroy work.
    """
    done = Finished.read(target)
    if done is None or overwrite:
        return None
    if done.fingerprint != fingerprint:
        raise OutputExistsError(
            f"{target} holds a finished {done.stage or 'stage'} output made from other inputs or settings; "
            "pass --overwrite to replace it or choose another --output"
        )
    return done


@contextmanager
def atomic_output(target: str, stage: str, fingerprint: str) -> Iterator[AtomicOutput]:
    """Write a stage's entries under ``.incomplete`` and publish them only if the block succeeds."""
    fs, path = resolve(target)
    previous = Finished.read(target)
    staging = join(path, INCOMPLETE)
    if fs.get_file_info(staging).type != pafs.FileType.NotFound:
        fs.delete_dir(staging)  # left by a killed run
    fs.create_dir(staging, recursive=True)
    output = AtomicOutput(target, stage, fingerprint)
    yield output
    entries = sorted(info.base_name for info in fs.get_file_info(pafs.FileSelector(staging)))
    # Unpublish first: from here until the new marker is written the target counts as unfinished.
    if previous is not None:
        fs.delete_file(join(path, SUCCESS))
    for name in sorted(set(entries) | set(previous.entries if previous else ())):
        destination = join(path, name)
        info = fs.get_file_info(destination)
        if info.type == pafs.FileType.Directory:
            fs.delete_dir(destination)
        elif info.type == pafs.FileType.File:
            fs.delete_file(destination)
    for name in entries:
        fs.move(join(staging, name), join(path, name))
    fs.delete_dir(staging)
    marker: dict[str, Any] = {"stage": stage, "fingerprint": fingerprint, "entries": entries}
    with fs.open_output_stream(join(path, SUCCESS)) as stream:
        stream.write(json.dumps(marker, indent=2, sort_keys=True).encode())
