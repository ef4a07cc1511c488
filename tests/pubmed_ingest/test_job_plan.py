"""The shape of the pubmed stage's Spark plan at scale: the decisions are taken on narrow rows and the text
crosses no exchange (it meets its decision in the Python tasks that write the outcomes); no exchange piles
rows into one partition, even with adaptive execution off (which
used to put the abstracts without a PMCID, most of them, into a single partition); Python workers get
bounded Arrow batches and one tokenizer thread each; papers are scored column by column."""

from __future__ import annotations

import io
import tarfile
from contextlib import contextmanager
from datetime import date

import pyarrow as pa
import pytest
from pyspark import StorageLevel

from gap_replay.core.ingest import RANKED_OUTCOME_SCHEMA, expand_sized_inputs, files_dataframe, parse_files
from gap_replay.core.spark import spark_schema
from gap_replay.pubmed_ingest.job import SUFFIXES, input_parser, pubmed_decisions
from gap_replay.pubmed_ingest.settings import PubmedConfig
from gap_replay.pubmed_ingest.upsampling import UpsamplingRules, paper_types, score_batch, upsampling
from tests.pubmed_ingest.test_jats import article

ABSTRACTS, PAPERS = 900, 120
WORDS = ("patients", "trial", "outcome", "cohort", "dose", "risk", "therapy", "clinical", "hospital", "study")


def filler(seed: int, words: int) -> str:
    return " ".join(WORDS[(seed * 7 + index * 3) % len(WORDS)] for index in range(words)) + "."


def medline_record(pmid: int, pmcid: str | None, version: int = 1) -> str:
    ids = f'<ArticleId IdType="pubmed">{pmid}</ArticleId>' + (f'<ArticleId IdType="pmc">{pmcid}</ArticleId>'
                                                              if pmcid else "")
    return (f'<PubmedArticle><MedlineCitation><PMID Version="{version}">{pmid}</PMID><Article><Journal><Title>J Test'
            f'</Title><JournalIssue><PubDate><Year>2020</Year></PubDate></JournalIssue></Journal><ArticleTitle>Title '
            f'{pmid}.</ArticleTitle><Abstract><AbstractText>{filler(pmid, 120)}</AbstractText></Abstract>'
            f'<PublicationTypeList><PublicationType>Review</PublicationType></PublicationTypeList></Article>'
            f'</MedlineCitation><PubmedData><ArticleIdList>{ids}</ArticleIdList></PubmedData></PubmedArticle>')


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """900 abstracts (one in ten with a PMCID) in two baseline files and an update (revisions, deletions), and
    a package of 120 papers: most with a PMID, some matched to their abstract by PMCID only."""
    root = tmp_path_factory.mktemp("scale")
    head = '<?xml version="1.0" encoding="utf-8"?>\n<PubmedArticleSet>\n'
    pmcid = {pmid: f"PMC{500000 + pmid}" for pmid in range(1, ABSTRACTS + 1) if pmid % 10 == 0}
    for number, pmids in enumerate((range(1, 451), range(451, ABSTRACTS + 1)), start=1):
        (root / f"pubmed26n{number:04d}.xml").write_text(
            head + "\n".join(medline_record(pmid, pmcid.get(pmid)) for pmid in pmids) + "\n</PubmedArticleSet>\n")
    deleted = "".join(f'<PMID Version="1">{pmid}</PMID>' for pmid in range(5, ABSTRACTS, 97))
    (root / "pubmed26n0003.xml").write_text(
        head + "\n".join(medline_record(pmid, pmcid.get(pmid), 2) for pmid in range(3, ABSTRACTS, 50))
        + f"\n<DeleteCitation>{deleted}</DeleteCitation>\n</PubmedArticleSet>\n")
    with tarfile.open(root / "oa_comm_xml.PMC000xxxxxx.baseline.tar.gz", "w:gz") as package:
        for number in range(PAPERS):
            pmid = number * 7 + 1
            if pmid in pmcid and number % 2:  # matched by PMCID only
                ids = f'<article-id pub-id-type="pmc">{pmcid[pmid][3:]}</article-id>'
            elif number % 5 == 4:  # no PMID, a PMCID no abstract has
                ids = f'<article-id pub-id-type="pmc">{900000 + number}</article-id>'
            else:
                ids = (f'<article-id pub-id-type="pmid">{pmid}</article-id>'
                       f'<article-id pub-id-type="pmc">{700000 + number}</article-id>')
            data = article("".join(f"<p>{filler(number + k, 300)}</p>" for k in range(3)), ids=ids)
            member = tarfile.TarInfo(f"oa/PMC{number}.nxml")
            member.size, member.mtime = len(data), 1
            package.addfile(member, io.BytesIO(data))
    (root / "citations.csv").write_text("id,citations\n" + "".join(
        f"pmcid:PMC{700000 + number},{number * 3}\n" for number in range(0, PAPERS, 3))
        + "".join(f"pmid:{number * 7 + 1},{number}\n" for number in range(1, PAPERS, 4)))
    return root


