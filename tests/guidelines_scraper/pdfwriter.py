"""A minimal, deterministic PDF writer for test fixtures (text only, the standard Helvetica fonts).

Documents are written from a small markup, one block per line::

    = Title                      20 pt bold
    # Section heading            14 pt bold
    ## Subsection heading        11.5 pt bold
    ### Run-in heading           10 pt bold (body size: a heading only by its weight)
    - list item                  a "•" bullet, wrapped with a hanging indent
    a paragraph line             consecutive lines form one paragraph, wrapped to the page width
    (blank line)                 ends a paragraph
    <<page>>                     page break

``{-}`` inside a word forces a line break there with a hyphen (to exercise de-hyphenation). Every
page gets the running `header` and the `footer` (``{page}`` and ``{pages}`` substituted), as
guideline PDFs do. The same input always gives the same bytes (no dates, fixed ids).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pdfminer.fontmetrics import FONT_METRICS

PAGE_W, PAGE_H = 612, 792
MARGIN = 72
BODY = 10.0
STYLES = {  # markup prefix -> (font, size, space before)
    "=": ("F2", 20.0, 0.0),
    "#": ("F2", 14.0, 14.0),
    "##": ("F2", 11.5, 10.0),
    "###": ("F2", 10.0, 8.0),
}
_FONTS = {"F1": "Helvetica", "F2": "Helvetica-Bold"}
_BREAK = "{-}"


def _width(text: str, font: str, size: float) -> float:
    widths = FONT_METRICS[_FONTS[font]][1]
    return sum(widths.get(ch, 556) for ch in text) * size / 1000.0


def _escape(text: str) -> bytes:
    raw = text.encode("cp1252")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy word wrap; ``{-}`` forces a hyphenated break."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        pieces = word.split(_BREAK)
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            token = piece if last else piece + "-"
            joiner = "" if (index > 0 or not current) else " "
            if current and index == 0 and _width(current + " " + token, font, size) > width:
                lines.append(current)
                current, joiner = "", ""
            current += joiner + token
            if not last:
                lines.append(current)
                current = ""
    if current:
        lines.append(current)
    return lines


@dataclass
class _Line:
    text: str
    font: str
    size: float
    x: float
    y: float


def layout(markup: str, header: str = "", footer: str = "") -> list[list[_Line]]:
    """Markup -> pages of positioned lines (body only; header/footer added when written)."""
    pages: list[list[_Line]] = [[]]
    top, bottom = PAGE_H - MARGIN, MARGIN + 10
    y = top
    text_width = PAGE_W - 2 * MARGIN

    def new_page() -> None:
        nonlocal y
        pages.append([])
        y = top

    def put(lines: list[str], font: str, size: float, x: float, before: float, first_x: float | None = None):
        nonlocal y
        leading = size * 1.25
        if pages[-1]:
            y -= before
        for index, line in enumerate(lines):
            if y - leading < bottom:
                new_page()
            y -= leading
            pages[-1].append(_Line(line, font, size, first_x if (index == 0 and first_x is not None) else x, y))

    paragraph: list[str] = []

    def flush_paragraph() -> None:
        if paragraph:
            put(_wrap(" ".join(paragraph), "F1", BODY, text_width), "F1", BODY, MARGIN, 7.0)
            paragraph.clear()

    for raw in markup.strip("\n").split("\n"):
        line = raw.strip()
        if not line:
            flush_paragraph()
            continue
        if line == "<<page>>":
            flush_paragraph()
            new_page()
            continue
        match = re.match(r"^(=|#{1,3})\s+(.*)$", line)
        if match:
            flush_paragraph()
            font, size, before = STYLES[match.group(1)]
            put(_wrap(match.group(2), font, size, text_width), font, size, MARGIN, before)
            continue
        if line.startswith("- "):
            flush_paragraph()
            indent = 14.0
            wrapped = _wrap(line[2:], "F1", BODY, text_width - indent)
            wrapped[0] = "\u2022 " + wrapped[0]
            put(wrapped, "F1", BODY, MARGIN + indent, 3.0, first_x=MARGIN + indent - _width("\u2022 ", "F1", BODY))
            continue
        paragraph.append(line)
    flush_paragraph()
    if not pages[-1]:
        pages.pop()
    return pages


def write_pdf(markup: str, *, title: str | None = None, header: str = "", footer: str = "") -> bytes:
    """A PDF of `markup` (see the module docstring)."""
    pages = layout(markup)
    count = len(pages)
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    pages_id = add(b"")
    f1 = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    f2 = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
    kids = []
    for number, lines in enumerate(pages, start=1):
        ops = []
        decorations = []
        if header:
            decorations.append(_Line(header, "F1", 8.0, MARGIN, PAGE_H - 40))
        if footer:
            text = footer.replace("{page}", str(number)).replace("{pages}", str(count))
            decorations.append(_Line(text, "F1", 8.0, MARGIN, 40))
        for line in decorations + lines:
            ops.append(b"BT /%s %.1f Tf 1 0 0 1 %.2f %.2f Tm (%s) Tj ET" % (
                line.font.encode(), line.size, line.x, line.y, _escape(line.text)))
        stream = b"\n".join(ops)
        content = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 %d 0 R "
                        b"/F2 %d 0 R >> >> /Contents %d 0 R >>" % (pages_id, PAGE_W, PAGE_H, f1, f2, content)))
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id
    objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids), count)
    info_fields = b"/Producer (gap-replay test fixture writer)"
    if title:
        info_fields = b"/Title (%s) " % _escape(title) + info_fields
    info = add(b"<< " + info_fields + b" >>")

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, catalog, info, xref)
    return bytes(out)
