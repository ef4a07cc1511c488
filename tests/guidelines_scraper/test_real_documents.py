"""Issue 26: guidelines from real documents. The two real PDFs of ../shared/data/guidelines/ (read in place,
see its PROVENANCE.md), and PDFs and pages built here to show each failure found on real documents: a
table with a "Reference" column taken for the reference list, junk metadata titles, a contents page, a
page laid out in one big table, a double-encoded page, a byline whose names were links."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from gap_replay.guidelines_scraper.clean import clean_text, count_words, is_citation
from gap_replay.guidelines_scraper.extract import extract_document, unwrap_layout_tables
from gap_replay.guidelines_scraper.pdf import convert_pdf
from gap_replay.guidelines_scraper.sources import parse_sources
from gap_replay.guidelines_scraper.titles import looks_like_title

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "guidelines"
CDC_GUIDE = REAL / "cdc_outpatient_infection_prevention_guide_2016.pdf"
BMC_ARTICLE = REAL / "twocol_bmc_2014_qi_resource_limited_cermine_example2.pdf"
needs_real = pytest.mark.skipif(not (CDC_GUIDE.exists() and BMC_ARTICLE.exists()),
                                reason="../shared/data/guidelines/ is not here")


def source(**fields):
    spec = dict(name="Fixture", base_url="https://guidelines.example.org", seeds=["/"], discovery="static",
                min_words=20)
    spec.update(fields)
    return parse_sources({"fixture": spec})["fixture"]


def record(body: bytes, content_type: str = "text/html; charset=utf-8", url: str = "https://guidelines.example.org/a"):
    return {"source": "fixture", "kind": "article", "url": url, "final_url": url, "status": 200,
            "headers": json.dumps({"content-type": content_type}), "fetched_at": "2025-01-01T00:00:00Z",
            "body": body, "error": None}


def document_of(pdf: bytes) -> tuple[str | None, str]:
    converted = convert_pdf(pdf)
    return converted.title, clean_text(converted.text)


# -- the real PDFs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bmc():
    return document_of(BMC_ARTICLE.read_bytes())


@pytest.fixture(scope="module")
def cdc():
    return document_of(CDC_GUIDE.read_bytes())


@needs_real
def test_real_two_column_article_whole_with_its_title_and_without_references(bmc):
    title, text = bmc
    # The /Title is the typesetter's job number "6489122611071476 1..10": page 1's largest type instead.
    assert title.startswith("Understanding the barriers to setting up a healthcare quality improvement process")
    assert "6489122611071476" not in text
    # Later pages are all there (page 4, the tables of page 6, the conclusions of page 9) ...
    for phrase in ("confirmed by the researcher’s onsite observation",
                   "Non-compliance due to personal preferences among prescribers",
                   "It is worth noting that planning for quality improvement measures requires patient",
                   "The authors declare that they have no competing interests"):
        assert phrase in text, phrase
    # ... the reference list is not (its first and last entries).
    assert "Ovretveit J, Serouri A" not in text and "Cooper LA, Hill MN, Powe NR" not in text
    assert count_words(text) > 4800


@needs_real
def test_real_cdc_guide_keeps_its_appendix_and_drops_its_references(cdc):
    title, text = cdc
    assert title == "Guide to Infection Prevention For Outpatient Settings: Minimum Expectations for Safe Care"
    assert "Barie PS" not in text and "Goodman RA, Solomon SL" not in text
    assert re.search(r"^#+ APPENDIX A: INFECTION PREVENTION CHECKLIST FOR OUTPATIENT SETTINGS$", text, re.MULTILINE)
    assert "This checklist is a companion to the Guide to Infection Prevention" in text
    assert count_words(text) > 10000


@needs_real
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler's pdftotext is the reference")
def test_real_pdfs_meet_the_fidelity_target():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pdf_fidelity", Path(__file__).resolve().parents[2] / "bench" /
                                                  "pdf_fidelity.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for path in (CDC_GUIDE, BMC_ARTICLE):
        result = bench.measure(path, threshold=0.3, repeat=1)
        for text in ("reader", "document"):
            assert result[text]["pages_under"] == [], (path.name, text, result["recall_by_page"])
            assert result[text]["mean_recall"] >= 0.9, (path.name, text, result[text])


# -- built PDFs: a table with a "Reference" column, junk titles, a contents page ----------------------------


reportlab = pytest.importorskip("reportlab")
from .article_pdfs import (  # noqa: E402
    APPENDIX_HEADING,
    APPENDIX_TEXT,
    ARTICLE_SECTIONS,
    ARTICLE_TITLE,
    CONTENTS,
    DOI_TITLE,
    GUIDE_SECTIONS,
    GUIDE_TITLE,
    REFERENCES,
    guide_with_contents,
    two_column_article,
)


@pytest.fixture(scope="module")
def article():
    pdf = two_column_article()
    return pdf, convert_pdf(pdf)


def test_table_column_reference_is_not_the_reference_list(article):
    _, converted = article
    # The failure needs the column header in the text flow, as a line of its own.
    assert re.search(r"^Reference$", converted.text, re.MULTILINE)
    text = clean_text(converted.text)
    for name, paragraphs in ARTICLE_SECTIONS:
        assert re.search(rf"^#+ {name}$", text, re.MULTILINE), name
        for paragraph in paragraphs:
            assert paragraph in text
    assert f"{APPENDIX_TEXT}" in text and APPENDIX_HEADING in text
    for entry in REFERENCES:
        assert entry.split(":")[0] not in text


@pytest.mark.parametrize("pdf_title", ["6489122611071476 1..10", DOI_TITLE, "hh_compliance_v7_FINAL.indd", None])
def test_junk_metadata_title_gives_way_to_the_largest_text(pdf_title):
    assert convert_pdf(two_column_article(pdf_title)).title == ARTICLE_TITLE


def test_a_real_metadata_title_is_kept():
    assert convert_pdf(two_column_article("Hand hygiene in district hospitals (fixture)")).title == (
        "Hand hygiene in district hospitals (fixture)")


def test_contents_page_and_list_of_figures_removed():
    title, text = document_of(guide_with_contents())
    assert title == GUIDE_TITLE
    assert "...." not in text and "Investigations in hospital" not in text and "List of figures" not in text
    assert "Where to place sharps containers" not in text and not re.search(r"^#+ Contents", text, re.MULTILINE)
    for heading, paragraph in GUIDE_SECTIONS:
        assert re.search(rf"^#+ {heading}$", text, re.MULTILINE)
        assert paragraph in text
    assert len(CONTENTS) == 6


# -- text rules ---------------------------------------------------------------------------------------------


def test_reference_heading_needs_citations_after_it():
    table_column = ("Table 2 shows the studies.\n\nStudy\n\nReference\n\nCountry\n\nDesign\n\nBanda\n\n[4]\n\nMalawi\n\n"
                    "Cohort\n\nThe results were similar in each country, and the trials that enrolled children "
                    "reported fewer adverse events than the trials in adults did.\n\n## Discussion\n\nMore text.")
    assert "The results were similar in each country" in clean_text(table_column)
    prose = ("## References\n\nThe references for this chapter are listed at the end of the guideline, with the "
             "search strategy that found them and the dates of the searches.\n\n## Scope\n\nAdults.")
    assert "The references for this chapter are listed" in clean_text(prose)


def test_reference_section_ends_at_the_next_non_reference_heading():
    text = ("Body text of the guideline.\n\nREFERENCES\n\n1. Barie PS. Infection control in surgical centers. "
            "JAMA. 2010;303:2295-2297.\n2. Jarvis WR. Infection control and changing delivery systems. Emerg "
            "Infect Dis 2001;7:170-173.\n\nAPPENDIX A: CHECKLIST\n\nThis checklist is a companion to the guide and "
            "is used to assess infection control programs in outpatient settings, as the guide explains.\n\n"
            "Section I: administrative policies and facility practices are assessed first, by the facility's "
            "infection prevention lead together with the clinic manager.")
    cleaned = clean_text(text)
    assert "Barie" not in cleaned and "Jarvis" not in cleaned
    assert "APPENDIX A: CHECKLIST" in cleaned and "Section I: administrative policies" in cleaned
    # Prose coming back ends a reference list even without a heading.
    text = ("## References\n\n- Adams PQ. Oral rehydration. Lancet. 1999;354:12-15.\n"
            "- Brown T, et al. Zinc for diarrhoea. BMJ 2004, 12(3):45-50.\n\n"
            "Children who cannot drink should be given fluids through a nasogastric tube, and those in shock "
            "need intravenous fluids at once, as the recommendations above say.\n\n"
            "Parents should be told to come back when the child cannot drink, vomits everything or becomes "
            "drowsy, and should be shown how to give the oral solution.")
    cleaned = clean_text(text)
    assert "Adams PQ" not in cleaned and "nasogastric tube" in cleaned and "drowsy" in cleaned


@pytest.mark.parametrize("entry, cited", [
    ("Barie PS. Infection Control Practices in Ambulatory Surgical Centers. JAMA. 2010;303:2295-2297.", True),
    ("Shojania KG, Grimshaw JM: Evidence-based quality improvement. Health Aff 2005, 24(1):138–150.", True),
    ("World Health Organization. Guidelines on hand hygiene. Geneva: WHO Press; 2009.", True),
    ("In 2009 the hospital opened a new ward for patients with tuberculosis.", False),
    ("Reference", False),
])
def test_is_citation(entry, cited):
    assert is_citation(entry) is cited


def test_dot_leaders_and_page_reference_runs_removed():
    text = ("1.4 Investigations in hospital .......... 13\n\nKeep this sentence.\n\n1 Introduction 3\n"
            "2 Assessment 5\n3 Treatment 9\n4 Follow-up 12\n\nA sentence.\n\nChildren aged 2 to 5 years 12\n\n"
            "Adults over 65 years 3")
    assert clean_text(text) == ("Keep this sentence.\n\nA sentence.\n\nChildren aged 2 to 5 years 12\n\n"
                                "Adults over 65 years 3")


def test_html_contents_list_removed():
    text = "## On this page\n\n- Overview\n- Symptoms\n- Causes\n\n## Overview\n\nAsthma narrows the airways."
    assert clean_text(text) == "# Overview\n\nAsthma narrows the airways."


@pytest.mark.parametrize("title, ok", [
    ("Guide to Infection Prevention for Outpatient Settings", True), ("Asthma", True),
    ("6489122611071476 1..10", False), ("doi:10.1186/1472-6963-14-1", False), ("Microsoft Word - draft.docx", False),
    ("Outpatient-Guide-508.indd", False), ("Untitled Document", False), ("s12913-014-0001", False),
    ("R E S E A R C H A R T I C L E", False), ("Layout 1", False), ("C:\\work\\guide", False),
])
def test_looks_like_title(title, ok):
    assert looks_like_title(title) is ok


# -- HTML: a layout table, a double-encoded page, a linked byline, a junk <title> -----------------------------

NAV = "".join(f'<tr><td><a href="/nav/{n}">Navigation link {n}</a></td></tr>' for n in range(30))
CDC_2005_TEXT = [
    "Persons who have not received the hepatitis B vaccine series should complete it, and health-care workers "
    "with possible exposure to blood should be tested for antibody one to two months after the last dose.",
    "Postexposure prophylaxis with hepatitis B immune globulin and vaccine should be started as soon as "
    "possible after a percutaneous or mucosal exposure, preferably within 24 hours.",
    "Each facility should have a written exposure control plan that lists the tasks with exposure, the "
    "engineering controls in use and the procedure for reporting an exposure without delay.",
]


def cdc_2005_page() -> bytes:
    """A 2005-style CDC page: the whole page one <table>: banner row, a navigation cell (a nested table of
    links) beside the content cell (headings and paragraphs), a footer row."""
    content = "".join(f"<h3>Recommendation {n + 1}</h3><p>{text}</p>" for n, text in enumerate(CDC_2005_TEXT * 4))
    return f"""<html><head><title>MMWR Recommendations and Reports</title></head><body>
