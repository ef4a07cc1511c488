"""PDF -> Markdown-ish text with pdfminer.six: reading order, headings and paragraphs rebuilt from the layout.

GROBID (the original's PDF route) gave section headings; a text library gives characters with
their fonts and positions, so the structure is rebuilt here from the lines and text boxes
(paragraphs) pdfminer groups them into:

- reading order: on each page, text boxes that fit between the column gutters are column text,
  boxes crossing a gutter (a full-width title, box or table) span; the spanning boxes cut the page
  into bands read top to bottom, and inside a band each column is read top to bottom, left column
  first; boxes side by side at one height (table cells) are read left to right. A gutter is a
  vertical strip that no multi-line box narrower than the page's text crosses, with such boxes on
  both sides of it; a page without one is read top to bottom;
- the *body size* is the font size carrying the most characters in the document;
- a short line (at most 20 words) set larger than the body (by 12% or more) is a heading; the
  distinct heading sizes, largest first, give levels ``#``, ``##``, ``###``; a short bold line at
  body size that stands alone in its box and ends no sentence is a heading one level below the
  smallest sized one; consecutive heading lines of one size in one box are one wrapped heading;
- running headers and footers are removed: a line in the top or bottom 10% of its page whose text
  (digits ignored) recurs on at least half of the pages (and on 2 pages or more), that is set
  smaller than the body text above or below the page's body text (unless it is part of a footnote;
  small type beside the body, a table's header row at the top of a column, stays), or that is a page
  number ("3", "Page 3 of 12");
- footnotes (a box set smaller than the body, in the lower part of the page, below all body text,
  starting with a note mark: "1", "*", "†") are kept, each as a paragraph after the paragraph that
  is open when its page ends, so that a sentence carried over to the next column or page stays
  whole; raised small digits and note marks in the text (footnote and citation references) are
  removed;
- the other lines are emitted as they are, one box per paragraph (a box continuing the previous
  one, a list item's hanging indent or a sentence carried over a column or page break, is joined
  to it); numbered lines ("1. ...") become ``- `` items; a word hyphenated at a line end is joined
  ("treat-" + "ment": "treatment") unless the hyphen is a real one ("long-" + "term": "long-term"):
  the document's own spelling of the word elsewhere decides, else an acronym or a number before the
  hyphen ("HIV-"), a capital or digit after it ("COVID-19"), a usual compound prefix ("self-",
  "non-") or head ("-based", "-related") keeps it;
  joining the other wrapped lines of a paragraph happens in :func:`guidelines_scraper.clean.clean_text`;
- the title is the document information's ``/Title`` when it reads as a title
  (:func:`guidelines_scraper.titles.looks_like_title`: not a DOI, a typesetter's job number such as
  ``6489122611071476 1..10``, a file name or a placeholder), else the largest text on the first page
  (its lines of that size in one box joined: a wrapped title), running heads and letter-spaced labels
  left out.

:func:`convert_pdf` returns the text with how it was extracted: ``pdf_layout`` (the above), or
``pdf_plain_text`` when that pass failed on the document and pdfminer's plain text extraction
(no headings) was used instead. It raises :class:`PdfError` for an unreadable (corrupt,
encrypted) PDF. :func:`pdf_to_markdown` is the same without the method.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, field

from gap_replay.guidelines_scraper.titles import looks_like_title

MAX_PAGES = 2000
HEADING_RATIO = 1.12
HEADING_MAX_WORDS = 20
MARGIN_FRACTION = 0.10
FOOTNOTE_ZONE = 0.6          # footnotes start below this fraction of the page height
SMALL_RATIO = 0.9            # set smaller than the body: furniture or footnotes
SUPERSCRIPT_RATIO = 0.85     # a raised character at most this size of its line's is a superscript
MIN_GUTTER = 6.0             # points
SPANNING_WIDTH = 0.6         # a box at least this fraction of the page's text width may span columns
ROW_TOLERANCE = 3.0          # points: boxes whose tops differ by less are side by side

PDF_LAYOUT = "pdf_layout"
PDF_PLAIN_TEXT = "pdf_plain_text"

_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?$", re.IGNORECASE)
_SENTENCE_END = (".", ";", ",", ":")
_NOTE_MARK = re.compile(r"^(?:\d{1,3}|[*\u2020\u2021\u00a7\u00b6]{1,3})(?:[\s.)]|(?=[A-Z]))")
_SUPERSCRIPT_DROPPED = set("0123456789,*\u2020\u2021\u00a7\u00b6-\u2013")
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st"})

_NUMBERED = re.compile(r"^\d{1,3}[.)]\s+(?=\S)")  # "1. Text" / "2) Text": a numbered list item
_BULLET_START = re.compile("^[\u2022\u25aa\u25cf\u25e6\u2023\u2043\u2219\uf0b7\uf0a7-](?:\\s|$)")

# Hyphenation at line ends: "word-" (hyphen-minus, U+2010 hyphen or a soft hyphen kept by the producer).
_LINE_END_HYPHEN = re.compile(r"(?<=[^\W\d_])[-\u2010\u00ad]$")
_LINE_START_WORD = re.compile(r"^\w+")
_WORD = re.compile(r"\w+(?:-\w+)*")
_COMPOUND_PREFIXES = frozenset({"self", "non", "ex", "well", "all", "cross", "half", "quasi"})
_COMPOUND_HEADS = frozenset({"based", "related", "specific", "dependent", "induced", "associated", "free", "like",
                             "up", "term", "year", "old"})


def _continues(previous_text: str, line: _Line, item_x: float | None) -> bool:
    """Whether `line`, first of a new text box, continues the previous body line: the hanging
    indent of a list item, or a sentence carried over a box, column or page break."""
    if not previous_text or _BULLET_START.match(line.text) or _NUMBERED.match(line.text):
        return False
    if item_x is not None and line.x0 > item_x + 2:
        return True
    return line.text[:1].islower() and not previous_text.endswith((".", "!", "?", ":"))


class PdfError(ValueError):
    """The PDF cannot be read."""


@dataclass(frozen=True)
class PdfText:
    """What :func:`convert_pdf` made of a PDF."""

    title: str | None
    text: str
    extraction: str                  # PDF_LAYOUT or PDF_PLAIN_TEXT
    layout_error: str | None = None  # why the layout pass failed (PDF_PLAIN_TEXT only)


@dataclass
class _Line:
    text: str
    size: float
    bold: bool
    top: float      # distance of the line's top from the top of the page, as a fraction
    bottom: float   # distance of the line's bottom from the top of the page, as a fraction
    box: int        # index of its text box on the page, in reading order
    page: int
    chars: int
    x0: float       # left edge, in points
    note: bool = False  # part of a footnote
    marked: bool = False  # starts with a superscript note mark (removed from `text`)


@dataclass
class _Box:
    x0: float
    x1: float
    top: float      # points from the top of the page
    lines: list[_Line] = field(default_factory=list)


def _line_of(line, page_height: float, box: int, page: int) -> _Line | None:
    from pdfminer.layout import LTChar

    sizes: Counter = Counter()
    glyphs = []
    for item in line:
        if isinstance(item, LTChar) and not item.get_text().isspace():
            glyphs.append(item)
            sizes[round(item.size * 2) / 2] += 1
    if not glyphs:
        return None
    size = sizes.most_common(1)[0][0]
    baseline = min(item.y0 for item in glyphs if round(item.size * 2) / 2 == size)
    bold = chars = 0
    marked = False
    parts = []
    for item in line:
        text = item.get_text()
        if isinstance(item, LTChar) and not text.isspace():
            if (item.size <= size * SUPERSCRIPT_RATIO and item.y0 > baseline + size * 0.2
                    and text in _SUPERSCRIPT_DROPPED):
                marked = marked or not chars
                continue  # a footnote or citation reference
            chars += 1
            name = (item.fontname or "").lower()
            if "bold" in name or "black" in name or "heavy" in name or name.endswith((",b", "-b")):
                bold += 1
        parts.append(text)
    text = re.sub(r"\s+", " ", "".join(parts).translate(_LIGATURES)).strip()
    if not text or not chars:
        return None
    return _Line(text, size, bold * 2 > chars, (page_height - line.y1) / page_height,
                 (page_height - line.y0) / page_height, box, page, chars, float(line.x0), marked=marked)


def _gutters(boxes: list[_Box], page_height: float) -> list[tuple[float, float]]:
    """The (left, right) edges of the column gutters of a page: gaps between the multi-line boxes
    narrower than the page's text that have such boxes on both sides."""
    if not boxes:
        return []
    left, right = min(box.x0 for box in boxes), max(box.x1 for box in boxes)
    width = right - left
    margin = page_height * MARGIN_FRACTION
    flow = sorted((box.x0, box.x1) for box in boxes
                  if len(box.lines) >= 2 and box.x1 - box.x0 < width * SPANNING_WIDTH
                  and margin < box.top < page_height - margin)
    gutters = []
    reach = None
    for x0, x1 in flow:
        if reach is not None and x0 - reach >= MIN_GUTTER:
            gutters.append((reach, x0))
        reach = x1 if reach is None else max(reach, x1)
    return gutters


