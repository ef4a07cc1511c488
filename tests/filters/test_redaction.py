"""Personal data redaction in the filter stage: kept documents only, counts in extra and in the ledger, a
setting per kind, and a changed setting makes a new output (the stage fingerprint holds the settings)."""

from __future__ import annotations

import json

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from gap_replay.core.outcome import Drop
from gap_replay.core.ledger import StageLedger
from gap_replay.core.runner import RunContext
from gap_replay.core.schema import DROP_REASON, OUTCOME_SCHEMA, documents_to_batch, make_document
from gap_replay.filters.core import DocumentFilter, filter_batch, filter_documents
from gap_replay.filters.job import run_filter
from gap_replay.filters.langid import LanguageIdentifier
from gap_replay.filters.settings import FilterConfig
from gap_replay.stages import load_config
from tests.filters.test_core import FRENCH
from tests.filters.test_quality import GOOD
from tests.filters.test_quality_model import write_shard
from tests.gap_replay.test_redaction import member_list

CONTACT = " Requests for the data: cohort-team@example.org or +41 22 555 01 23; server 203.0.113.45."


@pytest.fixture(scope="module")
def identifier(lid_model):
    return LanguageIdentifier(lid_model)


def documents() -> list[dict]:
    return [
        make_document(id="pmid:1", source="pubmed_abstracts", text=GOOD + CONTACT, pmid=1,
                      extra={"pmid_version": 1}),
        make_document(id="pmid:2", source="pubmed_abstracts", text=GOOD, pmid=2),
        make_document(id="pmid:3", source="pubmed_abstracts", text=FRENCH + " Écrire à equipe@example.fr."),
        make_document(id="guideline:who:1", source="guidelines", text=GOOD + "\n\n" + member_list()),
    ]


def test_kept_documents_are_redacted_with_their_counts_in_extra(identifier):
    kept, plain, french, members = filter_documents(documents(), identifier)
    assert kept["text"] == GOOD + " Requests for the data: email@example.com or +1 202 555 0100; server 192.0.2.1."
    assert json.loads(kept["extra"]) == {"pmid_version": 1, "redacted": {"email": 1, "ip": 1, "phone": 1}}
    assert plain["text"] == GOOD and plain["extra"] is None
    assert isinstance(french, Drop) and french.reason == "non_english"  # the checks judged the text as it came
    assert json.loads(members["extra"])["redacted"] == {"email": 13, "phone": 14}
    assert "@example.org" not in members["text"] and "Dr Amara Okoye" in members["text"]


def test_arrow_batches_replace_text_and_extra_of_the_rows_redacted(identifier):
    batch = documents_to_batch(documents())
    out = filter_batch(batch, DocumentFilter(identifier))
    assert out.schema.equals(OUTCOME_SCHEMA)
    assert out.column(DROP_REASON).to_pylist() == [None, None, "non_english", None]
    texts, extras = out.column("text").to_pylist(), out.column("extra").to_pylist()
    assert texts[1] == GOOD and extras[1] is None
    assert texts[2] == batch.column("text")[2].as_py()  # a dropped row is not redacted
    assert json.loads(extras[0])["redacted"] == {"email": 1, "ip": 1, "phone": 1}
    assert out.column("mesh_terms").equals(batch.column("mesh_terms"))
    # Nothing to redact: text and extra pass through as Arrow arrays.
    clean = documents_to_batch(documents()[1:2])
    assert filter_batch(clean, DocumentFilter(identifier)).column("text").equals(clean.column("text"))


@pytest.mark.parametrize("setting, left", [("redact_emails", "cohort-team@example.org"),
                                           ("redact_phones", "+41 22 555 01 23"),
                                           ("redact_ips", "203.0.113.45")])
def test_each_kind_has_a_setting(identifier, setting, left):
    (kept,) = filter_documents(documents()[:1], identifier, FilterConfig(**{setting: False}))
    assert left in kept["text"]
    assert len(json.loads(kept["extra"])["redacted"]) == 2
    assert load_config(overrides=[f"filter.{setting}=false"]).filter.redact_emails is (setting != "redact_emails")


def test_the_stage_ledger_sums_redactions_by_part(spark, tmp_path, lid_model):
    shard = write_shard(tmp_path / "in", documents())
    ledger = run_filter(RunContext(load_config()), [str(shard)], str(tmp_path / "out"))
    redaction = ledger.details["redaction"]
    assert redaction["kinds"] == ["email", "phone", "ip"]
    assert redaction["placeholders"]["email"] == "email@example.com"
    assert redaction["by_source"] == {
        "guidelines": {"documents": 1, "redacted_documents": 1, "email": 13, "phone": 14, "ip": 0},
        "pubmed_abstracts": {"documents": 2, "redacted_documents": 1, "email": 1, "phone": 1, "ip": 1},
    }
    assert StageLedger.read(str(tmp_path / "out")).details == ledger.details
    written = pq.read_table(tmp_path / "out" / "data")
    assert not pc.any(pc.match_substring(written.column("text"), "cohort-team@")).as_py()

    # A kind turned off is a new output (the settings are in the stage fingerprint), and its ledger says so.
    config = load_config(overrides=["filter.redact_phones=false"])
    with pytest.raises(Exception, match="--overwrite"):  # the finished output was made with other settings
        run_filter(RunContext(config), [str(shard)], str(tmp_path / "out"))
    off = run_filter(RunContext(config, overwrite=True), [str(shard)], str(tmp_path / "out"))
    assert off.details["redaction"]["kinds"] == ["email", "ip"]
    assert off.details["redaction"]["by_source"]["guidelines"]["phone"] == 0
    written = pq.read_table(tmp_path / "out" / "data")
    assert pc.any(pc.match_substring(written.column("text"), "+41 22 555 01 23")).as_py()