<table width="100%" border="0" cellpadding="0" cellspacing="0">
<tr><td colspan="2"><img src="/banner.gif" alt="CDC banner"> Department of Health and Human Services</td></tr>
<tr><td width="160" valign="top"><table>{NAV}</table></td>
<td valign="top"><h1>Updated Guidelines for Hepatitis B Exposure (fixture)</h1>{content}
<table border="1"><tr><th>Exposure</th><th>Action</th></tr><tr><td>Needlestick</td><td>Test source</td></tr></table>
</td></tr>
<tr><td colspan="2">Page last reviewed 2005 | Privacy policy | Accessibility</td></tr>
</table></body></html>""".encode()


def test_page_laid_out_in_one_big_table_is_read_as_text():
    outcome = extract_document(record(cdc_2005_page()), source(min_words=100))
    assert isinstance(outcome, dict), outcome
    for paragraph in CDC_2005_TEXT:
        assert paragraph in outcome["text"]
    assert "Recommendation 12" in outcome["text"]
    assert count_words(outcome["text"]) > 300


def test_only_layout_tables_are_unwrapped():
    from lxml import html as lxml_html

    doc = lxml_html.document_fromstring(cdc_2005_page().decode())
    assert unwrap_layout_tables(doc) == 1  # the page's table; the tables nested in it are data (short cells)
    assert [t.xpath("string(.//th)") for t in doc.iter("table")] == ["", "Exposure"]  # navigation, data
    data = lxml_html.document_fromstring(
        "<html><body><p>" + "Intro words. " * 80 + "</p><table><tr><th>Dose</th><th>Age</th></tr>"
        "<tr><td>5 mg</td><td>2-5 years</td></tr></table></body></html>")
    assert unwrap_layout_tables(data) == 0


PAGE_TEXT = ("Measles spreads through the air when an infected person coughs or sneezes — a dose of vaccine "
             "after exposure can still protect. Café owners and school staff were told about the outbreak; "
             "children’s records were checked by the county’s nurses.")


def _as_windows_1252(data: bytes) -> str:
    """Bytes read as a browser reads windows-1252 (the five bytes it leaves undefined as C1 controls)."""
    return "".join(bytes([byte]).decode("cp1252", errors="ignore") or chr(byte) for byte in data)


def test_double_encoded_page_repaired():
    body = f"""<html><head><meta charset="utf-8"><title>Measles outbreak – county response</title></head><body>
