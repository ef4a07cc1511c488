"""The mixture on Spark: a synthetic corpus of the four parts, mixed, recounted, remixed."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pyarrow.parquet as pq
import pytest

from gap_replay.cli import main
from gap_replay.stages import load_config
from gap_replay.core.runner import RunContext
from gap_replay.mixer import job
from gap_replay.mixer.job import run_mix
from gap_replay.replay.job import run_replay
from gap_replay.mixer.reader import open_build
from gap_replay.mixer.report import PLOTS
from gap_replay.mixer.synthetic import synthetic_table, write_corpus
from gap_replay.mixer.tokens import count_tokens, save_tokenizer, train_tokenizer

ROOT = Path(__file__).resolve().parents[2]
PARTS = {"guidelines": 0.06, "pubmed_abstracts": 0.55, "pubmed_papers": 0.2, "replay": 0.19}
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    table = synthetic_table(1600, seed=11, mix=PARTS, scale=0.15)
    write_corpus(str(root / "four"), table, files=4)
    write_corpus(str(root / "one"), table, files=1, order_seed=3)  # same documents, another order and layout
    texts = table.column("text").to_pylist()[::4]
    save_tokenizer(train_tokenizer(texts, vocab_size=800), str(root / "tokenizer"))
    guidelines = table.filter(pa.compute.equal(table.column("source"), "guidelines")).column("text").to_pylist()
    # 1.6 times the part's tokens: a full pass over the guidelines, then a seeded sample.
    (root / "guideline_target").write_text(str(int(1.6 * sum(count_tokens(str(root / "tokenizer"), guidelines)))))
    return root, table


def guideline_target(root: Path) -> int:
    return int((root / "guideline_target").read_text())


def settings(root: Path) -> dict:
    return {"mix": {
        "tokenizer": str(root / "tokenizer"), "seed": 7, "shard_rows": 300, "shard_tokens": 200_000,
        "replay_share": 0.05, "weights": {"pubmed_abstracts": 0.5}, "target_tokens": {"guidelines": guideline_target(root)},
    }}


def mix(root: Path, inputs: str, output: Path, overwrite: bool = False):
    context = RunContext(load_config(base=settings(root)), overwrite=overwrite)
    return run_mix(context, [str(root / inputs)], str(output))


@pytest.fixture(scope="module")
def mixed(spark, corpus, tmp_path_factory):
    root, table = corpus
    output = tmp_path_factory.mktemp("mixed") / "out"
    ledger = mix(root, "four", output)
    return output, ledger, json.loads((output / "manifest.json").read_text())


def shard_tables(output: Path, manifest: dict) -> dict[str, pa.Table]:
    return {split: pa.concat_tables([pq.read_table(output / shard["file"]) for shard in info["shards"]])
            for split, info in manifest["splits"].items()}


def file_digests(output: Path) -> dict[str, str]:
    return {str(path.relative_to(output)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(output.rglob("*"))
            if path.is_file() and path.name not in ("_SUCCESS", "_ledger.json")}  # those two hold timings


def test_manifest_equals_a_recount_of_the_shards(mixed, corpus):
    output, ledger, manifest = mixed
    root, _ = corpus
    tables = shard_tables(output, manifest)
    recount = defaultdict(lambda: {"documents": set(), "rows": 0, "tokens": 0})
    for split, table in tables.items():
        tokens = count_tokens(str(root / "tokenizer"), table.column("text").to_pylist())
        for source, doc_id, count in zip(table.column("source").to_pylist(), table.column("id").to_pylist(), tokens):
            entry = recount[(source, split)]
            entry["documents"].add(doc_id)
            entry["rows"] += 1
            entry["tokens"] += count
    for part, info in manifest["parts"].items():
        for split in ("train", "validation"):
            entry = recount[(part, split)]
            assert info["after"][split] == {"documents": len(entry["documents"]), "rows": entry["rows"],
                                            "tokens": entry["tokens"]}, (part, split)
    train_tokens = sum(recount[(part, "train")]["tokens"] for part in manifest["parts"])
    assert manifest["splits"]["train"]["tokens"] == train_tokens
    replay = manifest["replay"]
    assert replay["train_tokens"] == recount[("replay", "train")]["tokens"]
    assert replay["actual_share"] == pytest.approx(recount[("replay", "train")]["tokens"] / train_tokens)
    assert abs(replay["actual_share"] - 0.05) / 0.05 <= 0.02
    assert replay["relative_error"] <= 0.02
    longest = max(count_tokens(str(root / "tokenizer"), tables["train"].filter(
        pa.compute.equal(tables["train"].column("source"), "guidelines")).column("text").to_pylist()))
    assert abs(recount[("guidelines", "train")]["tokens"] - guideline_target(root)) <= longest / 2
    assert manifest["parts"]["guidelines"]["plan"]["full_passes"] >= 1  # the target needs repeats
    for split, info in manifest["splits"].items():
        for shard in info["shards"]:
            path = output / shard["file"]
            assert re.fullmatch(rf"{split}/{split}-\d{{5}}-of-{len(info['shards']):05d}\.parquet", shard["file"])
            assert hashlib.sha256(path.read_bytes()).hexdigest() == shard["sha256"]
            assert path.stat().st_size == shard["bytes"]
            table = pq.read_table(path)
            assert table.num_rows == shard["rows"]
            assert sum(count_tokens(str(root / "tokenizer"), table.column("text").to_pylist())) == shard["tokens"]
        assert len(info["shards"]) == max(math.ceil(info["rows"] / 300), math.ceil(info["tokens"] / 200_000))
    assert len(manifest["splits"]["train"]["shards"]) > 1


def test_copies_splits_and_accounting(mixed, corpus):
    output, ledger, manifest = mixed
    _, table = corpus
    tables = shard_tables(output, manifest)
    ids = {split: set(t.column("id").to_pylist()) for split, t in tables.items()}
    assert not ids["train"] & ids["validation"]
    rows = tables["train"].to_pylist() + tables["validation"].to_pylist()
    copies = defaultdict(list)
    for row in rows:
        extra = json.loads(row["extra"]) if row["extra"] else {}
        copies[row["id"]].append(extra.get("mix_copy", 0))
    documents = {row["id"]: row for row in table.to_pylist()}
    for doc_id, seen in copies.items():
        assert sorted(seen) == list(range(len(seen))), doc_id  # copy 0 .. k-1, each once
        source = documents[doc_id]["source"]
        if doc_id in ids["validation"]:
            assert len(seen) == 1, doc_id  # validation holds each document once: upsampling is a training weight
        elif source == "pubmed_papers":
            factor = 1 + documents[doc_id]["upsampling_score"]
            assert math.floor(factor) <= len(seen) <= math.ceil(factor)
        elif source == "pubmed_abstracts":
            assert len(seen) == 1
    originals = {row["id"]: row for row in rows if "mix_copy" not in (row["extra"] or "")}
    assert all(originals[i]["extra"] == documents[i]["extra"] and originals[i]["text"] == documents[i]["text"]
               for i in originals)
    abstracts = [i for i, d in documents.items() if d["source"] == "pubmed_abstracts"]
    kept = sum(1 for i in abstracts if i in copies)
    assert 0.4 < kept / len(abstracts) < 0.6  # weight 0.5
    papers = [i for i, d in documents.items() if d["source"] == "pubmed_papers" and i in ids["train"]]
    assert sum(len(copies[i]) for i in papers) > 1.5 * len(papers)  # upsampled
    validation_papers = [i for i, d in documents.items() if d["source"] == "pubmed_papers" and i in ids["validation"]]
    assert validation_papers and all(len(copies[i]) == 1 for i in validation_papers)
    # The realised validation shares per part: each document is drawn with its part's fraction.
    fractions = manifest["settings"]["validation_fraction"]
    for part, fraction in fractions.items():
        part_ids = [i for i, d in documents.items() if d["source"] == part]
        share = sum(1 for i in part_ids if i in ids["validation"]) / len(part_ids)
        assert abs(share - fraction) <= 3 * math.sqrt(fraction * (1 - fraction) / len(part_ids)), (part, share)
        assert manifest["splits"]["validation"]["by_source"][part]["rows"] == \
            manifest["splits"]["validation"]["by_source"][part]["documents"]

    assert ledger.documents_in == table.num_rows == ledger.kept + ledger.dropped_total
    assert ledger.kept == len(copies)
    drops = pq.read_table(output / "drops")
    assert set(drops.column("id").to_pylist()) == set(documents) - set(copies)
    assert Counter(drops.column("reason").to_pylist()) == ledger.dropped == Counter({"not_sampled": ledger.dropped_total})
    assert manifest["stages"][-1] == {"stage": "mix", "in": ledger.documents_in, "kept": ledger.kept,
                                      "dropped": dict(ledger.dropped)}
    # A global shuffle: no part comes in one block.
    sources = tables["train"].column("source").to_pylist()
    assert len([i for i in range(1, len(sources)) if sources[i] != sources[i - 1]]) > len(sources) / 4


def test_rerun_and_repartitioned_runs_are_byte_identical(mixed, corpus, spark, tmp_path, monkeypatch):
    output, _, _ = mixed
    root, _ = corpus
    reference = file_digests(output)
    mix(root, "four", tmp_path / "rerun")
    assert file_digests(tmp_path / "rerun") == reference
    # Other input files (one, rows in another order), other shuffle partitions, other write partitioning.
    monkeypatch.setattr(job, "default_parallelism", lambda spark: 1)
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "3")
    try:
        mix(root, "one", tmp_path / "repartitioned")
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)
    assert file_digests(tmp_path / "repartitioned") == reference


def test_dataset_card(mixed):
    import yaml

    output, _, manifest = mixed
    card = (output / "README.md").read_text()
    _, header, body = card.split("---\n", 2)
    meta = yaml.safe_load(header)
    assert meta["configs"][0]["data_files"] == [{"split": "train", "path": "train/train-*.parquet"},
                                                {"split": "validation", "path": "validation/validation-*.parquet"}]
    assert {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]} == \
        {split: info["rows"] for split, info in manifest["splits"].items()}
    assert re.search(r"\| `aafp` \| .* \| no \|", body) and re.search(r"\| `who` \| .* \| yes \|", body)
    assert f"{manifest['splits']['train']['tokens']:,}" in body
    assert "## Processing" in body and "upsampling" in body


def _png_ok(path: Path) -> bool:
    from PIL import Image

    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size[0] > 100 and image.size[1] > 100


CHECK_SCRIPT = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = images.filter((image) => image.complete && image.naturalWidth > 0).length;
  const marker = document.createElement("p");
  marker.id = "image-check";
  marker.textContent = "images loaded: " + loaded + "/" + images.length;
  document.body.appendChild(marker);
});
</script>"""


