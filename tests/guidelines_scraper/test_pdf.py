"""PDF to text with headings (pdfminer.six), on PDFs made by the test writer."""

from __future__ import annotations

import pytest

from gap_replay.guidelines_scraper.pdf import PdfError, pdf_to_markdown

from .pdfwriter import write_pdf

MARKUP = """
= Prevention of Pressure Ulcers in Adults Admitted to Hospital
# 1 Risk assessment
Assess the risk of developing a pressure ulcer within six hours of admission, using a validated scale together with clinical judgement, and repeat the assessment after any change in condition.
## 1.1 Skin inspection
Inspect the skin over bony prominences at every change of position, looking for persistent redness, blistering or discolouration that does not fade when pressed.
### Heels
Offload the heels of patients at high risk with a pillow or a heel-suspension device.
- Reposition patients at high risk at least every four hours, and every two hours when they cannot move themselves at all during the night.
- Use a high-specification foam mattress for every patient at risk.
1. Record each repositioning on the care chart.

2. Review the care plan every week.
<<page>>
# 2 Nutrition
Offer a dietetic assessment to patients at risk who are underweight or have lost weight recently, because poor nutrition delays the healing of wounds in older pa{-}tients with chronic illness.
"""


@pytest.fixture(scope="module")
def converted():
    pdf = write_pdf(MARKUP, header="Pressure ulcer prevention (fixture)", footer="Page {page} of {pages}")
    return pdf_to_markdown(pdf)


def test_title_from_the_first_top_heading_when_the_pdf_has_no_title(converted):
    title, text = converted
    assert title == "Prevention of Pressure Ulcers in Adults Admitted to Hospital"
    assert text.startswith("# Prevention of Pressure Ulcers in Adults Admitted to Hospital\n\n## 1 Risk assessment")


def test_heading_levels_follow_font_sizes_and_weight(converted):
    _, text = converted
    headings = [line for line in text.split("\n") if line.startswith("#")]
    assert headings == ["# Prevention of Pressure Ulcers in Adults Admitted to Hospital", "## 1 Risk assessment",
                        "### 1.1 Skin inspection", "### Heels", "## 2 Nutrition"]  # bold body-size run-in: level 3


def test_running_headers_footers_and_page_numbers_are_removed(converted):
    _, text = converted
    assert "Pressure ulcer prevention (fixture)" not in text and "Page 1 of 2" not in text and "Page 2" not in text


def test_lists_and_wrapped_lines(converted):
    _, text = converted
    assert "\u2022 Reposition patients at high risk at least every four hours, and every two hours when they cannot " \
           "move\nthemselves at all" in text  # a hanging indent continues its item
    assert "\n- Record each repositioning on the care chart.\n\n- Review the care plan every week." in text
    assert "wounds in older patients with" in text  # de-hyphenated here: "patients" is a word of the document


def test_wrapped_title_and_pdf_title():
    long_title = "Management of Community-Acquired Pneumonia in Adults Presenting to Emergency Departments"
    body = "Adults who present to an emergency department with symptoms of a lower respiratory tract infection. " * 3
    title, text = pdf_to_markdown(write_pdf(f"= {long_title}\n# Scope\n{body}"))
    assert title == long_title and text.startswith(f"# {long_title}\n\n## Scope")
    titled, _ = pdf_to_markdown(write_pdf("= Heading\nBody text.", title="Official title (2024)"))
    assert titled == "Official title (2024)"
    named, _ = pdf_to_markdown(write_pdf("= Heading\nBody text.", title="Microsoft Word - draft_v3.docx"))
    assert named == "Heading"  # a file name as /Title is ignored


@pytest.mark.parametrize("body", [b"%PDF-1.4\nnot really", b"%PDF-1.7\n" + bytes(range(256)) * 4, b""])
def test_unreadable_pdf_raises_pdf_error(body):
    with pytest.raises(PdfError):
        pdf_to_markdown(body)


def test_truncated_pdf_is_an_error_or_partial_text():
    pdf = write_pdf(MARKUP)
    try:
        _, text = pdf_to_markdown(pdf[: len(pdf) // 2])
    except PdfError:
        return
    assert isinstance(text, str)
