"""`gap-replay quality train`: a fastText classifier from shard directories, held-out precision and recall,
deterministic split and model; the scorer's probabilities."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gap_replay.filters.quality_model import (POSITIVE, QualityScorer, quality_text, run_quality_train, split_key,
                                   train_quality_model)
from gap_replay.stages import load_config
from gap_replay.core.runner import RunContext
from gap_replay.core.schema import DOCUMENT_SCHEMA, make_document
from gap_replay.core.shards import InputError

MEDICAL = {
    "subject": ["Adults with hypertension", "Children with asthma", "Patients with type 2 diabetes",
                "Older people at risk of falls", "Women with gestational diabetes",
                "People with chronic kidney disease",
                "Patients with community-acquired pneumonia", "Adults with atrial fibrillation"],
    "verb": ["should be offered", "should receive", "may benefit from", "should be assessed for",
             "should be referred for", "need regular review of"],
    "object": ["ambulatory blood pressure monitoring", "inhaled corticosteroids", "a structured education programme",
               "a multifactorial risk assessment", "anticoagulation after a bleeding risk assessment",
               "annual measurement of kidney function", "empirical antibiotic treatment within four hours",
               "a medication review by a pharmacist"],
    "tail": ["in primary care.", "at diagnosis and every year.", "according to local protocols.",
             "unless contraindicated.", "after discussing the benefits and harms.", "within two weeks of referral."],
}
GENERAL = {
    "subject": ["The home team", "Our favourite bakery", "The new smartphone", "The city council",
                "The film festival", "This summer's hit song", "The quarterback", "The recipe"],
    "verb": ["won", "sold out", "announced", "released", "celebrated", "promised"],
    "object": ["the championship game", "a chocolate layer cake", "a larger battery and a brighter screen",
               "a new bicycle lane downtown", "three awards for best picture", "a remix with a famous rapper",
               "a record number of touchdowns", "extra garlic and fresh basil"],
    "tail": ["last weekend.", "before the holidays.", "to the delight of fans.", "after a long wait.",
             "in front of a huge crowd.", "with a surprising twist."],
}


def generate(pattern: dict, count: int, seed: int) -> list[str]:
    generator = random.Random(seed)
    texts = []
    for _ in range(count):
        size = generator.randint(4, 6)  # no subject, object or ending twice in a text: little repetition
        parts = [generator.sample(pattern[part], size) for part in ("subject", "verb", "object", "tail")]
        texts.append(" ".join(" ".join(words) for words in zip(*parts)))
    return texts


def write_shard(directory: Path, documents: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(documents, schema=DOCUMENT_SCHEMA), directory / "part-00000.parquet")
    return directory


@pytest.fixture(scope="module")
def training_sets(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("quality")
    positives = [make_document(id=f"guideline:test:{i}", source="guidelines", text=text)
                 for i, text in enumerate(generate(MEDICAL, 150, 1))]
    papers = generate(MEDICAL, 60, 2)
    positives += [make_document(id=f"pmcid:PMC{i}", source="pubmed_papers", text=text,
                                upsampling_score=1.5 if i % 2 else 0.5) for i, text in enumerate(papers)]
    positives += [make_document(id=f"pmid:{i}", source="pubmed_abstracts", text=text)  # not a default positive
                  for i, text in enumerate(generate(MEDICAL, 20, 3))]
    negatives = [make_document(id=f"replay:test:{i}", source="replay", text=text)
                 for i, text in enumerate(generate(GENERAL, 200, 4))]
    return write_shard(root / "positive", positives), write_shard(root / "negative", negatives)


def small_model_config(*overrides: str):
    return load_config(overrides=["filter.quality_dim=16", "filter.quality_buckets=20000", "filter.quality_epochs=5",
                                  "filter.quality_validation_fraction=0.2", *overrides])


@pytest.fixture(scope="module")
def trained(training_sets, tmp_path_factory) -> tuple[Path, dict]:
    positive, negative = training_sets
    output = tmp_path_factory.mktemp("model") / "quality.bin"
    report = train_quality_model([str(positive)], [str(negative)], output, small_model_config().filter)
    return output, report


def test_training_reports_precision_and_recall(trained):
    output, report = trained
    assert output.is_file() and report["model"] == str(output)
    assert report["precision"] >= 0.9 and report["recall"] >= 0.9
    positive, negative = report["documents"]["positive"], report["documents"]["negative"]
    # guidelines (150) and the papers with upsampling_score >= 1 (30); abstracts and low-score papers left out
    assert positive["train"] + positive["validation"] == 180
    assert negative["train"] + negative["validation"] == 200
    assert 0.1 < positive["validation"] / 180 < 0.3  # quality_validation_fraction = 0.2
    assert report["true_positive"] + report["false_negative"] == positive["validation"]


def test_training_is_deterministic(training_sets, trained, tmp_path):
    positive, negative = training_sets
    output, report = trained
    again = train_quality_model([str(positive)], [str(negative)], tmp_path / "again.bin", small_model_config().filter)
    assert again["documents"] == report["documents"] and again["precision"] == report["precision"]
    assert (tmp_path / "again.bin").read_bytes() == output.read_bytes()


def test_the_split_and_the_cap_go_by_a_seeded_hash_of_the_id(training_sets, tmp_path):
    assert split_key(42, "pmid:1") == split_key(42, "pmid:1") != split_key(43, "pmid:1")
    positive, negative = training_sets
    report = train_quality_model([str(positive)], [str(negative)], tmp_path / "capped.bin",
                                 small_model_config("filter.quality_max_documents=50").filter)
    assert sum(report["documents"]["positive"].values()) == 50
    assert sum(report["documents"]["negative"].values()) == 50


def test_scores_are_probabilities_of_the_positive_label(trained):
    output, _ = trained
    scorer = QualityScorer(output)
    medical, general = generate(MEDICAL, 5, 99), generate(GENERAL, 5, 99)
    scores = scorer.score(medical + general)
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert min(scores[:5]) > 0.5 > max(scores[5:])
    assert POSITIVE in scorer.model.get_labels()
    line = quality_text("# Title\n\nLine one.\nLine [BIB_REF]two[/BIB_REF].")
    assert "\n" not in line and line.split() == ["Title", "Line", "one.", "Line", "two", "."]


def test_run_quality_train_prints_the_report(training_sets, tmp_path, capsys):
    positive, negative = training_sets
    context = RunContext(small_model_config(), stream=io.StringIO())
    report = run_quality_train(context, [str(positive)], [str(negative)], str(tmp_path / "m.bin"))
    printed = capsys.readouterr().out
    assert f"precision {report['precision']:.3f}" in printed and f"recall {report['recall']:.3f}" in printed


def test_an_empty_class_is_an_input_error(training_sets, tmp_path):
    positive, negative = training_sets
    with pytest.raises(InputError, match="no negative training documents"):
        train_quality_model([str(positive)], [str(positive)], tmp_path / "x.bin", small_model_config().filter)
    assert not (tmp_path / "x.bin").exists()


def test_cli_quality_train(training_sets, tmp_path, capsys):
    from gap_replay.cli import main

    positives, negatives = training_sets
    model = tmp_path / "cli-quality.bin"
    settings = ["filter.quality_dim=16", "filter.quality_buckets=20000", "filter.quality_epochs=5",
                "filter.quality_validation_fraction=0.2"]
    overrides = [item for setting in settings for item in ("--set", setting)]
    code = main(["quality", "train", "--positive", str(positives), "--negative", str(negatives),
                 "--output", str(model), *overrides])
    assert code == 0 and model.is_file()
    assert "recall" in capsys.readouterr().out
