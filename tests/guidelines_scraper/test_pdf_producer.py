"""PDF extraction on a guideline PDF made by a real document producer (reportlab's platypus), with
what the CCO, CDC, SPOR and WHO PDFs have: two columns, a full-width title, running headers and
footers, page numbers, words hyphenated at line ends, a table, footnotes at the page bottom and
superscript footnote references. The PDF is generated at test time; all content is invented.
"""

from __future__ import annotations

import io
import re

import pytest

pytest.importorskip("reportlab")

from reportlab.lib.enums import TA_JUSTIFY  # noqa: E402
from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.lib.styles import ParagraphStyle  # noqa: E402
from reportlab.platypus import (  # noqa: E402
    BaseDocTemplate,
    Flowable,
    Frame,
    FrameBreak,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Table,
    TableStyle,
)

from gap_replay.guidelines_scraper.clean import clean_text  # noqa: E402
from gap_replay.guidelines_scraper.pdf import PDF_LAYOUT, PDF_PLAIN_TEXT, PdfError, convert_pdf, pdf_to_markdown  # noqa: E402

SOFT_HYPHEN = "\u00ad"
PAGE_W, PAGE_H = A4
MARGIN, GUTTER = 56.0, 22.0
COLUMN_W = (PAGE_W - 2 * MARGIN - GUTTER) / 2
BODY_TOP, BODY_BOTTOM = PAGE_H - 70, 112.0  # the column frames; footnotes go below them
TITLE_H, BOX_H = 80.0, 90.0

RUNNING_HEADER = "Raised blood pressure in adults: a test guideline"
RUNNING_HEADER_RIGHT = "TEST/NCD/2024.7"
FOOTER = "Test Organisation, Geneva 2024"

TITLE = "Management of Raised Blood Pressure in Adults"
SUBTITLE = "Guideline of the Test Organisation, second edition"

