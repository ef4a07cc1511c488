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
