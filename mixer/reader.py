"""Reading a build from another project: by split and part, as an Arrow dataset or as records.

No Spark needed; any filesystem pyarrow opens (local paths, ``s3://``, ``gs://``, ``hdfs://``)::

    from gap_replay.mixer.reader import open_build

    build = open_build("OUT")
    build.splits                      # ('train', 'validation')
    build.parts                       # ('guidelines', 'pubmed_abstracts', 'pubmed_papers', 'replay')
    papers = build.dataset("train", part="pubmed_papers")   # a pyarrow.dataset.Dataset
    table = papers.to_table(columns=["id", "text"])
    for record in build.records("validation", part=["guidelines"], columns=["id", "text"]):
        ...

The files come from ``manifest.json`` (each shard's rows, tokens and SHA-256 are there too), in shard
order, which is the seeded shuffle order of the split.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from gap_replay.core import storage
from gap_replay.core.schema import DOCUMENT_SCHEMA


@dataclass(frozen=True)
class Build:
    """A finished build or mix output."""

    path: str
    manifest: dict[str, Any]

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.manifest["splits"])

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.manifest["parts"])

    def files(self, split: str = "train") -> list[str]:
        """URIs of a split's shards, in order."""
        if split not in self.manifest["splits"]:
            raise KeyError(f"no split {split!r} in {self.path}; splits: {', '.join(self.splits)}")
        return [storage.join(self.path, shard["file"]) for shard in self.manifest["splits"][split]["shards"]]

    def dataset(self, split: str = "train", part: str | Sequence[str] | None = None) -> ds.Dataset:
        """The split's shards as a pyarrow Dataset (of the document schema), filtered to `part`
        (one part name or several) when given."""
        files = self.files(split)
        filesystem, _ = storage.resolve(files[0])
        dataset = ds.dataset([storage.resolve(uri)[1] for uri in files], schema=DOCUMENT_SCHEMA, format="parquet",
                             filesystem=filesystem)
        if part is None:
            return dataset
        parts = [part] if isinstance(part, str) else list(part)
        unknown = sorted(set(parts) - set(self.parts))
        if unknown:
            raise KeyError(f"no part {', '.join(unknown)} in {self.path}; parts: {', '.join(self.parts)}")
        return dataset.filter(ds.field("source").isin(parts))

    def table(self, split: str = "train", part: str | Sequence[str] | None = None,
              columns: Sequence[str] | None = None) -> pa.Table:
        return self.dataset(split, part).to_table(columns=list(columns) if columns else None)

    def records(self, split: str = "train", part: str | Sequence[str] | None = None,
                columns: Sequence[str] | None = None, batch_size: int = 1024) -> Iterator[dict[str, Any]]:
        """Documents one by one as dicts, in shard order, reading `batch_size` rows at a time."""
        for batch in self.dataset(split, part).to_batches(columns=list(columns) if columns else None,
                                                          batch_size=batch_size):
            yield from batch.to_pylist()

    def count(self, split: str = "train", part: str | Sequence[str] | None = None) -> int:
        return self.dataset(split, part).count_rows()


def open_build(path: str) -> Build:
    """Open a build (``gap-replay build``) or mix (``gap-replay mix``) output directory."""
    uri = storage.absolute_uri(str(path))
    manifest_uri = storage.join(uri, "manifest.json")
    if not storage.exists(manifest_uri):
        raise FileNotFoundError(f"{uri} has no manifest.json: not a finished build or mix output")
    return Build(uri, json.loads(storage.read_text(manifest_uri)))
