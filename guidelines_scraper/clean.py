"""Generic and per-source cleaning of extracted guideline text (MEDITRON's ``clean`` + ``truncate``,
GUIDELINE_SOURCES.md section 3, with the known bugs fixed).

Input is Markdown-ish text (``#`` headers, ``- `` list items, paragraphs separated by blank lines)
as produced by :mod:`guidelines_scraper.extract`, or plain text from a PDF. Output:

- URLs, Markdown link targets (the link *text* is kept), images and HTML tags removed;
- numeric citation brackets removed (``[12]``, ``[1-3]``, ``[2, 5–7]``), other brackets kept;
- figure/table debris removed (table rows, captions like ``Figure 2: ...``, rules ``---``);
- odd characters removed (bullets, private-use glyphs such as U+F0B7, U+FFFD, zero-width and
  control characters); lines with no letter at all (any script) dropped;
- list items normalised to ``- `` (``*``, ``+``, ``•``, U+F0B7... and the PDF ``o`` bullet only as
  ``^o\\s``, never a word starting with "o");
- per-source markers (regexes matched case-insensitively against the *whole* line text, ``#``
  marks, list dash and a trailing colon removed): text before the first *start* marker dropped,
  *remove* marker lines dropped, everything from the first *stop* marker dropped, where a stop
  marker only fires on a header-like line (a ``#`` header, or a short line that does not end a
  sentence);
- reference-list sections (References, Bibliography, ...) removed up to the next header of the
  same or a higher level;
- headers rescaled so that the smallest level present becomes ``#``, capped at ``###``; headers
  left with no content dropped;
- wrapped lines of a paragraph joined (de-hyphenated); one blank line between paragraphs, list
  items of one list on consecutive lines.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gap_replay.guidelines_scraper.sources import GuidelineSource

# -- character level ----------------------------------------------------------------------------

_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\t\f\v]")
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200d\u2060\ufeff\u180e]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_BULLET_CHARS = "•◦▪▫■□●○◆◇►▸‣⁃∙➢➤✓✔"
_PRIVATE_USE = "\ue000-\uf8ff"
_ODD_CHARS = re.compile(f"[{_BULLET_CHARS}{_PRIVATE_USE}\ufffd]")

_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_MD_IMAGE = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((?:[^()\s]+|\([^()\s]*\))*(?:\s+\"[^\"\n]*\")?\)")
_URL = re.compile(
    r"<?(?:(?:https?|ftp)://|www\.)[^\s<>\"'\[\]{}|\\^`]*[^\s<>\"'\[\]{}|\\^`.,;:!?)]>?",
    re.IGNORECASE,
)
# A parenthesis that only points at a URL, e.g. "(see https://x.org/toolkit for the toolkit)".
_PAREN_URL = re.compile(r"[ ]*\((?:[^()\n]{0,40}?\s)?(?:" + _URL.pattern + r")[^()\n]{0,40}\)", re.IGNORECASE)
_CITATION = re.compile(r"[ \t]*\[\s*\d{1,4}[a-z]?(?:\s*(?:[-–—,;]|and)\s*\d{1,4}[a-z]?)*\s*\]")
_WIKI_DEBRIS = re.compile(r"\[\s*(?:edit|citation needed|clarification needed)\s*\]", re.IGNORECASE)
_MD_CITATION_LINK = re.compile(r"[ \t]*\[\s*\\?\[?\s*\d{1,4}(?:\s*[-–—,;]\s*\d{1,4})*\s*\\?\]?\s*\]\([^)\n]*\)")
_EMPTY_BRACKETS = re.compile(r"\(\s*[,;:]?\s*\)|\[\s*[,;:]?\s*\]")
_SPACE_BEFORE_PUNCT = re.compile(r"[ ]+([.,;:!?])(?=\s|$)")
_EMPHASIS_STRONG = re.compile(r"\*\*|__(?=\S)|(?<=\S)__")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")

# -- line level ---------------------------------------------------------------------------------

_HEADER = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(rf"^(?:[-*+](?=\s)|o(?=\s)|[{_BULLET_CHARS}{_PRIVATE_USE}])\s*")
_BLOCKQUOTE = re.compile(r"^(?:>\s*)+")
_RULE = re.compile(r"^[=\-_*~#.\s]{3,}$")
_CAPTION = re.compile(
    r"^(?:figure|fig\.?|table|tab\.|chart|image|graph|diagram)\s*[A-Z]?\d+[a-z]?(?:\.\d+)*\s*"
    r"(?:[:.|–—-]|$)",
    re.IGNORECASE,
)
_FIGURE_UI = re.compile(
    r"^(?:(?:click|tap)(?: here)? to (?:enlarge|zoom|view larger).*|(?:view|download|open) (?:larger|full[- ]size|"
    r"high[- ]resolution)? ?(?:image|figure|table|version).*|enlarge (?:image|figure|table))$",
    re.IGNORECASE,
)
REFERENCE_HEADINGS = re.compile(
    r"(?:\d+(?:\.\d+)*\.?\s*)?(?:selected |key |cited |further )?(?:references?(?: list)?|bibliography|"
    r"works cited|literature cited|reference list|citations|sources(?: and references)?|"
    r"references and (?:further reading|notes|resources))",
    re.IGNORECASE,
)
_SENTENCE_END = (".", ",", ";", "?", "!")
_HEADER_LIKE_MAX_WORDS = 8


@dataclass
class _Line:
    text: str            # without header marks / list dash
    level: int = 0       # header level (0: not a header)
    item: bool = False   # list item

    def render(self) -> str:
        if self.level:
            return "#" * self.level + " " + self.text
        if self.item:
            return "- " + self.text
        return self.text


def normalise_characters(text: str) -> str:
    """Unicode NFC, unified newlines and spaces, invisible and control characters removed."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = _SPACES.sub(" ", text)
    text = _INVISIBLE.sub("", text)
    return _CONTROL.sub("", text)