def test_report_opens_in_a_headless_browser(mixed, tmp_path):
    output, _, manifest = mixed
    assert main(["report", str(output)]) == 0
    page = output / "report.html"
    assert page.is_file()
    images = re.findall(r'<img src="([^"]+)"', page.read_text())
    assert len(images) == len(PLOTS)
    for image in images:
        assert _png_ok(output / image), image
    if not os.path.exists(CHROMIUM):
        # A newcomer's machine may have no browser: skip, saying so. CI installs one, so there it must run.
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{CHROMIUM} is missing and CI is set: CI must open the report in a browser "
                        "(install Debian's chromium; .ci/run does)")
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to open the report in a browser "
                    "(CI does, and fails without it)")
    check = output / "report-check.html"
    check.write_text(page.read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    try:
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=5000", "--dump-dom", check.as_uri()],
            capture_output=True, text=True, timeout=120)
    finally:
        check.unlink()
    dom = result.stdout
    assert f"images loaded: {len(PLOTS)}/{len(PLOTS)}" in dom, result.stderr[-2000:]
    train = manifest["splits"]["train"]
    assert f"train {train['rows']:,} rows ({train['documents']:,} documents), {train['tokens']:,} tokens" in dom
    total_dropped = sum(sum(stage["dropped"].values()) for stage in manifest["stages"])
    assert f"({total_dropped:,} in all)" in dom


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Reading the shards from another project", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_readme_reading_examples_run(mixed, spark, tmp_path, monkeypatch, capsys):
    output, _, manifest = mixed
    examples = readme_examples()
    assert len(examples) == 6  # pyarrow, pandas, DuckDB, datasets, Spark, mixer.reader
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    results = []
    for code in examples:
        namespace: dict = {}
        exec(compile(re.sub(r"([\"'])OUT", lambda m: m.group(1) + str(output), code), "README", "exec"), namespace)
        results.append(namespace)
    train_rows = manifest["splits"]["train"]["rows"]
    pyarrow_, pandas_, duckdb_, hf, spark_, reader = results
    assert pyarrow_["papers"].num_rows == manifest["parts"]["pubmed_papers"]["after"]["train"]["rows"]
    assert len(pandas_["validation"]) == manifest["splits"]["validation"]["rows"]
    assert hf["corpus"]["train"].num_rows == hf["same"]["train"].num_rows == train_rows
    assert hf["corpus"]["validation"].num_rows == manifest["splits"]["validation"]["rows"]
    assert len(hf["guidelines"]) == manifest["parts"]["guidelines"]["after"]["train"]["rows"]
    assert reader["table"].num_rows == manifest["parts"]["pubmed_papers"]["after"]["train"]["rows"]
    printed = capsys.readouterr().out
    assert "pubmed_abstracts" in printed  # pandas, DuckDB and Spark printed their tables


