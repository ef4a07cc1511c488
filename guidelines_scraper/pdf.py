"""PDF -> Markdown-ish text with pdfminer.six: headings recovered from font sizes and weights.

GROBID (the original's PDF route) gave section headings; a text library gives characters with
their fonts, so the structure is rebuilt here from the layout pdfminer computes:

- pdfminer groups characters into lines and lines into text boxes (paragraphs), in reading order
  (its ``boxes_flow`` handles simple two-column pages);
- the *body size* is the font size carrying the most characters in the document;
- a short line (at most 20 words) set larger than the body (by 12% or more) is a heading; the
  distinct heading sizes, largest first, give levels ``#``, ``##``, ``###``; a short bold line at
  body size that stands alone in its box and ends no sentence is a heading one level below the
  smallest sized one; consecutive heading lines of one size in one box are one wrapped heading;
- running headers and footers are removed: a line in the top or bottom 10% of its page whose text
  (digits ignored) recurs on at least half of the pages (and on 2 pages or more), that is set
  smaller than the body text, or that is a page number ("3", "Page 3 of 12");
- the other lines are emitted as they are, one box per paragraph (a box continuing the previous
  one, a list item's hanging indent or a sentence carried over a page break, is joined to it);
  numbered lines ("1. ...") become ``- `` items; joining wrapped lines and de-hyphenation happen
  in :func:`guidelines_scraper.clean.clean_text`;
- the title is the document information's ``/Title`` unless it looks like a file name, else the
  first top-level heading of page 1.

:func:`pdf_to_markdown` raises :class:`PdfError` for an unreadable (corrupt, encrypted) PDF.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass

MAX_PAGES = 2000
HEADING_RATIO = 1.12
HEADING_MAX_WORDS = 20
MARGIN_FRACTION = 0.10
_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?$", re.IGNORECASE)
_FILE_TITLE = re.compile(r"(?:\.(?:docx?|pdf|indd|pptx?|rtf|txt)\s*$|^microsoft word\b|^untitled\b)", re.IGNORECASE)
_SENTENCE_END = (".", ";", ",", ":")


_NUMBERED = re.compile(r"^\d{1,3}[.)]\s+(?=\S)")  # "1. Text" / "2) Text": a numbered list item
_BULLET_START = re.compile("^[\u2022\u25aa\u25cf\u25e6\u2023\u2043\u2219\uf0b7\uf0a7-](?:\\s|$)")


def _continues(previous_text: str, line: _Line, item_x: float | None) -> bool:
    """Whether `line`, first of a new text box, continues the previous body line: the hanging
    indent of a list item, or a sentence carried over a box or page break."""
    if not previous_text or _BULLET_START.match(line.text) or _NUMBERED.match(line.text):
        return False
    if item_x is not None and line.x0 > item_x + 2:
        return True
    return line.text[:1].islower() and not previous_text.endswith((".", "!", "?", ":"))


class PdfError(ValueError):
    """The PDF cannot be read."""


@dataclass
class _Line:
    text: str
    size: float
    bold: bool
    top: float      # distance of the line's top from the top of the page, as a fraction
    bottom: float   # distance of the line's bottom from the top of the page, as a fraction
    box: int        # index of its text box on the page
    page: int
    chars: int
    x0: float       # left edge, in points


def _line_of(line, page_height: float, box: int, page: int) -> _Line | None:
    from pdfminer.layout import LTChar

    sizes: Counter = Counter()
    bold = chars = 0
    for item in line:
        if isinstance(item, LTChar):
            text = item.get_text()
            if text.isspace():
                continue
            chars += 1
            sizes[round(item.size * 2) / 2] += 1
            name = (item.fontname or "").lower()
            if "bold" in name or "black" in name or "heavy" in name or name.endswith((",b", "-b")):
                bold += 1
    text = re.sub(r"\s+", " ", line.get_text()).strip()
    if not text or not chars:
        return None
    size = sizes.most_common(1)[0][0]
    return _Line(text, size, bold * 2 > chars, (page_height - line.y1) / page_height,
                 (page_height - line.y0) / page_height, box, page, chars, float(line.x0))


def _read(body: bytes) -> tuple[list[list[_Line]], str | None]:
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LAParams, LTTextBox, LTTextLine
    from pdfminer.pdfdocument import PDFDocument
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser

    parser = PDFParser(io.BytesIO(body))
    document = PDFDocument(parser)
    if not document.is_extractable:
        raise PdfError("text extraction not allowed by the PDF")
    title = _info_title(document)
    manager = PDFResourceManager(caching=True)
    device = PDFPageAggregator(manager, laparams=LAParams())
    interpreter = PDFPageInterpreter(manager, device)
    pages: list[list[_Line]] = []
    for number, page in enumerate(PDFPage.create_pages(document)):
        if number >= MAX_PAGES:
            break
        interpreter.process_page(page)
        result = device.get_result()
        height = float(result.height) or 1.0
        lines: list[_Line] = []
        for box_index, element in enumerate(result):
            if isinstance(element, LTTextBox):
                for item in element:
                    if isinstance(item, LTTextLine):
                        line = _line_of(item, height, box_index, number)
                        if line is not None:
                            lines.append(line)
            elif isinstance(element, LTTextLine):
                line = _line_of(element, height, box_index, number)
                if line is not None:
                    lines.append(line)
        pages.append(lines)
    return pages, title


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
            if value and not _FILE_TITLE.search(value):
                return value
    return None


def _running_lines(pages: list[list[_Line]], body_size: float) -> set[tuple[int, int]]:
    """(page, index) of running headers/footers and page numbers: lines in the top or bottom margin
    that recur on half of the pages (digits ignored), are page numbers, or are set smaller than the
    body text (page furniture, also on a one-page document)."""
    drop: set[tuple[int, int]] = set()
    seen: Counter = Counter()
    margins: list[tuple[int, int, str]] = []
    for page_no, lines in enumerate(pages):
        keys_here = set()
        for index, line in enumerate(lines):
            in_margin = line.top < MARGIN_FRACTION or line.bottom > 1 - MARGIN_FRACTION
            if not in_margin:
                continue
            if _PAGE_NUMBER.match(line.text) or line.size < body_size * 0.9:
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


def pdf_to_markdown(body: bytes) -> tuple[str | None, str]:
    """(title, text) of a PDF: ``#`` headings, paragraphs separated by blank lines."""
    try:
        pages, info_title = _read(body)
    except PdfError:
        raise
    except Exception as exc:  # noqa: BLE001 - pdfminer raises many types for broken files
        raise PdfError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
    body_size = _body_size(pages)
    if body_size is None:
        return info_title, ""
    drop = _running_lines(pages, body_size)
    lines = [line for page_no, page in enumerate(pages) for index, line in enumerate(page)
             if (page_no, index) not in drop]
    if not lines:
        return info_title, ""

    def short(line: _Line) -> bool:
        return len(line.text.split()) <= HEADING_MAX_WORDS

    heading_sizes = sorted({line.size for line in lines if line.size >= body_size * HEADING_RATIO and short(line)},
                           reverse=True)
    level_of = {size: min(3, rank + 1) for rank, size in enumerate(heading_sizes)}
    bold_level = min(3, len(heading_sizes) + 1)
    box_sizes = Counter((line.page, line.box) for line in lines)

    def level(line: _Line) -> int:
        if line.size in level_of and short(line):
            return level_of[line.size]
        if (line.bold and abs(line.size - body_size) < 0.6 and box_sizes[(line.page, line.box)] == 1
                and len(line.text.split()) <= 12 and not line.text.endswith(_SENTENCE_END)):
            return bold_level
        return 0

    out: list[str] = []
    title: str | None = info_title
    previous: tuple[int, int, int, float] | None = None  # (page, box, level, size) of the last line
    last_heading = -1               # index in `out` of the last heading emitted
    last_text = ""                  # the last body line
    item_x: float | None = None     # left edge of the current list item's bullet line
    for line in lines:
        lvl = level(line)
        where = (line.page, line.box)
        if lvl:
            if previous and previous[:2] == where and previous[2] == lvl and previous[3] == line.size \
                    and last_heading == len(out) - 2:
                out[last_heading] += " " + line.text  # a heading wrapped over two lines
            else:
                out.extend(["", "#" * lvl + " " + line.text, ""])
                last_heading = len(out) - 2
        else:
            text = _NUMBERED.sub("- ", line.text, count=1)
            starts_item = text != line.text or _BULLET_START.match(text)
            if previous is None or previous[2] or (previous[:2] != where and not _continues(last_text, line, item_x)):
                out.append("")
            out.append(text)
            if starts_item:
                item_x = line.x0
            elif previous is None or previous[:2] != where and not _continues(last_text, line, item_x):
                item_x = None
            last_text = line.text
        previous = (line.page, line.box, lvl, line.size)
    if title is None and heading_sizes:
        first_page = lines[0].page
        for line in lines:
            if line.page != first_page:
                break
            if level(line) == 1:
                title = line.text
                # a wrapped title: the following lines of the same box and size
                for other in lines[lines.index(line) + 1:]:
                    if (other.page, other.box) == (line.page, line.box) and other.size == line.size:
                        title += " " + other.text
                    else:
                        break
                break
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return title, text


__all__ = ["PdfError", "pdf_to_markdown"]
