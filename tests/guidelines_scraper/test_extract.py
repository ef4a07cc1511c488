from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import replace

import pytest

from gap_replay.core.outcome import Drop, outcomes_to_batches
from gap_replay.core.schema import COLUMN_NAMES, documents_to_batch
from gap_replay.guidelines_scraper.extract import (
    ExtractionReport,
    document_id,
    extract_document,
    extract_records,
    normalise_markdown,
)
from gap_replay.guidelines_scraper.sources import parse_sources

from .conftest import FIXTURES
from .pdfwriter import write_pdf

PAGES = FIXTURES / "pages"
URL = "https://guidelines.example.org/diarrhoea"

EXPECTED_STRUCTURED = """Acute diarrhoea in children under 5

# Introduction

Acute diarrhoea is one of the most common reasons for young children to see a health professional. Most episodes are caused by viruses and settle within a week, but dehydration can develop quickly in infants. This fixture guideline is published at and summarised in the leaflet.

Ménière-like dizziness is not a feature; see Box 1 for red flags [see Box 1]. Dose bands are labelled [A] to [C] in the tables.

## Assessing dehydration

Look for the following signs, which suggest clinical dehydration:

- appears unwell or deteriorating;
- decreased urine output, sunken eyes or tachycardia;
- oral fluids refused or vomited repeatedly.

### Red flags

- Refer any child with signs of shock, such as pale or mottled skin and cold extremities, for emergency care.

### Infants under 6 months

Infants under 6 months are at higher risk of dehydration and need a lower threshold for review.

## Management

- Give oral rehydration solution in small, frequent amounts.
- Continue breastfeeding and other milk feeds throughout.
- Do not give antidiarrhoeal drugs or antibiotics routinely.

Notes on dosing are given in the appendix and should be read with the manufacturer's information.

References to brand names in this guideline are for identification only and do not imply endorsement.

# Advice for parents

Explain to parents and carers how to recognise dehydration and when to seek help, and that children can return to nursery 48 hours after the last episode of diarrhoea or vomiting."""


def make_source(**fields):
    spec = dict(name="Fixture Health Service", base_url="https://guidelines.example.org", seeds=["/"],
                discovery="static", content_selector="div.guideline-body", title_selector="div.page-title h1",
                start_markers=["introduction"], stop_markers=["notes", "disclaimer"],
                remove_markers=["last reviewed.*"], min_words=50, open=True, country="Nowhere", audience="clinician")
    spec.update(fields)
    return parse_sources({"fixture": spec})["fixture"]


def record(body: bytes | None, status: int | None = 200, content_type: str | None = "text/html; charset=utf-8",
           error: str | None = None, url: str = URL, final_url: str | None = None) -> dict:
    headers = {"content-type": content_type} if content_type else {}
    return {"source": "fixture", "kind": "article", "url": url, "final_url": final_url or url, "status": status,
            "headers": json.dumps(headers), "fetched_at": "2024-03-01T12:00:00Z", "body": body, "error": error}


def structured() -> bytes:
    return (PAGES / "structured.html").read_bytes()


def test_structured_page_golden():
    doc = extract_document(record(structured()), make_source())
    assert isinstance(doc, dict) and set(doc) == set(COLUMN_NAMES)
    assert doc["text"] == EXPECTED_STRUCTURED
    assert doc["title"] == "Acute diarrhoea in children under 5"
    assert doc["id"] == "guideline:fixture:" + hashlib.sha1(b"guidelines.example.org/diarrhoea").hexdigest()[:16]
    assert (doc["source"], doc["subset"], doc["url"], doc["license"]) == ("guidelines", "fixture", URL, "open")
    assert json.loads(doc["extra"]) == {"audience": "clinician", "country": "Nowhere",
                                        "source_name": "Fixture Health Service",
                                        "source_url": "https://guidelines.example.org", "extraction": "selector"}
    for debris in ("cookies", "tracking", "Print this page", "http", "[1]", "Figure 2", "Table 2", "Smith",
                   "Last reviewed", "Disclaimer", "Copyright", "Fixture C.", "|"):
        assert debris not in doc["text"]
    documents_to_batch([doc])  # fits the shared schema


def test_reference_section_and_stop_marker():
    # Without a stop marker on References the section is removed and the text after it kept.
    assert "# Advice for parents" in EXPECTED_STRUCTURED and "Rotavirus" not in EXPECTED_STRUCTURED
    stopped = extract_document(record(structured()), make_source(stop_markers=["references", "disclaimer"]))
    assert stopped["text"].endswith("do not imply endorsement.") and "Advice for parents" not in stopped["text"]