def test_reader_api(mixed):
    output, _, manifest = mixed
    build = open_build(str(output))
    assert build.splits == ("train", "validation")
    assert set(build.parts) == set(PARTS)
    assert build.count("train") == manifest["splits"]["train"]["rows"]
    for part in PARTS:
        assert build.count("validation", part) == manifest["parts"][part]["after"]["validation"]["rows"]
    records = list(build.records("train", part=["guidelines"], columns=["id", "source"]))
    assert len(records) == manifest["parts"]["guidelines"]["after"]["train"]["rows"]
    assert {record["source"] for record in records} == {"guidelines"}
    first = manifest["splits"]["train"]["shards"][0]
    assert [r["id"] for r in build.records("train", columns=["id"])][:first["rows"]] == \
        pq.read_table(output / first["file"], columns=["id"]).column("id").to_pylist()
    with pytest.raises(KeyError, match="no split"):
        build.dataset("test")
    with pytest.raises(KeyError, match="no part"):
        build.dataset("train", part="books")


def test_invalid_mix_settings_stop_before_spark(tmp_path, capsys):
    assert main(["mix", "--input", str(tmp_path), "--output", str(tmp_path / "out"),
                 "--set", "mix.replay_share=1.5"]) == 2
    assert "mix.replay_share" in capsys.readouterr().err
    assert main(["mix", "--input", str(tmp_path), "--output", str(tmp_path / "out"),
                 "--set", "mix.tokenizer='/no/such/tokenizer.json'"]) == 2
    assert "not found" in capsys.readouterr().err