@contextmanager
def conf(spark, **values):
    saved = {key: spark.conf.get(key, None) for key in values}
    for key, value in values.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def ranked_rows(spark, root):
    files = expand_sized_inputs([str(root)], SUFFIXES)
    frame = files_dataframe(spark, files, 2)
    return frame.mapInArrow(parse_files(input_parser({}), with_uri=True), spark_schema(RANKED_OUTCOME_SCHEMA)) \
                .persist(StorageLevel.DISK_ONLY)


def plan_nodes(plan):
    """Every node of a physical plan (an adaptive plan's current one), depth first."""
    if plan.getClass().getSimpleName() == "AdaptiveSparkPlanExec":
        plan = plan.executedPlan()
    yield plan
    children = plan.children()
    for index in range(children.size()):
        yield from plan_nodes(children.apply(index))


def shuffles(outcomes) -> list:
    return [node for node in plan_nodes(outcomes._jdf.queryExecution().executedPlan())
            if node.getClass().getSimpleName() == "ShuffleExchangeExec"]


def columns(node) -> set[str]:
    output = node.output()
    return {output.apply(index).name() for index in range(output.size())}


# (settings, most exchanges): versions by id (2), PMID (1), PMCID (1); the citation table's joins (3 here) and,
# for if_paper_kept, the PMID pass again after scoring (1). The stage took 12 and 16 when it shuffled the text.
SETTINGS = {
    "always": ({}, 4),
    "if_paper_kept, citations": ({"supersede_abstracts": "if_paper_kept", "citations": "citations.csv"}, 8),
}


@pytest.mark.parametrize("variant", sorted(SETTINGS))
def test_the_text_crosses_no_exchange_and_no_exchange_is_skewed(spark, inputs, variant):
    pubmed, most = dict(SETTINGS[variant][0]), SETTINGS[variant][1]
    if "citations" in pubmed:
        pubmed["citations"] = str(inputs / pubmed["citations"])
    # As at scale: no side small enough to broadcast, adaptive execution off (no skew handling to hide behind).
    with conf(spark, **{"spark.sql.adaptive.enabled": "false", "spark.sql.shuffle.partitions": "8",
                        "spark.sql.autoBroadcastJoinThreshold": "-1"}):
        ranked = ranked_rows(spark, inputs)
        try:
            decisions = pubmed_decisions(spark, ranked, PubmedConfig(**pubmed))
            assert "text" not in decisions.columns
            exchanges = shuffles(decisions)
            assert len(exchanges) <= most, [node.toString().splitlines()[0] for node in exchanges]
            # The decisions shuffle ids, ranks and metadata, never the text.
            assert not [node for node in exchanges if "text" in columns(node)]
            counts = []
            for node in exchanges:
                sizes = [part.size() for part in node.execute().toJavaRDD().glom().collect()]
                counts.append(sizes)
                fair = sum(sizes) / len(sizes)
                assert max(sizes) <= 2 * fair + 10, (node.toString().splitlines()[0], sizes)
            # Every record of the stage reached the end: the final exchanges each held all of them.
            total = decisions.count()
            assert total >= ABSTRACTS + PAPERS and any(sum(sizes) == total for sizes in counts)
            final = [len(part) for part in decisions.rdd.glom().collect()]
            assert max(final) <= 2 * sum(final) / len(final) + 10, final
        finally:
            ranked.unpersist()