# (kind, text) blocks; a "note" is a footnote of the paragraph before it, numbered in order (the first
# with a plain number, the others with a superscript one, as producers do both). Compound words with a
# real hyphen (long-term, evidence-based, follow-up, first-line, low-dose, self-measured) recur,
# as they do in guidelines.
BLOCKS: list[tuple[str, str]] = [
    ("heading", "1 Introduction"),
    ("para", "Raised blood pressure is the leading modifiable risk factor for cardiovascular disease and "
             "premature death worldwide. Fewer than half of the adults who have hypertension are diagnosed, "
             "and fewer than a quarter of those treated reach their target. This guideline gives "
             "evidence-based recommendations on screening, diagnosis, pharmacological treatment and long-term "
             "follow-up for adults in primary care, and on the organisation of services that deliver them."),
    ("para", "The recommendations were developed by a guideline development group of clinicians, "
             "pharmacologists, nurses and patient representatives, who reviewed the systematic reviews "
             "commissioned for this edition and assessed the certainty of the evidence for every outcome."),
    ("note", "The declarations of interest of every member are available from the secretariat on request."),
    ("heading", "2 Screening and diagnosis"),
    ("para", "Opportunistic screening should be offered to every adult attending a health facility, whatever "
             "the reason for the visit. A diagnosis of hypertension should be confirmed by measurements on two "
             "separate days, using a validated automated device, with the patient seated after five minutes of "
             "rest. Where it is available, self-measured or ambulatory monitoring should be used to confirm the "
             "diagnosis before long-term treatment is started, because treatment based on a single raised office "
             "reading exposes many adults to medicines they do not need."),
    ("table", "Category|Systolic (mmHg)|Diastolic (mmHg)\nOptimal|below 120|below 80\n"
              "Raised|130 to 139|85 to 89\nHypertension|140 or above|90 or above"),
    ("para", "Adults with a confirmed diagnosis should be assessed for target organ damage and for other "
             "cardiovascular risk factors, including diabetes, smoking, raised cholesterol and chronic kidney "
             "disease, so that the intensity of treatment and follow-up can be matched to the overall risk of "
             "each person rather than to the blood pressure reading alone."),
    ("box", "Summary of recommendations. Screen every adult opportunistically; confirm a raised reading on two "
            "separate days; start treatment at 140/90 mmHg, or at 130 mmHg systolic in adults at high risk; use "
            "first-line medicines, preferably as a single-pill combination; review monthly until the target is "
            "reached, then every three to six months."),
    ("heading", "3 Pharmacological treatment"),
    ("para", "Pharmacological treatment should be started in adults with a confirmed systolic blood pressure of "
             "140 mmHg or higher, or a diastolic blood pressure of 90 mmHg or higher. In adults with existing "
             "cardiovascular disease, diabetes or chronic kidney disease, treatment should be considered from a "
             "systolic pressure of 130 mmHg. The first-line medicines are thiazide diuretics, angiotensin "
             "converting enzyme inhibitors, angiotensin receptor blockers and long-acting dihydropyridine "
             "calcium channel blockers, any of which may be chosen according to availability and tolerance."),
    ("para", "Combination therapy, preferably as a single-pill combination of two first-line medicines at "
             "low-dose, should be considered for initial treatment, because it improves adherence and brings "
             "blood pressure under control sooner than the sequential addition of medicines. The evidence-based "
             "target for most adults is a systolic pressure below 140 mmHg, and below 130 mmHg for those at "
             "high cardiovascular risk when the treatment is tolerated."),
    ("note", "Single-pill combinations were not available in every setting reviewed; see the implementation "
             "annex."),
    ("heading", "4 Follow-up and monitoring"),
    ("para", "Adults who start or change their medication should be reviewed monthly until the target is "
             "reached, and every three to six months thereafter. Each follow-up visit should include a "
             "measurement of blood pressure, a review of adherence and of adverse effects, and a discussion of "
             "lifestyle measures, including reduced salt intake, regular physical activity, moderation of "
             "alcohol and stopping smoking. Self-measured readings brought by the patient should be recorded."),
    ("para", "Non-physician health workers, including nurses and pharmacists, can safely manage long-term "
             "treatment and follow-up using standardised protocols, with referral to a physician when the "
             "target is not reached after two visits or when complications arise. Team-based care of this kind "
             "has improved control rates in every region where it was evaluated, at modest cost."),
    ("heading", "5 Special populations"),
    ("para", "Pregnant women with hypertension need specialist care, and angiotensin converting enzyme "
             "inhibitors and receptor blockers must not be used in pregnancy because of their effects on the "
             "fetus. Women of childbearing age who take these medicines should be told of this risk and offered "
             "effective contraception or a change of treatment when they plan a pregnancy."),
    ("para", "Older adults benefit from treatment as much as younger adults, but they are more likely to have "
             "orthostatic hypotension, falls and electrolyte disturbances. Treatment should start at low-dose "
             "and be increased gradually, with blood pressure measured standing as well as seated at every "
             "follow-up visit, and the target relaxed for frail adults with a limited life expectancy."),
    ("para", "Adults of African descent respond less to angiotensin converting enzyme inhibitors used alone, "
             "and a calcium channel blocker or a thiazide diuretic is the preferred first-line medicine for "
             "them, alone or in combination. The long-term benefit of treatment is the same in every group that "
             "the evidence-based review examined."),
    ("heading", "6 Implementation"),
    ("para", "Ministries of health should include the first-line medicines and their single-pill "
             "combinations in the national essential medicines list, and procure them in quantities that match "
             "the number of adults expected to need long-term treatment. Stock-outs interrupt treatment and "
             "undermine the trust of patients in the service, and they were the most frequently reported "
             "barrier in the implementation studies reviewed."),
    ("para", "Training for the health workers who deliver the protocol should cover the measurement of "
             "blood pressure with an automated device, the treatment algorithm, the recognition of adverse "
             "effects and the counselling of patients on adherence, and it should be refreshed every year. "
             "Supervisors should observe each health worker at least once a quarter during the first year."),
    ("heading", "7 Research priorities"),
    ("para", "The guideline development group identified gaps in the evidence on the long-term effect of "
             "team-based care on cardiovascular events, on the best treatment targets for adults older than "
             "eighty years, and on the cost-effectiveness of single-pill combinations in low-income countries, "
             "where most adults with hypertension live and where the burden of stroke is rising fastest."),
    ("para", "Trials comparing strategies of dose titration with the early use of combinations, and studies of "
             "digital tools that support self-measured monitoring at home, with their cost-effectiveness, were rated as the most urgent of "
             "these priorities by the patient representatives and by the clinicians of the group alike."),
    ("para", "Health services should record the number of adults under treatment and the proportion whose "
             "blood pressure is controlled at their most recent visit, and review these figures every quarter, "
             "so that the effect of the recommendations on population health can be monitored and the "
             "low-dose combination medicines they rely on can be kept in stock without interruption."),
]