def test_whole_page_without_selector_uses_trafilatura_and_h1_title():
    doc = extract_document(record(structured()), make_source(content_selector=None, title_selector=None))
    assert doc["title"] == "Acute diarrhoea in children under 5"  # the <h1>, not "<title> | site"
    assert doc["text"] == EXPECTED_STRUCTURED
    assert json.loads(doc["extra"])["extraction"] == "whole_page"


def test_selector_miss_falls_back_to_the_whole_page():
    # The site renamed the article wrapper: the spec's selector finds nothing, the article is kept anyway.
    redesigned = structured().replace(b'class="guideline-body"', b'class="gl-article__content"')
    assert redesigned != structured()
    doc = extract_document(record(redesigned), make_source())
    assert doc["text"] == EXPECTED_STRUCTURED
    assert json.loads(doc["extra"])["extraction"] == "fallback_whole_page"
    kept = extract_document(record(structured(), url=URL + "-2"), make_source())
    gone = extract_document(record(b"gone", status=404, url=URL + "-3"), make_source())
    report = ExtractionReport.of([doc, kept, gone])
    assert (report.kept["fixture"], report.fallbacks["fixture", "fallback_whole_page"]) == (2, 1)
    assert report.summary() == ("fixture: kept 2 (fallback_whole_page 1: content_selector missed), "
                                "dropped 1 (fetch_error 1)")


def test_title_remove_and_charset_from_meta():
    source = make_source(content_selector=None, title_selector="title", title_remove=r"\s*\|\s*Fixture$",
                         start_markers=[], min_words=20)
    doc = extract_document(record((PAGES / "latin1.html").read_bytes(), content_type="text/html"), source)
    assert doc["title"] == "Ménière's disease"
    assert doc["text"].startswith("Ménière's disease\n\n# Overview\n\nMénière's disease causes episodes")
    assert "café-au-lait" in doc["text"] and "Accueil" not in doc["text"]


def test_too_short():
    outcome = extract_document(record(structured()), make_source(min_words=5000))
    assert outcome == Drop(id=document_id("fixture", URL), reason="too_short",
                           detail=outcome.detail, source="guidelines")
    assert outcome.detail.endswith("words after cleaning (minimum 5000)")


@pytest.mark.parametrize("rec, detail", [
    (record(b"gone", status=404), "404"),
    (record(b"busy", status=503, error="gave up after 4 attempts: HTTP 503"), "503"),
    (record(None, status=None, error="disallowed by robots.txt"), "disallowed by robots.txt"),
    (record(None, status=None, error="gave up after 4 attempts: ReadTimeoutError"), "gave up after 4 attempts: ReadTimeoutError"),
    (record(None, status=302, error="redirect to a host outside allowed_hosts refused: https://x.org/"),
     "redirect to a host outside allowed_hosts refused: https://x.org/"),
])
def test_fetch_errors(rec, detail):
    outcome = extract_document(rec, make_source())
    assert isinstance(outcome, Drop) and outcome.reason == "fetch_error" and outcome.detail == detail


@pytest.mark.parametrize("rec, detail", [
    (record(b"{\"not\": \"html\"}", content_type="application/json"), "not HTML (application/json)"),
    (record(b"\x89PNG\r\n\x1a\n....", content_type=None), "not HTML (no content type, no HTML markup)"),
    (record(b"", content_type="text/html"), "empty body"),
])
def test_extract_errors(rec, detail):
    outcome = extract_document(rec, make_source())
    assert isinstance(outcome, Drop) and outcome.reason == "extract_error" and outcome.detail == detail


def test_html_sniffed_without_content_type():
    doc = extract_document(record(structured(), content_type=None), make_source())
    assert isinstance(doc, dict) and doc["text"] == EXPECTED_STRUCTURED


def test_pdf_without_pdfminer(monkeypatch):
    monkeypatch.setitem(sys.modules, "pdfminer", None)  # import fails as if not installed
    outcome = extract_document(record(b"%PDF-1.4 ...", content_type="application/pdf"), make_source(format="pdf"))
    assert outcome.reason == "pdf_unsupported" and outcome.detail == "install pdfminer.six"
    outcome = extract_document(record(b"<html></html>"), make_source(format="pdf"))
    assert outcome.reason == "extract_error" and outcome.detail == "not a PDF (text/html)"


