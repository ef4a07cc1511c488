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
from collections.abc import Sequence
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


def remove_reference_sections(lines: list[str]) -> list[str]:
    """Drop each References/Bibliography section: a ``#`` header up to the next header of the same
    or a higher level; a plain header-like line up to the next ``#`` header."""
    out: list[str] = []
    skipping_level: int | None = None  # 7: plain-line heading, any '#' header ends it
    for line in lines:
        header = _HEADER.match(line.strip())
        level = len(header.group(1)) if header else 0
        if skipping_level is not None:
            if level and (skipping_level == 7 or level <= skipping_level):
                skipping_level = None
            else:
                continue
        if is_header_like(line) and REFERENCE_HEADINGS.fullmatch(marker_key(line)):
            skipping_level = level or 7
            continue
        out.append(line)
    return out


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
    text = normalise_characters(text)
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
