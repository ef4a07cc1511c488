"""`gap-replay guidelines compare`: our guidelines output against a reference file in the format of
MEDITRON's published ``epfl-llm/guidelines`` (written here, all content invented; no network)."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gap_replay.cli import EXIT_USAGE, main
from gap_replay.core.errors import InputError
from gap_replay.core.schema import DOCUMENT_SCHEMA, documents_to_batch, make_document
from gap_replay.core.shards import ShardWriter
from gap_replay.guidelines_scraper.compare import (
    Article,
    compare,
    format_report,
    jaccard,
    pair_articles,
    read_our_documents,
    read_reference,
    shingles,
    similarity_summary,
    url_key,
)
from gap_replay.guidelines_scraper.extract import document_id

SCREENING = ("Adults should be screened for raised blood pressure at every visit to a health facility, and a raised "
             "reading should be confirmed on a second day before any treatment is started.")
TREATMENT = ("Treatment should start with a first-line medicine at low dose, and the dose should be increased or a "
             "second medicine added when the target is not reached after one month of treatment.")
FOLLOW_UP = ("Adults under treatment should be reviewed every three months, with a measurement of blood pressure, "
             "a review of adherence and advice on salt, alcohol, activity and smoking.")
NUTRITION = ("Children admitted with severe acute malnutrition should receive therapeutic milk in small frequent "
             "feeds, with their weight recorded every day until they reach the discharge criterion.")
STROKE = ("Adults with a suspected stroke should have brain imaging as soon as possible, and thrombolysis should be "
          "considered within four and a half hours of the onset of symptoms when haemorrhage is excluded.")

# The reference in the published format: cco without url or title (as the dataset has it), nice
# with both, wikidoc with a url, pubmed (a source the guidelines stage does not crawl).
REFERENCE = [
    {"id": "r-cco-1", "source": "cco", "title": None, "url": None, "clean_text": f"# Screening\n\n{SCREENING}",
     "raw_text": SCREENING, "overview": None},
    {"id": "r-cco-2", "source": "cco", "title": None, "url": None, "clean_text": NUTRITION, "raw_text": NUTRITION,
     "overview": None},
    {"id": "r-nice-1", "source": "NICE", "title": "Hypertension in adults", "url": "http://www.nice.org.uk/guidance/ng136/",
     "clean_text": f"{TREATMENT}\n\n{FOLLOW_UP}", "raw_text": "", "overview": "Diagnosis and management"},
    {"id": "r-nice-2", "source": "nice", "title": "Stroke and TIA", "url": "https://www.nice.org.uk/guidance/ng128",
     "clean_text": STROKE, "raw_text": "", "overview": ""},
    {"id": "r-wikidoc-1", "source": "wikidoc", "title": "Hypertension", "url": "https://www.wikidoc.org/index.php/Hypertension",
     "clean_text": f"{SCREENING} {TREATMENT}", "raw_text": "", "overview": None},
    {"id": "r-pubmed-1", "source": "pubmed", "title": "A guideline in PubMed", "url": "https://pubmed.ncbi.nlm.nih.gov/1/",
     "clean_text": FOLLOW_UP, "raw_text": "", "overview": "An abstract"},
]


def guideline(tag: str, url: str, title: str, text: str) -> dict:
    return make_document(id=document_id(tag, url), source="guidelines", subset=tag, title=title,
                         text=f"{title}\n\n{text}", url=url, license="open")


OURS = [
    guideline("cco", "https://www.cancercareontario.ca/en/guidelines-advice/types-of-cancer/2121", "Screening",
              SCREENING),                                                                   # by text
    guideline("nice", "https://www.nice.org.uk/guidance/ng136", "Hypertension in adults: diagnosis and management",
              f"{TREATMENT}\n\n{FOLLOW_UP}"),                                               # by url
    guideline("nice", "https://www.nice.org.uk/guidance/ng128/chapter/Recommendations", "Stroke and TIA",
              STROKE),                                                                      # by title
    guideline("nice", "https://www.nice.org.uk/guidance/ng999", "A new guideline", NUTRITION),  # ours only
    guideline("wikidoc", "https://wikidoc.org/index.php/Hypertension", "Hypertension", STROKE),  # by url, unlike
    make_document(id="replay:x:1", source="replay", subset="x", text=SCREENING),           # not a guideline
]


def write_output(directory, documents) -> None:
    """A stage output as the guidelines stage writes it: document shards under DIR/data/."""
    (directory / "data").mkdir(parents=True)
    writer = ShardWriter(str(directory / "data" / "part-00000.parquet"), DOCUMENT_SCHEMA)
    writer.write(pa.Table.from_batches([documents_to_batch(documents)]))
    writer.close()
    (directory / "_SUCCESS").write_text("{}")


def write_jsonl(path, records, compress=False) -> None:
    text = "".join(json.dumps(record) + "\n" for record in records)
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())


@pytest.fixture
def files(tmp_path):
    write_output(tmp_path / "guidelines", OURS)
    write_jsonl(tmp_path / "open_guidelines.jsonl", REFERENCE)
    return tmp_path


def test_urls_match_whatever_scheme_www_fragment_and_trailing_slash():
    assert url_key("http://www.nice.org.uk/guidance/ng136/") == url_key("https://nice.org.uk/guidance/ng136#recs") \
        == url_key("HTTPS://WWW.NICE.ORG.UK/guidance/ng136") == "nice.org.uk/guidance/ng136"
    assert url_key("https://nice.org.uk/guidance/ng136?page=2") != url_key("https://nice.org.uk/guidance/ng136")
    assert url_key(None) is None and url_key("  ") is None


def test_shingle_jaccard():
    assert jaccard(shingles(SCREENING), shingles(SCREENING.upper().replace(",", " ;"))) == 1.0
    assert jaccard(shingles(SCREENING), shingles(STROKE)) == 0.0
    half = jaccard(shingles(SCREENING), shingles(f"{SCREENING} {TREATMENT}"))
    assert 0.4 < half < 0.6
    assert shingles("too short") == shingles("Too, short!") and len(shingles("too short")) == 1
    assert similarity_summary([]) is None
    assert similarity_summary([1.0, 0.0, 0.5, 0.25]) == {"min": 0.0, "p10": 0.0, "median": 0.375, "mean": 0.4375}


def test_pairs_by_url_then_title_then_text_one_to_one():
    reference = [Article("r1", "nice", "Same title", "https://x.org/a", SCREENING),
                 Article("r2", "nice", "Same title", None, TREATMENT),
                 Article("r3", "nice", None, None, STROKE)]
    ours = [Article("o1", "nice", "Same title", "http://www.x.org/a/", SCREENING),
            Article("o2", "nice", "Same title", "https://x.org/b", TREATMENT),
            Article("o3", "nice", "Other", "https://x.org/c", f"Stroke. {STROKE}"),
            Article("o4", "nice", "Other", "https://x.org/d", NUTRITION)]
    pairs, reference_left, ours_left = pair_articles(reference, ours)
    assert [(pair.reference.id, pair.ours.id, pair.matched_by) for pair in pairs] == [
        ("r1", "o1", "url"), ("r2", "o2", "title"), ("r3", "o3", "text")]
    assert pairs[0].similarity == 1.0 and 0.8 < pairs[2].similarity < 1.0
    assert reference_left == [] and [article.id for article in ours_left] == ["o4"]


def test_report_per_source(files):
    reference = read_reference(str(files / "open_guidelines.jsonl"))
    ours = read_our_documents([str(files / "guidelines")])
    assert len(ours) == 5  # the replay document is no guideline
    report = compare(reference, ours, worst=2, known_sources=["cco", "nice", "wikidoc"])
    sources = report["sources"]
    assert list(sources) == ["cco", "nice", "pubmed", "wikidoc"]  # "NICE" is our tag nice
    counts = {tag: (entry["reference"], entry["ours"], entry["matched"], entry["ours_not_in_reference"],
                    entry["reference_not_in_ours"]) for tag, entry in sources.items()}
    assert counts == {"cco": (2, 1, 1, 0, 1), "nice": (2, 3, 2, 1, 0), "pubmed": (1, 0, 0, 0, 1),
                      "wikidoc": (1, 1, 1, 0, 0)}
    assert sources["cco"]["matched_by"] == {"url": 0, "title": 0, "text": 1}
    assert sources["nice"]["matched_by"] == {"url": 1, "title": 1, "text": 0}
    assert sources["cco"]["reference_with_url"] == 0 and sources["nice"]["reference_with_title"] == 2
    assert [article["id"] for article in sources["cco"]["reference_not_in_ours_articles"]] == ["r-cco-2"]
    assert [article["url"] for article in sources["nice"]["ours_not_in_reference_articles"]] == [
        "https://www.nice.org.uk/guidance/ng999"]
    assert sources["pubmed"]["crawled_by_us"] is False and sources["nice"]["crawled_by_us"] is True
    assert sources["wikidoc"]["similarity"] == {"min": 0.0, "p10": 0.0, "median": 0.0, "mean": 0.0}
    assert 0.8 < sources["nice"]["similarity"]["min"] < 1.0  # our text starts with the title
    total = report["total"]
    assert (total["reference"], total["ours"], total["matched"]) == (6, 5, 4)
    assert [pair["reference"]["id"] for pair in total["worst"]] == ["r-wikidoc-1", "r-nice-1"]  # longest title
    assert total["worst"][0]["ours"]["url"] == "https://wikidoc.org/index.php/Hypertension"


def test_parquet_and_gzip_references_read_the_same(files):
    pq.write_table(pa.Table.from_pylist(REFERENCE), files / "reference.parquet")
    write_jsonl(files / "reference.jsonl.gz", REFERENCE, compress=True)
    expected = read_reference(str(files / "open_guidelines.jsonl"))
    assert read_reference(str(files / "reference.parquet")) == expected
    assert read_reference(str(files / "reference.jsonl.gz")) == expected


def test_command_prints_the_table_and_writes_json(files, capsys):
    code = main(["guidelines", "compare", "--reference", str(files / "open_guidelines.jsonl"),
                 "--input", str(files / "guidelines"), "--json", str(files / "report.json"), "--worst", "1"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["source", "reference", "ours", "matched"]
    rows = {line.split()[0]: line.split() for line in lines[2:7]}
    assert rows["nice"][1:9] == ["2", "3", "2", "1", "1", "0", "1", "0"]
    assert rows["pubmed"][1] == "*" and rows["total"][1:4] == ["6", "5", "4"]
    assert "* not a source the guidelines stage crawls" in out
    assert "least similar pairs:" in out and "https://wikidoc.org/index.php/Hypertension" in out
    report = json.loads((files / "report.json").read_text())
    assert report["reference"] == str(files / "open_guidelines.jsonl") and len(report["total"]["worst"]) == 1
    assert report["sources"]["nice"]["matched"] == 2
    assert format_report(report) == out.rstrip("\n")


@pytest.mark.parametrize(("content", "message"), [
    (None, "reference file not found"),
    (b'{"id": "1", "source": "cco", "clean_text": "x"}\n{"id": "2", "source"\n', "line 2: not JSON"),
    (b'["not", "an", "object"]\n', "line 1: not a JSON object"),
    (b'{"id": "1", "source": "cco", "text": "x"}\n', "reference record 1 has no clean_text"),
    (b"PAR1 but not really Parquet", "is not readable Parquet"),
])
def test_a_bad_reference_is_one_line_and_exit_2(files, capsys, content, message):
    path = files / "reference.jsonl"
    if content is not None:
        path.write_bytes(content)
    code = main(["guidelines", "compare", "--reference", str(path), "--input", str(files / "guidelines")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    errors = [line for line in err.splitlines() if line.startswith("gap-replay: error:")]
    assert len(errors) == 1 and message in errors[0], err
    with pytest.raises(InputError):
        read_reference(str(path))


def test_a_missing_input_is_one_line_and_exit_2(files, capsys):
    code = main(["guidelines", "compare", "--reference", str(files / "open_guidelines.jsonl"),
                 "--input", str(files / "nope")])
    assert code == EXIT_USAGE and f"input not found: {files / 'nope'}" in capsys.readouterr().err