FOOTNOTES = [text for kind, text in BLOCKS if kind == "note"]
# The words written with a hyphen: a line break after their hyphen must keep it.
REAL_COMPOUNDS = {word.casefold() for kind, text in BLOCKS if kind != "table"
                  for word in re.findall(r"\w+(?:-\w+)+", text)}


def _with_soft_hyphens(text: str) -> str:
    """Hyphenation points in every long word (every three letters), as a typesetter would find."""
    def split(match: re.Match) -> str:
        word = match.group(0)
        cuts = range(3, len(word) - 2, 3)
        pieces, start = [], 0
        for cut in cuts:
            pieces.append(word[start:cut])
            start = cut
        pieces.append(word[start:])
        return SOFT_HYPHEN.join(pieces)

    return re.sub(r"(?<![\w-])[A-Za-z]{8,}(?![\w-])", split, text)


class _FootnoteAnchor(Flowable):
    """Registers a footnote for the page on which the flowable lands; drawn at the page end."""

    def __init__(self, text: str, notes: dict[int, list[str]]):
        super().__init__()
        self.text, self.notes = text, notes

    def wrap(self, available_width, available_height):
        return 0, 0

    def draw(self):
        self.notes.setdefault(self.canv.getPageNumber(), []).append(self.text)


def make_guideline_pdf() -> bytes:
    """BLOCKS as a two-column guideline: the title across the columns of page 1, a box across the
    columns at the top of the page it opens, a running header and a footer with the page number on
    every page, each footnote at the bottom of the page where its paragraph ends."""
    notes: dict[int, list[str]] = {}
    body = ParagraphStyle("body", fontName="Times-Roman", fontSize=10, leading=12.4, alignment=TA_JUSTIFY,
                          spaceAfter=6, embeddedHyphenation=1, uriWasteReduce=0.3)
    heading = ParagraphStyle("heading", fontName="Helvetica-Bold", fontSize=12.5, leading=15, spaceBefore=8,
                             spaceAfter=4)
    title = ParagraphStyle("title", fontName="Helvetica-Bold", fontSize=20, leading=24, spaceAfter=6)
    subtitle = ParagraphStyle("subtitle", fontName="Helvetica", fontSize=12, leading=15)
    note_style = ParagraphStyle("note", fontName="Times-Roman", fontSize=7.5, leading=9)
    box_style = ParagraphStyle("box", fontName="Helvetica", fontSize=10, leading=13, backColor="#e8eef4",
                               borderPadding=6)
    cell = ParagraphStyle("cell", fontName="Helvetica", fontSize=8.5, leading=10)

    def furniture(canvas, document):
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(MARGIN, PAGE_H - 34, RUNNING_HEADER)
        canvas.drawRightString(PAGE_W - MARGIN, PAGE_H - 34, RUNNING_HEADER_RIGHT)
        canvas.line(MARGIN, PAGE_H - 40, PAGE_W - MARGIN, PAGE_H - 40)
        canvas.drawString(MARGIN, 30, FOOTER)
        canvas.drawRightString(PAGE_W - MARGIN, 30, str(canvas.getPageNumber()))
        canvas.restoreState()

    def page_notes(canvas, document):
        texts = notes.get(canvas.getPageNumber(), [])
        if not texts:
            return
        canvas.saveState()
        canvas.line(MARGIN, BODY_BOTTOM - 8, MARGIN + 120, BODY_BOTTOM - 8)
        y = BODY_BOTTOM - 12
        for text in texts:
            paragraph = Paragraph(text, note_style)
            _, height = paragraph.wrap(PAGE_W - 2 * MARGIN, 100)
            paragraph.drawOn(canvas, MARGIN, y - height)
            y -= height + 2
        canvas.restoreState()

    def columns(top: float) -> list[Frame]:
        return [Frame(MARGIN + n * (COLUMN_W + GUTTER), BODY_BOTTOM, COLUMN_W, top - BODY_BOTTOM,
                      leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0, id=f"column{n}")
                for n in (0, 1)]

    def full_width(height: float, name: str) -> Frame:
        return Frame(MARGIN, BODY_TOP - height, PAGE_W - 2 * MARGIN, height, leftPadding=0, rightPadding=0,
                     topPadding=0, bottomPadding=0, id=name)

    output = io.BytesIO()
    document = BaseDocTemplate(output, pagesize=A4, author="Test Organisation", invariant=1)
    document.addPageTemplates([
        PageTemplate("first", [full_width(TITLE_H, "title"), *columns(BODY_TOP - TITLE_H - 10)],
                     onPage=furniture, onPageEnd=page_notes),
        PageTemplate("boxed", [full_width(BOX_H, "box"), *columns(BODY_TOP - BOX_H - 10)], onPage=furniture,
                     onPageEnd=page_notes),
        PageTemplate("later", columns(BODY_TOP), onPage=furniture, onPageEnd=page_notes),
    ])
    story = [Paragraph(TITLE, title), Paragraph(SUBTITLE, subtitle), NextPageTemplate("later"), FrameBreak()]
    notes_so_far = 0
    for index, (kind, text) in enumerate(BLOCKS):
        if kind == "heading":
            story.append(Paragraph(text, heading))
        elif kind == "para":
            marker = ""
            if BLOCKS[index + 1:index + 2] and BLOCKS[index + 1][0] == "note":
                notes_so_far += 1
                marker = f"<super>{notes_so_far}</super>"
            story.append(Paragraph(_with_soft_hyphens(text) + marker, body))
        elif kind == "box":  # a new page, the box across both columns at its top
            story += [NextPageTemplate("boxed"), PageBreak(), Paragraph(text, box_style), FrameBreak(),
                      NextPageTemplate("later")]
        elif kind == "note":
            mark = f"{notes_so_far} " if notes_so_far == 1 else f"<super>{notes_so_far}</super> "
            story.append(_FootnoteAnchor(mark + text, notes))
        elif kind == "table":
            rows = [[Paragraph(value, cell) for value in row.split("|")] for row in text.split("\n")]
            table = Table(rows, colWidths=[COLUMN_W * 0.4, COLUMN_W * 0.3, COLUMN_W * 0.3])
            table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, "#777777"),
                                       ("VALIGN", (0, 0), (-1, -1), "TOP")]))
            story.append(table)
    document.build(story)
    return output.getvalue()


