"""Paths on any filesystem pyarrow knows (local, HDFS, S3, GCS), and atomic stage outputs.

A stage writes into ``<target>/.incomplete/``; on success its entries are published into
``<target>`` and a ``_SUCCESS`` file is written last, naming the entries and the configuration
fingerprint that produced them. Readers (and reruns) trust a target only when ``_SUCCESS`` is
there, so a job killed at any moment leaves either the previous finished output or something a
rerun replaces.

Publishing, step by step (the same on every filesystem):

1. ``_PUBLISHING`` is written, naming every entry the publish may touch (the new ones, the previous
   output's, and those of a publish that was killed before);
2. the previous ``_SUCCESS`` is deleted: from here on the target counts as unfinished;
3. each named entry is deleted, then each new entry is put in place: renamed where the filesystem
   renames atomically (local, HDFS); copied key by key where it cannot (S3, GCS: object stores have
   no rename), and then the staging copy is deleted;
4. ``_SUCCESS`` is written, and ``_PUBLISHING`` deleted.

A kill between 1 and 4 leaves no ``_SUCCESS``: a rerun starts the stage again and its publish
first deletes everything the leftover ``_PUBLISHING`` names, so no half-copied entry survives.
On object stores each object appears whole or not at all (a PUT or COPY is atomic per key) and
listing is strongly consistent (S3 since 2020, GCS always), which is all this needs.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

SUCCESS = "_SUCCESS"
PUBLISHING = "_PUBLISHING"
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


def cache_root() -> str:
    """This machine's cache of gap-replay (models, raw stores): $GAP_REPLAY_CACHE, else
    $XDG_CACHE_HOME/gap-replay, else ~/.cache/gap-replay."""
    return os.environ.get("GAP_REPLAY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gap-replay")


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


def total_size(uris: Iterable[str]) -> int:
    """Bytes in the given files (a directory: its files), asked in one call per filesystem."""
    by_filesystem: dict[str, tuple[pafs.FileSystem, list[str], list[str]]] = {}
    for uri in uris:
        # One filesystem per scheme and options (an s3:// one serves every bucket), made once.
        key = f"{uri.split('://', 1)[0]}?{uri.partition('?')[2]}" if "://" in uri else "local"
        if key not in by_filesystem:
            by_filesystem[key] = (resolve(uri)[0], [], [])
        fs, paths, named = by_filesystem[key]
        bucketed = uri.startswith(("s3://", "gs://", "gcs://"))  # the path is bucket/key: no new filesystem
        paths.append(uri.split("://", 1)[1].partition("?")[0] if bucketed else resolve(uri)[1])
        named.append(uri)
    total = 0
    for fs, paths, named in by_filesystem.values():
        for uri, info in zip(named, fs.get_file_info(paths)):
            total += size(uri) if info.type == pafs.FileType.Directory else info.size or 0
    return total


def read_bytes(uri: str) -> bytes:
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as stream:
        return stream.read()


def write_bytes(uri: str, data: bytes) -> None:
    """Write `data` at `uri` whole or not at all: locally through a temporary file renamed into place (a
    kill leaves no partial file under the name), on object storage by one PUT (atomic per key)."""
    fs, path = resolve(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # Hidden (a leading dot): readers that list a folder (pyarrow, Spark) never take it for data.
        temporary = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp-{os.getpid()}-{threading.get_ident()}")
        try:
            with open(temporary, "wb") as stream:
                stream.write(data)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return
    with fs.open_output_stream(path) as stream:
        stream.write(data)


def read_table(uri: str, columns: list[str] | None = None):
    """One Parquet file as a pyarrow Table (only `columns`, when given)."""
    import pyarrow.parquet as pq

    fs, path = resolve(uri)
    with fs.open_input_file(path) as handle:
        return pq.read_table(handle, columns=columns)


def write_table(uri: str, table, **options) -> None:
    """`table` as one Parquet file (zstd unless `options` say otherwise), written whole (:func:`write_bytes`)."""
    import io

    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, **{"compression": "zstd", **options})
    write_bytes(uri, buffer.getvalue())


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


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


def renames_atomically(fs: pafs.FileSystem) -> bool:
    """Whether `fs` moves a directory in one step (local disks, HDFS); object stores copy key by key."""
    return fs.type_name in ("local", "hdfs")


def _delete_entry(fs: pafs.FileSystem, path: str) -> None:
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        fs.delete_dir(path)
    elif info.type == pafs.FileType.File:
        fs.delete_file(path)


def _write_json(fs: pafs.FileSystem, path: str, data: dict[str, Any]) -> None:
    with fs.open_output_stream(path) as stream:
        stream.write(json.dumps(data, indent=2, sort_keys=True).encode())


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
    publishing = join(path, PUBLISHING)
    touched = set(entries) | set(previous.entries if previous else ())
    if fs.get_file_info(publishing).type == pafs.FileType.File:  # a publish killed midway
        with fs.open_input_stream(publishing) as stream:
            touched |= set(json.loads(stream.read().decode() or "{}").get("entries", ()))
    touched -= {SUCCESS, PUBLISHING, INCOMPLETE}
    _write_json(fs, publishing, {"stage": stage, "entries": sorted(touched)})
    # Unpublish first: from here until the new marker is written the target counts as unfinished.
    _delete_entry(fs, join(path, SUCCESS))
    for name in sorted(touched):
        _delete_entry(fs, join(path, name))
    atomic = renames_atomically(fs)
    for name in entries:
        if atomic:
            fs.move(join(staging, name), join(path, name))
        else:  # no rename on object stores: copy every key (in parallel), then drop the staging copy
            pafs.copy_files(join(staging, name), join(path, name), source_filesystem=fs,
                            destination_filesystem=fs, use_threads=True)
    fs.delete_dir(staging)
    _write_json(fs, join(path, SUCCESS), {"stage": stage, "fingerprint": fingerprint, "entries": entries})
    fs.delete_file(publishing)
