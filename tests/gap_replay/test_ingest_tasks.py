"""How the ingest stages cut their input files into Spark tasks: balanced by bytes, with sizes taken from the
listing that found the files, and file ranks (the version order) that do not depend on the cut."""

from __future__ import annotations

import os

from gap_replay.core.ingest import (
    MAX_SLICES,
    assign_tasks,
    expand_named_inputs,
    expand_sized_inputs,
    files_dataframe,
    plan_slices,
)


def test_a_file_ten_times_the_others_gets_a_task_alone_and_the_rest_spread():
    sizes = [100] * 5 + [1000] + [100] * 5
    tasks = assign_tasks(sizes, 3)
    assert [5] in tasks  # the large file alone
    rest = [task for task in tasks if task != [5]]
    assert sorted(len(task) for task in rest) == [5, 5]  # ten small files, 500 bytes in each task
    assert sorted(index for task in tasks for index in task) == list(range(len(sizes)))
    assert assign_tasks(sizes, 3) == tasks  # deterministic


def test_tasks_are_balanced_by_bytes_not_file_count():
    # Sorted by name, the large packages come first: cut by count, the first task would take all four.
    sizes = [900, 800, 700, 600] + [50] * 24
    tasks = assign_tasks(sizes, 4)
    loads = [sum(sizes[index] for index in task) for task in tasks]
    assert max(loads) - min(loads) <= 50 and all(tasks)
    # Never more tasks than files, never an empty one.
    assert assign_tasks([5, 1], 8) == [[0], [1]]
    assert assign_tasks([], 3) == [[]]


def test_files_dataframe_groups_by_bytes_and_keeps_the_name_ranks(spark):
    names = [f"pubmed26n{number:04d}.xml.gz" for number in range(1, 12)]
    sizes = [100] * 11
    sizes[3] = 1000  # the fourth file in name order is ten times the others
    files = [(f"/data/{name}", name, size) for name, size in zip(names, sizes)]
    frame = files_dataframe(spark, files, 3)
    parts = [[(row["file_rank"], row["name"]) for row in part] for part in frame.rdd.glom().collect()]
    assert len(parts) == 3
    assert [(3, names[3])] in parts  # alone in its task
    assert sorted(len(part) for part in parts) == [1, 5, 5]
    # A file's rank is its place in name order, whichever task reads it.
    assert sorted(rank for part in parts for rank, _ in part) == list(range(11))
    assert all(names[rank] == name for part in parts for rank, name in part)
    # Without sizes (or one task per file), the old cut: runs of consecutive files.
    plain = files_dataframe(spark, [(uri, name) for uri, name, _ in files], 3)
    runs = [[row["file_rank"] for row in part] for part in plain.rdd.glom().collect()]
    assert len(runs) == 3 and [rank for run in runs for rank in run] == list(range(11))
    assert files_dataframe(spark, files).rdd.getNumPartitions() == 11


def test_sizes_come_with_the_walk(tmp_path):
    (tmp_path / "baseline").mkdir()
    (tmp_path / "updates" / "2026").mkdir(parents=True)
    for path, size in (("baseline/pubmed26n0001.xml.gz", 3000), ("baseline/pubmed26n0002.xml.gz", 10),
                       ("updates/2026/pubmed26n0003.xml.gz", 700), ("baseline/notes.txt", 5),
                       ("baseline/.hidden.xml.gz", 9)):
        (tmp_path / path).write_bytes(b"x" * size)
    single = tmp_path / "PMC1.nxml"
    single.write_bytes(b"y" * 42)
    sized = expand_sized_inputs([str(tmp_path / "baseline"), str(tmp_path / "updates"), str(single)],
                                (".xml.gz", ".nxml"))
    named = expand_named_inputs([str(tmp_path / "baseline"), str(tmp_path / "updates"), str(single)],
                                (".xml.gz", ".nxml"))
    assert [(uri, name) for uri, name, _ in sized] == named  # same files, same order
    assert [(name, size) for _, name, size in sized] == [
        ("PMC1.nxml", 42), ("pubmed26n0001.xml.gz", 3000), ("pubmed26n0002.xml.gz", 10),
        ("2026/pubmed26n0003.xml.gz", 700)]
    assert all(size == os.path.getsize(uri) for uri, _, size in sized)


def test_empty_files_still_spread():
    assert assign_tasks([0, 0, 0, 0], 2) == [[0, 2], [1, 3]]


def test_a_splittable_file_over_its_share_is_read_in_slices():
    sizes = [100] * 9 + [1000]  # 1,900 bytes: a share of 190 for ten tasks
    plan = plan_slices(sizes, 10, [True] * 10)
    assert [(part, slices) for index, part, slices in plan if index == 9] == [(j, 6) for j in range(6)]  # ceil(1000/190)
    assert [index for index, _, _ in plan if index != 9] == list(range(9))  # the others whole
    assert all((part, slices) == (0, 1) for index, part, slices in plan if index != 9)
    # Not splittable: whole, however large; the number of slices is capped.
    assert plan_slices(sizes, 10, [True] * 9 + [False])[-1] == (9, 0, 1)
    assert len(plan_slices([1] * 3 + [10**9], 1000, [True] * 4)) == 3 + MAX_SLICES
    assert plan_slices([], 3, []) == []


def test_files_dataframe_spreads_the_slices_of_a_package_over_the_tasks(spark):
    names = [f"oa_{number}.tar.gz" for number in range(9)] + ["pubmed26n0001.xml.gz"]
    sizes = [100] * 8 + [1000, 300]
    files = [(f"/data/{name}", name, size) for name, size in zip(names, sizes)]
    frame = files_dataframe(spark, files, 4, splittable=lambda name: name.endswith(".tar.gz"))
    parts = [[(row["file_rank"], row["slice"], row["slices"]) for row in part] for part in frame.rdd.glom().collect()]
    assert len(parts) == 4
    # 2,100 bytes, 525 a task: the package in ceil(1000/525) = 2 slices of 500 bytes, in two tasks.
    assert sorted((part, slices) for task in parts for rank, part, slices in task if rank == 8) == [(0, 2), (1, 2)]
    assert len({index for index, task in enumerate(parts) for rank, _, _ in task if rank == 8}) == 2
    loads = [sum(sizes[rank] / slices for rank, _, slices in task) for task in parts]
    assert max(loads) <= 600, loads
    # Without `splittable` (other stages), a row per whole file, as before.
    plain = files_dataframe(spark, files, 4)
    assert sorted((row["file_rank"], row["slice"], row["slices"]) for row in plain.collect()) == [
        (rank, 0, 1) for rank in range(10)]
    # One task per file (a share of 210 bytes): the package in ceil(1000 / 210) = 5 slices, each a task of its own.
    alone = files_dataframe(spark, files, splittable=lambda name: name.endswith(".tar.gz"))
    assert alone.rdd.getNumPartitions() == 9 + 5 and all(len(task) == 1 for task in alone.rdd.glom().collect())
