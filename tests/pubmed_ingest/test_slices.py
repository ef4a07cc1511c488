"""A PMC package (or mirror shard) many times its share of the stage's bytes is read in slices by several tasks
(``ingest.plan_slices``, ``ingest.ranked_outcomes``): each slice unpacks the whole stream and parses only the
members whose position is its own modulo the slices, every record ranked as in a whole read. The stage's output
(data, drops, ledger) holds the rows of one task per whole file, no task parses much more than its share,
and a corrupt package read in slices is one failed input, recorded once."""

from __future__ import annotations

import io
import json
import random
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gap_replay.core.errors import TransientInputError
from gap_replay.core.ingest import (
    FILE_RANK,
    RANKED_OUTCOME_SCHEMA,
    RECORD_RANK,
    SLICE,
    SLICES,
    expand_sized_inputs,
    files_dataframe,
    parse_files,
)
from gap_replay.core.runner import RunContext
from gap_replay.core.schema import DROP_REASON
from gap_replay.core.spark import spark_schema
from gap_replay.pubmed_ingest import jats, job
from gap_replay.pubmed_ingest.job import SUFFIXES, input_parser, run_pubmed, splittable
from gap_replay.stages import load_config
from tests.pubmed_ingest.faults import RESET_MESSAGE, cut_storage
from tests.pubmed_ingest.test_jats import article, articleset

BIG, SMALL, SMALL_PACKAGES = 200, 20, 4
WORDS = ("patients", "trial", "outcome", "cohort", "dose", "risk", "therapy", "clinical", "hospital", "study",
         "renal", "cardiac", "sepsis", "infant", "vaccine", "tumour", "biopsy", "imaging", "plasma", "genome")
BIG_NAME = "oa_comm_xml.PMC000xxxxxx.baseline.2026-01-01.tar.gz"


def paper(pmcid: int, pmid: int | None, seed: int) -> bytes:
    rng = random.Random(seed)
    ids = f'<article-id pub-id-type="pmc">{pmcid}</article-id>' + (
        f'<article-id pub-id-type="pmid">{pmid}</article-id>' if pmid else "")
    body = "".join(f"<p>{' '.join(rng.choice(WORDS) for _ in range(120))}.</p>" for _ in range(4))
    return article(body, ids=ids)


