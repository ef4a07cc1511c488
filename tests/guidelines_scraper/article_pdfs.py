"""PDFs built with reportlab to show the failures of issue 26 on real documents: a two-column journal
article whose table has a "Reference" column (taken for the reference list, the rest of the article was
lost), junk metadata titles (a typesetter's job number, a DOI), a guideline whose second page is a table of
contents with dot leaders. All content is invented; the layouts follow the real documents described in
../shared/data/guidelines/PROVENANCE.md (a BMC two-column article, a CDC guide).
"""

from __future__ import annotations

import io

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import (
    BaseDocTemplate,
    Frame,
    FrameBreak,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Table,
    TableStyle,
)

PAGE_W, PAGE_H = A4
MARGIN, GUTTER = 50.0, 20.0
COLUMN_W = (PAGE_W - 2 * MARGIN - GUTTER) / 2
BODY_TOP, BODY_BOTTOM = PAGE_H - 60, 60.0
TITLE_H = 110.0

ARTICLE_TITLE = "Hand hygiene compliance in three district hospitals: a mixed methods study"
JOB_NUMBER_TITLE = "6489122611071476 1..10"
DOI_TITLE = "doi:10.9999/fixture-2024-0007"

# Sections of the article: (heading, paragraphs). Every paragraph is distinct, so that each page's word
# 6-grams say where the text went. The table (with its "Reference" column) comes after "Methods".
_TOPICS = ["ward rounds", "night shifts", "outpatient clinics", "the maternity unit", "the surgical theatre",
           "the paediatric ward", "the emergency room", "the dialysis unit", "the isolation rooms",
           "the laboratory", "the pharmacy store", "the medical wards"]
_VERBS = ["observed", "recorded", "counted", "compared", "reviewed", "audited"]
_OBJECTS = ["alcohol rub dispensers", "soap and running water", "disposable towels", "glove changes",
            "moments before patient contact", "moments after body fluid exposure"]


def _paragraph(section: int, index: int) -> str:
    topic = _TOPICS[(section * 3 + index) % len(_TOPICS)]
    verb = _VERBS[(section + index) % len(_VERBS)]
    thing = _OBJECTS[(section * 2 + index) % len(_OBJECTS)]
    return (f"In {topic} the study team {verb} how often staff used {thing} during section {section + 1} "
            f"paragraph {index + 1} of this invented report. Nurses and clinical officers on {topic} described "
            f"the supply of {thing} as irregular, and supervisors said that audits of {thing} had stopped when "
            f"the infection prevention focal person left. Compliance on {topic} rose from a low baseline after "
            f"feedback sessions, but it fell again whenever {thing} ran out for more than a week. The "
            f"committee agreed that {verb} data on {topic} should be shared monthly with every ward manager.")


ARTICLE_SECTIONS: list[tuple[str, list[str]]] = [
    (name, [_paragraph(number, index) for index in range(count)])
    for number, (name, count) in enumerate([("Background", 3), ("Methods", 3), ("Results", 5),
                                            ("Discussion", 5), ("Conclusions", 2)])
]
TABLE_HEADER = ["Study", "Reference", "Setting", "Patients"]
TABLE_ROWS = [["Banda", "[12]", "District", "120"], ["Phiri", "[13]", "Central", "340"],
              ["Mwale", "[14]", "Mission", "95"], ["Tembo", "[15]", "District", "210"]]
REFERENCES = [
    "Adeyemi KO, Banda T: Hand hygiene in African hospitals. J Hosp Infect 2011, 78(2):101-108.",
    "Phiri R, Chirwa M, et al: Alcohol rub production on site. Trop Med Int Health 2013, 18(4):455-461.",
    "World Health Organization: Guidelines on hand hygiene in health care. Geneva: WHO Press; 2009.",
    "Mwale P, Zulu A: Audits of infection control practice. BMC Health Serv Res 2012, 12:88.",
    "Tembo S, et al: Feedback and compliance in surgical wards. Infect Control Hosp Epidemiol 2010, 31(7):700-706.",
    "Nkhoma E: Staffing and infection prevention. Malawi Med J 2014, 26(1):12-16.",
]
APPENDIX_HEADING = "Appendix 1: Observation form"
APPENDIX_TEXT = ("The observation form lists the five moments for hand hygiene, the staff cadre observed, the "
                 "product used and whether gloves were changed between patients, and it is completed by a "
                 "trained observer who stays on the ward for twenty minutes at a time.")


def _styles():
    return {
        "title": ParagraphStyle("title", fontName="Helvetica-Bold", fontSize=18, leading=22),
        "label": ParagraphStyle("label", fontName="Helvetica", fontSize=9, leading=11),
        "authors": ParagraphStyle("authors", fontName="Helvetica", fontSize=10, leading=12, spaceBefore=6),
        "heading": ParagraphStyle("heading", fontName="Helvetica-Bold", fontSize=12, leading=15, spaceBefore=8,
                                  spaceAfter=3),
        "body": ParagraphStyle("body", fontName="Times-Roman", fontSize=9.5, leading=11.5, spaceAfter=5),
        "cell": ParagraphStyle("cell", fontName="Helvetica", fontSize=8, leading=9.5),
        "reference": ParagraphStyle("reference", fontName="Times-Roman", fontSize=8, leading=9.5, spaceAfter=2),
        "toc": ParagraphStyle("toc", fontName="Times-Roman", fontSize=11, leading=16),
    }


def _running(header: str):
    def draw(canvas, document):
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.drawString(MARGIN, PAGE_H - 30, header)
        canvas.drawRightString(PAGE_W - MARGIN, PAGE_H - 30, f"Page {canvas.getPageNumber()} of 5")
        canvas.restoreState()
    return draw