def make_lines_pdf(lines: list[str]) -> bytes:
    """A one-column PDF with exactly these lines (for line-end hyphens the test chooses)."""
    from reportlab.pdfgen.canvas import Canvas

    output = io.BytesIO()
    canvas = Canvas(output, pagesize=A4, invariant=1)
    canvas.setFont("Times-Roman", 10)
    for number, line in enumerate(lines):
        canvas.drawString(MARGIN, PAGE_H - 100 - 12.4 * number, line)
    canvas.showPage()
    canvas.save()
    return output.getvalue()


@pytest.fixture(scope="module")
def guideline():
    pdf = make_guideline_pdf()
    return pdf, convert_pdf(pdf)


def _line_end_breaks(pdf: bytes) -> list[tuple[str, str]]:
    """(before, after) of each word the producer hyphenated at a line end, from pdfminer's plain text."""
    from pdfminer.high_level import extract_text

    return re.findall(r"(\w+)-\n(\w+)", extract_text(io.BytesIO(pdf)))


def test_the_producer_made_the_features_under_test(guideline):
    pdf, _ = guideline
    from pdfminer.high_level import extract_text

    raw = extract_text(io.BytesIO(pdf))
    assert raw.count("\x0c") >= 3  # three pages or more
    assert raw.count(RUNNING_HEADER) >= 3 and raw.count(FOOTER) >= 3
    breaks = _line_end_breaks(pdf)
    assert any(f"{a}-{b}".casefold() in REAL_COMPOUNDS for a, b in breaks)       # "evidence-" + "based"
    assert sum(f"{a}-{b}".casefold() not in REAL_COMPOUNDS for a, b in breaks) >= 5  # "treat-" + "ment"
    assert all(note in re.sub(r"\s+", " ", raw) for note in FOOTNOTES)


def test_text_comes_in_reading_order_one_paragraph_each(guideline):
    _, result = guideline
    assert result.extraction == PDF_LAYOUT and result.layout_error is None
    assert result.title == TITLE  # the producer's "(anonymous)" /Title is no title
    cleaned = clean_text(result.text)
    position = 0
    for kind, text in [("heading", TITLE), *BLOCKS]:
        if kind in ("table", "note"):
            continue
        # every heading, paragraph and box whole, in the order written: column 1 before column 2,
        # sentences carried over to the next column or page unbroken, by a footnote or otherwise
        found = cleaned.find(text, position)
        assert found >= 0, f"{kind} not found whole after position {position}: {text[:60]!r}"
        position = found + len(text)
        if kind == "heading":
            assert cleaned[:found].endswith("# ")