def write_package(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(payload), 1
            archive.addfile(info, io.BytesIO(payload))


def big_members() -> list[tuple[str, bytes]]:
    """200 members: papers (some linked to the citations' PMIDs), the same PMCID twice (the later one wins), an
    article set of three (one member, three records), a malformed member and a member that is not JATS."""
    members = []
    for number in range(BIG):
        if number == 7:
            members.append(("PMC/set.xml", articleset(*(paper(800000 + k, None, 9000 + k) for k in range(3)))))
        elif number == 11:
            members.append(("PMC/broken.nxml", b"<article><front><article-meta>"))
        elif number == 12:
            members.append(("PMC/figure.jpg", b"\xff\xd8" + bytes(range(256)) * 8))
        elif number == 150:
            members.append(("PMC/again.nxml", paper(700005, 5, 150)))  # PMC700005 again: this one wins
        else:
            members.append((f"PMC/PMC{700000 + number}.nxml", paper(700000 + number, number or None, number)))
    return members


def citations() -> bytes:
    records = "".join(
        f'<PubmedArticle><MedlineCitation><PMID Version="1">{pmid}</PMID><Article><ArticleTitle>Title {pmid}.'
        f"</ArticleTitle><Abstract><AbstractText>Outcomes of cohort {pmid} were measured in hospital.</AbstractText>"
        f"</Abstract></Article></MedlineCitation></PubmedArticle>" for pmid in range(1, 40))
    return f'<?xml version="1.0" encoding="utf-8"?>\n<PubmedArticleSet>{records}</PubmedArticleSet>\n'.encode()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A package ten times each of four others, and a MEDLINE file."""
    root = tmp_path_factory.mktemp("slices")
    write_package(root / BIG_NAME, big_members())
    for package in range(1, SMALL_PACKAGES + 1):
        base = 710000 + package * 100
        members = [(f"PMC/PMC{base + n}.nxml", paper(base + n, None, base + n)) for n in range(SMALL)]
        if package == 2:  # a later package (by name) has a newer copy of a paper of the big one
            members.append(("PMC/PMC700020.nxml", paper(700020, 20, 99)))
        write_package(root / f"oa_comm_xml.PMC00{package}xxxxxx.baseline.2026-01-01.tar.gz", members)
    (root / "pubmed26n0001.xml").write_bytes(citations())
    return root


def stage(tmp_path: Path, inputs: list[Path], name: str, **pubmed):
    context = RunContext(load_config(base={"pubmed": pubmed} if pubmed else None))
    ledger = run_pubmed(context, [str(path) for path in inputs], str(tmp_path / name))
    return ledger, tmp_path / name


def output_rows(output: Path) -> dict[str, list[dict]]:
    """The kept documents and the drops, each in a canonical order: the output's parts follow the parse tasks
    (a file read in slices spreads its rows over several), the rows do not."""
    def rows(folder: str) -> list[dict]:
        return sorted(pq.read_table(output / folder).to_pylist(), key=lambda row: json.dumps(row, sort_keys=True))

    return {folder: rows(folder) for folder in ("data", "drops")}


def ledger_figures(ledger) -> dict:
    return {"in": ledger.documents_in, "kept": ledger.kept, "dropped": dict(ledger.dropped), "inputs": ledger.inputs,
            "failed": dict(ledger.failed_inputs)}


@pytest.fixture(scope="module")
def whole(spark, inputs, tmp_path_factory):
    """The stage with one task per whole file (no file read in slices)."""
    patch = pytest.MonkeyPatch()
    patch.setattr(job, "splittable", lambda name: False)
    try:
        ledger, output = stage(tmp_path_factory.mktemp("whole"), [inputs], "out")
    finally:
        patch.undo()
    return ledger, output


def test_sizes_make_the_big_package_ten_times_the_others(inputs):
    sizes = {name: size for _, name, size in expand_sized_inputs([str(inputs)], SUFFIXES)}
    small = [size for name, size in sizes.items() if name.endswith(".tar.gz") and name != BIG_NAME]
    assert all(8 * size < sizes[BIG_NAME] < 12 * size for size in small)
    assert splittable(BIG_NAME) and splittable("pmc/shards/s1-00000.parquet")
    assert not splittable("pubmed26n0001.xml.gz") and not splittable("PMC1.nxml")


@pytest.mark.parametrize("partitions", [0, 3])
def test_slices_give_the_output_of_whole_files(spark, inputs, tmp_path, whole, partitions):
    ledger, output = stage(tmp_path, [inputs], "out", partitions=partitions)
    assert output_rows(output) == output_rows(whole[1])
    assert ledger_figures(ledger) == ledger_figures(whole[0])
    assert ledger.inputs == 6 and not ledger.failed_inputs
    # What the package holds: the later copy of a PMCID wins inside it and across packages, the set's three
    # articles are kept, the malformed member is its own drop (not a failure of the package).
    kept = {row["id"]: row for row in pq.read_table(output / "data").to_pylist()}
    drops = {row["id"]: row["reason"] for row in pq.read_table(output / "drops").to_pylist()}
    assert '"input": "' + BIG_NAME + ':PMC/again.nxml"' in kept["pmcid:PMC700005"]["extra"]
    assert "oa_comm_xml.PMC002xxxxxx" in kept["pmcid:PMC700020"]["extra"]
    assert {f"pmcid:PMC{800000 + k}" for k in range(3)} <= set(kept)
    assert drops[f"file:{BIG_NAME}:PMC/broken.nxml"] == "parse_error"
    assert Counter(drops.values())["superseded_version"] == 2


def task_rows(spark, inputs: Path, partitions: int) -> list[list[dict]]:
    """The parsed rows of each task of the stage's parsing (its files, sliced), by task."""
    files = expand_sized_inputs([str(inputs)], SUFFIXES)
    frame = files_dataframe(spark, job.by_file_name(files), partitions, splittable=splittable)
    ranked = frame.mapInArrow(parse_files(input_parser({}), with_uri=True), spark_schema(RANKED_OUTCOME_SCHEMA))
    names = {rank: name for rank, (_, name, _) in enumerate(job.by_file_name(files))}
    return [[{"file": names[row[FILE_RANK]], "rank": row[RECORD_RANK], "id": row["id"]} for row in task]
            for task in ranked.select("id", FILE_RANK, RECORD_RANK).rdd.glom().collect()]


@pytest.mark.parametrize("partitions", [0, 3])
def test_no_task_parses_much_more_than_its_share(spark, inputs, partitions):
    tasks = task_rows(spark, inputs, partitions)
    sizes = {name: size for _, name, size in expand_sized_inputs([str(inputs)], SUFFIXES)}
    records = Counter(row["file"] for task in tasks for row in task)
    assert records[BIG_NAME] == BIG + 1  # 199 JATS members (not the JPEG), the set's three articles
    assert sum(records.values()) == BIG + 1 + SMALL_PACKAGES * SMALL + 1 + 39
    # What each task parsed, in bytes: its share of each file's records times the file's size.
    loads = [sum(sizes[row["file"]] / records[row["file"]] for row in task) for task in tasks]
    share = sum(sizes.values()) / (partitions or len(sizes))  # the bytes per task the plan aims at
    assert sizes[BIG_NAME] > 1.9 * share  # read whole, the package would make a task of about twice that or more
    assert max(loads) <= 1.15 * share, (loads, share)
    # The big package's records were parsed by several tasks, each once, ranked as in a whole read.
    big = [(index, row) for index, task in enumerate(tasks) for row in task if row["file"] == BIG_NAME]
    assert len({index for index, _ in big}) >= 2
    ranks = sorted(row["rank"] for _, row in big)
    assert len(ranks) == len(set(ranks)) == BIG + 1


def run_slice(uri: str, name: str, part: int, parts: int, by_bytes: bool = True) -> list[dict]:
    """Slice `part` of `parts` of one file, cut as the stage cuts it (a package by how far its bytes were read),
    or with `by_bytes` False by the position of its members."""
    batch = pa.RecordBatch.from_pydict({FILE_RANK: pa.array([0], pa.int32()), "path": [uri], "name": [name],
                                        SLICE: pa.array([part], pa.int32()), SLICES: pa.array([parts], pa.int32())})
    task = parse_files(input_parser({}), with_uri=True, streamed=job.streamed if by_bytes else None)
    return [row for out in task(iter([batch])) for row in out.to_pylist()]


@pytest.mark.parametrize("by_bytes", [False, True])
@pytest.mark.parametrize("parts", [2, 5, 16])
def test_slices_parse_their_own_members_and_together_make_the_whole_read(inputs, monkeypatch, parts, by_bytes):
    parsed: list[str] = []
    real = jats.iter_jats_articles

    def counted(data, *, name, known_ids=None):
        parsed.append(name)
        return real(data, name=name, known_ids=known_ids)

    monkeypatch.setattr(jats, "iter_jats_articles", counted)
    path = str(inputs / BIG_NAME)
    whole = run_slice(path, BIG_NAME, 0, 1)
    assert len(parsed) == BIG - 1  # every JATS member once (not the JPEG)
    slices, counts = [], []
    for part in range(parts):
        parsed.clear()
        slices += run_slice(path, BIG_NAME, part, parts, by_bytes)
        counts.append(len(parsed))
    assert sorted(slices, key=lambda row: row[RECORD_RANK]) == whole
    assert sum(counts) == BIG - 1  # each member parsed by one slice
    if by_bytes:  # by the bytes read when each member came: blocks of the compressed stream, not members
        assert max(counts) < BIG - 1
    else:
        assert max(counts) <= -(-(BIG - 1) // parts) + 1  # each slice parsed its share of the members, no more


def test_a_slice_of_a_package_unpacks_it_only_to_its_own_end(inputs, monkeypatch):
    from gap_replay.core import ingest

    class Counting(io.RawIOBase):
        def __init__(self, path):
            self.file, self.read_bytes = open(path, "rb"), 0

        def readable(self):
            return True

        def readinto(self, buffer):
            count = self.file.readinto(buffer)
            self.read_bytes += count
            return count

        def tell(self):
            return self.read_bytes

        def close(self):
            self.file.close()
            super().close()

    opened = []

    def counting(uri):
        opened.append(Counting(uri))
        return io.BufferedReader(opened[-1])

    monkeypatch.setattr(ingest, "open_input", counting)
    path = inputs / BIG_NAME
    size = path.stat().st_size
    first = run_slice(str(path), BIG_NAME, 0, 4)
    assert first and opened[-1].read_bytes < size / 2  # the first quarter's members, then it stopped
    run_slice(str(path), BIG_NAME, 3, 4)
    assert opened[-1].read_bytes == size  # the last slice reads to the end, where the gzip trailer is checked


@pytest.mark.parametrize("cut", [0.31, 0.67])
def test_a_damaged_package_read_in_slices_fails_once(spark, inputs, tmp_path, cut):
    """The package cut short on disk (a tar and gzip stream ending early): the members before the damage kept,
    one parse_error drop under the package's id, from whichever slice the failure's position falls to."""
    folder = tmp_path / "in"
    folder.mkdir()
    for path in inputs.iterdir():
        data = path.read_bytes()
        (folder / path.name).write_bytes(data[: int(len(data) * cut)] if path.name == BIG_NAME else data)
    path = str(folder / BIG_NAME)
    whole = run_slice(path, BIG_NAME, 0, 1)
    failures = [row for row in whole if row["id"] == f"file:{BIG_NAME}"]
    assert len(failures) == 1 and failures[0][DROP_REASON] == "parse_error" and whole[-1] == failures[0]
    assert len(whole) > 50 * cut  # the members before the damage are kept
    for parts in (2, 3, 7):
        rows = [row for part in range(parts) for row in run_slice(path, BIG_NAME, part, parts)]
        assert sorted(rows, key=lambda row: row[RECORD_RANK]) == whole
    # The stage: one failed input of six, one drop under the package's id, whatever the slicing.
    outputs = []
    for name, partitions, split in (("whole", 0, False), ("sliced", 0, True), ("three", 3, True)):
        with pytest.MonkeyPatch.context() as patch:
            if not split:
                patch.setattr(job, "splittable", lambda name: False)
            ledger, output = stage(tmp_path, [folder], name, partitions=partitions, max_failed_share=0.5)
        assert ledger.inputs == 6 and ledger.failed_inputs == {"parse_error": 1}
        drops = [row["id"] for row in pq.read_table(output / "drops").to_pylist()]
        assert drops.count(f"file:{BIG_NAME}") == 1
        outputs.append((output_rows(output), ledger_figures(ledger)))
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]


@pytest.mark.parametrize("part", [0, 1, 2])
def test_a_read_reset_in_any_slice_fails_its_task(inputs, monkeypatch, part):
    prefix = cut_storage(monkeypatch, share=0.5)
    with pytest.raises(TransientInputError, match=f"^reading {BIG_NAME}: ConnectionResetError: .*{RESET_MESSAGE}"):
        run_slice(prefix + str(inputs / BIG_NAME), BIG_NAME, part, 3)


def test_a_mirror_shard_reads_in_slices(tmp_path):
    from tests.pubmed_ingest.test_failures import shard

    path = tmp_path / "s1-00000.parquet"
    path.write_bytes(shard(40))
    name = "pmc/shards/s1-00000.parquet"
    whole = run_slice(str(path), name, 0, 1)
    assert len(whole) == 40
    rows = [row for part in range(4) for row in run_slice(str(path), name, part, 4)]
    assert sorted(rows, key=lambda row: row[RECORD_RANK]) == whole
    assert json.loads(whole[0]["extra"])["pmc"]["version"] == 1