def remove_urls(text: str) -> str:
    """Markdown images removed, Markdown links reduced to their text, bare URLs removed."""
    text = _MD_IMAGE.sub("", text)
    text = _MD_CITATION_LINK.sub("", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _PAREN_URL.sub("", text)
    return _URL.sub("", text)


def remove_citations(text: str) -> str:
    """Numeric citation brackets (``[3]``, ``[1-3]``, ``[2, 5–7]``) and wiki ``[edit]`` debris."""
    return _WIKI_DEBRIS.sub("", _CITATION.sub("", text))


def marker_key(line: str) -> str:
    """The text markers are matched against: ``#`` marks, list dash, emphasis, trailing colon removed."""
    key = line.strip()
    key = re.sub(r"^#{1,6}\s*", "", key)
    key = re.sub(r"^[-*+]\s+", "", key)
    key = key.replace("**", "").strip()
    return key.rstrip(":").strip()


def is_header_like(line: str) -> bool:
    """A ``#`` header, or a short line (<= 8 words) that is not a list item and ends no sentence."""
    stripped = line.strip()
    if stripped.startswith("#"):
        return True
    if not stripped or _BULLET.match(stripped):
        return False
    return len(stripped.split()) <= _HEADER_LIKE_MAX_WORDS and not stripped.endswith(_SENTENCE_END)


def _fullmatch_any(patterns: Sequence[re.Pattern[str]], key: str) -> bool:
    return any(p.fullmatch(key) for p in patterns)


def apply_markers(lines: list[str], start: Sequence[re.Pattern[str]] = (), stop: Sequence[re.Pattern[str]] = (),
                  remove: Sequence[re.Pattern[str]] = ()) -> list[str]:
    """Keep from the first start-marker line (kept), drop remove-marker lines, cut at the first
    header-like stop-marker line (dropped). Without a start match the whole text is kept."""
    if start:
        for index, line in enumerate(lines):
            if _fullmatch_any(start, marker_key(line)):
                lines = lines[index:]
                break
    if stop:
        for index, line in enumerate(lines):
            if is_header_like(line) and _fullmatch_any(stop, marker_key(line)):
                lines = lines[:index]
                break
    if remove:
        lines = [line for line in lines if not _fullmatch_any(remove, marker_key(line))]
    return lines


# -- reference sections ---------------------------------------------------------------------------

_YEAR = re.compile(r"(?<![\d/.-])(?:1[89]\d\d|20\d\d)[a-z]?(?![\d/-])")
_AUTHOR = re.compile(
    r"(?:\b[A-Z][A-Za-z'’\-]+,?\s+(?:[A-Z]\.?\s?){1,3}(?=[,.;:]|\s+(?:and|&)\s|\s*$)"   # Barie PS. / Smith, J. A.,
    r"|\bet\s+al\b|\b[A-Z][a-z]+,\s+[A-Z][a-z]+(?:\s+[A-Z]\.)?\s*\(\d{4})")             # Smith, John (2001)
_JOURNAL = re.compile(
    r"\d+\s*\(\s*[\dS][^()\n]{0,12}\)\s*[:,]\s*[A-Za-z]?\d+"    # 24(1):138 / 12(Suppl 2): e5
    r"|[;:]\s*\d{1,4}\s*[:(]\s*\d"                              # 2010;303:2295 / 2007; 7(1)
    r"|\b\d{1,4}\s*:\s*[A-Za-z]?\d{1,6}\s*[-–]\s*[A-Za-z]?\d{1,6}\b"  # 19:516–532
    r"|\bpp?\.\s*\d|\bvol\.\s*\d|\bdoi\b|\bPMID\b|\bISBN\b|\bavailable (?:at|from)\b|\baccessed\b|\bretrieved\b"
    r"|https?://|www\.|\bIn:\s|\b(?:eds?|editors?)\b\.?|\bpress\b|\bpublish(?:ed|ers?|ing)\b",
    re.IGNORECASE)
_ENTRY_NUMBER = re.compile(r"^\s*(?:-\s+)?(?:\[\d{1,4}\]|\d{1,4}[.)]|\(\d{1,4}\))(?:\s|$)")
_CITATION_PROBE = 6       # entries looked at after a reference heading
_PROSE_MIN_WORDS = 20     # a block of this many words ending a sentence, without citation marks, is prose


_NUMBER_ONLY = re.compile(r"(?:-\s*)?(?:\[\d{1,4}\]|\d{1,4}[.)]?)")


def _blocks(lines: list[str], start: int) -> Iterator[tuple[int, int]]:
    """(first, end) line ranges of the blank-line separated blocks from `start` on; blocks holding only
    an entry number ("1.") are joined to the next one (PDF reference lists set the numbers apart)."""
    index, count = start, len(lines)
    pending: int | None = None
    while index < count:
        while index < count and not lines[index].strip():
            index += 1
        if index >= count:
            break
        first = index
        while index < count and lines[index].strip():
            index += 1
        if _NUMBER_ONLY.fullmatch(" ".join(line.strip() for line in lines[first:index])):
            pending = first if pending is None else pending
            continue
        yield (first if pending is None else pending), index
        pending = None
    if pending is not None:
        yield pending, index


def is_citation(text: str) -> bool:
    """Whether a block of text reads as bibliography entries: a year (or a DOI, URL, "accessed") with
    authors' names, ``et al.``, a journal's volume and pages or an entry number; several entries in
    one block need about one year per 60 words."""
    text = " ".join(text.split())
    words = len(text.split())
    if words < 3:
        return False
    years = len(_YEAR.findall(text))
    journal = len(_JOURNAL.findall(text))
    if not years and not journal:
        return False
    if words > 80 and max(years, journal) * 60 < words:
        return False
    return bool(_AUTHOR.search(text) or journal or _ENTRY_NUMBER.match(text))


def _is_prose(text: str) -> bool:
    text = " ".join(text.split())
    return (len(text.split()) >= _PROSE_MIN_WORDS and text.endswith((".", "!", "?", ":"))
            and not is_citation(text))


def _header_level(line: str) -> int:
    header = _HEADER.match(line.strip())
    return len(header.group(1)) if header else 0


def _is_reference_heading(line: str) -> bool:
    return is_header_like(line) and not _BULLET.match(line.strip()) and bool(
        REFERENCE_HEADINGS.fullmatch(marker_key(line)))


def _citations_follow(lines: list[str], start: int) -> bool:
    """Whether the entries after line `start` (up to the next ``#`` header) are citations: at least two
    of the first few, and most of them (one is enough when it is all there is)."""
    looked = cited = 0
    for first, end in _blocks(lines, start):
        if _header_level(lines[first]) or (end == first + 1 and is_header_like(lines[first])
                                           and _blocks_start_prose(lines, first)):
            break  # the next section
        block = lines[first:end]
        if _is_prose(" ".join(block)):
            break
        entries = [" ".join(block)]
        if len(block) > 1 and all(_BULLET.match(line.strip()) or _ENTRY_NUMBER.match(line) for line in block):
            entries = block  # one entry a line (a list)
        for entry in entries:
            looked += 1
            cited += is_citation(entry)
            if looked >= _CITATION_PROBE:
                break
        if looked >= _CITATION_PROBE:
            break
    if looked == 1:
        return cited == 1
    return cited >= 2 and cited * 5 >= looked * 3


def remove_reference_sections(lines: list[str]) -> list[str]:
    """Drop each reference list: a References/Bibliography heading (a ``#`` header, or a plain
    header-like line standing first in its block) followed by citation-like entries, up to the next
    heading that neither is a reference heading nor heads citations, or up to the point where prose
    resumes (two blocks of sentences without citation marks). A table's "Reference" column header or a
    heading followed by prose is kept."""
    out: list[str] = []
    index, count = 0, len(lines)
    while index < count:
        line = lines[index]
        starts_block = index == 0 or not lines[index - 1].strip() or _header_level(lines[index - 1])
        if not (starts_block and _is_reference_heading(line) and _citations_follow(lines, index + 1)):
            out.append(line)
            index += 1
            continue
        level = _header_level(line) or 7
        end = count
        prose_run: list[int] = []
        for first, block_end in _blocks(lines, index + 1):
            heading = lines[first]
            heading_level = _header_level(heading)
            if heading_level or (is_header_like(heading) and first + 1 < count and _blocks_start_prose(lines, first)):
                if _is_reference_heading(heading):
                    prose_run = []
                    continue
                deeper = heading_level and level != 7 and heading_level > level
                if deeper and _citations_follow(lines, first + 1):
                    prose_run = []
                    continue
                if heading_level or not is_citation(" ".join(lines[first:block_end])):
                    end = first
                    break
            text = " ".join(lines[first:block_end])
            if _is_prose(text):
                prose_run.append(first)
                if len(prose_run) >= 2:
                    end = prose_run[0]
                    break
            elif is_citation(text) or len(text.split()) >= 6:
                prose_run = []
        index = end
    return out


def _blocks_start_prose(lines: list[str], first: int) -> bool:
    """A plain header-like line standing alone in its block, followed by a prose block: a section
    heading in PDF text (not a wrapped citation line)."""
    if first + 1 < len(lines) and lines[first + 1].strip():
        return False
    following = next(_blocks(lines, first + 1), None)
    return following is not None and _is_prose(" ".join(lines[following[0]:following[1]]))


# -- tables of contents, dot leaders ------------------------------------------------------------------

_CONTENTS_HEADINGS = re.compile(
    r"(?:table of )?contents|contents of this (?:guideline|document|page)|list of (?:figures|tables|boxes|"
    r"illustrations|annexes|appendices|figures and tables|tables and figures)|on this page|in this (?:guideline|"
    r"article|section|document)|jump to(?: section)?",
    re.IGNORECASE)
_DOT_LEADER = re.compile(r"(?:(?:\.\s?){4,}|(?:…\s?){2,}|(?:_\s?){4,}|(?:·\s?){4,})\s*(?:\d{1,4}|[ivxlc]{1,7})?\s*$",
                         re.IGNORECASE)
_PAGE_REFERENCE = re.compile(r"^(?:- )?(?:(?:\d+(?:\.\d+)*\.?|[A-Z]\.|annex|appendix|chapter|section|box|"
                             r"figure|table)\s+)?[^\s.].{1,100}?[^\d\s.,;:]\s+(?:\d{1,4}|[ivxlc]{1,7})$", re.IGNORECASE)
_TOC_ENTRY_MAX_WORDS = 14


def _toc_entry(line: str) -> bool:
    stripped = line.strip()
    if not stripped or _header_level(stripped):
        return False
    if _DOT_LEADER.search(stripped) or _PAGE_REFERENCE.match(stripped):
        return True
    return len(stripped.split()) <= _TOC_ENTRY_MAX_WORDS and not stripped.endswith((".", "!", "?", ":", ";", ","))


def remove_contents(lines: list[str]) -> list[str]:
    """Drop tables of contents and lists of figures: a contents heading with the entries after it
    (short lines or list items, lines ending in page numbers, up to the first header or sentence), any
    dot-leader line, and runs of three or more lines ending in a page number."""
    out: list[str] = []
    index, count = 0, len(lines)
    while index < count:
        line = lines[index]
        if is_header_like(line) and _CONTENTS_HEADINGS.fullmatch(marker_key(line)):
            end = index + 1
            entries = 0
            while end < count and (not lines[end].strip() or _toc_entry(lines[end])):
                entries += bool(lines[end].strip())
                end += 1
            if entries >= 2:
                index = end
                continue
        out.append(line)
        index += 1
    out = [line for line in out if not _DOT_LEADER.search(line.strip())
           or len(_DOT_LEADER.sub("", line).split()) > 20]
    kept: list[str] = []
    run: list[str] = []
    for line in [*out, None]:
        stripped = line.strip() if line is not None else None
        if stripped and _PAGE_REFERENCE.match(stripped) and not stripped.endswith((".", ";")):
            run.append(line)
            continue
        if stripped == "" and run:
            run.append(line)
            continue
        entries = [entry for entry in run if entry.strip()]
        if len(entries) < 3 or not _increasing([entry.split()[-1] for entry in entries]):
            kept.extend(run)
        run = []
        if line is not None:
            kept.append(line)
    return kept


def _increasing(numbers: list[str]) -> bool:
    values = [int(n) for n in numbers if n.isdigit()]
    return len(values) >= 3 and all(a <= b for a, b in zip(values, values[1:]))


# -- bylines ------------------------------------------------------------------------------------------

_DEGREES = (r"MD|PhD|MPH|MPP|MPA|MBA|MS|MSc|MSPH|MSN|MSW|MA|BA|BS|BSc|BSN|RN|DrPH|DVM|DDS|DMD|PharmD|DO|DNP|"
            r"MBBS|MBChB|MRCP|FRCP|FRCPC|FRACP|FACP|FAAP|FIDSA|MHS|ScD|EdD|JD|LPN|NP|PA-C|CPH|CIC|MMed|MSCE")
_BYLINE_DEBRIS = re.compile(rf"^(?:[,;]?\s*(?:(?:{_DEGREES})\.?[\d,*†‡§]*[,;]?\s*))+$")


def _byline_debris(line: str) -> bool:
    """A line left of a byline whose names were lost: only degrees and affiliation marks
    (``, MD, PhD1,2;, MPP1;``)."""
    stripped = line.strip().lstrip("-").strip()
    return bool(stripped) and stripped[0] in ",;" and bool(_BYLINE_DEBRIS.fullmatch(stripped))


# -- mojibake -----------------------------------------------------------------------------------------

# A letter of windows-1252/latin-1's upper half followed by what a UTF-8 continuation byte reads as there:
# the mark of UTF-8 decoded as windows-1252 (``â€”``, ``Ã©``, ``Â``). Only such text is given to ftfy.
_MOJIBAKE_MARK = re.compile("[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6"
                            "\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]")


def repair_mojibake(text: str) -> str:
    """Text decoded with the wrong charset (once or more) repaired by ftfy; text without the marks of
    mojibake is returned as it is (ftfy is not called). Without ftfy installed, unchanged."""
    if not _MOJIBAKE_MARK.search(text):
        return text
    try:
        import ftfy  # noqa: PLC0415
    except ImportError:  # pragma: no cover - ftfy is a dependency
        return text
    return ftfy.fix_text(text, uncurl_quotes=False, fix_character_width=False, normalization="NFC")


def _classify(raw: str) -> _Line | None:
    """One stripped, non-blank line -> a _Line, or None when it is debris."""
    line = _BLOCKQUOTE.sub("", raw).strip()
    if not line or _RULE.match(line):
        return None
    header = _HEADER.match(line)
    if header:
        text = header.group(2).strip()
        return _Line(text, level=len(header.group(1))) if text else None
    bullet = _BULLET.match(line)
    if bullet:
        text = line[bullet.end():].strip()
        if text.startswith(("- ", "* ", "+ ")):  # nested marker debris like "- - item"
            text = text[2:].strip()
        return _Line(text, item=True) if text else None
    if line.startswith("|") or line.count("|") >= 2:
        return None
    if _CAPTION.match(line) or _FIGURE_UI.match(line):
        return None
    return _Line(line)


def _tidy_inline(text: str) -> str:
    text = _ODD_CHARS.sub("", text)
    text = _EMPHASIS_STRONG.sub("", text)
    text = _EMPHASIS.sub(r"\1", text)
    text = text.replace("*-", "")
    text = _EMPTY_BRACKETS.sub("", text)
    text = re.sub(r" {2,}", " ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = re.sub(r"\(\s+", "(", text)
    text = re.sub(r"\s+\)", ")", text)
    return text.strip()


def _has_letter(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def _rescale_headers(lines: list[_Line]) -> None:
    """Smallest header level present becomes 1; levels capped at 3 (in place)."""
    levels = [line.level for line in lines if line.level]
    if not levels:
        return
    shift = min(levels) - 1
    for line in lines:
        if line.level:
            line.level = min(3, line.level - shift)


def _drop_empty_headers(blocks: list[_Line]) -> list[_Line]:
    out: list[_Line] = []
    for line in reversed(blocks):
        if line.level:
            following = out[-1] if out else None
            if following is None or (following.level and following.level <= line.level):
                continue
        out.append(line)
    out.reverse()
    return out


def _join_wrapped(previous: str, line: str) -> str:
    if re.search(r"[A-Za-z]-$", previous) and line[:1].islower():
        return previous[:-1] + line
    return previous + " " + line


def _assemble(lines: list[str]) -> list[_Line]:
    """Blank-line separated blocks -> paragraphs (wrapped lines joined), headers and list items."""
    out: list[_Line] = []
    previous: _Line | None = None  # the element a plain line may continue (same block)
    for raw in lines:
        if not raw.strip():
            previous = None
            continue
        element = _classify(raw)
        if element is None:
            continue
        element.text = _tidy_inline(element.text)
        if not _has_letter(element.text):
            continue
        if not element.level and not element.item and previous is not None and not previous.level:
            previous.text = _join_wrapped(previous.text, element.text)
            continue
        out.append(element)
        previous = element if not element.level else None
    return out


def _render(elements: list[_Line]) -> str:
    parts: list[str] = []
    for index, element in enumerate(elements):
        if index:
            prior = elements[index - 1]
            parts.append("\n" if element.item and prior.item else "\n\n")
        parts.append(element.render())
    return "".join(parts)


def clean_text(text: str, source: GuidelineSource | None = None) -> str:
    """Clean one extracted text (see the module docstring); `source` supplies the markers."""
    text = normalise_characters(repair_mojibake(text))
    text = _HTML_TAG.sub("", text)
    text = remove_urls(text)
    text = remove_citations(text)
    lines = text.split("\n")
    # Line-level decisions are taken on bullet-normalised lines so that markers see clean text.
    lines = [_normalise_bullet(line) for line in lines]
    if source is not None:
        lines = apply_markers(lines, source.compiled_markers("start"), source.compiled_markers("stop"),
                              source.compiled_markers("remove"))
    lines = remove_reference_sections(lines)
    lines = remove_contents(lines)
    lines = [line for line in lines if not _byline_debris(line)]
    elements = _assemble(lines)
    _rescale_headers(elements)
    elements = _drop_empty_headers(elements)
    return _render(elements).strip()


def _normalise_bullet(line: str) -> str:
    stripped = _BLOCKQUOTE.sub("", line).strip()
    if not stripped:
        return ""
    if stripped.startswith("#"):
        return stripped
    bullet = _BULLET.match(stripped)
    if bullet:
        return "- " + stripped[bullet.end():].strip()
    return stripped


def count_words(text: str) -> int:
    """Words with at least one letter or digit (``#`` and ``-`` markers do not count)."""
    return sum(1 for token in text.split() if any(ch.isalnum() for ch in token))