def test_pdf_document_through_pdfminer():
    markup = """
= Seasonal malaria chemoprevention
# Introduction
Malaria chemoprevention reduces illness in young chil{-}dren during the rainy season when it is given every month.
- Give the first dose under supervision.
- Repeat monthly for four months.
<<page>>
Programmes should monitor coverage and adverse events.
# Acknowledgements
Thanks to all.
"""
    pdf = write_pdf(markup, header="Guideline on malaria", footer="Page {page} of {pages}")
    source = make_source(format="pdf", start_markers=["introduction"], stop_markers=["acknowledge?ments"], min_words=10)
    doc = extract_document(record(pdf, content_type="application/pdf"), source)
    assert doc["title"] == "Seasonal malaria chemoprevention"
    assert doc["text"] == ("Seasonal malaria chemoprevention\n\n# Introduction\n\nMalaria chemoprevention reduces "
                           "illness in young children during the rainy season when it is given every month.\n\n"
                           "- Give the first dose under supervision.\n- Repeat monthly for four months.\n\n"
                           "Programmes should monitor coverage and adverse events.")
    assert json.loads(doc["extra"])["format"] == "pdf"
    # An HTML source accepts a PDF too (catalogues link PDFs); the PDF's /Title wins over its heading.
    titled = write_pdf(markup, title="Malaria: seasonal chemoprevention (2023)")
    doc = extract_document(record(titled, content_type="application/pdf"), make_source(min_words=10))
    assert doc["title"] == "Malaria: seasonal chemoprevention (2023)"


@pytest.mark.parametrize("body, detail", [
    (b"%PDF-1.4\n1 0 obj << /Type /Catalog", "unreadable PDF: "),
    (b"%PDF-1.7\n" + bytes(range(256)) * 8, "unreadable PDF: "),
])
def test_corrupt_pdf_is_a_drop_with_a_reason(body, detail):
    outcome = extract_document(record(body, content_type="application/pdf"), make_source(format="pdf"))
    assert isinstance(outcome, Drop) and outcome.reason == "extract_error" and outcome.detail.startswith(detail)


def test_pdf_without_text_is_a_drop():
    empty = write_pdf("")  # one page, no text at all (like a scanned image without OCR)
    outcome = extract_document(record(empty, content_type="application/pdf"), make_source(format="pdf"))
    assert outcome.reason == "extract_error" and "without extractable text" in outcome.detail


def test_final_url_recorded_when_redirected():
    doc = extract_document(record(structured(), final_url=URL + "/"), make_source())
    assert json.loads(doc["extra"])["final_url"] == URL + "/" and doc["url"] == URL


def test_document_id_ignores_scheme():
    assert document_id("who", "https://www.who.int/a") == document_id("who", "http://www.who.int/a")
    assert document_id("who", "https://www.who.int/a").startswith("guideline:who:")
    assert len(document_id("who", "https://www.who.int/a").rsplit(":", 1)[1]) == 16


def test_normalise_markdown():
    md = "1. first \\[1\\]\n2. second with `code`\n  - nested\n\\*not emphasis\\*"
    assert normalise_markdown(md) == "- first [1]\n- second with code\n- nested\n*not emphasis*"


def test_extract_records_skips_other_kinds_and_is_deterministic():
    source = make_source()
    records = [dict(record(structured()), kind="listing"), record(structured()), record(b"x", status=404),
               dict(record(structured()), source="unknown")]
    first = list(extract_records(records, {"fixture": source}))
    second = list(extract_records(records, {"fixture": source}))
    assert first == second and len(first) == 3
    assert isinstance(first[0], dict) and first[1].reason == "fetch_error" and first[2].reason == "unknown_source"
    batches = list(outcomes_to_batches(first))
    assert sum(b.num_rows for b in batches) == 3


def test_source_without_markers_keeps_everything_but_debris():
    doc = extract_document(record(structured()), replace(make_source(), start_markers=(), stop_markers=(),
                                                         remove_markers=()))
    # ("Print this page | Share | Download PDF" goes anyway: a line with two "|" is table debris.)
    assert doc["text"].startswith("Acute diarrhoea in children under 5\n\n# Introduction")
    assert "Disclaimer" in doc["text"] and "Last reviewed: 1 February 2024" in doc["text"]


def test_the_mayo_spec_selects_its_2025_template_which_the_earlier_spec_missed():
    """Mayo's 2025 condition pages (the Croup fixture) hold their text in section[data-testid=cmp-section]
    blocks of an article without the cmp-article class: the spec before that change fell back to the whole
    page on each of them (its health: degraded); the current one selects the sections."""
    from gap_replay.guidelines_scraper.sources import load_sources

    mayo = load_sources()["mayo"]
    url = "https://www.mayoclinic.org/diseases-conditions/croup/symptoms-causes/syc-20350348"
    page = (FIXTURES / "sites" / "www.mayoclinic.org" / "diseases-conditions" / "croup" / "symptoms-causes"
            / "syc-20350348").read_bytes()
    page_record = dict(record(page, url=url), source="mayo")
    current = extract_document(page_record, mayo)
    assert json.loads(current["extra"])["extraction"] == "selector"
    assert "Products" not in current["text"] and "Health tips" not in current["text"]
    earlier = replace(mayo, content_selector="article.cmp-article .cmp-dita-content, #main-content div.content")
    assert json.loads(extract_document(page_record, earlier)["extra"])["extraction"] == "fallback_whole_page"
