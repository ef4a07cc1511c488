"""The filter's pure core: the order of the checks, document dicts and Arrow batches."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gap_replay.filters.core import DocumentFilter, filter_batch, filter_documents
from gap_replay.filters.langid import LanguageIdentifier
from gap_replay.filters.settings import FilterConfig
from gap_replay.core.outcome import Drop
from gap_replay.core.schema import (DOCUMENT_SCHEMA, DROP_DETAIL, DROP_REASON, OUTCOME_SCHEMA, documents_to_batch,
                               make_document)
from tests.filters.test_quality import CRAFTED, GOOD

FRENCH = ("L'hypertension artérielle est un facteur de risque majeur d'accident vasculaire cérébral. Dans cet essai "
          "randomisé, des adultes ont reçu des conseils sur leur mode de vie pendant douze mois.")


@pytest.fixture(scope="module")
def identifier(lid_model):
    return LanguageIdentifier(lid_model)


def documents():
    return [
        make_document(id="pmid:1", source="pubmed_abstracts", text=GOOD, pmid=1,
                      mesh_terms=[{"descriptor": "Hypertension", "major_topic": True}]),
        make_document(id="pmid:2", source="pubmed_abstracts", text=FRENCH),
        make_document(id="pmid:3", source="pubmed_abstracts", text="Hypertension in adults."),
        make_document(id="guideline:x:1", source="guidelines", text=CRAFTED["boilerplate_lines"][0]),
        make_document(id="pmid:4", source="pubmed_abstracts", text="Tension artérielle."),  # short and French
    ]


def test_checks_in_order_and_reasons(identifier):
    kept, french, short, boilerplate, short_french = filter_documents(documents(), identifier,
                                                                      FilterConfig(min_words=10))
    assert kept["language"] == "en" and kept["language_score"] > 0.9 and kept["quality_score"] is None
    assert french == Drop("pmid:2", "non_english", french.detail, "pubmed_abstracts")
    assert french.detail.startswith("fr ")
    assert short.reason == "too_short" and short.detail == "3 words < 10"
    assert boilerplate.reason == "boilerplate_lines" and boilerplate.source == "guidelines"
    assert short_french.reason == "too_short"  # too short to tell its language: reported as short


def test_a_rule_failure_on_a_foreign_text_is_reported_as_non_english(identifier):
    (outcome,) = filter_documents([make_document(id="x", source="replay", text="\n".join([FRENCH] * 5))], identifier)
    assert outcome.reason == "non_english"


def test_arrow_batches_keep_every_column_and_add_the_outcome(identifier):
    batch = documents_to_batch(documents())
    out = filter_batch(batch, DocumentFilter(identifier, FilterConfig(min_words=10)))
    assert out.schema.equals(OUTCOME_SCHEMA) and out.num_rows == batch.num_rows
    assert out.column(DROP_REASON).to_pylist() == [None, "non_english", "too_short", "boilerplate_lines", "too_short"]
    assert out.column(DROP_DETAIL).to_pylist()[2] == "3 words < 10"
    assert out.column("language").to_pylist()[:2] == ["en", "fr"]
    assert out.column("mesh_terms").equals(batch.column("mesh_terms"))  # untouched, not round-tripped via Python
    kept = out.filter(pc.is_null(out.column(DROP_REASON)))
    assert kept.column("id").to_pylist() == ["pmid:1"]


def test_arrow_batches_as_spark_hands_them_over(identifier):
    # Spark gives every field as nullable and float columns as float32: cast where needed, not refused.
    nullable = pa.schema([field.with_nullable(True) for field in DOCUMENT_SCHEMA])
    batch = pa.RecordBatch.from_pylist(documents()[:1], schema=nullable)
    out = filter_batch(batch, DocumentFilter(identifier))
    assert out.column(DROP_REASON).to_pylist() == [None]