def two_column_article(pdf_title: str | None = JOB_NUMBER_TITLE) -> bytes:
    """A BMC-style two-column article: title across page 1 (the largest type), a table with a
    "Reference" column in the Methods, the sections over several pages, a numbered reference list set
    small, then an appendix; `pdf_title` goes to the document information's /Title."""
    styles = _styles()
    columns = [Frame(MARGIN + n * (COLUMN_W + GUTTER), BODY_BOTTOM, COLUMN_W, BODY_TOP - BODY_BOTTOM - TITLE_H - 8,
                     leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0, id=f"first{n}")
               for n in (0, 1)]
    later = [Frame(MARGIN + n * (COLUMN_W + GUTTER), BODY_BOTTOM, COLUMN_W, BODY_TOP - BODY_BOTTOM,
                   leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0, id=f"later{n}") for n in (0, 1)]
    title_frame = Frame(MARGIN, BODY_TOP - TITLE_H, PAGE_W - 2 * MARGIN, TITLE_H, leftPadding=0, rightPadding=0,
                        topPadding=0, bottomPadding=0, id="title")
    output = io.BytesIO()
    document = BaseDocTemplate(output, pagesize=A4, title=pdf_title or "", author="Fixture Authors", invariant=1)
    header = _running("Fixture et al. BMC-like Health Services Research 2024, 1:7")
    document.addPageTemplates([PageTemplate("first", [title_frame, *columns], onPage=header),
                               PageTemplate("later", later, onPage=header)])
    story = [Paragraph("RESEARCH ARTICLE", styles["label"]), Paragraph(ARTICLE_TITLE, styles["title"]),
             Paragraph("Ada Fixture, Ben Example and Chi Placeholder", styles["authors"]),
             NextPageTemplate("later"), FrameBreak()]
    for name, paragraphs in ARTICLE_SECTIONS:
        story.append(Paragraph(name, styles["heading"]))
        for index, text in enumerate(paragraphs):
            story.append(Paragraph(text, styles["body"]))
            if name == "Methods" and index == 0:
                rows = [[Paragraph(value, styles["cell"]) for value in row] for row in [TABLE_HEADER, *TABLE_ROWS]]
                table = Table(rows, colWidths=[COLUMN_W * 0.28, COLUMN_W * 0.26, COLUMN_W * 0.26, COLUMN_W * 0.2])
                table.setStyle(TableStyle([("LINEABOVE", (0, 0), (-1, 0), 0.6, "#000000"),
                                           ("LINEBELOW", (0, 0), (-1, 0), 0.4, "#000000"),
                                           ("VALIGN", (0, 0), (-1, -1), "TOP")]))
                story += [Paragraph("Table 1 Studies reviewed", styles["cell"]), table]
    story.append(Paragraph("References", styles["heading"]))
    for number, entry in enumerate(REFERENCES, 1):
        story.append(Paragraph(f"{number}. {entry}", styles["reference"]))
    story += [Paragraph(APPENDIX_HEADING, styles["heading"]), Paragraph(APPENDIX_TEXT, styles["body"])]
    document.build(story)
    return output.getvalue()


GUIDE_TITLE = "Guide to Safe Injection Practice in Outpatient Clinics"
CONTENTS = [("1", "Introduction", 3), ("1.1", "Scope of this guide", 3), ("1.4", "Investigations in hospital", 13),
            ("2", "Recommendations", 5), ("2.1", "Single-dose vials", 6), ("3", "Audit", 9)]
LIST_OF_FIGURES = [("Figure 1", "Where to place sharps containers", 7), ("Figure 2", "The audit cycle", 10)]
GUIDE_SECTIONS = [
    ("Introduction", "Unsafe injection practice in outpatient clinics has caused outbreaks of hepatitis B and C, "
                     "and every clinic needs a written policy that staff read when they start work."),
    ("Recommendations", "Use a new sterile needle and syringe for every injection, never enter a vial with a used "
                        "syringe, and keep single-dose vials for one patient only even when medicine is left over."),
    ("Audit", "Audit injection practice twice a year with the checklist, feed the results back to staff within a "
              "month and repeat the audit sooner when a lapse is found."),
]


def guide_with_contents(pdf_title: str | None = GUIDE_TITLE) -> bytes:
    """A one-column guide: a title page, a contents page (dot leaders and page numbers, and a list of
    figures), then the body pages."""
    styles = _styles()
    frame = Frame(MARGIN, BODY_BOTTOM, PAGE_W - 2 * MARGIN, BODY_TOP - BODY_BOTTOM, id="body")
    output = io.BytesIO()
    document = BaseDocTemplate(output, pagesize=A4, title=pdf_title or "", invariant=1)
    document.addPageTemplates([PageTemplate("page", [frame], onPage=_running("Safe injection guide (fixture)"))])

    def leader(label: str, text: str, page: int) -> str:
        return f"{label} {text} {'.' * max(4, 70 - len(label) - len(text))} {page}"

    story = [Paragraph(GUIDE_TITLE, styles["title"]), PageBreak(), Paragraph("Contents", styles["heading"])]
    story += [Paragraph(leader(*entry), styles["toc"]) for entry in CONTENTS]
    story += [Paragraph("List of figures", styles["heading"])]
    story += [Paragraph(leader(*entry), styles["toc"]) for entry in LIST_OF_FIGURES]
    story.append(PageBreak())
    for heading, text in GUIDE_SECTIONS:
        story += [Paragraph(heading, styles["heading"])] + [Paragraph(text, styles["body"])] * 1
        story += [Paragraph(f"{text[:-1]}, as the working group noted in round {n}.", styles["body"])
                  for n in range(1, 4)]
    document.build(story)
    return output.getvalue()
