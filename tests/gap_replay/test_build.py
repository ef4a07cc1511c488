"""End to end: the embedded sample through every stage, in-process (shared Spark session) and as the
`gap-replay` command in fresh processes: reruns, a SIGKILLed build resumed, a standalone cluster."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from gap_replay.build import planted_drops_report, run_build, sample_dir, sample_settings
from gap_replay.core import storage
from gap_replay.stages import load_config
from gap_replay.core.ledger import StageLedger
from gap_replay.core.runner import RunContext
from gap_replay.core.schema import DOCUMENT_SCHEMA
from gap_replay.mixer.report import PLOTS
from gap_replay.mixer.tokens import count_tokens

STAGES = ["pubmed", "guidelines", "filter", "replay", "dedup", "mix"]


def shard_digests(output: Path | str) -> dict[str, str]:
    """sha256 of every shard of both splits, by relative path (a local directory or any storage URI)."""
    output = str(output)
    found = {}
    for split in ("train", "validation"):
        for uri in storage.list_files(storage.join(output, split)):
            fs, path = storage.resolve(uri)
            with fs.open_input_stream(path) as stream:
                found[f"{split}/{uri.rsplit('/', 1)[-1]}"] = hashlib.sha256(stream.read()).hexdigest()
    return found


def drops(output: Path, stage: str) -> dict[str, str]:
    table = pq.read_table(output / "stages" / stage / "drops")
    return dict(zip(table.column("id").to_pylist(), table.column("reason").to_pylist()))


def build_command(output: Path | str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gap_replay.cli", "build", "--sample", "--output", str(output), *extra]


@pytest.fixture(scope="module")
def sample_build(spark, tmp_path_factory):
    output = tmp_path_factory.mktemp("sample") / "build"
    context = RunContext(load_config(base=sample_settings()))
    ledgers = run_build(context, str(output), sample=True)
    return output, ledgers


def test_outputs_exist_and_have_the_schema(sample_build):
    output, ledgers = sample_build
    assert [ledger.stage for ledger in ledgers] == STAGES
    assert (output / "_SUCCESS").is_file()
    for split in ("train", "validation"):
        files = sorted((output / split).glob("*.parquet"))
        assert files, split
        assert [f.name for f in files] == [f"{split}-{i:05d}-of-{len(files):05d}.parquet" for i in range(len(files))]
        table = pq.read_table(output / split)
        assert table.schema.equals(DOCUMENT_SCHEMA, check_metadata=False)
        assert table.num_rows > 0
    assert pd.read_parquet(output / "train").shape[0] == pq.read_table(output / "train").num_rows
    sources = dict(duckdb.sql(f"select source, count(*) from '{output}/train/*.parquet' group by source").fetchall())
    assert set(sources) == {"guidelines", "pubmed_abstracts", "pubmed_papers", "replay"}


def test_manifest_records_every_stage_and_shard(sample_build):
    output, ledgers = sample_build
    manifest = json.loads((output / "manifest.json").read_text())
    assert [stage["stage"] for stage in manifest["stages"]] == STAGES
    for stage in manifest["stages"]:
        StageLedger.from_dict(stage).check()  # in = kept + dropped, for every stage
    for split, info in manifest["splits"].items():
        assert info["documents"] == sum(part["documents"] for part in info["by_source"].values())
        assert info["rows"] == sum(part["rows"] for part in info["by_source"].values())
        assert info["rows"] == sum(shard["rows"] for shard in info["shards"])
        assert info["tokens"] == sum(shard["tokens"] for shard in info["shards"])
        for shard in info["shards"]:
            path = output / shard["file"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == shard["sha256"]
            assert pq.ParquetFile(path).metadata.num_rows == shard["rows"]
    mix = manifest["stages"][-1]
    assert mix["kept"] == manifest["splits"]["train"]["documents"] + manifest["splits"]["validation"]["documents"]


def test_mixture_equals_a_recount_with_the_sample_tokenizer(sample_build):
    output, _ = sample_build
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["tokenizer"]["trained"] and (output / "tokenizer" / "tokenizer.json").is_file()
    recount = Counter()
    for split in ("train", "validation"):
        table = pq.read_table(output / split)
        tokens = count_tokens(str(output / "tokenizer"), table.column("text").to_pylist())
        for source, count in zip(table.column("source").to_pylist(), tokens):
            recount[(source, split)] += count
    for part, info in manifest["parts"].items():
        for split in ("train", "validation"):
            assert info["after"][split]["tokens"] == recount[(part, split)], (part, split)
    replay = manifest["replay"]
    train_tokens = sum(count for (_, split), count in recount.items() if split == "train")
    assert replay["actual_share"] == pytest.approx(recount[("replay", "train")] / train_tokens)
    assert abs(replay["actual_share"] - sample_settings()["mix"]["replay_share"]) / replay["share"] <= 0.02
    # Papers are upsampled in training, 1 + upsampling score copies; validation holds each document once.
    papers = pq.read_table(output / "stages" / "dedup" / "data").to_pylist()
    train = Counter(pq.read_table(output / "train").column("id").to_pylist())
    validation = Counter(pq.read_table(output / "validation").column("id").to_pylist())
    for paper in (p for p in papers if p["source"] == "pubmed_papers"):
        factor = 1 + paper["upsampling_score"]
        if paper["id"] in validation:
            assert validation[paper["id"]] == 1 and paper["id"] not in train
        else:
            assert int(factor) <= train[paper["id"]] <= -int(-factor // 1)
    assert set(validation.values()) == {1} and not set(train) & set(validation)


def test_dataset_card_and_report_are_written(sample_build):
    output, _ = sample_build
    manifest = json.loads((output / "manifest.json").read_text())
    meta = yaml.safe_load((output / "README.md").read_text().split("---\n")[1])
    assert [f["split"] for f in meta["configs"][0]["data_files"]] == ["train", "validation"]
    assert {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]} == \
        {split: info["rows"] for split, info in manifest["splits"].items()}
    page = (output / "report.html").read_text()
    assert f"{manifest['splits']['train']['tokens']:,} tokens" in page
    for name in PLOTS:
        assert (output / "report" / f"{name}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # The card says in one line that the sample departs from the default mixture, and why.
    card = (output / "README.md").read_text()
    (line,) = [line for line in card.splitlines() if line.startswith("**Not the default mixture**")]
    assert "replay share 50% (default 1%)" in line and "guidelines 25%" in line and "embedded sample" in line
    # Its guideline sources are fixture sites: said in the card's table, never set against the paper's yields.
    rows = [line for line in card.splitlines() if re.match(r"\| `(who|nice|wikidoc)` \|", line)]
    assert len(rows) == 3 and all(row.endswith("| fixture site |") for row in rows), rows
    assert "Sources marked *fixture site*" in card and "degraded" not in card


def test_the_samples_guideline_sites_are_fixtures_not_degraded_sources(sample_build):
    _, ledgers = sample_build
    (guidelines,) = [ledger for ledger in ledgers if ledger.stage == "guidelines"]
    healths = guidelines.details["sources"]
    assert sorted(healths) == ["nice", "who", "wikidoc"]
    for health in healths.values():
        assert health["fixture"] and health["verdict"] == "healthy", health
        assert not [problem for problem in health["problems"] if "paper" in problem], health


def test_the_samples_planted_drops_are_named(sample_build):
    _, ledgers = sample_build
    lines = planted_drops_report(ledgers)
    assert lines[0].startswith("sample: its drops are planted on purpose")
    assert not [line for line in lines if "not planted" in line or "not as planted" in line], lines
    planted = {tuple(line.split()[:2]): int(line.split()[2].rstrip(":")) for line in lines[1:]}
    assert planted == {(ledger.stage, reason): count for ledger in ledgers for reason, count in ledger.dropped.items()}
    assert any("guidelines fetch_error 2: a WHO draft that the site's robots.txt disallows" in line for line in lines)
    # A build that made other drops says so.
    changed = [StageLedger(ledger.stage, ledger.documents_in, ledger.kept, ledger.dropped + Counter({"odd": 1}))
               if ledger.stage == "replay" else ledger for ledger in ledgers]
    assert "  replay odd 1: not planted" in planted_drops_report(changed)


def test_every_document_is_accounted_for_between_stages(sample_build):
    output, ledgers = sample_build
    by_stage = {ledger.stage: ledger for ledger in ledgers}
    assert by_stage["filter"].documents_in == by_stage["pubmed"].kept + by_stage["guidelines"].kept
    assert by_stage["dedup"].documents_in == by_stage["filter"].kept + by_stage["replay"].kept
    assert by_stage["mix"].documents_in == by_stage["dedup"].kept
    for ledger in ledgers[:-1]:
        table = pq.read_table(output / "stages" / ledger.stage / "drops")
        assert table.num_rows == ledger.dropped_total
        assert Counter(table.column("reason").to_pylist()) == ledger.dropped
        assert set(table.column("stage").to_pylist()) <= {ledger.stage}


def test_sample_drops_carry_their_reasons(sample_build):
    output, _ = sample_build
    pubmed = Counter(drops(output, "pubmed").values())
    assert pubmed["no_abstract"] >= 1 and pubmed["deleted"] >= 1 and pubmed["superseded_version"] >= 1
    assert pubmed["superseded_by_fulltext"] == 3
    assert "non_english" in drops(output, "filter").values()
    assert drops(output, "dedup")["pmid:90000022"] == "exact_duplicate"
    assert "fetch_error" in drops(output, "guidelines").values()
    assert Counter(drops(output, "replay").values()) == Counter({"parse_error": 1, "empty_text": 1})


def test_the_guidelines_ledger_carries_each_sources_health(sample_build):
    output, ledgers = sample_build
    guidelines = next(ledger for ledger in ledgers if ledger.stage == "guidelines")
    sources = guidelines.details["sources"]
    assert set(sources) == {"who", "nice", "wikidoc"}
    for tag, health in sources.items():
        assert health["links"] >= health["fetched"] > 0 and health["kept"] > 0, tag
        assert sum(health["failures"].values()) + health["kept"] == health["fetched"], tag
        assert health["verdict"] != "broken" and health["fallbacks"] == {}, tag
    assert sum(sum(health["failures"].values()) for health in sources.values()) == guidelines.dropped_total
    stored = json.loads((output / "manifest.json").read_text())["stages"]
    assert next(stage for stage in stored if stage["stage"] == "guidelines")["details"] == guidelines.details


# Personal data planted in the sample (gap_replay/sample/README.md): a WHO guideline's development group
# (3 e-mail addresses, 3 phone numbers, a server's IP address), an abstract's data-request address (PMID
# 90000012), a paper's advice line (PMC9900004) and a replay page's contact (the replay stage redacts as the
# filter does).
PLANTED_PERSONAL_DATA = ["amara.okoye@example.org", "j.placeholder@example.net", "rosa.fictional@example.com",
                         "+41 22 555 01 23", "+44 20 7946 0321", "(202) 555-0147", "203.0.113.45",
                         "shiftwork-cohort@example.org", "0808 157 0123", "library.events@example.org",
                         "+1 555 010 4477"]


def test_the_samples_planted_personal_data_is_redacted_and_counted_in_the_card(sample_build):
    output, ledgers = sample_build
    filtered = next(ledger for ledger in ledgers if ledger.stage == "filter")
    by_source = filtered.details["redaction"]["by_source"]
    assert {part: {kind: counts[kind] for kind in ("redacted_documents", "email", "phone", "ip")}
            for part, counts in by_source.items()} == {
        "guidelines": {"redacted_documents": 1, "email": 3, "phone": 3, "ip": 1},
        "pubmed_abstracts": {"redacted_documents": 1, "email": 1, "phone": 0, "ip": 0},
        "pubmed_papers": {"redacted_documents": 1, "email": 0, "phone": 1, "ip": 0},
    }
    assert sum(counts["documents"] for counts in by_source.values()) == filtered.kept
    card = (output / "README.md").read_text().splitlines()
    guidelines = by_source["guidelines"]["documents"]
    assert f"| Clinical practice guidelines (`guidelines`) | {guidelines:,} | 1 | 3 | 3 | 1 |" in card
    assert "| PubMed abstracts (`pubmed_abstracts`) | " \
           f"{by_source['pubmed_abstracts']['documents']:,} | 1 | 1 | 0 | 0 |" in card
    assert "| PubMed Central full-text papers (`pubmed_papers`) | 4 | 1 | 0 | 1 | 0 |" in card
    replay = next(ledger for ledger in ledgers if ledger.stage == "replay").details["redaction"]["by_source"]
    assert {kind: replay["replay"][kind] for kind in ("redacted_documents", "email", "phone", "ip")} == {
        "redacted_documents": 1, "email": 1, "phone": 1, "ip": 0}
    assert f"| General-domain replay text (`replay`) | {replay['replay']['documents']:,} | 1 | 1 | 1 | 0 |" in card
    assert any(line.startswith("Personal data: the `filter`, `replay` stages") for line in card)
    assert not any(line.startswith("Not checked for personal data") for line in card)
    # The mixture holds the placeholders, never the planted values, and each document its counts.
    rows = pq.read_table(output / "train").to_pylist() + pq.read_table(output / "validation").to_pylist()
    for value in PLANTED_PERSONAL_DATA:
        assert not [row["id"] for row in rows if value in row["text"]], value
    redacted = {row["id"]: json.loads(row["extra"])["redacted"] for row in rows
                if row["extra"] and "redacted" in json.loads(row["extra"])}
    assert redacted["pmid:90000012"] == {"email": 1} and redacted["pmcid:PMC9900004"] == {"phone": 1}
    (guideline,) = [counts for document_id, counts in redacted.items() if document_id.startswith("guideline:who:")]
    assert guideline == {"email": 3, "phone": 3, "ip": 1}


def test_rerun_reuses_finished_outputs(sample_build):
    output, _ = sample_build
    before = shard_digests(output)
    ledgers = run_build(RunContext(load_config(base=sample_settings())), str(output), sample=True)
    assert all(ledger.seconds is None for ledger in ledgers)  # nothing ran again
    assert shard_digests(output) == before


WITHOUT_TORCH = Path(__file__).parent / "without_torch"


def without_torch_env() -> dict[str, str]:
    """The environment of a process (and of the Spark workers it starts) in which torch cannot be imported."""
    paths = [str(WITHOUT_TORCH), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


@pytest.mark.slow
def test_cli_build_is_byte_identical_to_the_in_process_build(sample_build, tmp_path):
    """In a fresh process where torch cannot be imported: the pipeline needs no [train] extra."""
    reference, _ = sample_build
    result = subprocess.run(build_command(tmp_path / "cli"), capture_output=True, text=True, timeout=600,
                            env=without_torch_env())
    assert result.returncode == 0, result.stderr
    summary = result.stdout.splitlines()
    assert summary[0].split() == ["stage", "in", "kept", "dropped", "time"]
    assert summary[-1].startswith("total time")
    assert shard_digests(tmp_path / "cli") == shard_digests(reference)
    assert (tmp_path / "cli" / "manifest.json").read_text() == (reference / "manifest.json").read_text()


@pytest.mark.slow
def test_build_killed_midway_resumes_to_the_same_shards(sample_build, tmp_path):
    reference, _ = sample_build
    output = tmp_path / "killed"
    process = subprocess.Popen(build_command(output), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    # Kill once the first stage is published and a later one is under way.
    while not (output / "stages" / "guidelines" / ".incomplete").exists() and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("the build finished before it could be killed")
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the JVM and Python workers go too
    process.wait()
    assert (output / "stages" / "pubmed" / "_SUCCESS").is_file()
    assert not (output / "_SUCCESS").exists()

    result = subprocess.run(build_command(output), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "pubmed: reusing finished output" in result.stderr
    assert shard_digests(output) == shard_digests(reference)


INPUT_FOLDERS = ("pubmed", "pmc", "replay")


def copy_inputs(destination: str) -> dict[str, str]:
    """The embedded sample's input files copied to `destination` (a directory or storage URI); the
    settings that read them there."""
    import pyarrow.fs as pafs

    fs, path = storage.resolve(destination)
    for folder in INPUT_FOLDERS:
        fs.create_dir(storage.join(path, folder), recursive=True)
        pafs.copy_files(str(sample_dir() / folder), storage.join(path, folder), source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=fs)
    where = {folder: storage.join(destination, folder) for folder in INPUT_FOLDERS}
    return {"pubmed.inputs": f"{where['pubmed']},{where['pmc']}", "replay.inputs": where["replay"]}


def all_drops(output: Path) -> dict[str, dict[str, str]]:
    return {stage: drops(output, stage) for stage in STAGES[:-1]}


@pytest.mark.slow
def test_inputs_at_another_path_give_the_same_ids_and_bytes(sample_build, tmp_path):
    """The same inputs elsewhere (another checkout, another machine) give the same shards, drop ids and
    manifest, and no local path of either copy gets into the output."""
    reference, _ = sample_build
    moved = copy_inputs(str(tmp_path / "another" / "machine" / "inputs"))
    base = sample_settings()
    base["pubmed"]["inputs"] = moved["pubmed.inputs"].split(",")
    base["replay"]["inputs"] = [moved["replay.inputs"]]
    output = tmp_path / "build"
    run_build(RunContext(load_config(base=base)), str(output), sample=True)
    assert shard_digests(output) == shard_digests(reference)
    assert all_drops(output) == all_drops(reference)
    assert any(key.startswith("file:redpajama_sample.jsonl#line") for key in drops(output, "replay"))
    manifest = (output / "manifest.json").read_text()
    assert manifest == (reference / "manifest.json").read_text()
    for local in (str(tmp_path), str(sample_dir()), str(Path(__file__).resolve().parents[2])):
        assert local not in manifest and local not in (output / "README.md").read_text()


@pytest.mark.slow
def test_build_on_s3_killed_midway_resumes_to_the_local_shards(sample_build, bucket, tmp_path):
    """`--output s3://...`: a build SIGKILLed while a stage is being written, rerun against the same
    bucket, completes with the shards and manifest of the local build."""
    reference, _ = sample_build
    output = f"{bucket}/gap-replay/build"
    env = {**os.environ, "GAP_REPLAY_CACHE": str(tmp_path / "cache")}  # the raw store's default place
    process = subprocess.Popen(build_command(output), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, env=env)
    deadline = time.monotonic() + 300
    while not storage.exists(f"{output}/stages/guidelines/.incomplete") and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("the build finished before it could be killed")
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert storage.exists(f"{output}/stages/pubmed/_SUCCESS")
    assert not storage.exists(f"{output}/_SUCCESS")

    result = subprocess.run(build_command(output), capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    assert "pubmed: reusing finished output" in result.stderr
    assert "raw store in" in result.stderr and str(tmp_path / "cache") in result.stderr
    assert shard_digests(output) == shard_digests(reference)
    assert storage.read_text(f"{output}/manifest.json") == (reference / "manifest.json").read_text()
    assert not storage.exists(f"{output}/{storage.INCOMPLETE}") and not storage.exists(f"{output}/{storage.PUBLISHING}")


@pytest.mark.slow
def test_standalone_cluster_sharing_nothing_but_s3_gives_the_same_shards(sample_build, bucket, tmp_path):
    """Two workers, each with its own working, scratch, temporary and cache directories and cwd; the
    inputs and every output only on the S3 server. The raw store is the one thing that needs a shared
    POSIX directory (README, 'Running on a cluster'): here a directory standing for that mount."""
    from tests.gap_replay.standalone import standalone_cluster

    reference, _ = sample_build
    inputs = copy_inputs(f"{bucket}/inputs")
    output = f"{bucket}/build"
    mount = tmp_path / "shared-mount" / "guidelines-raw"
    settings = [f"--set={key}={value}" for key, value in inputs.items()] + [f"--set=guidelines.raw_store={mount}"]
    aws = {name: os.environ[name] for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                               "AWS_REGION")}
    with standalone_cluster(workers=2, work_dir=tmp_path / "cluster", env=aws, separate=True) as master:
        result = subprocess.run(build_command(output, "--master", master, *settings),
                                capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"starting Spark {master}" in result.stderr
    assert shard_digests(output) == shard_digests(reference)
    assert storage.read_text(f"{output}/manifest.json") == (reference / "manifest.json").read_text()
    for index in range(2):  # both workers ran tasks, each in its own directories
        assert any((tmp_path / "cluster" / f"worker{index}" / "work").rglob("stderr"))


def test_the_trainer_says_how_to_install_torch_when_it_is_missing(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[data]\ntrain = ["shards"]\n')
    probe = "import torch"
    blocked = subprocess.run([sys.executable, "-c", probe], env=without_torch_env(), capture_output=True, text=True)
    assert blocked.returncode != 0 and "import of torch halted" in blocked.stderr  # the blocker works
    result = subprocess.run([sys.executable, "-m", "gap_replay.cli", "train", "--config", str(config)],
                            env=without_torch_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "pip install 'gap-replay[train]'" in result.stderr.strip().splitlines()[-1]