def _reading_order(boxes: list[_Box], page_height: float) -> list[_Box]:
    """The boxes of a page in reading order (see the module docstring)."""
    gutters = _gutters(boxes, page_height)

    def column(box: _Box) -> int | None:
        """Index of the column holding `box`, None when it crosses a gutter."""
        for index, (gap_left, gap_right) in enumerate(gutters):
            if box.x1 <= gap_left + 1:
                return index
            if box.x0 < gap_right - 1:
                return None
        return len(gutters)

    def by_rows(group: list[_Box]) -> list[_Box]:
        group = sorted(group, key=lambda box: (box.top, box.x0))
        ordered: list[_Box] = []
        row: list[_Box] = []
        for box in group:
            if row and box.top - row[0].top >= ROW_TOLERANCE:
                ordered += sorted(row, key=lambda b: b.x0)
                row = []
            row.append(box)
        return ordered + sorted(row, key=lambda b: b.x0)

    if not gutters:
        return by_rows(boxes)
    spanning = sorted((box for box in boxes if column(box) is None), key=lambda box: box.top)
    bands: list[list[list[_Box]]] = [[[] for _ in range(len(gutters) + 1)] for _ in range(len(spanning) + 1)]
    for box in boxes:
        index = column(box)
        if index is not None:
            band = sum(1 for other in spanning if other.top <= box.top)
            bands[band][index].append(box)
    ordered: list[_Box] = []
    for band, columns in enumerate(bands):
        if band:
            ordered.append(spanning[band - 1])
        for boxes_of_column in columns:
            ordered += by_rows(boxes_of_column)
    return ordered


