import json

import pytest

from gap_replay.core import storage


def test_atomic_output_publishes_entries_and_marker(tmp_path):
    target = str(tmp_path / "out")
    with storage.atomic_output(target, "filter", "fp1") as output:
        storage.write_text(output.path("a.txt"), "A")
        assert not storage.exists(storage.join(target, "a.txt"))  # not visible until the block succeeds
    assert (tmp_path / "out" / "a.txt").read_text() == "A"
    assert not (tmp_path / "out" / ".incomplete").exists()
    marker = json.loads((tmp_path / "out" / "_SUCCESS").read_text())
    assert marker == {"stage": "filter", "fingerprint": "fp1", "entries": ["a.txt"]}


def test_failed_block_publishes_nothing_and_next_run_cleans_up(tmp_path):
    target = str(tmp_path / "out")
    with pytest.raises(RuntimeError):
        with storage.atomic_output(target, "filter", "fp1") as output:
            storage.write_text(output.path("half.txt"), "half")
            raise RuntimeError("killed")
    assert storage.Finished.read(target) is None
    assert not (tmp_path / "out" / "half.txt").exists()
    with storage.atomic_output(target, "filter", "fp1") as output:
        storage.write_text(output.path("whole.txt"), "whole")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_SUCCESS", "whole.txt"]


def test_finished_output_reused_refused_or_replaced(tmp_path):
    target = str(tmp_path / "out")
    assert storage.finished_output(target, "dedup", "fp1", overwrite=False) is None
    with storage.atomic_output(target, "dedup", "fp1") as output:
        storage.write_text(output.path("old.txt"), "old")
    assert storage.finished_output(target, "dedup", "fp1", overwrite=False).entries == ("old.txt",)
    with pytest.raises(storage.OutputExistsError, match="--overwrite"):
        storage.finished_output(target, "dedup", "fp2", overwrite=False)
    assert storage.finished_output(target, "dedup", "fp2", overwrite=True) is None
    with storage.atomic_output(target, "dedup", "fp2") as output:
        storage.write_text(output.path("new.txt"), "new")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_SUCCESS", "new.txt"]


def test_entries_not_made_by_the_stage_survive(tmp_path):
    (tmp_path / "out" / "stages").mkdir(parents=True)
    with storage.atomic_output(str(tmp_path / "out"), "mix", "fp") as output:
        storage.write_text(output.path("manifest.json"), "{}")
    assert (tmp_path / "out" / "stages").is_dir()


def test_list_files_skips_hidden_and_underscore_entries(tmp_path):
    for name in ["b.parquet", "a.parquet", "_tmp/x.parquet", ".incomplete/y.parquet", "sub/c.parquet", "n.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    found = [path.rsplit("/", 1)[1] for path in storage.list_files(str(tmp_path))]
    assert found == ["a.parquet", "b.parquet", "c.parquet"]


# -- object storage (moto's S3 server on 127.0.0.1: see conftest) -----------------------------------

def _keys(uri: str) -> list[str]:
    import pyarrow.fs as pafs

    fs, path = storage.resolve(uri)
    return sorted(info.path[len(path):].lstrip("/") for info in fs.get_file_info(pafs.FileSelector(path, recursive=True))
                  if info.type == pafs.FileType.File)


def test_atomic_output_on_s3_copies_keys_and_writes_the_marker_last(bucket):
    target = f"{bucket}/out/stage"
    with storage.atomic_output(target, "filter", "fp1") as output:
        storage.write_text(output.path("data", "part-00000.parquet"), "A")
        storage.write_text(output.path("data", "part-00001.parquet"), "B")
        storage.write_text(output.path("_ledger.json"), "{}")
        assert not storage.exists(storage.join(target, "data"))  # not visible until the block succeeds
    assert not storage.renames_atomically(storage.resolve(target)[0])
    assert _keys(target) == ["_SUCCESS", "_ledger.json", "data/part-00000.parquet", "data/part-00001.parquet"]
    assert storage.read_text(f"{target}/data/part-00001.parquet") == "B"
    assert storage.Finished.read(target).entries == ("_ledger.json", "data")
    assert storage.list_files(f"{target}/data") == [f"{target}/data/part-00000.parquet", f"{target}/data/part-00001.parquet"]


def test_publish_killed_midway_on_s3_leaves_no_marker_and_the_next_publish_removes_its_keys(bucket):
    target = f"{bucket}/out/stage"
    with storage.atomic_output(target, "dedup", "fp1") as output:
        storage.write_text(output.path("data", "part-00000.parquet"), "old")
    # What a publish killed while copying leaves: its intent, a half-copied entry, no _SUCCESS.
    storage.write_text(storage.join(target, storage.PUBLISHING), json.dumps({"entries": ["data", "clusters"]}))
    storage.delete(storage.join(target, storage.SUCCESS))
    storage.write_text(f"{target}/clusters/part-00007.parquet", "half")
    storage.write_text(f"{target}/data/part-00009.parquet", "half")
    assert storage.Finished.read(target) is None
    with storage.atomic_output(target, "dedup", "fp2") as output:
        storage.write_text(output.path("data", "part-00000.parquet"), "new")
    assert _keys(target) == ["_SUCCESS", "data/part-00000.parquet"]
    assert storage.read_text(f"{target}/data/part-00000.parquet") == "new"


def test_the_raw_store_refuses_object_storage(bucket):
    from gap_replay.core.errors import ConfigError
    from gap_replay.guidelines_scraper.job import raw_store_path
    from gap_replay.guidelines_scraper.settings import GuidelinesConfig

    with pytest.raises(ConfigError, match="POSIX filesystem"):
        raw_store_path(GuidelinesConfig(raw_store=f"{bucket}/raw"), f"{bucket}/out", "local[2]")
    with pytest.raises(ConfigError, match="guidelines.raw_store"):
        raw_store_path(GuidelinesConfig(), f"{bucket}/out", "spark://127.0.0.1:7077")
    local = raw_store_path(GuidelinesConfig(), f"{bucket}/out", "local[2]")
    assert "://" not in local and local.startswith(storage.cache_root())
    assert raw_store_path(GuidelinesConfig(), "/data/out", "spark://x:7077") == "/data/out-raw"
