"""The dedup rules and candidate pairs on the driver (dedup.local) against the Spark path: the same files, byte
for byte, on real abstracts with every kind of drop; and the NumPy pieces on small tables."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gap_replay.core.runner import RunContext
from gap_replay.core.schema import documents_to_batch, make_document
from gap_replay.dedup import job
from gap_replay.dedup.local import contamination_detail, pair_ends, priorities, rule_decisions
from gap_replay.dedup.near import NODE, OVERLAP
from gap_replay.stages import load_config
from tests.dedup.conftest import edit_words


def written(output) -> dict[str, str]:
    return {str(path.relative_to(output)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(output.rglob("*.parquet"))}


def test_the_driver_path_writes_the_files_of_the_spark_path(abstracts, tmp_path, monkeypatch):
    rng = random.Random(5)
    documents = [dict(document) for document in abstracts[:240]]
    for i, original in enumerate(abstracts[:30]):  # near copies in replay, a paper copy, exact copies, id copies
        documents.append(make_document(id=f"replay:near:{i}", source="replay",
                                       text=edit_words(original["text"], 2, rng)))
    documents.append(make_document(id="pmcid:PMC1", source="pubmed_papers", text=abstracts[40]["text"][:-5]))
    documents += [make_document(id=f"guideline:copy:{i}", source="guidelines", text=abstracts[50]["text"].upper())
                  for i in range(3)]
    documents += [dict(abstracts[60], text=abstracts[60]["text"] + " Longer."), dict(abstracts[61])]  # same ids
    documents.append(make_document(id="replay:empty", source="replay", text="!!! ..."))  # no words, no band keys
    rng.shuffle(documents)
    (tmp_path / "input").mkdir()
    for index in range(3):
        chunk = documents[index * len(documents) // 3:(index + 1) * len(documents) // 3]
        pq.write_table(pa.Table.from_batches([documents_to_batch(chunk)]), tmp_path / "input" / f"part-{index}.parquet",
                       row_group_size=50)
    benchmark = tmp_path / "bench.jsonl"
    benchmark.write_text(json.dumps({"question": abstracts[70]["text"], "options": {"A": "yes"}}) + "\n")
    config = load_config(base={"dedup": {"decontaminate": [str(benchmark)]}})
    on_driver = job.run_dedup(RunContext(config), [str(tmp_path / "input")], str(tmp_path / "driver"))
    monkeypatch.setattr(job, "PAIR_TASK_CHARS", 20_000)  # the Python shuffle's scoring in many tasks
    in_tasks = job.run_dedup(RunContext(config), [str(tmp_path / "input")], str(tmp_path / "tasks"))
    monkeypatch.setattr(job, "DRIVER_TEXT_CHARS", 0)  # the candidates' texts too long: Spark's shuffle scores them
    spark_scored = job.run_dedup(RunContext(config), [str(tmp_path / "input")], str(tmp_path / "scored"))
    monkeypatch.setattr(job, "DRIVER_ROWS", -1)  # every corpus is "large": the Spark path
    on_spark = job.run_dedup(RunContext(config), [str(tmp_path / "input")], str(tmp_path / "spark"))
    for ledger in (in_tasks, spark_scored, on_spark):
        assert {**on_driver.to_dict(), "seconds": 0} == {**ledger.to_dict(), "seconds": 0}
    assert set(on_driver.dropped) == {"duplicate_id", "exact_duplicate", "contaminated", "near_duplicate"}
    for name in ("tasks", "scored", "spark"):
        assert written(tmp_path / "driver") == written(tmp_path / name), name
    assert any(name.startswith("clusters/") for name in written(tmp_path / "driver"))


def test_contamination_details_round_half_up_as_java_does():
    assert contamination_detail(0.0625, 8) == "0.063 of word 8-grams in benchmark questions"  # Python's %.3f: 0.062
    assert contamination_detail(0.92063, 8) == "0.921 of word 8-grams in benchmark questions"
    assert contamination_detail(1.0, 5) == "1.000 of word 5-grams in benchmark questions"


def test_rules_rank_by_priority_length_id_hash_then_key():
    table = pa.table({"_file": [0, 0, 1, 1, 2], "_row": [5, 3, 0, 1, 0], "id": ["x", "x", "y", "z", "w"],
                      "source": ["replay", "replay", "replay", "mystery", "guidelines"], "_length": [4, 4, 9, 9, 3],
                      "text_hash": ["h1", "h1", "h2", "h2", "h2"], OVERLAP: [None, None, None, None, 0.9]})
    reasons, details = rule_decisions(table, by_id=True, exact=True, contamination_ratio=0.5, contamination_ngram=8)
    # x twice, identical: the smaller key (file 0, row 3) is kept. y and z share a text: z's unknown source ranks
    # first (Spark's null priority); w shares it too but is shorter... and is an exact copy before contamination.
    assert reasons.tolist() == ["duplicate_id", None, "exact_duplicate", None, "exact_duplicate"]
    assert details.tolist() == ["x", None, "z", None, "z"]
    assert priorities(pa.array(["replay", "mystery", "pubmed_papers"])).tolist() == [3, -1, 0]


def test_a_node_shared_by_two_documents_gives_each_of_them_as_an_end():
    nodes, files, rows = np.array([7, 9, 7]), np.array([0, 0, 1]), np.array([4, 2, 0])
    ends = pair_ends(np.array([7]), np.array([9]), nodes, files, rows).to_pylist()
    assert ends == [{"a": 7, "b": 9, NODE: 9, "_file": 0, "_row": 2}, {"a": 7, "b": 9, NODE: 7, "_file": 0, "_row": 4},
                    {"a": 7, "b": 9, NODE: 7, "_file": 1, "_row": 0}]