def _open(body: bytes):
    """(pdfminer document, its /Title): PdfError when the file cannot be parsed or may not be extracted."""
    from pdfminer.pdfdocument import PDFDocument
    from pdfminer.pdfparser import PDFParser

    try:
        document = PDFDocument(PDFParser(io.BytesIO(body)))
    except Exception as exc:  # noqa: BLE001 - pdfminer raises many types for broken files
        raise PdfError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
    if not document.is_extractable:
        raise PdfError("text extraction not allowed by the PDF")
    try:
        title = _info_title(document)
    except Exception:  # noqa: BLE001 - a broken /Info dictionary only loses the title
        title = None
    return document, title


def _read(document) -> list[list[_Line]]:
    """The lines of each page, in reading order, each with the index of its box."""
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LAParams, LTTextBox, LTTextLine
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage

    manager = PDFResourceManager(caching=True)
    # boxes_flow=None: pdfminer groups lines into boxes but leaves their order to _reading_order.
    device = PDFPageAggregator(manager, laparams=LAParams(boxes_flow=None))
    interpreter = PDFPageInterpreter(manager, device)
    pages: list[list[_Line]] = []
    for number, page in enumerate(PDFPage.create_pages(document)):
        if number >= MAX_PAGES:
            break
        interpreter.process_page(page)
        result = device.get_result()
        height = float(result.height) or 1.0
        boxes: list[_Box] = []
        for element in result:
            if isinstance(element, (LTTextBox, LTTextLine)):
                box = _Box(float(element.x0), float(element.x1), height - float(element.y1))
                for item in (element if isinstance(element, LTTextBox) else [element]):
                    if isinstance(item, LTTextLine):
                        line = _line_of(item, height, 0, number)
                        if line is not None:
                            box.lines.append(line)
                if box.lines:
                    boxes.append(box)
        lines: list[_Line] = []
        for index, box in enumerate(_reading_order(boxes, height)):
            for line in box.lines:
                line.box = index
                lines.append(line)
        pages.append(lines)
    return pages