def test_workers_get_byte_bounded_arrow_batches_and_one_tokenizer_thread(spark):
    from pyspark.sql import functions as F

    def batches(stream):
        import os

        for batch in stream:
            yield pa.RecordBatch.from_pylist([{"rows": batch.num_rows, "bytes": batch.nbytes,
                                               "rayon": os.environ.get("RAYON_NUM_THREADS"),
                                               "parallel": os.environ.get("TOKENIZERS_PARALLELISM")}])

    texts = spark.range(0, 24, numPartitions=1).select(F.repeat(F.lit("x"), 2 << 20).alias("text"))
    seen = texts.mapInArrow(batches, "rows long, bytes long, rayon string, parallel string").collect()
    limit = int(spark.conf.get("spark.sql.execution.arrow.maxBytesPerBatch"))
    assert limit <= 64 << 20
    # 24 texts of 2 MiB: not the 10,000 rows of maxRecordsPerBatch in one batch of 48 MiB.
    assert sum(row["rows"] for row in seen) == 24 and len(seen) > 1
    assert all(row["bytes"] <= limit + (2 << 20) for row in seen)
    assert {(row["rayon"], row["parallel"]) for row in seen} == {("1", "false")}


def test_score_batch_agrees_with_upsampling_row_by_row():
    mesh = pa.list_(pa.struct([pa.field("descriptor", pa.string()), pa.field("major_topic", pa.bool_())]))
    rows = [
        {"publication_types": ["Journal Article", "Meta-Analysis"], "keywords": None, "journal": "The Lancet",
         "year": 2022, "cpy": 5.0, "mesh_terms": [{"descriptor": "Humans", "major_topic": False}]},
        {"publication_types": None, "keywords": ["Practice Guideline"], "journal": None, "year": 2010,
         "cpy": None, "mesh_terms": None},
        {"publication_types": ["Review"], "keywords": [], "journal": "x", "year": None, "cpy": 0.1,
         "mesh_terms": [{"descriptor": "Mice", "major_topic": True}, {"descriptor": "Animals", "major_topic": False}]},
        {"publication_types": ["review-article"], "keywords": ["Case Reports"], "journal": None, "year": 2023,
         "cpy": 1.0, "mesh_terms": []},
    ]
    schema = pa.schema([("publication_types", pa.list_(pa.string())), ("keywords", pa.list_(pa.string())),
                        ("journal", pa.string()), ("year", pa.int32()), ("cpy", pa.float64()), ("mesh_terms", mesh)])
    batch = pa.RecordBatch.from_pylist(rows, schema=schema)
    rules = UpsamplingRules(date(2023, 8, 1), frozenset({"the lancet"}), (0.5, 4.0))
    expected = [upsampling(paper_types(row["publication_types"], row["keywords"]),
                           [term["descriptor"] for term in row["mesh_terms"] or ()], row["journal"], row["year"],
                           row["cpy"], rules) for row in rows]
    assert score_batch(batch, [0, 1, 2, 3], "cpy", rules) == expected
    assert score_batch(batch.slice(1), [1, 2], "cpy", rules) == expected[2:]  # a slice's offsets
    assert expected[2].excluded == "MeSH Animals" and expected[0].score == 1 + 1 + 1 + 1