<article><h1>Measles outbreak – county response</h1><p>{PAGE_TEXT}</p></article></body></html>"""
    once = _as_windows_1252(body.encode("utf-8")).encode("utf-8")  # UTF-8 saved as if it were windows-1252
    assert "â€”" in once.decode("utf-8")
    twice = _as_windows_1252(once).encode("utf-8")                  # and once more
    for page in (once, twice):
        outcome = extract_document(record(page), source())
        assert isinstance(outcome, dict), outcome
        assert outcome["title"] == "Measles outbreak – county response"
        assert PAGE_TEXT in outcome["text"] and "â" not in outcome["text"] and "Ã" not in outcome["text"]


def test_clean_text_without_mojibake_is_left_alone():
    text = "Ménière’s disease — “vertigo” in Zürich; Ångström units; naïve à la carte."
    assert clean_text(text) == text


BYLINE_PAGE = """<html><head><title>Notes from the Field: Measles in a County (fixture)</title></head><body>
<article><h1>Notes from the Field: Measles in a County (fixture)</h1>
<div class="meta"><p><a href="#contribAff">Jane Q. Public</a>, MD, PhD<sup>1,2</sup>; <a href="#contribAff">Omar
Fields</a>, MPP<sup>1</sup>; <a href="#contribAff">Li Wen</a>, MPH<sup>1</sup></p></div>
<p>In March, the county health department was notified of a confirmed measles case in an unvaccinated child
who had travelled abroad, and contact tracing identified forty exposed people in two schools.</p>
<p>Public health staff offered post-exposure prophylaxis to susceptible contacts within seventy-two hours and
excluded unvaccinated students from school for twenty-one days after the last exposure.</p>
</article></body></html>"""


@pytest.mark.parametrize("selector", [None, "article"])
def test_linked_byline_whole_or_gone(selector):
    outcome = extract_document(record(BYLINE_PAGE.encode()), source(content_selector=selector))
    assert isinstance(outcome, dict), outcome
    text = outcome["text"]
    assert "contact tracing identified forty exposed people" in text
    assert not re.search(r"^\W*(?:MD|MPP|MPH)\b", text, re.MULTILINE)
    if "MPP" in text:
        assert "Jane Q. Public, MD, PhD; Omar Fields, MPP; Li Wen, MPH" in text


def test_orphaned_byline_debris_dropped():
    assert clean_text(", MD, PhD1,2;, MPP1;, MPH1;\n\nThe outbreak ended in May.") == "The outbreak ended in May."
    kept = "Jane Q. Public, MD, PhD; Omar Fields, MPP\n\nThe outbreak ended in May."
    assert clean_text(kept) == kept


@pytest.mark.parametrize("head_title", ["Untitled Document", "doc_2005_07.htm", "doi:10.9999/x.2005.1"])
def test_junk_html_title_gives_way_to_h1(head_title):
    page = f"""<html><head><title>{head_title}</title></head><body><article>
<h1>Hepatitis B exposure management</h1><p>{' '.join(CDC_2005_TEXT)}</p></article></body></html>"""
    outcome = extract_document(record(page.encode()), source())
    assert outcome["title"] == "Hepatitis B exposure management"