def _info_title(document) -> str | None:
    from pdfminer.pdftypes import resolve1
    from pdfminer.psparser import PSLiteral
    from pdfminer.utils import decode_text

    for info in document.info or []:
        value = resolve1(info.get("Title")) if isinstance(info, dict) else None
        if isinstance(value, PSLiteral):
            value = value.name
        if isinstance(value, bytes):
            value = decode_text(value)
        if isinstance(value, str):
            value = re.sub(r"\s+", " ", value.replace("\x00", "")).strip()
            if value and looks_like_title(value):
                return value
    return None


def _mark_footnotes(pages: list[list[_Line]], body_size: float) -> None:
    """Set `note` on the lines of footnotes: boxes set smaller than the body, in the lower part of
    the page, below every body-size line outside the margins, whose first line starts with a note mark
    (a number or symbol, raised or not)."""
    for lines in pages:
        body_bottom = max((line.top for line in lines
                           if line.size >= body_size * SMALL_RATIO and line.bottom <= 1 - MARGIN_FRACTION),
                          default=0.0)
        by_box: dict[int, list[_Line]] = {}
        for line in lines:
            by_box.setdefault(line.box, []).append(line)
        for box_lines in by_box.values():
            first = box_lines[0]
            if (first.top >= FOOTNOTE_ZONE and first.top > body_bottom
                    and (first.marked or _NOTE_MARK.match(first.text))
                    and all(line.size < body_size * SMALL_RATIO for line in box_lines)):
                for line in box_lines:
                    line.note = True