def test_replay_from_parquet(spark, tmp_path):
    table = pa.table({
        "text": ["A replay document about rivers.", "", None, "Another one, from a book."],
        "meta": [json.dumps({"redpajama_set_name": "RedPajamaWikipedia"}), "{}", "{}",
                 json.dumps({"redpajama_set_name": "RedPajamaBook", "title": "A book"})],
    })
    pq.write_table(table, tmp_path / "replay.parquet")
    context = RunContext(load_config())
    ledger = run_replay(context, [str(tmp_path / "replay.parquet")], str(tmp_path / "out"))
    assert (ledger.kept, dict(ledger.dropped)) == (2, {"empty_text": 1, "parse_error": 1})
    kept = pq.read_table(tmp_path / "out" / "data").to_pylist()
    assert sorted(row["subset"] for row in kept) == ["book", "wikipedia"]
    assert all(row["id"].startswith("replay:") and row["source"] == "replay" for row in kept)
    shutil.rmtree(tmp_path / "out")


def test_an_empty_input_gives_an_empty_mixture(spark, corpus, tmp_path):
    root, _ = corpus
    (tmp_path / "empty").mkdir()
    pq.write_table(pa.Table.from_pylist([], schema=job.DOCUMENT_SCHEMA), tmp_path / "empty" / "part-00000.parquet")
    base = settings(root)
    base["mix"].update(replay_share=0.0, target_tokens={})  # no token target: nothing that input cannot meet
    context = RunContext(load_config(base=base))
    ledger = run_mix(context, [str(tmp_path / "empty")], str(tmp_path / "out"))
    assert (ledger.documents_in, ledger.kept) == (0, 0)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    for split in ("train", "validation"):
        (shard,) = manifest["splits"][split]["shards"]
        assert shard["rows"] == 0 and pq.read_table(tmp_path / "out" / shard["file"]).num_rows == 0
    assert (tmp_path / "out" / "README.md").is_file()


def test_a_token_target_without_documents_to_meet_it_is_an_error(spark, corpus, tmp_path, capsys):
    root, table = corpus
    medical = table.filter(pa.compute.not_equal(table.column("source"), "replay"))
    write_corpus(str(tmp_path / "no_replay"), medical, files=1)
    config = tmp_path / "mix.toml"  # the default replay share, 1%
    config.write_text(f'[mix]\ntokenizer = "{root / "tokenizer"}"\n')
    assert main(["mix", "--input", str(tmp_path / "no_replay"), "--output", str(tmp_path / "out"),
                 "--config", str(config)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "mix.replay_share asks for replay training tokens (1.00% of the mixture) but the inputs hold no " \
           "replay training documents" in error and "set mix.replay_share = 0" in error
    assert not (tmp_path / "out" / "_SUCCESS").exists()
    # The explicit opt-out mixes without replay.
    assert main(["mix", "--input", str(tmp_path / "no_replay"), "--output", str(tmp_path / "out"),
                 "--config", str(config), "--set", "mix.replay_share=0"]) == 0