def test_footnotes_are_kept_whole_on_their_page(guideline):
    _, result = guideline
    cleaned = clean_text(result.text)
    first, second = (cleaned.find(note) for note in FOOTNOTES)
    # after the paragraph open when their page ends: the last of page 1, the one carried to page 3
    assert cleaned.find("the blood pressure reading alone.") < first < cleaned.find("Summary of recommendations")
    assert cleaned.find("where the burden of stroke is rising fastest.") < second < cleaned.find("Trials comparing")
    # the plain note number stays; the superscript one goes, like the references to both in the text
    assert "\n\n1 The declarations of interest" in cleaned and "\n\nSingle-pill combinations were" in cleaned


def test_running_headers_footers_and_page_numbers_are_removed(guideline):
    _, result = guideline
    for furniture in (RUNNING_HEADER, RUNNING_HEADER_RIGHT, FOOTER):
        assert furniture not in result.text
    assert not [line for line in result.text.split("\n") if line.strip().isdigit()]


def test_hyphenated_words_are_joined_and_real_hyphens_kept(guideline):
    pdf, result = guideline
    text = result.text
    for before, after in _line_end_breaks(pdf):
        if f"{before}-{after}".casefold() in REAL_COMPOUNDS:
            assert f"{before}-{after}" in text
        else:
            assert f"{before}{after}" in text and f"{before}-{after}" not in text and f"{before}-\n" not in text
    assert "long-term" in text and "follow-up" in text and "first-line" in text


def test_superscript_note_references_are_removed(guideline):
    _, result = guideline
    assert "every outcome.\n" in result.text + "\n" or "every outcome.\n\n" in result.text
    assert "outcome.1" not in result.text and "tolerated.2" not in result.text


def test_table_rows_read_across_between_the_paragraphs_around_it(guideline):
    _, result = guideline
    text = result.text
    position = text.find("medicines they do not need.")
    for row in dict(BLOCKS)["table"].split("\n"):
        for cell in row.split("|"):
            found = text.find(cell.split(" (")[0], position)
            assert found > position, cell
            position = found
    assert position < text.find("Adults with a confirmed diagnosis")


@pytest.mark.parametrize(("lines", "expected"), [
    (["blood pressure above the age-", "related threshold in adults"], "age-related threshold"),  # a compound head
    (["adults who had COVID-", "19 in the last year"], "COVID-19 in"),                           # a digit
    (["screening for HIV-", "positive adults"], "HIV-positive adults"),                            # a capital prefix
    (["supported self-", "management of treatment"], "self-management of"),                        # a compound prefix
    (["the first-line treat-", "ment of adults"], "first-line treatment of"),                     # a typesetter's break
    (["women with pre-", "eclampsia need care; pre-eclampsia is"], "with pre-eclampsia need"),     # written so elsewhere
    (["to prevent re-", "admission; readmission rates"], "prevent readmission;"),                 # written so elsewhere
])
def test_line_end_hyphen_decisions(lines, expected):
    _, text = pdf_to_markdown(make_lines_pdf(["Line-end hyphens in an invented guideline", *lines]))
    assert expected in text


def test_plain_text_when_the_layout_pass_fails(guideline, monkeypatch):
    from gap_replay.guidelines_scraper import pdf as pdf_module

    pdf, _ = guideline

    def broken(*args, **kwargs):
        raise KeyError("font without metrics")

    monkeypatch.setattr(pdf_module, "_markdown", broken)
    result = convert_pdf(pdf)
    assert result.extraction == PDF_PLAIN_TEXT and result.layout_error == "KeyError: 'font without metrics'"
    assert "Opportunistic screening should be offered" in result.text and "#" not in result.text
    assert "\x0c" not in result.text
    assert pdf_to_markdown(pdf)[1] == result.text  # the two-value form is unchanged

    monkeypatch.setattr(pdf_module, "_plain_text", broken)
    with pytest.raises(PdfError, match="font without metrics"):
        convert_pdf(pdf)