def _running_lines(pages: list[list[_Line]], body_size: float) -> set[tuple[int, int]]:
    """(page, index) of running headers/footers and page numbers: lines in the top or bottom margin
    that recur on half of the pages (digits ignored), are page numbers, or are set smaller than the
    body text, above or below the page's body text, and are no footnote (page furniture, also on a
    one-page document)."""
    drop: set[tuple[int, int]] = set()
    seen: Counter = Counter()
    margins: list[tuple[int, int, str]] = []
    for page_no, lines in enumerate(pages):
        keys_here = set()
        # The body's extent on the page: small type above or below it is furniture; small type beside
        # it (a table's header row at the top of a column) is text.
        body = [line for line in lines if line.size >= body_size * SMALL_RATIO and len(line.text.split()) >= 4]
        body_top = min((line.top for line in body), default=1.0)
        body_bottom = max((line.bottom for line in body), default=0.0)
        for index, line in enumerate(lines):
            in_margin = line.top < MARGIN_FRACTION or line.bottom > 1 - MARGIN_FRACTION
            if not in_margin:
                continue
            outside_body = line.bottom <= body_top + 0.002 or line.top >= body_bottom - 0.002
            if _PAGE_NUMBER.match(line.text) or (line.size < body_size * SMALL_RATIO and not line.note
                                                 and outside_body):
                drop.add((page_no, index))
                continue
            key = _DIGITS.sub("#", line.text.casefold())
            margins.append((page_no, index, key))
            keys_here.add(key)
        seen.update(keys_here)
    if len(pages) >= 2:
        threshold = max(2, (len(pages) + 1) // 2)
        for page_no, index, key in margins:
            if seen[key] >= threshold:
                drop.add((page_no, index))
    return drop


def _body_size(pages: list[list[_Line]]) -> float | None:
    sizes: Counter = Counter()
    for page in pages:
        for line in page:
            sizes[line.size] += line.chars
    return sizes.most_common(1)[0][0] if sizes else None


class _Hyphenation:
    """Decides whether the hyphen ending a line is a real one, from the words of the document."""

    def __init__(self, lines: list[_Line]):
        self.words: Counter = Counter()
        for line in lines:
            # A word split at this line's end is not evidence of its own spelling.
            text = line.text[:-1] if _LINE_END_HYPHEN.search(line.text) else line.text
            self.words.update(word.casefold() for word in _WORD.findall(text))

    def join(self, first: str, second: str) -> str:
        """`first` (ending with a hyphen) and `second` joined as one line."""
        head = first.rsplit(" ", 1)[-1][:-1]
        start = _LINE_START_WORD.match(second)
        if not start or not head:
            return first + " " + second
        tail = start.group(0)
        compound = self.words[f"{head}-{tail}".casefold()]
        joined = self.words[f"{head}{tail}".casefold()]
        if compound or joined:
            keep = compound > joined
        else:
            acronym = sum(ch.isupper() for ch in head) >= 2 or any(ch.isdigit() for ch in head)  # "HIV-", "5-"
            keep = (acronym or not tail[0].islower()
                    or head.casefold() in _COMPOUND_PREFIXES or tail.casefold() in _COMPOUND_HEADS)
        return (first[:-1] + "-" if keep else first[:-1]) + second


def _markdown(pages: list[list[_Line]], info_title: str | None) -> tuple[str | None, str]:
    """(title, text) from the pages' lines: the heading pass."""
    body_size = _body_size(pages)
    if body_size is None:
        return info_title, ""
    _mark_footnotes(pages, body_size)
    drop = _running_lines(pages, body_size)
    lines = [line for page_no, page in enumerate(pages) for index, line in enumerate(page)
             if (page_no, index) not in drop]
    if not lines:
        return info_title, ""
    hyphenation = _Hyphenation(lines)

    def short(line: _Line) -> bool:
        return len(line.text.split()) <= HEADING_MAX_WORDS

    heading_sizes = sorted({line.size for line in lines
                            if line.size >= body_size * HEADING_RATIO and short(line) and not line.note},
                           reverse=True)
    level_of = {size: min(3, rank + 1) for rank, size in enumerate(heading_sizes)}
    bold_level = min(3, len(heading_sizes) + 1)
    box_sizes = Counter((line.page, line.box) for line in lines)

    def level(line: _Line) -> int:
        if line.note:
            return 0
        if line.size in level_of and short(line):
            return level_of[line.size]
        if (line.bold and abs(line.size - body_size) < 0.6 and box_sizes[(line.page, line.box)] == 1
                and len(line.text.split()) <= 12 and not line.text.endswith(_SENTENCE_END)):
            return bold_level
        return 0

    out: list[str] = []
    notes: list[str] = []           # footnotes waiting for the end of the open paragraph
    note_box: tuple[int, int] | None = None
    title: str | None = info_title
    previous: tuple[int, int, int, float] | None = None  # (page, box, level, size) of the last line
    last_heading = -1               # index in `out` of the last heading emitted
    last_text = ""                  # the last body line
    item_x: float | None = None     # left edge of the current list item's bullet line

    def add_line(lines_out: list[str], text: str) -> None:
        if lines_out and lines_out[-1] and _LINE_END_HYPHEN.search(lines_out[-1]):
            lines_out[-1] = hyphenation.join(lines_out[-1], text)
        else:
            lines_out.append(text)

    def flush_notes() -> None:
        if notes:
            out.extend(["", *notes])
            notes.clear()

    for line in lines:
        where = (line.page, line.box)
        if line.note:
            if notes and where != note_box:
                notes.append("")
            add_line(notes, line.text)
            note_box = where
            continue
        lvl = level(line)
        if lvl:
            if previous and previous[:2] == where and previous[2] == lvl and previous[3] == line.size \
                    and last_heading == len(out) - 2:
                out[last_heading] += " " + line.text  # a heading wrapped over two lines
            else:
                flush_notes()
                out.extend(["", "#" * lvl + " " + line.text, ""])
                last_heading = len(out) - 2
        else:
            text = _NUMBERED.sub("- ", line.text, count=1)
            starts_item = text != line.text or _BULLET_START.match(text)
            new_box = previous is None or previous[:2] != where
            if previous is None or previous[2] or (new_box and not _continues(last_text, line, item_x)):
                flush_notes()
                out.append("")
                out.append(text)
            else:
                add_line(out, text)
            if starts_item:
                item_x = line.x0
            elif new_box and not _continues(last_text, line, item_x):
                item_x = None
            last_text = line.text
        previous = (line.page, line.box, lvl, line.size)
    flush_notes()
    if title is None:
        title = _first_page_title(lines)
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return title, text


def _first_page_title(lines: list[_Line]) -> str | None:
    """The largest text on the first page that has text (running heads and footnotes left out), with
    the following lines of its box set in the same size (a wrapped title), when it reads as a title."""
    first_page = lines[0].page
    page = [line for line in lines if line.page == first_page and not line.note]
    candidates = [line for line in page if looks_like_title(line.text)]
    if not candidates:
        return None
    largest = max(line.size for line in candidates)
    for index, line in enumerate(page):
        if line.size != largest or line not in candidates:
            continue
        parts = [line.text]
        for other in page[index + 1:]:
            if (other.box, other.size) != (line.box, line.size):
                break
            parts.append(other.text)
        title = " ".join(parts)
        if len(title) > 300:
            title = line.text
        return title if looks_like_title(title) else None
    return None


def _plain_text(body: bytes) -> str:
    """pdfminer's own text extraction: no headings, pages separated by blank lines."""
    from pdfminer.high_level import extract_text

    text = extract_text(io.BytesIO(body), maxpages=MAX_PAGES).translate(_LIGATURES)
    return re.sub(r"\n{3,}", "\n\n", text.replace("\x0c", "\n\n")).strip()


def convert_pdf(body: bytes) -> PdfText:
    """The title and text of a PDF (``#`` headings, paragraphs separated by blank lines) and how
    they were extracted; falls back to plain text when the layout pass fails on the document."""
    document, info_title = _open(body)
    try:
        title, text = _markdown(_read(document), info_title)
        return PdfText(title, text, PDF_LAYOUT)
    except Exception as exc:  # noqa: BLE001 - any failure of the layout pass: try plain text
        layout_error = f"{type(exc).__name__}: {exc}".rstrip(": ")
    try:
        text = _plain_text(body)
    except Exception as exc:  # noqa: BLE001
        raise PdfError(f"{layout_error}; plain text: {type(exc).__name__}: {exc}".rstrip(": ")) from None
    return PdfText(info_title, text, PDF_PLAIN_TEXT, layout_error)


def pdf_to_markdown(body: bytes) -> tuple[str | None, str]:
    """(title, text) of a PDF: ``#`` headings, paragraphs separated by blank lines (see :func:`convert_pdf`)."""
    result = convert_pdf(body)
    return result.title, result.text


__all__ = ["PDF_LAYOUT", "PDF_PLAIN_TEXT", "PdfError", "PdfText", "convert_pdf", "pdf_to_markdown"]
