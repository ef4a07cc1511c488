"""Near-duplicates on Spark, on a corpus of real abstracts with planted copies at known similarities:
found when similar, kept when not, clustered like the exact-Jaccard graph, the same whatever the
partitioning; connected components against union-find; the steps' NumPy cores on batches cut anywhere;
the all-Spark path for large graphs against the in-memory one."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gap_replay.dedup.job import deduplicate, run_dedup
from gap_replay.dedup.minhash import shingles
from gap_replay.dedup.near import (CLUSTER_SCHEMA, NODE, PAIRWISE_BUCKET_LIMIT, _bucket_pairs, _similarity_function,
                                   components_of_pairs, connected_components)
from gap_replay.dedup.settings import DedupConfig
from gap_replay.stages import load_config
from gap_replay.core.runner import RunContext
from gap_replay.core.schema import DOCUMENT_SCHEMA, documents_to_batch, make_document
from gap_replay.core.spark import spark_schema
from tests.dedup.conftest import edit_words

THRESHOLD = 0.8


def jaccard(left: str, right: str) -> float:
    a, b = set(shingles(left)), set(shingles(right))
    return len(a & b) / len(a | b) if a | b else 1.0


@pytest.fixture(scope="module")
def corpus(abstracts):
    """Real abstracts plus planted copies; returns (documents, planted) with planted[copy id] = (original, kind)."""
    rng = random.Random(11)
    originals = abstracts[:320]
    documents = [dict(document) for document in originals]
    originals = [document for document in originals if len(document["text"].split()) >= 200]  # planted ones
    assert len(originals) >= 100
    planted = {}
    for i, original in enumerate(originals[:40]):  # close copies in the replay part (cross-part)
        copy_id = f"replay:planted:{i}"
        documents.append(make_document(id=copy_id, source="replay", subset="planted",
                                       text=edit_words(original["text"], 2, rng)))
        planted[copy_id] = (original["id"], "close")
    for i, original in enumerate(originals[40:80]):  # distant copies: must be kept
        copy_id = f"replay:distant:{i}"
        documents.append(make_document(id=copy_id, source="replay", subset="planted",
                                       text=edit_words(original["text"], 30, rng)))
        planted[copy_id] = (original["id"], "distant")
    for i, original in enumerate(originals[80:90]):  # a paper copy beats the (longer) abstract
        copy_id = f"pmcid:PMC7700{i:03d}"
        words = original["text"].split()
        documents.append(make_document(id=copy_id, source="pubmed_papers", pmcid=copy_id[6:],
                                       text=" ".join(words[: len(words) - 3])))
        planted[copy_id] = (original["id"], "paper")
    for i, original in enumerate(originals[90:100]):  # chains: X ~ X1 ~ X2 while X and X2 are further apart
        first = edit_words(original["text"], 3, rng)
        second = edit_words(first, 3, rng)
        for suffix, text in (("a", first), ("b", second)):
            copy_id = f"guideline:planted:{i}{suffix}"
            documents.append(make_document(id=copy_id, source="guidelines", subset="planted", text=text))
            planted[copy_id] = (original["id"], "chain")
    return documents, planted


@pytest.fixture(scope="module")
def truth(corpus):
    """Connected components of the graph of pairs with exact Jaccard >= THRESHOLD (brute force)."""
    documents, _ = corpus
    sets = [set(shingles(document["text"])) for document in documents]
    parent = list(range(len(documents)))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    similarities = {}
    for i, j in itertools.combinations(range(len(documents)), 2):
        if abs(len(sets[i]) - len(sets[j])) > (1 - THRESHOLD) * max(len(sets[i]), len(sets[j])):
            continue  # cannot reach the threshold
        common = len(sets[i] & sets[j])
        similarity = common / (len(sets[i]) + len(sets[j]) - common)
        similarities[documents[i]["id"], documents[j]["id"]] = similarity
        if similarity >= THRESHOLD:
            parent[find(i)] = find(j)
    components = {}
    for i, document in enumerate(documents):
        components.setdefault(find(i), set()).add(document["id"])
    return {frozenset(members) for members in components.values() if len(members) > 1}, similarities


@pytest.fixture(scope="module")
def stage(spark, corpus, tmp_path_factory):
    documents, _ = corpus
    root = tmp_path_factory.mktemp("near")
    (root / "input").mkdir()
    pq.write_table(pa.Table.from_batches([documents_to_batch(documents)]), root / "input" / "part-00000.parquet")
    ledger = run_dedup(RunContext(load_config()), [str(root / "input")], str(root / "out"))
    return root / "out", ledger


def drops(output):
    return {row["id"]: (row["reason"], row["detail"]) for row in pq.read_table(output / "drops").to_pylist()}


def test_planted_near_duplicates_are_found_and_distinct_documents_kept(stage, corpus):
    output, ledger = stage
    documents, planted = corpus
    dropped = drops(output)
    for copy_id, (original, kind) in planted.items():
        if kind == "close":  # the abstract (medical, higher priority) is kept, the replay copy dropped
            assert dropped.get(copy_id) == ("near_duplicate", original), copy_id
            assert original not in dropped
        elif kind == "distant":
            assert copy_id not in dropped
        elif kind == "paper":  # papers win over abstracts even with a shorter text
            assert dropped.get(original) == ("near_duplicate", copy_id), copy_id
            assert copy_id not in dropped
        else:  # chain: both guideline copies go to the abstract, the first through the second link
            assert dropped.get(copy_id) == ("near_duplicate", original), copy_id
    assert ledger.dropped["near_duplicate"] == sum(reason == "near_duplicate" for reason, _ in dropped.values())
    assert ledger.documents_in == len(documents) == ledger.kept + ledger.dropped_total


def test_clusters_are_the_components_of_the_exact_similarity_graph(stage, truth, corpus):
    output, _ = stage
    components, similarities = truth
    table = pq.read_table(output / "clusters")
    assert table.schema.equals(CLUSTER_SCHEMA, check_metadata=False)
    clusters = table.to_pylist()
    assert {frozenset(row["member_ids"]) for row in clusters} == components
    dropped = drops(output)
    for row in clusters:
        assert row["size"] == len(row["member_ids"]) and row["member_ids"] == sorted(row["member_ids"])
        assert row["kept_id"] in row["member_ids"] and row["kept_id"] not in dropped
        for member in row["member_ids"]:
            if member != row["kept_id"]:
                assert dropped[member] == ("near_duplicate", row["kept_id"])
    # The chains really are chains: their ends are below the threshold, yet in one cluster.
    _, planted = corpus
    chain = [copy for copy, (_, kind) in planted.items() if kind == "chain"]
    ends = [similarities.get((planted[copy][0], copy), 0.0) for copy in chain if copy.endswith("b")]
    assert min(ends) < THRESHOLD
    assert not (output / "_work").exists() and not (output / ".incomplete").exists()


def outcome_rows(spark, documents, partitions, shuffle_partitions):
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions))
    try:
        frame = spark.createDataFrame(pa.Table.from_batches([documents_to_batch(documents)]).to_pandas(),
                                      spark_schema(DOCUMENT_SCHEMA)).repartition(partitions)
        result = deduplicate(frame, DedupConfig())
        outcomes = sorted((row["id"], row["source"], row["drop_reason"] or "", row["drop_detail"] or "")
                          for row in result.outcomes.select("id", "source", "drop_reason", "drop_detail").collect())
        clusters = sorted((row["cluster_id"], row["kept_id"], tuple(row["member_ids"]))
                          for row in result.clusters.collect())
        return outcomes, clusters
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)


def test_identical_result_under_different_partition_counts(spark, stage, corpus):
    output, _ = stage
    documents, _ = corpus
    dropped = drops(output)
    expected_clusters = sorted((row["cluster_id"], row["kept_id"], tuple(row["member_ids"]))
                               for row in pq.read_table(output / "clusters").to_pylist())
    reversed_documents = list(reversed(documents))
    for partitions, shuffle_partitions, docs in ((7, 11, reversed_documents),):
        outcomes, clusters = outcome_rows(spark, docs, partitions, shuffle_partitions)
        assert clusters == expected_clusters
        assert {row[0]: (row[2], row[3]) for row in outcomes if row[2]} == dropped


@pytest.mark.parametrize("driver_rows", [None, -1])
def test_documents_read_from_files_in_slices_give_the_same_result(spark, stage, corpus, tmp_path, monkeypatch,
                                                                  driver_rows):
    """The stage's own path (Python tasks reading the input files) with the corpus in three files of small row
    groups, read in many slices: a document's key is its file and row, whatever the slicing; the rules and
    candidates on the driver (the default at this size) or in Spark (`driver_rows` -1)."""
    from gap_replay.dedup import job
    from gap_replay.dedup.job import Checkpoints, ParquetCorpus

    if driver_rows is not None:
        monkeypatch.setattr(job, "DRIVER_ROWS", driver_rows)

    output, _ = stage
    documents, _ = corpus
    files = []
    for index in range(3):
        files.append(str(tmp_path / f"part-{index}.parquet"))
        chunk = documents[index * len(documents) // 3:(index + 1) * len(documents) // 3]
        pq.write_table(pa.Table.from_batches([documents_to_batch(chunk)]), files[-1], row_group_size=37)
    sliced = ParquetCorpus(spark, files, part_mib=1, read_bytes=60_000)
    assert len(sliced.reading) > 6 and any(slices > 1 for part in sliced.reading for _, _, _, slices in part)
    save = Checkpoints(spark, str(tmp_path / "work"))
    result = deduplicate(sliced, DedupConfig(), checkpoint=save)
    rows = result.outcomes.select("id", "drop_reason", "drop_detail").collect()
    assert sorted(row["id"] for row in rows) == sorted(document["id"] for document in documents)
    assert {row["id"]: (row["drop_reason"], row["drop_detail"]) for row in rows if row["drop_reason"]} == drops(output)
    assert sorted((row["cluster_id"], tuple(row["member_ids"])) for row in result.clusters.collect()) == \
        sorted((row["cluster_id"], tuple(row["member_ids"])) for row in pq.read_table(output / "clusters").to_pylist())
    with pytest.raises(ValueError, match="checkpoints written to a directory"):
        deduplicate(sliced, DedupConfig())


def test_pair_texts_come_from_the_rows_of_their_keys():
    from gap_replay.dedup.near import pair_text_rows

    documents = pa.table({"_file": [2] * 4, "_row": [10, 11, 12, 13], "text": ["k", "l", "m", "n"]})
    ends = pa.table({"a": [1, 1, 5, 7], "b": [2, 3, 6, 8], NODE: [1, 3, 6, 8], "_file": [2] * 4, "_row": [11, 13, 9, 11]})
    rows = pair_text_rows(documents, ends).to_pylist()
    assert rows == [{"a": 1, "b": 2, NODE: 1, "text": "l"}, {"a": 1, "b": 3, NODE: 3, "text": "n"},
                    {"a": 7, "b": 8, NODE: 8, "text": "l"}]  # row 9 is another row group's
    assert pair_text_rows(documents.slice(0, 0), ends).num_rows == 0


def test_without_verification_candidates_count_as_duplicates(spark, stage, corpus):
    output, _ = stage
    documents, _ = corpus
    frame = spark.createDataFrame(pa.Table.from_batches([documents_to_batch(documents)]).to_pandas(),
                                  spark_schema(DOCUMENT_SCHEMA))
    result = deduplicate(frame, DedupConfig(verify=False))
    assert "verified_pairs" not in result.stats
    unverified = [set(row["member_ids"]) for row in result.clusters.collect()]
    # The candidate graph contains the verified one: each verified cluster lies inside a candidate cluster.
    for row in pq.read_table(output / "clusters").to_pylist():
        assert any(set(row["member_ids"]) <= cluster for cluster in unverified)


def union_find_components(edges) -> dict:
    """Each node of `edges` -> the smallest node of its connected component, by plain union-find."""
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {node: min(m for m in parent if find(m) == find(node)) for node in parent}


def test_connected_components_match_union_find(spark):
    rng = random.Random(3)
    chain = [(i, i + 1) for i in range(1000, 1060)]  # a long path
    star = [(5000, i) for i in range(5001, 5030)]
    scattered = [(rng.randrange(200), rng.randrange(200)) for _ in range(120)]
    edges = [edge for edge in chain + star + scattered if edge[0] != edge[1]]
    frame = spark.createDataFrame(edges, "a long, b long")
    membership, rounds = connected_components(frame, lambda df, name: df.localCheckpoint(eager=True))
    got = {row["node"]: row["root"] for row in membership.collect()}
    assert got == union_find_components(edges)
    assert rounds >= 2


def test_components_on_the_driver_match_union_find():
    rng = random.Random(5)
    for _ in range(20):
        edges = [(rng.randrange(-300, 300) * 7919, rng.randrange(-300, 300) * 7919) for _ in range(rng.randrange(1, 400))]
        edges += [(i, i + 1) for i in range(10**6, 10**6 + rng.randrange(1, 300))]  # a long path
        edges = [edge for edge in edges if edge[0] != edge[1]]
        nodes, roots = components_of_pairs(np.array([a for a, _ in edges]), np.array([b for _, b in edges]))
        assert dict(zip(nodes.tolist(), roots.tolist())) == union_find_components(edges)


def test_bucket_pairs_across_batches_and_large_buckets():
    rng = np.random.default_rng(4)
    keys = np.concatenate([rng.integers(0, 400, 1500), np.full(50, 7777), np.full(33, 8888), np.full(32, 9999)])
    nodes = rng.integers(-1000, 1000, len(keys))
    nodes[-3] = nodes[-4]  # a node twice in a bucket counts once: the bucket of 9999 has 31 members
    order = np.lexsort((nodes, keys))
    keys, nodes = keys[order], nodes[order]
    expected = set()
    for key in np.unique(keys).tolist():
        members = sorted(set(nodes[keys == key].tolist()))
        if len(members) <= PAIRWISE_BUCKET_LIMIT:
            expected |= set(itertools.combinations(members, 2))
        else:
            expected |= {(members[0], other) for other in members[1:]}
    for size in (1, 7, 64, len(keys)):
        batches = [pa.RecordBatch.from_arrays([pa.array(keys[i:i + size]), pa.array(nodes[i:i + size])],
                                              names=["key", NODE]) for i in range(0, len(keys), size)]
        got = [pair for batch in _bucket_pairs(iter(batches))
               for pair in zip(batch.column("a").to_pylist(), batch.column("b").to_pylist())]
        assert set(got) == expected and all(a < b for a, b in got)


def test_similarities_of_sorted_pair_texts():
    text = "one two three four five six seven eight nine ten"
    near = "one two three four five six seven eight nine eleven"
    rows = [  # (a, b, node, text) sorted by a, b, node
        (1, 2, 1, text), (1, 2, 2, near),
        (1, 3, 1, text), (1, 3, 3, "zz"), (1, 3, 3, text),  # node 3 twice: the larger text ("zz") counts
        (2, 5, 2, near),  # 5 has no text: left out
        (4, 6, 4, text), (4, 6, 6, text),
    ]
    for size in (1, 2, 3, len(rows)):
        batches = [pa.RecordBatch.from_pylist([dict(zip(("a", "b", NODE, "text"), row)) for row in rows[i:i + size]])
                   for i in range(0, len(rows), size)]
        got = {(a, b): value for batch in _similarity_function(5)(iter(batches))
               for a, b, value in zip(*(batch.column(name).to_pylist() for name in ("a", "b", "similarity")))}
        assert got == {(1, 2): pytest.approx(5 / 7), (1, 3): 0.0, (4, 6): 1.0}


def test_spark_components_and_clusters_agree_with_the_driver_path(spark, stage, corpus, monkeypatch):
    """Above the size limits every step stays in Spark (joins without broadcast, component rounds,
    clusters by aggregation): the same drops and clusters as the in-memory path of the stage fixture."""
    import gap_replay.dedup.job as job

    output, _ = stage
    documents, _ = corpus
    monkeypatch.setattr(job, "DRIVER_COMPONENT_PAIRS", 0)
    monkeypatch.setattr(job, "BROADCAST_ROWS", 0)
    frame = spark.createDataFrame(pa.Table.from_batches([documents_to_batch(documents)]).to_pandas(),
                                  spark_schema(DOCUMENT_SCHEMA))
    result = deduplicate(frame, DedupConfig())
    assert result.stats["component_rounds"] >= 1
    outcomes = result.outcomes.select("id", "drop_reason", "drop_detail").collect()
    assert {row["id"]: (row["drop_reason"], row["drop_detail"]) for row in outcomes if row["drop_reason"]} == drops(output)
    assert (sorted((row["cluster_id"], row["kept_id"], tuple(row["member_ids"])) for row in result.clusters.collect())
            == sorted((row["cluster_id"], row["kept_id"], tuple(row["member_ids"]))
                      for row in pq.read_table(output / "clusters").to_pylist()))
